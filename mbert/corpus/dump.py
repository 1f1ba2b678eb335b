"""MediaWiki XML dumps: streaming page reader, <siteinfo>, and multistream byte ranges.

Pages are parsed incrementally (expat through ElementTree's pull parser) and each page is
cleared once read, so memory does not grow with the dump. The encoding is the one the XML
declares (BOM or `<?xml encoding=...?>`); UTF-8 is fed to expat as bytes, anything else is
decoded here first. A `pages-articles-multistream` dump is cut into byte ranges at the stream
offsets of its `-index.txt.bz2`, so that workers decompress and parse ranges independently.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gzip
import lzma
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import UserError

BLOCK = 1 << 20
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_DECLARED = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass
class SiteInfo:
    language: str | None = None          # <mediawiki xml:lang=...>, else from <dbname>
    dbname: str | None = None
    namespaces: dict[int, str] = field(default_factory=dict)
    encoding: str = "utf-8"


@dataclass
class Page:
    id: str
    title: str
    ns: int
    redirect: bool
    text: str


# ----------------------------------------------------------------------------- bytes and encoding

class MalformedXML(UserError):
    """The XML does not parse. In a compressed file that can also be corrupt compressed data:
    a flipped bit garbles a whole bz2 block before its checksum is read at the block's end."""


def is_compressed(path: Path) -> bool:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    return magic.startswith((b"BZh", b"\x1f\x8b", b"\xfd7zXZ\x00"))


def check_compressed(path: Path, start: int = 0, end: int | None = None) -> None:
    """Decompress `path` (or bytes [start, end) of a multistream dump) to its end, checking every
    checksum; raise the corrupt-data error if one fails."""
    with open(path, "rb") as handle:
        bz2_file = handle.read(3) == b"BZh"
    if end is not None or bz2_file:
        # stream by stream: Python's bz2 reader takes a corrupt stream header for trailing junk and stops
        for _ in _decompress_range(path, start, end if end is not None else os.path.getsize(path)):
            pass
        return
    with open_compressed(path) as stream:
        for _ in _read_blocks(stream, str(path)):
            pass


def open_compressed(path: Path) -> BinaryIO:
    """The decompressed byte stream of `path` (bz2, gzip, xz, or plain), chosen by magic bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def detect_encoding(head: bytes) -> str:
    """Encoding of an XML document from its first bytes: BOM, then the declaration, else UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    if head.startswith(b"<\x00"):
        return "utf-16-le"
    if head.startswith(b"\x00<"):
        return "utf-16-be"
    match = _DECLARED.search(head[:200])
    if match:
        name = match.group(1).decode("ascii")
        try:
            return codecs.lookup(name).name
        except LookupError:
            raise UserError(f"the XML declares encoding {name!r}, which Python does not know") from None
    return "utf-8"


def decode_head(head: bytes) -> str:
    """Best-effort text of a file's first bytes (for detecting what the file is)."""
    encoding = detect_encoding(head)
    return head.decode(encoding, errors="ignore").lstrip("\ufeff")


@contextlib.contextmanager
def _corruption_reported_first(path: Path, start: int = 0, end: int | None = None) -> Iterator[None]:
    """Turn "malformed XML" from a compressed file into the corrupt-data error when that is the cause."""
    try:
        yield
    except MalformedXML:
        if end is not None or is_compressed(path):
            check_compressed(path, start, end)
        raise


