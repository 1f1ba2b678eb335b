"""`corpus sample`: an exponentially smoothed language mixture from a clean corpus.

p_L is language L's share of the clean corpus (characters, or tokens: words and punctuation
marks, each CJK ideograph one token as in mBERT's basic tokenizer); q_L = p_L^S / Σ_K p_K^S.
Language L then contributes q_L × target: down-sampled by a seeded choice of whole documents,
or up-sampled by repeating every document ⌊r⌋ times plus a seeded choice of documents for the
fraction, with r capped at `max_repeats` (the manifest says where the cap cut a language short).
A fake language (`en-fake`) takes the documents its base language keeps, so the two halves of a
lab mixture are parallel text (`fake_parallel = false` samples it on its own).
When whole documents land more than 10 % off the target (text without document boundaries is one
document), the language is sampled in pseudo-documents, blocks of `pseudo_document_sentences`
consecutive sentences, instead (a fake language mirrors its base's blocks); a language still more
than 10 % off is warned about.

Memory stays bounded: the text is streamed twice per language (sizes, then emission), rows go to
one of B bucket files at random, and each bucket (about one output shard) is shuffled in memory.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from pathlib import Path

import numpy as np

from ..artifact import is_complete as artifact_complete, read_manifest, write_manifest, writing
from ..atomic import staging_dir
from ..config import to_plain, write_resolved
from ..errors import UserError
from ..fake import parse_fake_code
from ..progress import bar, summary, warn
from .extract import is_complete as clean_is_complete
from .settings import SampleSettings
from .shards import MIXTURE_SCHEMA, RotatingWriter, ShardWriter, iter_rows

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
BUCKET_BUFFER_BYTES = 128 << 20  # text held for all bucket files together while rows are dealt out
TARGET_TOLERANCE = 0.10  # further off than this, whole documents give way to sentence blocks, then a warning


def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished `corpus sample` output."""
    return artifact_complete(out_dir)


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def smoothed_weights(sizes: dict[str, float], smoothing: float) -> tuple[dict[str, float], dict[str, float]]:
    """p_L (shares) and q_L = p_L^S / Σ p_K^S."""
    total = sum(sizes.values())
    p = {lang: size / total for lang, size in sizes.items()}
    powered = {lang: share ** smoothing for lang, share in p.items()}
    norm = sum(powered.values())
    return p, {lang: value / norm for lang, value in powered.items()}


