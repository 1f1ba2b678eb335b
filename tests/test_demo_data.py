"""The embedded demo data (corpora/demo/, eval/demo/) is well-formed, complete and loadable.

The demo data was written for the project and ships with it; `mbert run` without a recipe runs the
whole pipeline on it. These tests check what the demo recipe relies on: every MediaWiki export parses,
has the structure of a real dump (compared with a dump excerpt of the data kit), the declared wiki
matches the file name, and each language has its articles, a redirect, a template or category page and
a disambiguation page; the parallel and Tatoeba files are line-aligned; the NER and POS files are
valid XTREME `token<TAB>tag` files with valid IOB2 / UPOS tags. The last tests load everything with
the project's own readers, as the pipeline will.
"""

from __future__ import annotations

import bz2
import re
import statistics
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MW = "{http://www.mediawiki.org/xml/export-0.10/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

WIKI_LANGUAGES = ("en", "de", "fr", "es", "ru", "ar", "hi", "zh", "ja", "sw")
COMPRESSED = {"en", "ru", "zh"}  # saved as .xml.bz2; the others as plain .xml
PARALLEL_LANGUAGES = ("de", "fr", "es", "ru", "ar", "hi", "zh", "ja", "sw")
ISO3 = {"de": "deu", "fr": "fra", "es": "spa", "ru": "rus", "ar": "ara", "hi": "hin", "zh": "cmn",
        "ja": "jpn", "sw": "swh"}
PARALLEL_LINES = 60
TATOEBA_LINES = 50
NER_SENTENCES = {"train-en": 150, "dev-en": 40, "dev-de": 40, "dev-fr": 40, "dev-es": 40, "dev-ru": 40,
                 "dev-zh": 40, "dev-ar": 40, "dev-hi": 40}