# ----------------------------------------------------------------------------- parsing

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _PageParser:
    """Feeds XML text to a pull parser and turns finished <page> elements into `Page`s."""

    def __init__(self, source: str, encoding: str) -> None:
        self.source = source
        self.encoding = encoding
        self.decoder = None if encoding == "utf-8" else codecs.getincrementaldecoder(encoding)()
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.root: ET.Element | None = None
        self.siteinfo = SiteInfo(encoding=encoding)
        self.siteinfo_done = False

    def feed(self, data: bytes | str, final: bool = False) -> Iterator[Page]:
        if self.decoder is not None and isinstance(data, bytes):
            data = self.decoder.decode(data, final)
        try:
            if data:
                self.parser.feed(data)
            if final:
                self.parser.close()
            yield from self._events()
        except ET.ParseError as exc:
            raise MalformedXML(f"{self.source}: malformed or truncated XML ({exc}); re-download the dump "
                            f"or remove it from the sources") from None

    def _events(self) -> Iterator[Page]:
        for event, elem in self.parser.read_events():
            name = _local(elem.tag)
            if event == "start":
                if self.root is None:
                    self.root = elem
                    lang = elem.get(_XML_LANG)
                    if lang and name == "mediawiki":
                        self.siteinfo.language = lang
                continue
            if name == "page":
                yield self._page(elem)
                self.root.clear()
            elif name == "siteinfo":
                self._read_siteinfo(elem)
                self.root.clear()

    def _read_siteinfo(self, elem: ET.Element) -> None:
        for child in elem:
            cname = _local(child.tag)
            if cname == "dbname" and child.text:
                self.siteinfo.dbname = child.text.strip()
            elif cname == "namespaces":
                for ns in child:
                    self.siteinfo.namespaces[int(ns.get("key", "0"))] = (ns.text or "").strip()
        if self.siteinfo.language is None and self.siteinfo.dbname:
            self.siteinfo.language = dbname_language(self.siteinfo.dbname)
        self.siteinfo_done = True

    def _page(self, elem: ET.Element) -> Page:
        title, ns, page_id, redirect, text = "", 0, "", False, ""
        for child in elem:
            cname = _local(child.tag)
            if cname == "title":
                title = child.text or ""
            elif cname == "ns":
                ns = int((child.text or "0").strip() or 0)
            elif cname == "id":
                page_id = (child.text or "").strip()
            elif cname == "redirect":
                redirect = True
            elif cname == "revision":
                for part in child:
                    if _local(part.tag) == "text":
                        text = part.text or ""
        return Page(id=page_id, title=title, ns=ns, redirect=redirect, text=text)


def dbname_language(dbname: str) -> str | None:
    """`enwiki` -> `en`, `zh_classicalwiki` -> `zh-classical`."""
    if dbname.endswith("wiki"):
        return dbname[: -len("wiki")].replace("_", "-")
    return None


def _read_blocks(stream: BinaryIO, source: str, size: int = BLOCK) -> Iterator[bytes]:
    try:
        while block := stream.read(size):
            yield block
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise UserError(f"{source}: the compressed file is corrupt or truncated ({exc}); "
                        f"re-download it or remove it from the sources") from None


def read_siteinfo(path: Path) -> SiteInfo:
    """Parse a dump only up to the end of <siteinfo> (the first stream of a multistream dump)."""
    with _corruption_reported_first(path), open_compressed(path) as stream:
        blocks = _read_blocks(stream, str(path), 1 << 15)  # small reads: <siteinfo> is at the start
        first = next(blocks, b"")
        if not first.strip():
            raise UserError(f"{path}: the dump is empty; re-download it or remove it from the sources")
        parser = _PageParser(str(path), detect_encoding(first[:512]))
        for block in _chain(first, blocks):
            for _ in parser.feed(block):
                return parser.siteinfo  # a page came first: <siteinfo> is absent (allowed) or behind us
            if parser.siteinfo_done:
                return parser.siteinfo
        for _ in parser.feed(b"", final=True):
            return parser.siteinfo
    if parser.root is not None and _local(parser.root.tag) == "mediawiki":
        return parser.siteinfo
    raise UserError(f"{path}: no <mediawiki> root element; this is not a MediaWiki XML dump")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def iter_pages(path: Path) -> Iterator[Page]:
    """Every <page> of a (possibly compressed) single-stream or multistream dump, in order."""
    with _corruption_reported_first(path), open_compressed(path) as stream:
        blocks = _read_blocks(stream, str(path))
        first = next(blocks, b"")
        if not first.strip():
            raise UserError(f"{path}: the dump is empty; re-download it or remove it from the sources")
        parser = _PageParser(str(path), detect_encoding(first[:512]))
        for block in _chain(first, blocks):
            yield from parser.feed(block)
        yield from parser.feed(b"", final=True)


# ----------------------------------------------------------------------------- multistream

