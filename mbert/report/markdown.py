"""Render a `Document` as Markdown; figures are referenced as `figures/<name>.png` next to it."""

from __future__ import annotations

from .document import Code, Document, Figure, Heading, Table, Text, format_value

FIGURES_DIR = "figures"


def _escape_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> str:
    lines = [f"*{table.caption}*", ""] if table.caption else []
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
        return block.text
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        image = f"![{block.caption or block.name}]({figure_path(block)})"
        return image + (f"\n\n*{block.caption}*" if block.caption else "")
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"<details><summary>{block.title}</summary>\n\n{fence}{block.language}\n{block.text.rstrip()}\n{fence}\n\n</details>"
    raise TypeError(f"unknown report block {block!r}")


def render_markdown(document: Document) -> str:
    parts = [f"# {document.title}", "", document.subtitle, ""]
    parts += [f"- [{s.title}](#{s.anchor})" for s in document.sections] + [""]
    for section in document.sections:
        parts += [f"## {section.title}", ""]
        for block in section.blocks:
            parts += [_block(block), ""]
    return "\n".join(parts)