def choose_copies(doc_sizes: np.ndarray, target: float, max_repeats: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """How many times each document goes into the mixture so that the sizes add up to ~target.

    Returns (copies per document, whether max_repeats cut the language short)."""
    size = float(doc_sizes.sum())
    copies = np.zeros(len(doc_sizes), dtype=np.int64)
    if size <= 0 or target <= 0:
        return copies, False
    ratio = target / size
    capped = ratio > max_repeats
    ratio = min(ratio, max_repeats)
    whole = int(math.floor(ratio))
    copies += whole
    remainder = (ratio - whole) * size
    if remainder > 0:
        order = rng.permutation(len(doc_sizes))
        cumulative = np.cumsum(doc_sizes[order])
        # documents in seeded random order until the remainder is reached (the last one may overshoot
        # by less than one document; take it when that lands closer to the target)
        count = int(np.searchsorted(cumulative, remainder, side="left"))
        if count < len(order):
            before = cumulative[count - 1] if count > 0 else 0
            if abs(cumulative[count] - remainder) <= abs(remainder - before):
                count += 1
        copies[order[:count]] += 1
    return copies, capped


def _language_rows(clean_dir: Path, entry: dict, block_sentences: int | None = None):
    """The language's documents, or with `block_sentences` its pseudo-documents: blocks of that many
    consecutive sentences of a document (id `<document id>#<block number>`)."""
    for part in entry["parts"]:
        for row in iter_rows(clean_dir / part, ["id", "title", "text"]):
            if block_sentences is None:
                yield row
                continue
            sentences = row["text"].split("\n")
            for block, start in enumerate(range(0, len(sentences), block_sentences)):
                yield {"id": f"{row['id']}#{block}", "title": row["title"],
                       "text": "\n".join(sentences[start:start + block_sentences])}


def _size(text: str, unit: str) -> int:
    return count_tokens(text) if unit == "tokens" else len(text) - text.count("\n")


def _block_sizes(clean_dir: Path, entry: dict, unit: str, block_sentences: int) -> np.ndarray:
    return np.asarray([_size(row["text"], unit) for row in _language_rows(clean_dir, entry, block_sentences)],
                      dtype=np.int64)


def _off_target(achieved: float, target: float) -> float:
    """Relative distance from the target: 0.4 = 40 % above, -0.3 = 30 % below."""
    return achieved / target - 1.0 if target > 0 else 0.0


def _doc_sizes(clean_dir: Path, entry: dict, unit: str) -> tuple[np.ndarray, str]:
    """Each document's size, and a digest of the document ids in order (to recognise a fake copy's
    documents as its base's without holding the ids)."""
    sizes, ids = [], hashlib.sha256()
    for row in _language_rows(clean_dir, entry):
        sizes.append(_size(row["text"], unit))
        ids.update(row["id"].encode("utf-8") + b"\0")
    return np.asarray(sizes, dtype=np.int64), ids.hexdigest()


def mirrored_base(lang: str, copies_by_lang: dict, doc_ids: dict, settings: SampleSettings) -> str | None:
    """The base language whose document choice a fake language repeats, or None to sample it alone:
    with `fake_parallel`, when the base is in the mixture and the fake copy holds its documents (same
    ids, same order; a copy made from other text, e.g. another extraction, is sampled on its own)."""
    fake = parse_fake_code(lang)
    if not settings.fake_parallel or fake is None or fake.base not in copies_by_lang:
        return None
    return fake.base if doc_ids[lang] == doc_ids[fake.base] else None


def _language_seed(seed: int, lang: str) -> int:
    return seed * 1_000_003 + sum(ord(c) * 31 ** i for i, c in enumerate(lang)) % 1_000_000_007


def sample_mixture(clean_dir: Path, out_dir: Path, settings: SampleSettings, tracker=None) -> dict:
    """Write the smoothed mixture of the clean corpus in `clean_dir` to `out_dir`; returns the manifest."""
    with writing(out_dir):
        return _sample(Path(clean_dir), Path(out_dir), settings, tracker)


def _sample(clean_dir: Path, out_dir: Path, settings: SampleSettings, tracker) -> dict:
    if not clean_is_complete(clean_dir):
        raise UserError(f"{clean_dir} is not a complete `corpus extract` output (no complete manifest.json); "
                        f"run `mbert corpus extract --out {clean_dir}` first")
    started = time.perf_counter()
    clean = read_manifest(clean_dir)
    missing = sorted(set(settings.languages) - set(clean["languages"]))
    if missing:
        raise UserError(f"{clean_dir} has no language {', '.join(missing)} (it has: "
                        f"{', '.join(sorted(clean['languages']))}); extract it first or drop it from the list")
    entries = {lang: e for lang, e in clean["languages"].items() if e.get("documents", 0) > 0
               and (not settings.languages or lang in settings.languages)}
    if not entries:
        raise UserError(f"{clean_dir} has no documents in any language; check the extraction sources")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir} ({exc.strerror or exc}); choose another --out") from None

    doc_sizes, doc_ids = {}, {}
    for lang, entry in entries.items():
        doc_sizes[lang], doc_ids[lang] = _doc_sizes(clean_dir, entry, settings.unit)
    sizes = {lang: float(s.sum()) for lang, s in doc_sizes.items()}
    p, q = smoothed_weights(sizes, settings.smoothing)
    total = sum(sizes.values())
    target_total = float(settings.target_size or total)
    rows, copies_by_lang, blocks_by_lang = {}, {}, {}
    for lang in sorted(entries, key=lambda code: parse_fake_code(code) is not None):  # bases first
        rng = np.random.default_rng(_language_seed(settings.seed, lang))
        target = q[lang] * target_total
        base = mirrored_base(lang, copies_by_lang, doc_ids, settings)
        unit_sizes, block_sentences = doc_sizes[lang], None
        if base is not None:  # the fake copy of exactly the documents (or blocks) its base keeps
            copies, capped = copies_by_lang[base].copy(), bool(rows[base]["capped"])
            block_sentences = blocks_by_lang[base]
            if block_sentences is not None:
                unit_sizes = _block_sizes(clean_dir, entries[lang], settings.unit, block_sentences)
        else:
            copies, capped = choose_copies(unit_sizes, target, settings.max_repeats, rng)
            if not capped and abs(_off_target(float((copies * unit_sizes).sum()), target)) > TARGET_TOLERANCE:
                # too few (or too large) documents to land near the target: sample sentence blocks instead
                block_sentences = settings.pseudo_document_sentences
                unit_sizes = _block_sizes(clean_dir, entries[lang], settings.unit, block_sentences)
                copies, capped = choose_copies(unit_sizes, target, settings.max_repeats, rng)
        achieved = float((copies * unit_sizes).sum())
        copies_by_lang[lang], blocks_by_lang[lang] = copies, block_sentences
        rows[lang] = {"p": p[lang], "q": q[lang], "size": sizes[lang], "target": round(target, 3),
                      "achieved": achieved, "ratio": target / sizes[lang] if sizes[lang] else 0.0,
                      "effective_ratio": achieved / sizes[lang] if sizes[lang] else 0.0,
                      "off_target": round(_off_target(achieved, target), 4),
                      "repeats": int(copies.max()) if len(copies) else 0, "capped": capped,
                      "sampled_as": "documents" if block_sentences is None
                      else f"blocks of {block_sentences} sentences",
                      "documents_in": int(len(doc_sizes[lang])), "documents_out": int(copies.sum()),
                      "parallel_to": base}

    shard_bytes = int(settings.shard_mb * (1 << 20))
    out_bytes = sum(entries[l]["bytes"] * rows[l]["effective_ratio"] for l in entries)
    buckets = max(1, math.ceil(out_bytes / shard_bytes))
    try:
        with staging_dir(out_dir) as tmp:
            parts = _emit(clean_dir, entries, copies_by_lang, blocks_by_lang, tmp, buckets, settings,
                          shard_bytes)
            plot = _plot(p, q, tmp / "smoothing.png", settings.smoothing)
            write_resolved(tmp, {"sample": settings})
            manifest = {
                "stage": "corpus-sample", "clean_dir": str(clean_dir), "smoothing": settings.smoothing,
                "unit": settings.unit, "target_size": target_total, "max_repeats": settings.max_repeats,
                "seed": settings.seed, "languages": dict(sorted(rows.items())),
                "totals": {"size": total, "achieved": sum(r["achieved"] for r in rows.values()),
                           "documents": sum(r["documents_out"] for r in rows.values())},
                "parts": [p_.name for p_ in parts], "plot": plot.name,
                "settings": to_plain(settings), "seconds": round(time.perf_counter() - started, 3),
                "complete": True,
            }
            write_manifest(tmp, manifest)  # last: marks the folder complete
    except PermissionError as exc:
        raise UserError(f"cannot write to {out_dir} ({exc.strerror}); choose another --out") from None
    _report(manifest, out_dir, tracker)
    return manifest