POS_SENTENCES = {"train-en": 120, "dev-en": 30, "dev-de": 30, "dev-fr": 30, "dev-es": 30}
NER_TAGS = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}
UPOS = set("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())

# The disambiguation template each wiki really uses.
DISAMBIGUATION = {"en": "disambiguation", "de": "Begriffsklärung", "fr": "Homonymie", "es": "desambiguación",
                  "ru": "неоднозначность", "ar": "توضيح", "hi": "बहुविकल्पी", "zh": "disambig", "ja": "aimai",
                  "sw": "maana"}
# Unicode script (by character name prefix) that most letters of each language's text must be in.
SCRIPT = {"en": "LATIN", "de": "LATIN", "fr": "LATIN", "es": "LATIN", "sw": "LATIN", "ru": "CYRILLIC",
          "ar": "ARABIC", "hi": "DEVANAGARI", "zh": "CJK", "ja": ("CJK", "HIRAGANA", "KATAKANA")}


# ----------------------------------------------------------------------------- helpers

def _dump_path(wiki_dir: Path, lang: str) -> Path:
    found = sorted(wiki_dir.glob(f"{lang}wiki-*"))
    assert len(found) == 1, f"expected one dump for {lang}, found {found}"
    return found[0]


def _parse(path: Path) -> ET.Element:
    raw = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    return ET.fromstring(raw)


def _pages(root: ET.Element) -> list[dict]:
    pages = []
    for page in root.iter(f"{MW}page"):
        redirect = page.find(f"{MW}redirect")
        pages.append({"title": page.findtext(f"{MW}title"), "ns": int(page.findtext(f"{MW}ns")),
                      "id": page.findtext(f"{MW}id"),
                      "redirect": None if redirect is None else redirect.get("title"),
                      "text": page.find(f"{MW}revision/{MW}text").text or ""})
    return pages


def _namespaces(root: ET.Element) -> dict[int, str]:
    return {int(ns.get("key")): (ns.text or "") for ns in root.iter(f"{MW}namespace")}


def _is_disambiguation(lang: str, text: str) -> bool:
    return re.search(r"\{\{\s*" + re.escape(DISAMBIGUATION[lang]) + r"\s*[|}]", text, re.I) is not None


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n"), f"{path}: must end with exactly one newline"
    return text[:-1].split("\n")


def _script_share(text: str, script: str | tuple[str, ...]) -> float:
    letters = [c for c in text if c.isalpha()]
    prefixes = (script,) if isinstance(script, str) else script
    hits = sum(unicodedata.name(c, "").startswith(prefixes) for c in letters)
    return hits / max(1, len(letters))


def _token_file(path: Path) -> list[list[tuple[str, str]]]:
    """Strict XTREME layout: `token<TAB>tag` lines, one blank line between sentences."""
    sentences, current = [], []
    for number, line in enumerate(_lines(path), start=1):
        if line == "":
            assert current, f"{path}:{number}: empty sentence (two blank lines)"
            sentences.append(current)
            current = []
            continue
        fields = line.split("\t")
        assert len(fields) == 2, f"{path}:{number}: expected token<TAB>tag, got {line!r}"
        token, tag = fields
        assert token and token == token.strip() and " " not in token, f"{path}:{number}: bad token {token!r}"
        current.append((token, tag))
    assert current, f"{path}: ends with a blank line"
    sentences.append(current)
    return sentences


@pytest.fixture(scope="module")
def demo(repo_dir: Path) -> dict[str, Path]:
    return {"wiki": repo_dir / "corpora" / "demo" / "wiki", "parallel": repo_dir / "corpora" / "demo" / "parallel",
            "tatoeba": repo_dir / "eval" / "demo" / "tatoeba", "ner": repo_dir / "eval" / "demo" / "ner",
            "pos": repo_dir / "eval" / "demo" / "pos", "readme": repo_dir / "corpora" / "demo" / "README.md"}


@pytest.fixture(scope="module")
def dumps(demo) -> dict[str, ET.Element]:
    return {lang: _parse(_dump_path(demo["wiki"], lang)) for lang in WIKI_LANGUAGES}


# ----------------------------------------------------------------------------- MediaWiki exports

def test_every_dump_parses_and_declares_the_wiki_its_file_name_says(demo, dumps):
    names = sorted(p.name for p in demo["wiki"].iterdir())
    assert len(names) == len(WIKI_LANGUAGES), names
    for lang, root in dumps.items():
        path = _dump_path(demo["wiki"], lang)
        suffix = ".xml.bz2" if lang in COMPRESSED else ".xml"
        assert path.name == f"{lang}wiki-demo-pages-articles{suffix}"
        assert root.tag == f"{MW}mediawiki" and root.get("version") == "0.10"
        assert root.get(XML_LANG) == lang
        assert root.findtext(f"{MW}siteinfo/{MW}dbname") == f"{lang}wiki"
        assert root.findtext(f"{MW}siteinfo/{MW}base").startswith(f"https://{lang}.wikipedia.org/wiki/")
        raw = bz2.decompress(path.read_bytes()) if lang in COMPRESSED else path.read_bytes()
        raw.decode("utf-8")  # all UTF-8 (the kit has the UTF-16 edge case)


def test_dump_structure_matches_a_real_dump_of_the_kit(data_dir, dumps):
    """Same <siteinfo> fields as a real export; page and revision fields are ones real dumps use."""
    real_site, real_page, real_revision, seen = None, set(), set(), 0
    kit_dump = data_dir / "wikipedia" / "jawiki-20230501-pages-articles-multistream-excerpt.xml.bz2"
    with bz2.open(kit_dump) as stream:
        for _, elem in ET.iterparse(stream, events=("end",)):
            if elem.tag == f"{MW}siteinfo":
                real_site = [child.tag for child in elem]
            elif elem.tag == f"{MW}page":
                real_page |= {child.tag for child in elem}
                real_revision |= {child.tag for child in elem.find(f"{MW}revision")}
                seen += 1
                if seen >= 50:
                    break
    real_page.add(f"{MW}redirect")  # present on the kit's redirect pages further in
    for lang, root in dumps.items():
        assert [child.tag for child in root.find(f"{MW}siteinfo")] == real_site, lang
        for page in root.iter(f"{MW}page"):
            assert {child.tag for child in page} <= real_page, lang
            assert {child.tag for child in page.find(f"{MW}revision")} <= real_revision, lang


def test_each_language_has_articles_redirect_template_and_disambiguation(dumps):
    for lang, root in dumps.items():
        pages = _pages(root)
        names = _namespaces(root)
        assert len({p["id"] for p in pages}) == len(pages), f"{lang}: duplicate page ids"
        assert len({p["title"] for p in pages}) == len(pages), f"{lang}: duplicate titles"
        articles = [p for p in pages if p["ns"] == 0 and p["redirect"] is None
                    and not _is_disambiguation(lang, p["text"])]
        assert len(articles) >= 8, f"{lang}: {len(articles)} articles"
        titles = {p["title"] for p in articles}

        redirects = [p for p in pages if p["redirect"] is not None]
        assert redirects, f"{lang}: no redirect page"
        for page in redirects:
            assert page["redirect"] in titles, f"{lang}: redirect to a missing page {page['redirect']}"
            assert re.match(r"#\S+\s*\[\[" + re.escape(page["redirect"]) + r"\]\]", page["text"]), page["text"]

        other = [p for p in pages if p["ns"] in (10, 14)]
        assert other, f"{lang}: no template or category page"
        for page in other:
            assert page["title"].startswith(names[page["ns"]] + ":"), f"{lang}: {page['title']}"

        disambiguation = [p for p in pages if p["ns"] == 0 and _is_disambiguation(lang, p["text"])]
        assert len(disambiguation) == 1, f"{lang}: expected one disambiguation page"
        for link in re.findall(r"\[\[([^|\]]+)", disambiguation[0]["text"])[:1]:
            assert link[:1].upper() + link[1:] in titles, f"{lang}: disambiguation page must link its article first"


def test_articles_use_realistic_localized_markup(dumps):
    for lang, root in dumps.items():
        names = _namespaces(root)
        articles = [p for p in _pages(root) if p["ns"] == 0 and p["redirect"] is None
                    and not _is_disambiguation(lang, p["text"])]
        for page in articles:
            text = page["text"]
            assert f"[[{names[14]}:" in text, f"{lang}/{page['title']}: no localized category link"
            assert re.search(r"'''[^']+'''", text), f"{lang}/{page['title']}: no bold title"
            assert re.search(r"\[\[(en|de):", text), f"{lang}/{page['title']}: no interlanguage link"
        everything = "\n".join(p["text"] for p in articles)
        for feature in ("<ref", "<ref name=", "{|", "|}", "== ", "{{", "<!--", "|", "* "):
            assert feature in everything, f"{lang}: no {feature!r} anywhere"
        assert f"[[{names[6]}:" in everything, f"{lang}: no file link with the localized namespace"


def test_english_is_largest_and_some_languages_are_small(dumps):
    sizes, counts = {}, {}
    for lang, root in dumps.items():
        articles = [p for p in _pages(root) if p["ns"] == 0 and p["redirect"] is None
                    and not _is_disambiguation(lang, p["text"])]
        sizes[lang] = sum(len(p["text"]) for p in articles)
        counts[lang] = len(articles)
    others = [size for lang, size in sizes.items() if lang != "en"]
    assert sizes["en"] >= 2 * statistics.median(others), sizes
    assert counts["en"] == max(counts.values()) and counts["sw"] == min(counts.values()), counts
    assert sizes["sw"] < 0.7 * statistics.median(others), sizes


def test_article_text_is_in_the_language_script(dumps):
    for lang, root in dumps.items():
        text = "\n".join(p["title"] for p in _pages(root) if p["ns"] == 0)
        assert _script_share(text, SCRIPT[lang]) > 0.9, f"{lang}: titles not in {SCRIPT[lang]}"
    for lang in ("zh", "ja"):  # non-spaced scripts: no space between two CJK characters
        text = "\n".join(line for p in _pages(dumps[lang]) for line in p["text"].split("\n")
                         if not line.startswith(("{", "|", "!")))  # prose, not template/table code
        assert len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", text)) > 1000, lang
        assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff] [\u3040-\u30ff\u4e00-\u9fff]", text), lang


