"""Pretraining inputs: the tokenizer, the fingerprint of what a run is made from, and the training
data prepared from them once per run (`prepare_data`):

    corpus shards -> token store (tokenised once; shared by runs on the same inputs)
                  -> instance index (packed sequences; cached in OUT/data/instances-<key>-{train,heldout}.bin)
                  -> one `Source` per objective (MLM from the store, TLM from parallel files)
                  -> the objective of every step

`TrainingData.step_batches(step)` is the global batch of a step, a function of (seed, step) only:
instance order is a seeded permutation per epoch and masks are seeded per (epoch, instance), so
one process and N processes, and a resumed run, see exactly the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..artifact import fingerprint, writing
from ..atomic import atomic_file, atomic_write_json
from ..corpus.layout import CorpusFolder, corpus_fingerprint
from ..diskspace import reported_as_disk_full
from ..errors import UserError
from ..tokenizer_folder import load_tokenizer as shared_load_tokenizer
from . import instances as I
from .batching import Batch, Vocabulary, make_batch
from .distributed import Distributed
from .settings import PretrainSettings
from .sources import OBJECTIVES, Source, tlm_source
from .token_store import TokenStore, build_token_store, is_store_complete

HELDOUT_SALT = 99  # mask seeds of the held-out instances: (seed, HELDOUT_SALT, language, instance)
HELDOUT_BATCH = 32


# ----------------------------------------------------------------------------- tokenizer

def load_tokenizer(vocab_dir: Path):
    """The vocab stage's tokenizer; it must define the special tokens BERT pretraining needs."""
    tokenizer = shared_load_tokenizer(vocab_dir, hint="pass the output of `mbert vocab train` with --vocab")
    missing = [name for name in ("pad", "cls", "sep", "mask", "unk")
               if getattr(tokenizer, f"{name}_token_id", None) is None]
    if missing:
        raise UserError(f"tokenizer in {vocab_dir} has no {', '.join(missing)} token(s); BERT "
                        f"pretraining needs [PAD] [UNK] [CLS] [SEP] [MASK]: rebuild the vocabulary")
    return tokenizer


def vocab_fingerprint(tokenizer) -> str:
    return fingerprint(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))


def input_fingerprint(corpus: CorpusFolder, tokenizer) -> str:
    """What a token store and a pretraining run were made from: the corpus and the vocabulary."""
    return f"{corpus_fingerprint(corpus)}-{vocab_fingerprint(tokenizer)}"


def continuation_table(tokenizer) -> np.ndarray:
    """`table[id]` is True when the token continues the previous word (for whole-word masking).

    WordPiece marks continuations with `##`; SentencePiece marks word starts with `▁`."""
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    hashes = sum(1 for tok in vocab if tok.startswith("##"))
    spaces = sum(1 for tok in vocab if tok.startswith("▁"))
    table = np.zeros(size, dtype=bool)
    special = set(tokenizer.all_special_ids)
    for tok, idx in vocab.items():
        if idx in special:
            continue
        table[idx] = tok.startswith("##") if hashes >= spaces else not tok.startswith("▁")
    return table


# ----------------------------------------------------------------------------- training data

@dataclass
class TrainingData:
    """Everything a run trains and evaluates on; the same in every process."""

    settings: PretrainSettings
    store: TokenStore
    languages: list[str]            # store languages, then those only TLM files bring
    sources: dict[str, Source]      # objective -> its instances and their order
    heldout: np.ndarray             # held-out MLM instances (documents no training instance uses)
    vocab: Vocabulary
    step_kinds: np.ndarray          # objective of step i + 1
    padding_share: float

    def step_batches(self, step: int, rank: int = 0, world: int = 1) -> tuple[str, list[Batch]]:
        """(objective, micro-batches) of `step` (from 1) for process `rank` of `world`: each takes
        its slice of every micro-batch, so the processes together see the whole global batch."""
        s = self.settings
        kind = str(self.step_kinds[step - 1])
        seen_before = int(np.count_nonzero(self.step_kinds[:step - 1] == kind))
        source = self.sources[kind]
        index, epochs = source.order.take(seen_before * s.batch_size, s.batch_size)
        micro = s.batch_size // s.grad_accum
        per_rank = micro // world
        batches = []
        for m in range(s.grad_accum):
            lo = m * micro + rank * per_rank
            sel = slice(lo, lo + per_rank)
            keys = [(s.seed, OBJECTIVES[kind], int(e), int(i)) for e, i in zip(epochs[sel], index[sel])]
            batches.append(make_batch(source.tokens, source.instances[index[sel]], keys, self.vocab,
                                      max_seq_length=s.max_seq_length, mask_prob=s.mask_prob,
                                      whole_word=s.whole_word_masking, nsp=s.nsp and kind == "mlm",
                                      restart_positions=kind == "tlm",
                                      language_types=s.language_embeddings))
        return kind, batches

    def heldout_batches(self) -> Iterator[tuple[str, Batch]]:
        """(language, batch) over at most `heldout_instances` held-out instances per language, with
        masks fixed by the seed: the same every time they are evaluated."""
        s = self.settings
        langs = self.heldout[:, I.LANG_A]
        for lang_index, lang in enumerate(self.languages):
            rows = self.heldout[langs == lang_index][:s.heldout_instances]
            for start in range(0, len(rows), HELDOUT_BATCH):
                chunk = rows[start:start + HELDOUT_BATCH]
                keys = [(s.seed, HELDOUT_SALT, lang_index, start + i) for i in range(len(chunk))]
                yield lang, make_batch(self.store.tokens, chunk, keys, self.vocab,
                                       max_seq_length=s.max_seq_length, mask_prob=s.mask_prob,
                                       whole_word=s.whole_word_masking, nsp=False, restart_positions=False,
                                       language_types=s.language_embeddings)

    def position(self, step: int) -> dict[str, int]:
        """Instances of each objective trained on after `step` steps (recorded in checkpoints)."""
        kinds = self.step_kinds[:step]
        return {kind: int(np.count_nonzero(kinds == kind)) * self.settings.batch_size for kind in self.sources}


