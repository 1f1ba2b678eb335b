"""Render a `Document` as Markdown; figures are referenced as `figures/<name>.png` next to it.

Markdown passes raw HTML through, so every text taken from the run (titles from a recipe, table
cells, captions) is HTML-escaped as in report.html; only code blocks, which render literally, are not."""

from __future__ import annotations

import html

from .document import Code, Document, Figure, Heading, Table, Text, format_value

FIGURES_DIR = "figures"


def _text(text: str) -> str:
    return html.escape(text, quote=False)


def _escape_cell(text: str) -> str:
    return _text(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> str:
    lines = [f"*{_text(table.caption)}*", ""] if table.caption else []
    lines.append("| " + " | ".join(_escape_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if i else "---" for i in range(len(table.columns))) + "|")
    for row in table.rows:
        cells = [_escape_cell(format_value(v)) for v in row]
        if row and str(row[0]) in table.emphasis:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_path(figure: Figure) -> str:
    return f"{FIGURES_DIR}/{figure.name}.png"


def _block(block: object) -> str:
    if isinstance(block, Text):
        return _text(block.text)
    if isinstance(block, Heading):
        return f"### {_text(block.text)}"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        image = f"![{_text(block.caption or block.name)}]({figure_path(block)})"
        return image + (f"\n\n*{_text(block.caption)}*" if block.caption else "")
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"<details><summary>{_text(block.title)}</summary>\n\n{fence}{block.language}\n{block.text.rstrip()}\n{fence}\n\n</details>"
    raise TypeError(f"unknown report block {block!r}")


def render_markdown(document: Document) -> str:
    parts = [f"# {_text(document.title)}", "", _text(document.subtitle), ""]
    parts += [f"- [{_text(s.title)}](#{s.anchor})" for s in document.sections] + [""]
    for section in document.sections:
        parts += [f"## {_text(section.title)}", ""]
        for block in section.blocks:
            parts += [_block(block), ""]
    return "\n".join(parts)
