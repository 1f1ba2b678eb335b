"""Fake copies of clean languages: `DIR/en-fake/` is `DIR/en/` in a fake script (`mbert.fake`).

Same documents, ids, titles and sentence lines, every character mapped; then sampled like any
language. `word_order = "shuffled"` (K et al. 2020's ablation) permutes the words of each fake
sentence with a seed fixed by the code, the document id and the sentence's position, so a rebuild
gives the same corpus. The copy is written under `DIR/.staging/<code>/` and renamed into place;
the caller records the returned manifest entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
from collections import Counter
from pathlib import Path

from ..errors import UserError
from ..fake import describe, fake_text, fallback_characters, unmapped_characters
from .languages import language
from .shards import RotatingWriter, ShardWriter, iter_rows

FORMAT = 1  # bump when the copy changes in a way that should invalidate old copies
_WORDS = re.compile(r"(\s+)")
UNMAPPED_SHOWN = 20


def shuffle_words(sentence: str, rng: random.Random) -> str:
    """The sentence's whitespace-separated words in a random order; the whitespace stays in place."""
    pieces = _WORDS.split(sentence)
    words = pieces[0::2]
    leading, trailing = words[0] == "", words[-1] == ""  # whitespace at the edges splits off empty words
    inner = words[leading:len(words) - trailing]
    rng.shuffle(inner)
    pieces[0::2] = [""] * leading + inner + [""] * trailing
    return "".join(pieces)


def _sentence_rng(code: str, doc_id: str, index: int) -> random.Random:
    digest = hashlib.blake2b(f"{code}\0{doc_id}\0{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def fake_document(text: str, code: str, doc_id: str, word_order: str = "same") -> str:
    """A clean document (one sentence per line) in the fake language `code`."""
    lines = fake_text(text, code).split("\n")
    if word_order == "shuffled":
        lines = [shuffle_words(line, _sentence_rng(code, doc_id, i)) for i, line in enumerate(lines)]
    return "\n".join(lines)


def fingerprint(code: str, base_entry: dict, word_order: str) -> str:
    blob = json.dumps([FORMAT, code, base_entry.get("fingerprint"), base_entry.get("parts"), word_order])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_fake_copy(clean_dir: Path, code: str, word_order: str, entries: dict, shard_bytes: int,
                   force: bool = False) -> dict:
    """Write `clean_dir/<code>/` from its base language's clean shards; returns its manifest entry
    (the existing one when a copy with the same base and settings is already complete)."""
    lang = language(code)
    if lang.fake_of is None:
        raise UserError(f"{code!r} is not a fake language code; write <base>-fake, e.g. en-fake")
    base = entries.get(lang.fake_of, {})
    if not base.get("complete") or not (clean_dir / lang.fake_of).is_dir():
        raise UserError(f"{code} is made from the clean text of {lang.fake_of}, which {clean_dir} does not hold "
                        f"complete; extract {lang.fake_of} first (add it to [corpus] sources)")
    stamp = fingerprint(code, base, word_order)
    old = entries.get(code, {})
    if not force and old.get("complete") and old.get("fingerprint") == stamp and (clean_dir / code).is_dir():
        return old
    started = time.perf_counter()
    staging = clean_dir / ".staging" / code
    shutil.rmtree(staging, ignore_errors=True)
    writer = RotatingWriter(staging / "final", shard_bytes=shard_bytes)
    totals = Counter()
    unmapped: Counter = Counter()
    fallbacks = fallback_characters()
    try:
        for part in base["parts"]:
            for row in iter_rows(clean_dir / part, ["id", "title", "text"]):
                text = fake_document(row["text"], code, row["id"], word_order)
                if any(c in text for c in fallbacks):  # rare: find which characters they stand for
                    unmapped.update(unmapped_characters(row["text"]))
                writer.write(id=row["id"], title=fake_text(row["title"], code), text=text)
                sentences = text.count("\n") + 1
                totals.update(documents=1, sentences=sentences, characters=len(text) - (sentences - 1),
                              bytes=len(text.encode("utf-8")))
        parts = writer.close() or [ShardWriter(staging / "final" / "part-00000.parquet").close()]
    except BaseException:
        writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target, previous = clean_dir / code, staging.with_name(f"{code}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        os.replace(target, previous)
    os.replace(staging / "final", target)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return {
        "name": lang.name, "wiki": "", "script": lang.script, "fake_of": lang.fake_of, "word_order": word_order,
        "documents": totals["documents"], "sentences": totals["sentences"],
        "characters": totals["characters"], "bytes": totals["bytes"],
        "parts": [f"{code}/{p.name}" for p in parts],
        # characters outside mbert.fake's tables, each written as its class's fallback character
        "unmapped_characters": {describe(c): n for c, n in unmapped.most_common(UNMAPPED_SHOWN)},
        "unmapped_total": sum(unmapped.values()),
        "seconds": round(time.perf_counter() - started, 3), "fingerprint": stamp, "complete": True,
    }
