"""Wikitext -> plain text with mwparserfromhell.

A fast linear pre-pass first cuts out what is dropped whole anyway (HTML comments, references,
templates, tables, media tags): those spans are most of the markup and most of the parse time,
and removing them with a brace/line scanner keeps nested `{{...}}` and `{|...|}` exact. The
remainder is parsed by mwparserfromhell; links keep their visible text, while file/image,
category and interlanguage links are dropped, using the dump's own localized namespace names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import mwparserfromhell
from mwparserfromhell.nodes import (Argument, Comment, ExternalLink, Heading, HTMLEntity, Tag, Template,
                                    Text, Wikilink)

# Canonical names valid on every wiki, besides the localized ones from <siteinfo>.
# Common aliases too (not listed in <siteinfo>), e.g. jawiki's 画像, dewiki's Bild.
_FILE_NAMES = {"file", "image", "media", "画像", "ファイル", "文件", "檔案", "图像", "bild", "datei", "fichier",
               "imagen", "archivo", "imagem", "ficheiro", "immagine", "afbeelding", "bestand", "plik", "grafika",
               "изображение", "файл", "зображення", "слика", "resim", "dosya", "hình", "tập tin", "εικόνα",
               "αρχείο", "चित्र", "संचिका", "صورة", "ملف", "تصویر", "پرونده", "קובץ", "תמונה"}
_CATEGORY_NAMES = {"category", "kategorie", "catégorie", "categoría", "categoria", "категория", "категорія",
                   "kategoria", "kategori", "thể loại", "κατηγορία", "वर्ग", "تصنيف", "رده", "קטגוריה"}

# Tags whose whole content is not running text.
_DROPPED_TAGS = {"ref", "references", "table", "gallery", "math", "chem", "ce", "score", "timeline",
                 "imagemap", "syntaxhighlight", "source", "pre", "code", "templatedata", "graph",
                 "mapframe", "maplink", "hiero", "inputbox", "categorytree", "charinsert", "indicator",
                 "noinclude", "includeonly", "onlyinclude", "section", "abbr-title", "style", "script",
                 "math-chem", "phonos"}
_PREPASS_TAGS = re.compile(
    r"<(ref|references|gallery|math|chem|ce|score|timeline|imagemap|syntaxhighlight|source|pre|"
    r"templatedata|graph|mapframe|hiero|inputbox|categorytree|style|script)\b[^>]*?(?:/>|>.*?</\1\s*>)",
    re.S | re.I)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_BRACES = re.compile(r"\{\{|\}\}")
_BRACKETS = re.compile(r"\[\[|\]\]")
_TABLE_EDGE = re.compile(r"^[ \t:*#;]*(\{\||\|\})", re.M)  # `:{|` is an indented table
_MAGIC_WORD = re.compile(r"__[A-ZÀ-ÿ_]+__")
_QUOTES = re.compile(r"''+")
# What broken source markup leaves (MediaWiki shows it literally): unpaired link brackets, unclosed <ref>.
_STRAY = re.compile(r"\[\[|\]\]|</?ref\b[^>]*>", re.I)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)|（\s*）")
_INTERWIKI = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$|^(?:simple|commons|wikt|wiktionary|w|s|q|n|b|v|"
                        r"voy|species|meta|mw|wikidata|d|c|wikisource|wikiquote|wikibooks|wikinews|"
                        r"wikiversity|wikivoyage|wikispecies|wmf|foundation|phab|m)$")

# Templates that mark a disambiguation page, across the languages of the kit and the largest wikis.
_DISAMBIGUATION = re.compile(
    r"__DISAMBIG__|\{\{\s*(?:disambig\w*|dab|disamb|hndis|geodis|set index|aimai|曖昧さ回避|消歧义|消歧義|"
    r"dp|begriffsklärung|homonymie|desambiguación|desambiguação|disambigua|неоднозначност\w*|"
    r"многозначност\w*|пояснение|αποσαφήνιση|trang định hướng|định hướng|निःसंदिग्धीकरण|"
    r"निसंदिग्धीकरण|توضيح|ابهام‌زدایی|anlam ayrımı|täsmennyssivu|förgrening|flertydig|"
    r"dubbelzinnig|ujednoznacznienie|rozcestník)\s*[|}]", re.I)

RESIDUE = ("[[", "]]", "{{", "}}", "'''", "<ref", "{|", "|}", "thumb|")


@dataclass(frozen=True)
class Namespaces:
    """Lower-cased namespace prefixes of one wiki (localized + canonical)."""

    files: frozenset[str] = frozenset(_FILE_NAMES)
    categories: frozenset[str] = frozenset(_CATEGORY_NAMES)
    others: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_siteinfo(cls, names: dict[int, str]) -> "Namespaces":
        """`names`: namespace key -> localized name, as in <siteinfo><namespaces>."""
        files = set(_FILE_NAMES) | {names[k].lower() for k in (6, -2) if names.get(k)}
        categories = set(_CATEGORY_NAMES) | {names[14].lower()} if names.get(14) else set(_CATEGORY_NAMES)
        others = {name.lower() for key, name in names.items() if name and key not in (0, 6, -2, 14)}
        return cls(frozenset(files), frozenset(categories), frozenset(others))

    def localized_prefixes(self) -> list[str]:
        """`Category:`/`File:` prefixes as they would appear in text, for residue checks."""
        return [f"{name}:" for name in sorted(self.files | self.categories)]


def is_disambiguation(title: str, wikitext: str) -> bool:
    return title.endswith("(disambiguation)") or _DISAMBIGUATION.search(wikitext) is not None


def _remove_nested(text: str, pattern: re.Pattern, opener: str) -> str:
    """Drop balanced spans delimited by the two alternatives of `pattern` (opener first).

    An opener that is never closed is kept as text (minus the opener), as MediaWiki renders it."""
    pieces, depth, start, kept_from = [], 0, 0, 0
    for match in pattern.finditer(text):
        if match.group(0).endswith(opener):
            if depth == 0:
                pieces.append(text[kept_from:match.start()])
                start = match.end()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                kept_from = match.end()
    if depth > 0:
        return "".join(pieces) + text[start:].replace(opener, " ")
    pieces.append(text[kept_from:])
    return "".join(pieces)


def _remove_links(text: str, opener: re.Pattern) -> str:
    """Drop whole `[[Prefix:...]]` links (nested links in captions included) whose start matches `opener`."""
    pieces, pos = [], 0
    while (match := opener.search(text, pos)) is not None:
        depth, end = 0, None
        for bracket in _BRACKETS.finditer(text, match.start()):
            depth += 1 if bracket.group(0) == "[[" else -1
            if depth == 0:
                end = bracket.end()
                break
        if end is None:  # never closed: keep the text, drop the opener
            pieces.append(text[pos:match.start()])
            pos = match.start() + 2
            continue
        pieces.append(text[pos:match.start()])
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def strip_spans(wikitext: str, media_links: re.Pattern | None = None) -> str:
    """The pre-pass: comments, media/reference tags, templates, tables, file and category links."""
    text = _COMMENT.sub("", wikitext)
    text = _PREPASS_TAGS.sub("", text)
    if "{{" in text:
        text = _remove_nested(text, _BRACES, "{{")
    if "{|" in text:
        text = _remove_nested(text, _TABLE_EDGE, "{|")
    if media_links is not None and "[[" in text:
        text = _remove_links(text, media_links)
    return text


class WikitextCleaner:
    def __init__(self, namespaces: Namespaces | None = None) -> None:
        self.ns = namespaces or Namespaces()
        names = sorted(self.ns.files | self.ns.categories, key=len, reverse=True)
        # `[[File:...]]`, `[[ category : ...]]`, any letter case; `[[:Category:X]]` is a visible link
        self._media_links = re.compile(r"\[\[[ \t]*(?:" + "|".join(re.escape(n) for n in names) + r")[ \t]*:",
                                       re.I)

    def clean(self, wikitext: str) -> str:
        """Plain text, one paragraph per line."""
        # style tags stay text (unbalanced ''' would otherwise break link parsing); quotes go below
        code = mwparserfromhell.parse(strip_spans(wikitext, self._media_links), skip_style_tags=True)
        text = self._render(code.nodes)
        text = _MAGIC_WORD.sub("", text)
        text = _QUOTES.sub("", text)
        text = _STRAY.sub("", text)
        text = _EMPTY_BRACKETS.sub("", text)
        lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return "\n".join(line for line in lines if line)

    def _render(self, nodes) -> str:
        out = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.value)
            elif isinstance(node, Wikilink):
                out.append(self._link(node))
            elif isinstance(node, Tag):
                out.append(self._tag(node))
            elif isinstance(node, HTMLEntity):
                out.append(node.normalize())
            elif isinstance(node, ExternalLink):
                if node.brackets and node.title is not None:
                    out.append(self._render(node.title.nodes))
            elif isinstance(node, Heading):
                out.append("\n")  # section titles are not sentences
            elif isinstance(node, (Template, Comment, Argument)):
                continue
        return "".join(out)

    def _link(self, link: Wikilink) -> str:
        title = str(link.title).strip()
        visible = title.startswith(":")  # [[:Category:X]] links to the page instead of tagging it
        title = title.lstrip(":").strip()
        prefix = title.split(":", 1)[0].strip().lower() if ":" in title else ""
        if prefix in self.ns.files or prefix in self.ns.categories:
            return self._render(link.text.nodes) if visible and link.text is not None else ""
        if link.text is not None:
            return self._render(link.text.nodes)
        if prefix and (prefix in self.ns.others or _INTERWIKI.match(prefix)):
            return ""  # interlanguage / interwiki / other namespace without visible text
        return title.split("#", 1)[0] or title.lstrip("#")

    def _tag(self, tag: Tag) -> str:
        name = str(tag.tag).strip().lower()
        if name in _DROPPED_TAGS:
            return ""
        if tag.wiki_markup in ("*", "#", ";", ":"):
            return ""  # list marker; the item text follows as plain nodes
        if name == "br":
            return " "
        if name == "hr":
            return "\n"
        if tag.contents is None:
            return ""
        text = self._render(tag.contents.nodes)
        return f"\n{text}\n" if name in ("p", "div", "blockquote", "li", "dd", "dt") else text
