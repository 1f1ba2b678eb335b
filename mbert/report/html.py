"""Render a `Document` as ONE self-contained HTML file: inline CSS, images as data URIs.

A Content-Security-Policy forbids every network or file request, so the page provably opens offline;
it also forbids form submissions and a `<base>` that would redirect the in-page links, and allows
only the one script whose hash it names (text injected through a recipe value cannot run). That
script is tiny: on load it records how many images decoded (`#image-check[data-loaded][data-total]`),
which tests read from headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import html

from .document import Code, Document, Figure, Heading, Table, Text, format_value

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#24304a;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:1.6em}
header p{margin:0;opacity:.8}nav{padding:8px 32px;background:#e8ebf2;font-size:.9em}
nav a{margin-right:14px;color:#24304a;text-decoration:none}main{padding:8px 32px 40px;max-width:1300px}
section{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:4px 20px 16px;margin:18px 0}
h2{border-bottom:1px solid #eee;padding-bottom:4px}h3{margin-top:22px;font-size:1.05em}
table{border-collapse:collapse;margin:4px 0 12px;font-size:.85em}p.caption{color:#555;font-size:.85em;margin:12px 0 2px}
th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f1f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.em td{font-weight:600;background:#fff8e6}.scroll{overflow-x:auto}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.85em}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:.8em}details{margin:6px 0}summary{cursor:pointer}
"""

IMAGE_CHECK = ("window.addEventListener('load',function(){var im=Array.prototype.slice.call(document.images);"
               "var ok=im.filter(function(i){return i.complete&&i.naturalWidth>0}).length;"
               "var d=document.createElement('div');d.id='image-check';d.hidden=true;"
               "d.setAttribute('data-loaded',ok);d.setAttribute('data-total',im.length);"
               "document.body.appendChild(d);});")


def _sha256_source(text: str) -> str:
    """A CSP source that allows exactly the inline element whose content is `text`."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (f"default-src 'none'; img-src data:; style-src {_sha256_source(CSS)}; "
       f"script-src {_sha256_source(IMAGE_CHECK)}; form-action 'none'; base-uri 'none'")


def _cell(value: object) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    css = ' class="num"' if numeric or (isinstance(value, str) and value[:1].isdigit()) else ""
    return f"<td{css}>{html.escape(format_value(value))}</td>"


def _table(table: Table) -> str:
    parts = [f'<p class="caption">{html.escape(table.caption)}</p>'] if table.caption else []
    parts.append('<div class="scroll"><table>')
    parts.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
    for row in table.rows:
        css = ' class="em"' if row and str(row[0]) in table.emphasis else ""
        parts.append(f"<tr{css}>" + "".join(_cell(v) for v in row) + "</tr>")
    parts.append("</table></div>")
    return "\n".join(parts)


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.caption or figure.name)}">'
            f"{caption}</figure>")


def _block(block: object) -> str:
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{html.escape(block.text)}</h3>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Code):
        return (f"<details><summary>{html.escape(block.title)}</summary>"
                f"<pre>{html.escape(block.text)}</pre></details>")
    raise TypeError(f"unknown report block {block!r}")


def render_html(document: Document) -> str:
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in document.sections)
    sections = "\n".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>\n' + "\n".join(_block(b) for b in s.blocks)
        + "</section>" for s in document.sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(document.title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
            f"<header><h1>{html.escape(document.title)}</h1><p>{html.escape(document.subtitle)}</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n{sections}\n</main>\n<script>{IMAGE_CHECK}</script>\n</body></html>\n")
