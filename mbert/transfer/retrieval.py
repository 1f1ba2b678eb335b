"""Retrieval tasks without fine-tuning: Tatoeba sentence retrieval and BUCC 2018 bitext mining.

Sentence vectors are mean-pooled hidden states of one layer, over real sub-tokens only (special and
padding tokens excluded). Layer numbering follows `output_hidden_states`: 0 is the embedding output,
k is the output of the k-th transformer layer, None is the last one. XTREME reports these tasks with
the 8th of mBERT's 12 layers (`layer=8` here), where cross-lingual similarity peaks.

* Tatoeba (Artetxe & Schwenk 2019, as in XTREME): cosine nearest neighbour in both directions,
  accuracy in percent. `center=True` subtracts each language's mean vector first
  (Libovický et al. 2019, "How language-neutral is multilingual BERT?").
* BUCC: ratio-margin scoring over k=4 nearest neighbours found with faiss (Artetxe & Schwenk 2019),
  LASER's "max" candidate retrieval, and the threshold that maximises F1 on the gold pairs (XTREME
  picks it on dev the same way); precision, recall and F1 in percent at that threshold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from ..fake import fake_text, parse_fake_code
from ..progress import bar
from ..textfiles import read_lines
from .readers import token_format

# ISO 639-1 / Wikipedia code -> LASER's ISO 639-3 code in the Tatoeba file names (XTREME's 36 + more).
TATOEBA_ISO3: dict[str, str] = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
    "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn", "ca": "cat", "cs": "ces", "da": "dan", "hr": "hrv", "hy": "hye", "is": "isl",
    "lt": "lit", "lv": "lvs", "pl": "pol", "ro": "ron", "sk": "slk", "sl": "slv", "sq": "sqi",
    "sr": "srp", "sv": "swe", "uk": "ukr", "az": "aze", "be": "bel", "cy": "cym", "ga": "gle",
    "gl": "glg", "la": "lat", "mk": "mkd", "ms": "zsm", "nb": "nob", "no": "nob", "yi": "yid",
}
_ISO1 = {iso3: iso1 for iso1, iso3 in TATOEBA_ISO3.items() if iso1 != "no"}

BUCC_MARGIN_K = 4


def tatoeba_languages(data_dir: Path) -> list[str]:
    """Languages with a Tatoeba pair in `data_dir`, as ISO 639-1 codes where known."""
    found = []
    for path in sorted(Path(data_dir).glob("tatoeba.*-eng.eng")):
        iso3 = path.name.split(".")[1].split("-")[0]
        found.append(_ISO1.get(iso3, iso3))
    return found


def read_tatoeba(data_dir: Path, language: str, max_sentences: int | None = None
                 ) -> tuple[list[str], list[str]]:
    """(sentences in `language`, their English translations), line-aligned."""
    data_dir = Path(data_dir)
    iso3 = TATOEBA_ISO3.get(language, language)
    xx_path = data_dir / f"tatoeba.{iso3}-eng.{iso3}"
    en_path = data_dir / f"tatoeba.{iso3}-eng.eng"
    if not xx_path.is_file() or not en_path.is_file():
        available = ", ".join(tatoeba_languages(data_dir)) if data_dir.is_dir() else "(folder missing)"
        raise UserError(f"no Tatoeba data for language {language!r}: expected {xx_path.name} and "
                        f"{en_path.name} in {data_dir}; available: {available}")
    xx, en = read_lines(xx_path), read_lines(en_path)
    if len(xx) != len(en):
        raise UserError(f"Tatoeba files for {language!r} are not line-aligned: {xx_path} has "
                        f"{len(xx)} lines, {en_path} has {len(en)}; restore the original files")
    if max_sentences is not None:
        xx, en = xx[:max_sentences], en[:max_sentences]
    return xx, en


# ----------------------------------------------------------------------------- sentence vectors

def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer encoder inside a task model (`.bert`, else `.base_model`, else the model)."""
    if hasattr(model, "bert") and isinstance(model.bert, torch.nn.Module):
        return model.bert
    base = getattr(model, "base_model", None)
    return base if isinstance(base, torch.nn.Module) else model