def _emit(clean_dir: Path, entries: dict, copies_by_lang: dict, blocks_by_lang: dict, out: Path,
          buckets: int, settings: SampleSettings, shard_bytes: int) -> list[Path]:
    """Rows -> random buckets (pass 1), each bucket shuffled into output parts (pass 2)."""
    bucket_dir = out / ".buckets"
    rng = random.Random(settings.seed)
    # every bucket buffers a row group: their sum, not each, is bounded, or memory grows with the corpus
    group_bytes = max(1 << 20, BUCKET_BUFFER_BYTES // buckets)
    writers = [ShardWriter(bucket_dir / f"bucket-{b:05d}.parquet", MIXTURE_SCHEMA, group_bytes=group_bytes)
               for b in range(buckets)]
    with bar(total=sum(int(c.sum()) for c in copies_by_lang.values()), desc="corpus sample", unit="doc") as progress:
        for lang, entry in entries.items():
            copies = copies_by_lang[lang]
            for index, row in enumerate(_language_rows(clean_dir, entry, blocks_by_lang[lang])):
                for _ in range(int(copies[index])):
                    writers[rng.randrange(buckets)].write(lang=lang, **row)
                    progress.update(1)
    bucket_files = [w.close() for w in writers]
    output = RotatingWriter(out, MIXTURE_SCHEMA, shard_bytes=shard_bytes)
    for path in bucket_files:
        _shuffle_into(path, rng, output)
        path.unlink()
    parts = output.close()
    bucket_dir.rmdir()
    if not parts:
        parts = [ShardWriter(out / "part-00000.parquet", MIXTURE_SCHEMA).close()]
    return parts


def _shuffle_into(bucket: Path, rng: random.Random, output: RotatingWriter) -> None:
    """One bucket, read whole and shuffled, into the output parts. A function of its own so that
    the bucket's rows are freed before the next one is read: a variable of the loop above held them
    until it was rebound, so two buckets were in memory at once (peak RSS 1.2 GB instead of 0.8 at
    x4 of the scaling runs)."""
    rows = list(iter_rows(bucket, MIXTURE_SCHEMA.names))
    rng.shuffle(rows)
    for row in rows:
        output.write(**row)


def _plot(p: dict, q: dict, path: Path, smoothing: float) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(p, key=lambda lang: -p[lang])
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(langs) + 2), 4.2))
    ax.bar(x - 0.2, [p[l] for l in langs], width=0.4, label="p_L (clean corpus share)")
    ax.bar(x + 0.2, [q[l] for l in langs], width=0.4, label=f"q_L (smoothed, S={smoothing:g})")
    ax.set_yscale("log")
    ax.set_xticks(x, langs, rotation=90 if len(langs) > 12 else 0, fontsize=8)
    ax.set_ylabel("share of the corpus (log scale)")
    ax.set_title("Exponentially smoothed language sampling")
    ax.set_ylim(top=max(max(p.values()), max(q.values())) * 8)  # head-room for the legend
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _report(manifest: dict, out_dir: Path, tracker) -> None:
    langs = manifest["languages"]
    if tracker is not None:
        columns = ["lang", "p", "q", "target", "achieved", "ratio", "repeats", "capped"]
        tracker.table("sample/languages", columns, [[l] + [r[c] for c in columns[1:]] for l, r in langs.items()])
        tracker.image("sample/smoothing", out_dir / "smoothing.png")
        tracker.summary({"sample/documents": manifest["totals"]["documents"],
                         "sample/achieved": manifest["totals"]["achieved"]})
    capped = [l for l, r in langs.items() if r["capped"]]
    for lang, row in langs.items():
        if abs(row["off_target"]) > TARGET_TOLERANCE:
            why = (f"repeats are capped at {manifest['max_repeats']:g} (raise --max-repeats)" if row["capped"] else
                   "its sentences come in blocks too large for the target (lower --pseudo-document-sentences)")
            side = "above" if row["off_target"] > 0 else "below"
            warn(f"corpus sample: {lang} ends {abs(row['off_target']):.0%} {side} its target ({row['achieved']:,.0f} "
                 f"instead of {row['target']:,.0f} {manifest['unit']}): {why}")
    top = max(langs, key=lambda l: langs[l]["p"])
    summary(f"corpus sample: {manifest['totals']['documents']:,} documents from {len(langs)} language(s) in "
            f"{out_dir} (S={manifest['smoothing']:g}, {manifest['unit']}: target {manifest['target_size']:,.0f}, "
            f"achieved {manifest['totals']['achieved']:,.0f}); largest language {top}: p={langs[top]['p']:.3f} "
            f"-> q={langs[top]['q']:.3f}."
            + (f" Repeats capped at {manifest['max_repeats']:g} for: {', '.join(capped)}." if capped else "")
            + f" Plot: {out_dir / 'smoothing.png'}.")