def prepare_data(corpus: CorpusFolder, tokenizer, out_dir: Path, settings: PretrainSettings,
                 inputs: str, dist: Distributed) -> TrainingData:
    """Build (first process) or reuse the token store and the instance index, then load them in every
    process. `inputs` is `input_fingerprint(corpus, tokenizer)`."""
    s = settings
    store = prepare_token_store(corpus, tokenizer, Path(s.token_store) if s.token_store
                                else Path(out_dir) / "data" / "store", inputs, s.tokenize_workers, dist)
    train, held = prepare_instances(store, Path(out_dir) / "data", inputs, s, dist)
    if len(train) == 0:
        raise UserError(f"the corpus in {corpus.root} yields no training instance; it needs "
                        f"more documents than pretrain.heldout_docs per language")
    languages = list(store.languages)
    sources = {"mlm": Source("mlm", store.tokens, train, s.seed)}
    tlm = tlm_source(s, tokenizer, languages)  # adds the languages of its files
    if tlm is not None:
        sources["tlm"] = tlm
    rng = np.random.default_rng([s.seed, 5])
    step_kinds = np.where(rng.random(s.steps) < s.tlm_ratio, "tlm", "mlm") if tlm is not None \
        else np.full(s.steps, "mlm")
    return TrainingData(settings=s, store=store, languages=languages, sources=sources, heldout=held,
                        vocab=Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer)),
                        step_kinds=step_kinds,
                        padding_share=I.padding_share(train, s.max_seq_length, 3 if s.nsp else 2))


def prepare_token_store(corpus: CorpusFolder, tokenizer, store_dir: Path, inputs: str, workers: int,
                        dist: Distributed) -> TokenStore:
    error = None
    if dist.main and not is_store_complete(store_dir, inputs):
        try:
            # int32 token ids plus offsets: about 4x the Parquet shards (measured on the kit)
            needed = 4 * sum(shard.path.stat().st_size for shard in corpus.shards)
            with writing(store_dir), reported_as_disk_full(store_dir, needed, "the token store"):
                if not is_store_complete(store_dir, inputs):  # runs sharing a store build it once
                    build_token_store(corpus.shards, tokenizer, store_dir, inputs, workers)
        except UserError as exc:
            error = str(exc)
    dist.broadcast_error(error)
    return TokenStore.open(store_dir)


def prepare_instances(store: TokenStore, folder: Path, inputs: str, s: PretrainSettings,
                      dist: Distributed) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) instances, built by the first process and cached under a key of what
    they depend on. Raw int64 rows are written as they are made and read memory-mapped, like the
    token store: the instance index (56 bytes an instance) stays on disk instead of growing the process."""
    key = fingerprint(inputs, s.max_seq_length, s.short_seq_prob, s.nsp, s.seed, s.heldout_docs)[:12]
    files = {part: folder / f"instances-{key}-{part}.bin" for part in ("train", "heldout")}
    counts_file = folder / f"instances-{key}.json"
    if dist.main and not counts_file.is_file():
        rng = np.random.default_rng([s.seed, 3])
        train_docs, held_docs = I.split_heldout(store, s.heldout_docs, rng)
        counts = {}
        for part, docs, short_seq_prob, nsp in (("train", train_docs, s.short_seq_prob, s.nsp),
                                               ("heldout", held_docs, 0.0, False)):
            with atomic_file(files[part], "wb") as handle:
                counts[part] = I.write_instances(handle, store, docs, s.max_seq_length, short_seq_prob, nsp, rng)
        atomic_write_json(counts_file, counts)  # last: marks the cache complete
    dist.barrier()
    counts = json.loads(counts_file.read_text())
    train, held = (I.open_instances(files[part], counts[part]) for part in ("train", "heldout"))
    return train, held