def num_layers(model: torch.nn.Module) -> int:
    """Number of transformer layers; hidden states then have indices 0..num_layers."""
    return int(encoder_of(model).config.num_hidden_layers)


def _layer_index(model: torch.nn.Module, layer: int | None) -> int:
    total = num_layers(model)
    if layer is None:
        return total
    if not 0 <= layer <= total:
        raise UserError(f"layer {layer} does not exist: this model has layers 0 (embeddings) to {total}")
    return layer


def encode_sentences(model: torch.nn.Module, tokenizer, sentences: Sequence[str], *,
                     layers: Sequence[int | None] = (None,), batch_size: int = 64, max_length: int = 128,
                     device: str = "cpu", desc: str = "encode") -> dict[int, np.ndarray]:
    """Mean-pooled sentence vectors for each requested layer: layer index -> float32 (n, hidden).

    Batches are length-sorted so padding stays small; special and padding tokens are excluded from
    the mean (a sentence with no other token falls back to its special tokens)."""
    encoder = encoder_of(model)
    indices = sorted({_layer_index(model, layer) for layer in layers})
    if not sentences:
        width = int(encoder.config.hidden_size)
        return {i: np.zeros((0, width), dtype=np.float32) for i in indices}
    lengths = [len(ids) for ids in tokenizer(list(sentences), truncation=True,
                                              max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = {i: np.zeros((len(sentences), int(encoder.config.hidden_size)), dtype=np.float32)
           for i in indices}
    was_training = encoder.training
    encoder.eval()
    progress = bar(total=len(sentences), desc=desc, unit="sent")
    try:
        with torch.no_grad():
            for start in range(0, len(sentences), batch_size):
                chunk = order[start:start + batch_size]
                batch = tokenizer([sentences[i] for i in chunk], padding=True, truncation=True,
                                  max_length=max_length, return_special_tokens_mask=True,
                                  return_tensors="pt")
                special = batch.pop("special_tokens_mask").bool()
                batch = {key: value.to(device) for key, value in batch.items()}
                hidden = encoder(**batch, output_hidden_states=True).hidden_states
                attention = batch["attention_mask"].bool()
                keep = attention & ~special.to(device)
                empty = ~keep.any(dim=1)
                keep[empty] = attention[empty]
                weights = keep.unsqueeze(-1).float()
                for i in indices:
                    pooled = (hidden[i].float() * weights).sum(1) / weights.sum(1)
                    out[i][chunk] = pooled.cpu().numpy()
                progress.update(len(chunk))
    finally:
        progress.close()
        encoder.train(was_training)
    return out


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def center_vectors(vectors: np.ndarray) -> np.ndarray:
    """Subtract the language's mean vector (its centroid) from each of its sentence vectors."""
    return vectors - vectors.mean(axis=0, keepdims=True)


def nearest(queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the cosine-nearest target of each query."""
    q, t = normalise(queries), normalise(targets)
    found = [(q[start:start + 1024] @ t.T).argmax(axis=1)  # bounded memory for large sets
             for start in range(0, len(q), 1024)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def retrieval_accuracy(queries: np.ndarray, targets: np.ndarray) -> float:
    """Percent of queries whose cosine nearest target is the one with the same index."""
    if len(queries) == 0:
        return 0.0
    return 100.0 * int((nearest(queries, targets) == np.arange(len(queries))).sum()) / len(queries)


def tatoeba_scores(xx: np.ndarray, en: np.ndarray) -> dict[str, float]:
    forward, backward = retrieval_accuracy(xx, en), retrieval_accuracy(en, xx)
    return {"xx->en": forward, "en->xx": backward, "mean": (forward + backward) / 2}


def evaluate_tatoeba(model, tokenizer, data_dir: Path, languages: list[str], *, layer: int | None = None,
                     center: bool = False, batch_size: int = 64, max_length: int = 128,
                     device: str = "cpu", max_sentences: int | None = None,
                     predictions: dict[str, list[int]] | None = None,
                     layers: Sequence[int] = ()) -> dict[str, dict]:
    """Tatoeba accuracy per language: lang -> {"xx->en", "en->xx", "mean"} in percent.

    `languages` are ISO 639-1 codes (mapped to LASER's file names, e.g. zh -> cmn) or the ISO 639-3
    codes themselves; `max_sentences` keeps the first N pairs. The model must already be on `device`.
    `predictions`, when given, receives per language the English index each sentence retrieves
    (xx->en, what XTREME's prediction file holds; the right answer for sentence i is i). `layers`
    adds the scores at those layers too (see `score_pairs`)."""
    pairs = {lang: read_tatoeba(data_dir, lang, max_sentences) for lang in languages}  # fail early
    return score_pairs(model, tokenizer, pairs, layer=layer, center=center, batch_size=batch_size,
                       max_length=max_length, device=device, predictions=predictions, layers=layers)


def read_sentences(path: Path) -> list[str]:
    """Sentences of a CoNLL-U file (its `# text = ` lines) or of a text file (one per non-blank line)."""
    lines = read_lines(path)
    if token_format(path) == "conllu":
        return [line[len("# text = "):].strip() for line in lines if line.startswith("# text = ")]
    return [line for line in lines if line.strip()]


def fake_pairs(path: Path, languages: list[str], max_sentences: int | None = None
               ) -> dict[str, tuple[list[str], list[str]]]:
    """Retrieval pairs with exact gold: per fake language (`en-fake`), (the fake copies, the sentences
    of `path`), line-aligned. The sentences must be in the fake languages' base language."""
    real = [code for code in languages if parse_fake_code(code) is None]
    if real:
        raise UserError(f"retrieval on a text file scores sentences against their fake copies, so its "
                        f"languages must be fake codes (<base>-fake); {', '.join(real)} is not")
    sentences = read_sentences(Path(path))[:max_sentences]
    if not sentences:
        raise UserError(f"{path} holds no sentences; give a CoNLL-U file or one sentence per line")
    return {code: ([fake_text(s, code) for s in sentences], sentences) for code in languages}


def score_pairs(model, tokenizer, pairs: dict[str, tuple[list[str], list[str]]], *, layer: int | None = None,
                center: bool = False, batch_size: int = 64, max_length: int = 128, device: str = "cpu",
                predictions: dict[str, list[int]] | None = None, layers: Sequence[int] = ()) -> dict[str, dict]:
    """Retrieval accuracy per language over line-aligned (xx sentences, English sentences) pairs:
    lang -> {"xx->en", "en->xx", "mean"} at `layer` (centred when `center`). With `layers`, also
    "by_layer": {"raw": {layer: scores}, "centered": {layer: scores}} for each of those layers,
    from the same forward passes; a layer's scores never decide the headline's layer."""
    results: dict[str, dict] = {}
    index = _layer_index(model, layer)
    extra = sorted({_layer_index(model, k) for k in layers})
    for lang, (xx_text, en_text) in pairs.items():
        common = dict(layers=[index, *extra], batch_size=batch_size, max_length=max_length, device=device)
        xx_all = encode_sentences(model, tokenizer, xx_text, desc=f"retrieval {lang}", **common)
        en_all = encode_sentences(model, tokenizer, en_text, desc=f"retrieval {lang} en", **common)
        xx, en = xx_all[index], en_all[index]
        if center:  # each side minus its own language centroid
            xx, en = center_vectors(xx), center_vectors(en)
        results[lang] = tatoeba_scores(xx, en)
        if extra:
            results[lang]["by_layer"] = {
                "raw": {k: tatoeba_scores(xx_all[k], en_all[k]) for k in extra},
                "centered": {k: tatoeba_scores(center_vectors(xx_all[k]), center_vectors(en_all[k]))
                             for k in extra}}
        if predictions is not None:
            predictions[lang] = [int(i) for i in nearest(xx, en)]
    return results


# ----------------------------------------------------------------------------- BUCC mining

def knn(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and indices of the k nearest `base` rows per query (faiss, exact)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(normalise(base)))
    similarities, indices = index.search(np.ascontiguousarray(normalise(queries)), min(k, len(base)))
    return similarities, indices


def margin_candidates(x: np.ndarray, y: np.ndarray, k: int = BUCC_MARGIN_K
                      ) -> list[tuple[int, int, float]]:
    """Mine (x index, y index, ratio-margin score) pairs, LASER's "max" retrieval.

    margin(x, y) = cos(x, y) / ((mean cos of x to its k NN in y + mean cos of y to its k NN in x) / 2).
    Each x proposes its best-scoring y and each y its best x; candidates are taken in decreasing score,
    skipping any whose x or y was already used."""
    if len(x) == 0 or len(y) == 0:
        return []
    xn, yn = normalise(x), normalise(y)
    x2y_sim, x2y_ind = knn(xn, yn, k)
    y2x_sim, y2x_ind = knn(yn, xn, k)
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)

    def best(a, b, a2b_ind, a_mean, b_mean):
        cos = np.einsum("nd,nkd->nk", a, b[a2b_ind])
        scores = cos / ((a_mean[:, None] + b_mean[a2b_ind]) / 2)
        column = scores.argmax(axis=1)
        rows = np.arange(len(a))
        return a2b_ind[rows, column], scores[rows, column]

    fwd_best, fwd_score = best(xn, yn, x2y_ind, x2y_mean, y2x_mean)
    bwd_best, bwd_score = best(yn, xn, y2x_ind, y2x_mean, x2y_mean)
    sources = np.concatenate([np.arange(len(x)), bwd_best])
    targets = np.concatenate([fwd_best, np.arange(len(y))])
    scores = np.concatenate([fwd_score, bwd_score])
    seen_x, seen_y, mined = set(), set(), []
    for i in np.argsort(-scores, kind="stable"):
        sx, ty = int(sources[i]), int(targets[i])
        if sx not in seen_x and ty not in seen_y:
            seen_x.add(sx)
            seen_y.add(ty)
            mined.append((sx, ty, float(scores[i])))
    return mined


def best_f1_threshold(candidates: dict[tuple[str, str], float], gold: set[tuple[str, str]]
                      ) -> dict[str, float]:
    """Threshold maximising F1 of candidates scored above it (XTREME's `bucc_optimize`), with the
    precision, recall and F1 (percent) obtained there."""
    items = sorted(candidates.items(), key=lambda item: -item[1])
    best = {"f1": 0.0, "precision": 0.0, "recall": 0.0,
            "threshold": (items[0][1] + 1e-6) if items else 0.0}
    correct = 0
    for rank, (pair, score) in enumerate(items, start=1):
        correct += pair in gold
        if not correct:
            continue
        precision, recall = correct / rank, correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        # ties cannot be split by a threshold: only the end of a run of equal scores is a cut point
        if rank < len(items) and items[rank][1] == score:
            continue
        if f1 > best["f1"] / 100:
            nxt = items[rank][1] if rank < len(items) else score - 1e-6
            best = {"f1": 100 * f1, "precision": 100 * precision, "recall": 100 * recall,
                    "threshold": (score + nxt) / 2}
    return best


def read_bucc(data_dir: Path, pair: str, split: str = "dev", max_sentences: int | None = None
              ) -> tuple[dict[str, str], dict[str, str], set[tuple[str, str]]]:
    """(source id -> sentence, target id -> sentence, gold (source id, target id) pairs)."""
    match = re.fullmatch(r"([a-z]{2,3})-([a-z]{2,3})", pair)
    if not match:
        raise UserError(f"BUCC pair {pair!r} must look like 'zh-en'")
    data_dir = Path(data_dir)
    sides = []
    for lang in match.groups():
        path = data_dir / f"{pair}.{split}.{lang}"
        path = path if path.is_file() else path.with_name(path.name + ".xz")
        if not path.is_file():
            available = sorted({p.name.split(".")[0] for p in data_dir.glob("*.gold")}) \
                if data_dir.is_dir() else []
            raise UserError(f"no BUCC file {pair}.{split}.{lang}[.xz] in {data_dir}; pairs with "
                            f"gold data there: {', '.join(available) or 'none'}")
        sentences = {}
        for number, line in enumerate(read_lines(path), start=1):
            if "\t" not in line:
                raise UserError(f"{path}:{number} is not 'id<TAB>sentence'; restore the original file")
            ident, text = line.split("\t", 1)
            sentences[ident] = text
        sides.append(sentences)
    gold_path = data_dir / f"{pair}.{split}.gold"
    if not gold_path.is_file():
        raise UserError(f"BUCC {pair} {split} has no gold file {gold_path}; the threshold is chosen "
                        f"on gold pairs, so use a split with gold alignments (e.g. dev)")
    gold = {tuple(line.split("\t")[:2]) for line in read_lines(gold_path) if line.strip()}
    source, target = sides
    gold = {(s, t) for s, t in gold if s in source and t in target}
    if max_sentences is not None:
        source = _cap_keeping(source, {s for s, _ in gold}, max_sentences)
        target = _cap_keeping(target, {t for _, t in gold}, max_sentences)
    return source, target, gold


def _cap_keeping(sentences: dict[str, str], keep: set[str], limit: int) -> dict[str, str]:
    """At most max(limit, len(keep)) sentences: every id in `keep`, then others in file order."""
    room = max(limit - len(keep), 0)
    others = [ident for ident in sentences if ident not in keep][:room]
    chosen = keep | set(others)
    return {ident: text for ident, text in sentences.items() if ident in chosen}


def mine_and_score(source: dict[str, str], target: dict[str, str], gold: set[tuple[str, str]],
                   source_vectors: np.ndarray, target_vectors: np.ndarray, k: int = BUCC_MARGIN_K,
                   predicted: list[tuple[str, str]] | None = None) -> dict[str, float]:
    """Mine over unique texts (vectors given per unique text, in first-seen order), map every mined
    text pair back to all id pairs carrying those texts (as XTREME does), then pick the best-F1
    threshold. `predicted`, when given, receives the id pairs scored above it (XTREME's prediction
    file)."""
    src_ids, trg_ids = _ids_by_text(source), _ids_by_text(target)
    src_texts, trg_texts = list(src_ids), list(trg_ids)
    candidates: dict[tuple[str, str], float] = {}
    for i, j, score in margin_candidates(source_vectors, target_vectors, k):
        for s in src_ids[src_texts[i]]:
            for t in trg_ids[trg_texts[j]]:
                candidates[(s, t)] = max(score, candidates.get((s, t), score))
    if not gold:
        raise UserError("BUCC gold pairs are empty for the sentences read; check the gold file ids")
    best = best_f1_threshold(candidates, gold)
    if predicted is not None:
        predicted.extend(sorted(pair for pair, score in candidates.items() if score > best["threshold"]))
    return best


def _ids_by_text(sentences: dict[str, str]) -> dict[str, list[str]]:
    by_text: dict[str, list[str]] = {}
    for ident, text in sentences.items():
        by_text.setdefault(text.strip(), []).append(ident)
    return by_text


def evaluate_bucc(model, tokenizer, data_dir: Path, pairs: list[str], *, layer: int | None = None,
                  batch_size: int = 64, max_length: int = 128, device: str = "cpu",
                  max_sentences: int | None = None, split: str = "dev",
                  predictions: dict[str, tuple[list, set]] | None = None) -> dict[str, dict[str, float]]:
    """BUCC mining per pair: "zh-en" -> {"f1", "precision", "recall" (percent), "threshold"}.
    `predictions`, when given, receives per pair (mined id pairs above the threshold, gold id pairs).

    Files: `<pair>.<split>.<lang>[.xz]` (id<TAB>sentence) and `<pair>.<split>.gold`. `max_sentences`
    caps each side for quick runs but always keeps the sentences of every gold pair (so a side holds
    max(max_sentences, gold sentences on that side)); the margin threshold is the best-F1 one on
    the gold pairs, as XTREME selects it on dev."""
    data = {pair: read_bucc(data_dir, pair, split, max_sentences) for pair in pairs}  # fail early
    index = _layer_index(model, layer)
    results = {}
    for pair, (source, target, gold) in data.items():
        common = dict(layers=[index], batch_size=batch_size, max_length=max_length, device=device)
        src_texts, trg_texts = list(_ids_by_text(source)), list(_ids_by_text(target))
        src = encode_sentences(model, tokenizer, src_texts, desc=f"bucc {pair} src", **common)[index]
        trg = encode_sentences(model, tokenizer, trg_texts, desc=f"bucc {pair} trg", **common)[index]
        mined: list[tuple[str, str]] = []
        results[pair] = mine_and_score(source, target, gold, src, trg, predicted=mined)
        if predictions is not None:
            predictions[pair] = (mined, gold)
    return results
