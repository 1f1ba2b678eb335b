"""Wikitext -> plain text with mwparserfromhell's tokenizer.

A fast linear pre-pass first cuts out what is dropped whole anyway (HTML comments, references,
templates, tables, media tags): those spans are most of the markup and most of the parse time,
and removing them with a brace/line scanner keeps nested `{{...}}` and `{|...|}` exact. The
remainder is tokenized by mwparserfromhell (its C tokenizer) and rendered straight from the
token stream; links keep their visible text, while file/image, category and interlanguage links
are dropped, using the dump's own localized namespace names.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from mwparserfromhell.parser import tokens as T

try:
    from mwparserfromhell.parser._tokenizer import CTokenizer as _Tokenizer
except ImportError:  # a build without the C extension: same tokens, slower
    from mwparserfromhell.parser.tokenizer import Tokenizer as _Tokenizer

_TOKENIZER = _Tokenizer()
_DROP_OPEN = {T.TemplateOpen, T.ArgumentOpen, T.CommentStart, T.HeadingStart}
_DROP_CLOSE = {T.TemplateClose, T.ArgumentClose, T.CommentEnd, T.HeadingEnd}
_BLOCK_TAGS = {"p", "div", "blockquote", "center", "table", "tr", "ul", "ol", "dl", "li", "dt", "dd"}

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
_ARGUMENT = re.compile(r"\{\{\{[^{}]*\}\}\}")  # {{{param}}}: would unbalance the brace scanner
_BRACKETS = re.compile(r"\[\[|\]\]")
_TABLE_EDGE = re.compile(r"^[ \t:*#;]*(\{\||\|\})", re.M)  # `:{|` is an indented table
_MAGIC_WORD = re.compile(r"__[A-ZÀ-ÿ_]+__")
_QUOTES = re.compile(r"''+")


def _quote_run(match: re.Match) -> str:
    """Bold/italic markup leaves no text, but MediaWiki reads 4 apostrophes as a literal apostrophe
    plus bold (fr: L, 4 apostrophes, eau = "L'eau") and the extras of a run longer than 5 as literal."""
    run = len(match.group(0))
    return "'" if run == 4 else "'" * (run - 5) if run > 5 else ""
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
    r"निसंदिग्धीकरण|बहुविकल्पी|maana|توضيح|ابهام‌زدایی|anlam ayrımı|täsmennyssivu|förgrening|flertydig|"
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
        text = _remove_nested(_ARGUMENT.sub("", text), _BRACES, "{{")
    if "{|" in text:
        text = _remove_nested(text, _TABLE_EDGE, "{|")
    if media_links is not None and "[[" in text:
        text = _remove_links(text, media_links)
    return text


class _Frame:
    """An open construct of the token stream: where its text goes and where to return after it."""

    __slots__ = ("kind", "parent", "first", "second", "info")

    def __init__(self, kind: str, parent: list, info=None) -> None:
        self.kind, self.parent, self.info = kind, parent, info
        self.first: list[str] = []          # link title / tag name / entity text / dropped text
        self.second: list[str] | None = None  # link text / tag body


class WikitextCleaner:
    def __init__(self, namespaces: Namespaces | None = None) -> None:
        self.ns = namespaces or Namespaces()
        names = sorted(self.ns.files | self.ns.categories, key=len, reverse=True)
        # `[[File:...]]`, `[[ category : ...]]`, any letter case; `[[:Category:X]]` is a visible link
        self._media_links = re.compile(r"\[\[[ \t]*(?:" + "|".join(re.escape(n) for n in names) + r")[ \t]*:",
                                       re.I)

    def clean(self, wikitext: str) -> str:
        """Plain text, one paragraph per line."""
        # mwparserfromhell's C tokenizer, rendered straight from its token stream: building the node
        # tree (its Python half) would cost more than everything else in extraction together.
        # Style tags stay text (unbalanced bold/italic quotes would otherwise break link parsing).
        tokens = _TOKENIZER.tokenize(strip_spans(wikitext, self._media_links), 0, True)
        text = self._render(tokens)
        text = _MAGIC_WORD.sub("", text)
        text = _QUOTES.sub(_quote_run, text)
        text = _STRAY.sub("", text)
        text = _EMPTY_BRACKETS.sub("", text)
        lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return "\n".join(line for line in lines if line)

    def _render(self, tokens: list) -> str:
        root: list[str] = []
        sink, stack = root, []
        for token in tokens:
            kind = type(token)
            if kind is T.Text:
                sink.append(token["text"])
            elif kind is T.WikilinkOpen:
                stack.append(_Frame("link", sink))
                sink = stack[-1].first
            elif kind is T.WikilinkSeparator:
                frame = stack[-1]
                if frame.second is None:
                    frame.second = []
                    sink = frame.second
                else:
                    sink.append("|")
            elif kind is T.WikilinkClose:
                frame = stack.pop()
                sink = frame.parent
                sink.append(self._link("".join(frame.first),
                                       None if frame.second is None else "".join(frame.second)))
            elif kind in _DROP_OPEN:
                stack.append(_Frame("drop", sink))
                sink = stack[-1].first
            elif kind in _DROP_CLOSE:
                frame = stack.pop()
                sink = frame.parent
                if kind is T.HeadingEnd:
                    sink.append("\n")  # section titles are not sentences
            elif kind is T.ExternalLinkOpen:
                stack.append(_Frame("external", sink, token.get("brackets")))
                sink = stack[-1].first
            elif kind is T.ExternalLinkSeparator:
                stack[-1].second = []
                sink = stack[-1].second
            elif kind is T.ExternalLinkClose:
                frame = stack.pop()
                sink = frame.parent
                if frame.info and frame.second:
                    sink.append("".join(frame.second))
            elif kind is T.HTMLEntityStart:
                stack.append(_Frame("entity", sink, ""))
                sink = stack[-1].first
            elif kind is T.HTMLEntityNumeric:
                stack[-1].info = "#"
            elif kind is T.HTMLEntityHex:
                stack[-1].info = "#x"
            elif kind is T.HTMLEntityEnd:
                frame = stack.pop()
                sink = frame.parent
                sink.append(html.unescape(f"&{frame.info}{''.join(frame.first)};"))
            elif kind is T.TagOpenOpen:
                stack.append(_Frame("tag", sink))
                sink = stack[-1].first
            elif kind is T.TagAttrStart or kind is T.TagOpenClose:
                sink = []  # attributes and the closing tag's name are not text
            elif kind is T.TagCloseOpen:
                stack[-1].second = []
                sink = stack[-1].second
            elif kind is T.TagCloseSelfclose or kind is T.TagCloseClose:
                frame = stack.pop()
                sink = frame.parent
                sink.append(self._tag("".join(frame.first).strip().lower(), frame.second))
        return "".join(root)

    def _link(self, title: str, text: str | None) -> str:
        title = title.strip()
        visible = title.startswith(":")  # [[:Category:X]] links to the page instead of tagging it
        title = title.lstrip(":").strip()
        prefix = title.split(":", 1)[0].strip().lower() if ":" in title else ""
        if prefix in self.ns.files or prefix in self.ns.categories:
            return text if visible and text is not None else ""
        if text is not None:
            return text
        if prefix and (prefix in self.ns.others or _INTERWIKI.match(prefix)):
            return ""  # interlanguage / interwiki / other namespace without visible text
        return title.split("#", 1)[0] or title.lstrip("#")

    @staticmethod
    def _tag(name: str, body: list[str] | None) -> str:
        if name in _DROPPED_TAGS:
            return ""
        if body is None:  # self-closing, including the `*`/`#`/`;`/`:` list markers (their item follows)
            return " " if name == "br" else "\n" if name == "hr" else ""
        text = "".join(body)
        return f"\n{text}\n" if name in _BLOCK_TAGS else text