# ----------------------------------------------------------------------------- parallel and Tatoeba

def test_parallel_files_are_aligned_and_multi_parallel(demo):
    english_sides = set()
    for lang in PARALLEL_LANGUAGES:
        foreign = _lines(demo["parallel"] / f"demo.{lang}-en.{lang}")
        english = _lines(demo["parallel"] / f"demo.{lang}-en.en")
        assert len(foreign) == len(english) == PARALLEL_LINES, lang
        for line in foreign + english:
            assert line and line == line.strip(), f"{lang}: empty or padded line {line!r}"
        assert len(set(foreign)) == PARALLEL_LINES, f"{lang}: duplicate sentences"
        assert not set(foreign) & set(english), f"{lang}: untranslated lines"
        if SCRIPT[lang] != "LATIN":
            assert _script_share("".join(foreign), SCRIPT[lang]) > 0.9, lang
        english_sides.add(tuple(english))
    assert len(english_sides) == 1, "the English side must be the same for every pair"
    assert len(list(demo["parallel"].iterdir())) == 2 * len(PARALLEL_LANGUAGES)


def test_tatoeba_files_are_aligned_and_disjoint_from_training_sentences(demo):
    for lang, iso in ISO3.items():
        foreign = _lines(demo["tatoeba"] / f"tatoeba.{iso}-eng.{iso}")
        english = _lines(demo["tatoeba"] / f"tatoeba.{iso}-eng.eng")
        assert len(foreign) == len(english) == TATOEBA_LINES, lang
        assert all(line and line == line.strip() for line in foreign + english), lang
        assert len(set(foreign)) == len(set(english)) == TATOEBA_LINES, f"{lang}: duplicates"
        train_foreign = set(_lines(demo["parallel"] / f"demo.{lang}-en.{lang}"))
        train_english = set(_lines(demo["parallel"] / f"demo.{lang}-en.en"))
        assert not set(foreign) & train_foreign and not set(english) & train_english, f"{lang}: overlap"
    assert len(list(demo["tatoeba"].iterdir())) == 2 * len(ISO3)


