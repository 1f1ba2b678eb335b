"""Realistic large inputs: Wikimedia `pages-articles-multistream` dumps of any size, in many languages,
built from the real pages of the data kit's dumps (`shared/data/wikipedia`).

Each language gets `<code>-<wiki>wiki-synthetic-pages-articles-multistream.xml.bz2` (stream 1 = the
source dump's `<mediawiki>`/`<siteinfo>` header with this wiki's `xml:lang` and `<dbname>`, then one bz2
stream per 100 pages, last stream `</mediawiki>`) and its `...-multistream-index.txt.bz2`
(`offset:page_id:title`, offset = byte offset of the stream holding the page), as Wikimedia publishes them.
Pages are the kit's pages in the language's script where the kit has one (Latin: en, vi; Cyrillic: uk, bg;
Greek: el; Devanagari: mr; CJK: ja; any other script: en), copied over and over: copy 0 is the page as
it is, copy k > 0 gets new ids, the title `<title> (k)`, and its prose perturbed so that `mbert corpus
extract`'s exact de-duplication (of documents, then sentences) keeps it: in text outside templates,
links, tables and tags, adjacent words (CJK: adjacent characters) are swapped at random. Markup, the
vocabulary of words and the size of every page stay as they were; redirects and other namespaces are
copied too, as in a real dump.

Sizes follow a Zipf law over the languages (rank r gets a share ∝ 1/r^zipf of `--size-mb` compressed
MB; the largest Wikipedias first; at least 3 pages each), pages counted at the sources' compression
ratio:

    python bench/make_dumps.py --out /work/scale-runs/dumps-x1 --size-mb 16            # 104 languages
    python bench/make_dumps.py --out DIR --languages el ja --pages 500                  # exact page counts

`DIR/recipe.toml` lists the dumps as `[corpus.sources]` and `DIR/dumps.json` the pages, streams and
bytes per language.
"""

from __future__ import annotations

import argparse
import bz2
import functools
import html
import json
import os
import random
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mbert.corpus.dump import detect_encoding  # noqa: E402
from mbert.corpus.languages import registry  # noqa: E402

KIT = Path(os.environ.get("MBERT_TEST_DATA", REPO.parent / "shared" / "data")) / "wikipedia"
PAGES_PER_STREAM = 100
MIN_PAGES = 3  # the smallest language still gets a few pages

