"""Paragraphs -> sentences: Unicode NFC, sentencex segmentation, length and markup-residue filters."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import re

from sentencex import segment

from .wikitext import RESIDUE


# sentencex does not break after a full-width stop followed by a digit or Latin letter
# ("遡る。1455年…"); those are sentence boundaries in running CJK text.
_CJK_MISSED_BREAK = re.compile(r"(?<=[。！？])(?=[0-9A-Za-z０-９Ａ-Ｚａ-ｚ])")


@dataclass
class SentenceStats:
    kept: int = 0
    too_short: int = 0
    too_long: int = 0
    residue: int = 0  # sentences still holding wiki markup (the cleaner missed something): dropped

    def add(self, other: "SentenceStats") -> None:
        self.kept += other.kept
        self.too_short += other.too_short
        self.too_long += other.too_long
        self.residue += other.residue


@dataclass
class Segmenter:
    """`language`: a Wikipedia code; sentencex falls back to a related language or a generic rule set."""

    language: str
    min_chars: int = 2
    max_chars: int = 2000
    residue_markers: tuple[str, ...] = field(default=RESIDUE)
    stats: SentenceStats = field(default_factory=SentenceStats)

    def split(self, paragraph: str) -> list[str]:
        """Sentences of one paragraph (no newline inside), filtered."""
        paragraph = unicodedata.normalize("NFC", paragraph)
        out = []
        suspicious = any(marker in paragraph for marker in self.residue_markers)
        pieces = segment(self.language, paragraph)
        if "。" in paragraph or "！" in paragraph or "？" in paragraph:
            pieces = (part for piece in pieces for part in _CJK_MISSED_BREAK.split(piece))
        for sentence in pieces:
            sentence = " ".join(sentence.split())  # also folds U+2028 and friends into spaces
            if len(sentence) < self.min_chars:
                if sentence:
                    self.stats.too_short += 1
                continue
            if len(sentence) > self.max_chars:
                self.stats.too_long += 1
                continue
            if suspicious and any(marker in sentence for marker in self.residue_markers):
                self.stats.residue += 1
                continue
            out.append(sentence)
        self.stats.kept += len(out)
        return out

    def keep(self, sentence: str) -> str | None:
        """An already segmented sentence (plain-text sources): normalized, or None when filtered."""
        sentence = " ".join(unicodedata.normalize("NFC", sentence).split())
        if len(sentence) < self.min_chars:
            if sentence:
                self.stats.too_short += 1
            return None
        if len(sentence) > self.max_chars:
            self.stats.too_long += 1
            return None
        self.stats.kept += 1
        return sentence
