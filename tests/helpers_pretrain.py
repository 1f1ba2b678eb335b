"""Tiny real inputs for the pretraining tests: a mixture folder made from the data kit's
`corpus/<lang>.txt` and a small WordPiece vocabulary trained on it with HF `tokenizers`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mbert.pretrain.settings import PretrainSettings

LANGS = ("en", "de", "fr")


def kit_documents(data_dir: Path, lang: str, max_docs: int, sentences_per_doc: int = 12) -> list[str]:
    """Documents of one language (blank line between documents in the kit), cut into pieces of
    at most `sentences_per_doc` sentences so that even a small kit file gives several."""
    text = (data_dir / "corpus" / f"{lang}.txt").read_text(encoding="utf-8")
    docs = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        for start in range(0, len(lines), sentences_per_doc):
            docs.append("\n".join(lines[start:start + sentences_per_doc]))
            if len(docs) >= max_docs:
                return docs
    return docs


def make_mixture(data_dir: Path, out: Path, langs: tuple[str, ...] = LANGS, max_docs: int = 12,
                 shards: int = 2) -> Path:
    """A mixture folder: part-*.parquet with lang,id,title,text, languages interleaved."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for lang in langs:
        for i, doc in enumerate(kit_documents(data_dir, lang, max_docs)):
            rows.append({"lang": lang, "id": f"{lang}-{i}", "title": f"{lang} {i}", "text": doc})
    rows.sort(key=lambda r: (int(r["id"].split("-")[1]), r["lang"]))
    counts = {lang: sum(r["lang"] == lang for r in rows) for lang in langs}
    total = sum(counts.values())
    # what `mbert corpus sample` records; the model card quotes it
    manifest = {"smoothing": 0.7, "unit": "documents",
                "languages": {lang: {"p": n / total, "q": round((n / total) ** 0.7, 4)}
                              for lang, n in counts.items()}}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for shard in range(shards):
        part = rows[shard::shards]
        table = pa.table({k: [r[k] for r in part] for k in ("lang", "id", "title", "text")})
        pq.write_table(table, out / f"part-{shard:05d}.parquet")
    return out


def make_vocab(data_dir: Path, out: Path, langs: tuple[str, ...] = LANGS, vocab_size: int = 3000) -> Path:
    """A BERT WordPiece tokenizer folder (cased, [PAD] [UNK] [CLS] [SEP] [MASK]), trained
    deterministically, so every run tests the same vocabulary."""
    from transformers import BertTokenizerFast

    from mbert.vocab.wordpiece import train_wordpiece

    sentences = []
    for lang in langs:
        for doc in kit_documents(data_dir, lang, 60):
            sentences.extend(doc.split("\n"))
    wordpiece = train_wordpiece([sentences], size=vocab_size, uncased=False, min_frequency=1,
                                show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    BertTokenizerFast(vocab=wordpiece.get_vocab(with_added_tokens=False), do_lower_case=False,
                      tokenize_chinese_chars=True, strip_accents=False).save_pretrained(str(out))
    return out


def tiny_settings(**overrides) -> PretrainSettings:
    base = dict(model="tiny", steps=6, batch_size=8, max_seq_length=64, learning_rate=1e-3,
                warmup_steps=2, log_every=1, eval_every=3, checkpoint_every=3, keep_checkpoints=2,
                tokenize_workers=1, heldout_docs=1, heldout_instances=4, device="cpu")
    base.update(overrides)
    return PretrainSettings(**base)



def make_sentencepiece_vocab(data_dir: Path, out: Path, langs: tuple[str, ...] = LANGS,
                             vocab_size: int = 2000) -> Path:
    """A SentencePiece-style (unigram, `▁` word starts) tokenizer folder with BERT's special tokens."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import PreTrainedTokenizerFast

    sentences = [line for lang in langs for doc in kit_documents(data_dir, lang, 40)
                 for line in doc.split("\n")]
    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(sentences, vocab_size=vocab_size, unk_token="[UNK]", show_progress=False,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    PreTrainedTokenizerFast(tokenizer_object=unigram, pad_token="[PAD]", unk_token="[UNK]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(out))
    return out