# kit dumps whose pages stand in for a script's languages
_EN = ["enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2", "enwiki-table-markup.xml.bz2"]
SOURCES = {
    "Latn": _EN + ["viwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "Cyrl": ["ukwiki-20230501-pages-articles-multistream-excerpt.xml.bz2",
             "bgwiki-latest-pages-articles-shortened.xml.bz2"],
    "Grek": ["elwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "Deva": ["mrwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "CJK": ["jawiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
}
_CJK_SCRIPTS = {"Jpan", "Hans", "Hant", "Kore"}
# the largest Wikipedias of the 104 first (roughly by article text), the rest in registry order
_LARGEST_FIRST = ["en", "de", "fr", "es", "ja", "ru", "it", "zh", "pt", "pl", "nl", "uk", "sv", "ar", "fa",
                  "ca", "vi", "cs", "he", "fi", "hu", "ko", "id", "no", "tr", "sr", "ro"]

_PAGE = re.compile(r"<page>.*?</page>\s*", re.S)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_PAGE_ID = re.compile(r"(<ns>\s*-?\d+\s*</ns>\s*<id>)\s*(\d+)\s*(</id>)")
_TEXT = re.compile(r"(<text\b[^>]*>)(.*?)(</text>)", re.S)
_MARKUP = re.compile(r"(\{\{|\}\}|\[\[|\]\]|\{\||\|\}|<!--.*?-->|<[^<>]*>)", re.S)
_OPEN, _CLOSE = {"{{", "[[", "{|"}, {"}}", "]]", "|}"}
_WORD = re.compile(r"[^\W\d_][^\s\[\]{}|<>=&'\"*#:;/.!?()\d]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass
class Source:
    header: str        # <mediawiki ...><siteinfo>...</siteinfo>, up to the first <page>
    pages: list[str]   # raw `<page>...</page>` XML (UTF-8 text), in dump order


@functools.cache  # one read per worker process, not per language
def read_source(path: Path) -> Source:
    data = bz2.decompress(path.read_bytes())
    text = data.decode(detect_encoding(data[:512])).lstrip("\ufeff")
    text = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)  # re-encoded as UTF-8 below: no declaration needed
    first = text.index("<page>")
    return Source(header=text[:first].rstrip(" "), pages=_PAGE.findall(text, first))


def rank_languages(codes: list[str]) -> list[str]:
    head = [c for c in _LARGEST_FIRST if c in codes]
    return head + [c for c in codes if c not in head]


def zipf_shares(count: int, exponent: float) -> list[float]:
    weights = [1.0 / (rank ** exponent) for rank in range(1, count + 1)]
    return [w / sum(weights) for w in weights]


def perturb(wikitext: str, rng: random.Random, cjk: bool) -> str:
    """Swap adjacent words (CJK: characters) of the prose at random; markup stays untouched."""
    pieces = _MARKUP.split(wikitext)
    depth = 0
    for i, piece in enumerate(pieces):
        if i % 2:  # a markup token
            depth += 1 if piece in _OPEN else -1 if piece in _CLOSE and depth else 0
        elif depth == 0 and piece:
            pieces[i] = _swap_characters(piece, rng) if cjk else _swap_words(piece, rng)
    return "".join(pieces)


def _swap_adjacent(units: list[str], swappable, share: float, rng: random.Random) -> list[str]:
    """Swap a `share` of neighbouring pairs whose both units are `swappable` (in place; a unit moves once)."""
    i = 0
    while i < len(units) - 1:
        if swappable(units[i]) and swappable(units[i + 1]) and rng.random() < share:
            units[i], units[i + 1] = units[i + 1], units[i]
            i += 1
        i += 1
    return units


def _swap_words(prose: str, rng: random.Random) -> str:
    return " ".join(_swap_adjacent(prose.split(" "), _WORD.fullmatch, 0.5, rng))


def _swap_characters(prose: str, rng: random.Random) -> str:
    return "".join(_swap_adjacent(list(prose), _CJK.match, 0.15, rng))


def copy_page(page: str, new_id: int, copy: int, rng: random.Random, cjk: bool) -> tuple[str, str]:
    """(page XML, unescaped title) of copy `copy` of `page` under id `new_id`."""
    page = _PAGE_ID.sub(lambda m: f"{m.group(1)}{new_id}{m.group(3)}", page, count=1)
    title = html.unescape(_TITLE.search(page).group(1))
    if copy == 0:
        return page, title
    title = f"{title} ({copy})"
    page = _TITLE.sub(lambda m: f"<title>{html.escape(title, quote=False)}</title>", page, count=1)

    def new_text(match: re.Match) -> str:
        perturbed = perturb(html.unescape(match.group(2)), rng, cjk)
        return match.group(1) + html.escape(perturbed, quote=False) + match.group(3)
    return _TEXT.sub(new_text, page, count=1), title


def _header(source: Source, wiki: str) -> str:
    header = re.sub(r'xml:lang="[^"]*"', f'xml:lang="{wiki}"', source.header, count=1)
    return re.sub(r"<dbname>[^<]*</dbname>", f"<dbname>{wiki}wiki</dbname>", header, count=1)


def make_dump(out: Path, code: str, budget_bytes: int | None, pages: int | None, seed: int) -> dict:
    """One language's dump and index: `pages` pages, or as many as make about `budget_bytes`."""
    lang = registry()[code]
    cjk = lang.script in _CJK_SCRIPTS
    names = SOURCES["CJK" if cjk else lang.script if lang.script in SOURCES else "Latn"]
    sources = [read_source(KIT / name) for name in names]
    originals = [page for source in sources for page in source.pages]
    stem = f"{code}-{lang.wiki}wiki-synthetic-pages-articles-multistream"
    dump, index = out / f"{stem}.xml.bz2", out / f"{stem}-index.txt.bz2"
    rng = random.Random(f"{seed}:{code}")
    # the sources' compression ratio turns a page's XML size into its share of the budget
    ratio = sum((KIT / name).stat().st_size for name in names) / sum(len(p.encode()) for p in originals)
    written = streams = estimate = 0

    def more() -> bool:
        return written < pages if pages is not None else written < MIN_PAGES or estimate < budget_bytes

    with open(dump, "wb") as handle, bz2.open(index, "wt", encoding="utf-8") as index_file:
        handle.write(bz2.compress(_header(sources[0], lang.wiki).encode("utf-8")))
        while more():
            offset, chunk = handle.tell(), []
            while more() and len(chunk) < PAGES_PER_STREAM:
                copy, position = divmod(written, len(originals))
                page, title = copy_page(originals[position], written + 1, copy, rng, cjk)
                chunk.append(page)
                estimate += len(page.encode()) * ratio
                index_file.write(f"{offset}:{written + 1}:{title}\n")
                written += 1
            handle.write(bz2.compress("".join(chunk).encode("utf-8")))
            streams += 1
        handle.write(bz2.compress(b"</mediawiki>\n"))
        size = handle.tell()
    return {"code": code, "wiki": lang.wiki, "dump": dump.name, "pages": written, "streams": streams,
            "bytes": size, "source_pages": len(originals)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the dumps (created)")
    parser.add_argument("--languages", nargs="+", metavar="CODE",
                        help="language codes (default: the 104 of mBERT, largest first)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--size-mb", type=float, help="total compressed MB, split over the languages by --zipf")
    size.add_argument("--pages", type=int, help="exactly this many pages per language")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the size distribution (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="languages written in parallel")
    args = parser.parse_args(argv)
    codes = args.languages or rank_languages(list(registry()))
    unknown = sorted(set(codes) - set(registry()))
    if unknown:
        parser.error(f"unknown language code(s) {', '.join(unknown)}; use codes of corpora/languages.toml")
    if (args.size_mb is not None and args.size_mb <= 0) or (args.pages is not None and args.pages < 1):
        parser.error("--size-mb must be > 0 and --pages >= 1")
    if not (KIT / SOURCES["Latn"][0]).is_file():
        print(f"make_dumps: the kit's dumps were not found in {KIT}; set MBERT_TEST_DATA", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    shares = zipf_shares(len(codes), args.zipf)
    started = time.perf_counter()
    jobs = [(args.out, code, None if args.size_mb is None else int(share * args.size_mb * 1e6), args.pages, args.seed)
            for code, share in zip(codes, shares)]
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        made = list(pool.map(make_dump, *zip(*jobs)))
    (args.out / "dumps.json").write_text(json.dumps({"languages": made, "zipf": args.zipf, "seed": args.seed},
                                                    indent=1), encoding="utf-8")
    lines = ["# written by bench/make_dumps.py", "[corpus.sources]"]
    lines += [f'"{m["code"]}" = ["{(args.out / m["dump"]).resolve()}"]' for m in made]
    (args.out / "recipe.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    total = sum(m["bytes"] for m in made)
    largest, smallest = max(made, key=lambda m: m["bytes"]), min(made, key=lambda m: m["bytes"])
    print(f"make_dumps: {len(made)} language(s), {sum(m['pages'] for m in made):,} pages, "
          f"{total / 1e6:,.1f} MB compressed in {args.out} ({time.perf_counter() - started:.1f} s); "
          f"largest {largest['code']} {largest['bytes'] / 1e6:.2f} MB, smallest {smallest['code']} "
          f"{smallest['bytes'] / 1e6:.3f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
