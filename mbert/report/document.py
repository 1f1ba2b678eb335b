"""The report as a small tree of blocks, rendered to both HTML and Markdown.

Building the content once and rendering it twice keeps the two formats identical in substance."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Text:
    """A paragraph of plain text (escaped by each renderer)."""

    text: str


@dataclass
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    # rows whose first cell is in `emphasis` are shown in bold (source language, averages)
    emphasis: set[str] = field(default_factory=set)


@dataclass
class Figure:
    """A PNG image; `name` becomes its file name next to report.md."""

    name: str
    png: bytes
    caption: str = ""


@dataclass
class Code:
    """Preformatted text (configs, summaries), collapsed in HTML under `title`."""

    title: str
    text: str
    language: str = ""


Block = Text | Heading | Table | Figure | Code


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures()]


def format_value(value: Any) -> str:
    """Numbers readable at a glance: thousands separators, 2 decimals, 4 significant digits below 1."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)