# ----------------------------------------------------------------------------- NER and POS

def test_ner_files_are_valid_iob2_with_one_label_set(demo):
    assert {p.stem for p in demo["ner"].glob("*.tsv")} == set(NER_SENTENCES)
    for name, expected in NER_SENTENCES.items():
        sentences = _token_file(demo["ner"] / f"{name}.tsv")
        assert len(sentences) == expected, name
        tags = set()
        for sentence in sentences:
            previous = "O"
            for token, tag in sentence:
                assert tag in NER_TAGS, f"{name}: tag {tag!r}"
                if tag.startswith("I-"):
                    assert previous[2:] == tag[2:], f"{name}: {tag} after {previous} at {token!r}"
                previous = tag
                tags.add(tag)
            assert any(tag != "O" for _, tag in sentence), f"{name}: sentence without an entity"
        assert tags == NER_TAGS, f"{name}: label set {sorted(tags)}"
        if name == "dev-zh":  # PAN-X zh is tokenized per character
            assert all(len(token) == 1 for sentence in sentences for token, _ in sentence)


def test_pos_files_use_upos_and_tag_punctuation(demo):
    assert {p.stem for p in demo["pos"].glob("*.tsv")} == set(POS_SENTENCES)
    for name, expected in POS_SENTENCES.items():
        sentences = _token_file(demo["pos"] / f"{name}.tsv")
        assert len(sentences) == expected, name
        for sentence in sentences:
            for token, tag in sentence:
                assert tag in UPOS, f"{name}: {tag!r}"
                is_punct = all(unicodedata.category(c).startswith("P") for c in token)
                assert is_punct == (tag == "PUNCT"), f"{name}: {token}/{tag}"
            assert sentence[-1][1] == "PUNCT", f"{name}: sentence does not end with punctuation"
            assert {"VERB", "AUX"} & {tag for _, tag in sentence}, f"{name}: sentence without a verb"


def test_readme_documents_every_file(demo, repo_dir):
    readme = demo["readme"].read_text(encoding="utf-8")
    for path in sorted((repo_dir / "corpora" / "demo").rglob("*")) + sorted((repo_dir / "eval" / "demo").rglob("*")):
        if path.is_file() and path.name != "README.md":
            pattern = path.name if path.parent.name == "wiki" else path.parent.name + "/"
            assert pattern in readme, f"README.md does not mention {path.name}"


# ----------------------------------------------------------------------------- the project's readers

def test_project_dump_reader_and_cleaner_load_every_language(demo):
    from mbert.corpus.dump import iter_pages, read_siteinfo
    from mbert.corpus.wikitext import RESIDUE, Namespaces, WikitextCleaner

    for lang in WIKI_LANGUAGES:
        path = _dump_path(demo["wiki"], lang)
        site = read_siteinfo(path)
        assert (site.language, site.dbname) == (lang, f"{lang}wiki")
        cleaner = WikitextCleaner(Namespaces.from_siteinfo(site.namespaces))
        articles = [p for p in iter_pages(path) if p.ns == 0 and not p.redirect
                    and not _is_disambiguation(lang, p.text)]
        assert len(articles) >= 8, lang
        for page in articles:
            text = cleaner.clean(page.text)
            assert len(text) > 100, f"{lang}/{page.title}: cleaned text too short"
            assert not [r for r in RESIDUE if r in text], f"{lang}/{page.title}: markup left in {text!r}"


def test_project_task_readers_load_ner_and_pos(demo):
    from mbert.transfer.readers import read_tagged

    for folder, counts in (("ner", NER_SENTENCES), ("pos", POS_SENTENCES)):
        for name, expected in counts.items():
            sentences = read_tagged(demo[folder] / f"{name}.tsv")
            assert len(sentences) == expected and all(len(s.words) == len(s.tags) for s in sentences)