def index_for(dump: Path) -> Path | None:
    """The `-index.txt.bz2` companion of a multistream dump, if it is next to it."""
    name = dump.name
    candidates = []
    for suffix in (".xml.bz2", ".bz2"):
        if name.endswith(suffix):
            candidates.append(name[: -len(suffix)] + "-index.txt.bz2")
    if "multistream" in name:  # enwiki-...-multistream1.xml-p1p41242.bz2 -> ...-multistream-index1.txt-p1p41242.bz2
        candidates.append(name.replace("multistream", "multistream-index", 1).replace(".xml", ".txt", 1))
    for candidate in candidates:
        path = dump.with_name(candidate)
        if path != dump and path.is_file():
            return path
    return None


def read_index_offsets(index: Path, dump_size: int) -> list[int]:
    """Sorted distinct stream offsets listed in a multistream index."""
    offsets: set[int] = set()
    try:
        with bz2.open(index, "rt", encoding="utf-8", newline="\n") as handle:
            for number, line in enumerate(handle, 1):
                head = line.split(":", 1)[0]
                if not head.strip():
                    continue
                if not head.isdigit():
                    raise UserError(f"{index}: line {number} is not `offset:page_id:title`; "
                                    f"this is not a multistream index")
                offsets.add(int(head))
    except (OSError, EOFError) as exc:
        raise UserError(f"{index}: the multistream index is corrupt or truncated ({exc})") from None
    if not offsets:
        raise UserError(f"{index}: the multistream index is empty")
    ordered = sorted(offsets)
    if ordered[-1] >= dump_size:
        raise UserError(f"{index} lists a stream at byte {ordered[-1]}, past the end of the dump "
                        f"({dump_size} bytes): the dump is truncated; re-download it")
    return ordered


def plan_ranges(offsets: list[int], dump_size: int, pieces: int, max_bytes: int) -> list[tuple[int, int]]:
    """Group consecutive streams into about `pieces` byte ranges of at most ~`max_bytes` each."""
    target = max(1, min(max_bytes, (dump_size - offsets[0]) // max(1, pieces)))
    bounds = offsets + [dump_size]
    ranges, start = [], bounds[0]
    for stream_start, stream_end in zip(bounds, bounds[1:]):
        if stream_end - start >= target or stream_end == dump_size:
            ranges.append((start, stream_end))
            start = stream_end
    return ranges


def _decompress_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    """Decompress every bz2 stream in bytes [start, end) of `path`."""
    decompressor, in_stream = bz2.BZ2Decompressor(), False
    with open(path, "rb") as handle:
        handle.seek(start)
        remaining = end - start
        try:
            while remaining > 0 and (data := handle.read(min(BLOCK, remaining))):
                remaining -= len(data)
                while data:
                    in_stream = True
                    out = decompressor.decompress(data)
                    if out:
                        yield out
                    if decompressor.eof:  # next stream starts in the leftover bytes
                        data, decompressor, in_stream = decompressor.unused_data, bz2.BZ2Decompressor(), False
                    else:
                        data = b""
        except OSError as exc:
            raise UserError(f"{path}: corrupt bz2 data in bytes {start}-{end} ({exc}); "
                            f"re-download the dump") from None
    if remaining > 0 or in_stream:
        raise UserError(f"{path}: the bz2 stream in bytes {start}-{end} is truncated; re-download the dump")


def iter_range_pages(path: Path, start: int, end: int, encoding: str, dump_size: int) -> Iterator[Page]:
    """Pages in the streams of bytes [start, end) of a multistream dump."""
    parser = _PageParser(f"{path} (bytes {start}-{end})", encoding)
    opening = "<mediawiki>"
    with _corruption_reported_first(path, start, end):
        yield from parser.feed(opening.encode(encoding) if encoding == "utf-8" else opening)
        for block in _decompress_range(path, start, end):
            yield from parser.feed(block)
        if end < dump_size:  # the last range holds the footer stream with the real </mediawiki>
            yield from parser.feed("</mediawiki>" if parser.decoder else b"</mediawiki>")
        yield from parser.feed(b"" if parser.decoder is None else "", final=True)
