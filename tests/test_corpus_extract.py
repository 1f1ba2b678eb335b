"""corpus extract on the real dumps and text of the data kit: cleaning, formats, resume."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mbert.cli import main
from mbert.corpus import dump, worker
from mbert.corpus.extract import extract_corpus, is_complete, read_manifest
from mbert.corpus.languages import registry
from mbert.corpus.segment import Segmenter
from mbert.corpus.settings import CorpusSettings, DeclaredLanguage
from mbert.corpus.wikitext import RESIDUE, Namespaces, WikitextCleaner, strip_spans
from mbert.errors import ConfigError

DUMPS = {  # language -> dumps of the kit (every XML dump of wikipedia/)
    "en": ["enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2", "enwiki-table-markup.xml.bz2"],
    "bg": ["bgwiki-latest-pages-articles-shortened.xml.bz2"],
    "el": ["elwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "ja": ["jawiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "uk": ["ukwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "vi": ["viwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
    "mr": ["mrwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"],
}


def _texts(folder: Path) -> list[str]:
    return pq.read_table(sorted(folder.glob("part-*.parquet"))).column("text").to_pylist()


@pytest.fixture(scope="module")
def wiki_corpus(data_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("clean")
    sources = {lang: [str(data_dir / "wikipedia" / name) for name in names] for lang, names in DUMPS.items()}
    # small units so that multistream dumps are really split across the 2 workers
    manifest = extract_corpus(CorpusSettings(sources=sources, workers=2, chunk_mb=0.1), out)
    return out, manifest


def test_registry_has_the_104_mbert_languages():
    langs = registry()
    assert len(langs) == 104
    assert {c for c, l in langs.items() if l.cased_only} == {"th", "mn"}
    assert langs["zh"].wiki == langs["zh-hant"].wiki == "zh" and langs["zh-hant"].script == "Hant"
    assert langs["el"].script == "Grek" and langs["bpy"].name == "Bishnupriya Manipuri"


def test_unknown_language_suggests_closest_codes(tmp_path, capsys):
    assert main(["corpus", "extract", "--lang", "englsh", "--source", "x.txt", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown language code 'englsh'" in err and "'en' (English)" in err
    with pytest.raises(ConfigError, match="'ja'"):
        extract_corpus(CorpusSettings(sources={"jp": ["x"]}), tmp_path)


def test_no_markup_residue_on_every_shared_dump(wiki_corpus, data_dir):
    out, manifest = wiki_corpus
    for lang, names in DUMPS.items():
        entry = manifest["languages"][lang]
        assert entry["complete"] and entry["documents"] > 0
        prefixes = set()
        for name in names:
            info = dump.read_siteinfo(data_dir / "wikipedia" / name)
            prefixes |= {f"{info.namespaces[k]}:" for k in (6, 14) if info.namespaces.get(k)}
        prefixes |= {"Category:", "File:", "Image:"}
        texts = _texts(out / lang)
        assert len(texts) == entry["documents"]
        for text in texts:
            for marker in (*RESIDUE, *prefixes):
                assert marker not in text, (lang, marker, text[text.find(marker) - 80:][:200])
        # the residue filter is a safety net, not the cleaner: it drops well under 1% of sentences
        assert entry["dropped_sentences"]["residue"] <= 0.01 * entry["sentences"]


def test_cleaner_keeps_link_text_and_drops_media_categories_interlanguage():
    wikitext = ("'''Sofia''' is the [[capital city|capital]] of [[Bulgaria]].<ref>{{cite web|url=x}}</ref> "
                "<!-- hidden --> It has [[Vitosha]] nearby.{{Infobox city|name={{lang|bg|София}}}}\n"
                "[[Файл:Sofia.jpg|thumb|The [[city]] at night]]\n{| class=wikitable\n|-\n| a || b\n|}\n"
                "== History ==\nFounded by the [[Serdi]]&nbsp;tribe.\n[[Категория:Градове]]\n[[en:Sofia]]")
    cleaner = WikitextCleaner(Namespaces.from_siteinfo({6: "Файл", 14: "Категория"}))
    text = cleaner.clean(wikitext)
    assert text.split("\n") == ["Sofia is the capital of Bulgaria. It has Vitosha nearby.",
                                "Founded by the Serdi\u00a0tribe."]
    assert strip_spans("a {{x|{{y}}}} b {{{arg}}} c") == "a  b  c"
    text = WikitextCleaner().clean("Water is H<sub>2</sub>O &amp; ice.[http://x.org Site] see http://x.org now.\n"
                                   "* item one\n# item [[two|2]]\n<div>block</div>[[:Category:Foo|cat link]] "
                                   "[[wikt:word]] [[Paris#History]]")
    assert text.split("\n") == ["Water is H2O & ice.Site see now.", "item one", "item 2", "block",
                                 "cat link Paris"]
    # 4 apostrophes = a literal one plus bold (frwiki writes L'eau in bold this way); 5 = bold italic
    q = "'"
    assert WikitextCleaner().clean(f"{q*3}L{q*4}eau{q*3} et {q*5}mot{q*5} {q*2}x{q*2}.") == "L'eau et mot x."


def test_manifest_format_and_checksums(wiki_corpus, data_dir):
    out, manifest = wiki_corpus
    assert is_complete(out) and manifest["complete"] and read_manifest(out) == manifest
    assert (out / "resolved_config.toml").is_file() and not (out / ".staging").exists()
    el = manifest["languages"]["el"]
    assert el["units"] >= 2, "the multistream dump was not split into stream ranges"
    source = el["sources"][0]
    path = data_dir / "wikipedia" / DUMPS["el"][0]
    assert source["size"] == path.stat().st_size
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert source["kind"] == "multistream" and source["index"].endswith("-index.txt.bz2")
    for key in ("documents", "sentences", "characters", "bytes", "seconds"):
        assert el[key] > 0
    table = pq.read_table(out / el["parts"][0])
    assert table.column_names == ["id", "title", "text"]
    texts = table.column("text").to_pylist()
    assert sum(t.count("\n") + 1 for t in texts) == el["sentences"]
    assert sum(len(t.encode()) for t in texts) == el["bytes"]
    # redirects, other namespaces and disambiguation pages are not documents
    assert el["skipped_pages"]["redirect"] > 0 and el["skipped_pages"]["namespace"] > 0
    assert el["skipped_pages"]["disambiguation"] > 0
    en = manifest["languages"]["en"]
    assert en["skipped_pages"]["redirect"] >= 99 and en["skipped_pages"]["disambiguation"] > 0
    titles = pq.read_table(out / "en").column("title").to_pylist()
    assert "Anarchism" in titles and not any("(disambiguation)" in t for t in titles)


def test_utf16_dump_and_cjk_segmentation(wiki_corpus):
    out, _ = wiki_corpus
    bg = _texts(out / "bg")
    assert any(line.startswith("Григорианският календар") for line in bg[0].split("\n"))
    ja_sentences = [s for text in _texts(out / "ja") for s in text.split("\n")]
    run_together = [s for s in ja_sentences if s.count("。") > 1 and s.endswith("。")]
    assert len(run_together) < 0.03 * len(ja_sentences), run_together[:3]  # quotes/brackets hold some
    assert sum(s.endswith("。") for s in ja_sentences) > 0.5 * len(ja_sentences)


def test_multistream_ranges_read_the_same_pages_as_one_pass(data_dir):
    path = data_dir / "wikipedia" / DUMPS["mr"][0]
    size = path.stat().st_size
    offsets = dump.read_index_offsets(dump.index_for(path), size)
    ranges = dump.plan_ranges(offsets, size, pieces=8, max_bytes=1)  # one range per stream
    assert len(ranges) == len(offsets)
    split = [p.id for start, end in ranges for p in dump.iter_range_pages(path, start, end, "utf-8", size)]
    assert split == [p.id for p in dump.iter_pages(path)] and len(split) == 365


def test_text_sources_dedup_and_zh_segmentation(data_dir, tmp_path):
    kk = data_dir / "corpus" / "kk.txt"
    copy = tmp_path / "kk-copy.txt"
    shutil.copy(kk, copy)  # the same documents twice: all of the copy's documents are duplicates
    out = tmp_path / "clean"
    manifest = extract_corpus(CorpusSettings(sources={"kk": [str(kk), str(copy)]}, workers=1), out)
    kk_entry = manifest["languages"]["kk"]
    lines = [l for l in kk.read_text(encoding="utf-8").split("\n") if l.strip()]
    assert kk_entry["duplicates"]["documents"] >= 1
    assert kk_entry["sentences"] == len(set(" ".join(l.split()) for l in lines))
    # the disk-bucketed de-duplication gives the same shards with many buckets as with one
    assert not (out / ".staging").exists()  # staging is gone after a complete run
    unit = tmp_path / "unit.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(out / "kk")] * 2), unit)
    options = worker.CleanOptions(wiki="kk")
    one = worker.finalize_language([unit], tmp_path / "b0" / "final", options, bucket_bits=0)
    many = worker.finalize_language([unit], tmp_path / "b6" / "final", options, bucket_bits=6)
    assert one == many and one["duplicate_documents"] == kk_entry["documents"]
    assert pq.read_table(tmp_path / "b0" / "final").equals(pq.read_table(tmp_path / "b6" / "final"))
    zh_text = (data_dir / "corpus" / "zh.txt").read_text(encoding="utf-8").split("\n")
    paragraph = "".join(zh_text[:5])
    sentences = Segmenter("zh").split(paragraph)
    assert len(sentences) >= 5 and all(s.endswith(("。", "！", "？", "」", "）")) for s in sentences[:-1])


def test_parquet_source_in_wikimedia_layout(data_dir, tmp_path):
    paragraphs = [p for p in (data_dir / "corpus" / "ja.txt").read_text(encoding="utf-8").split("\n\n") if p]
    rows = {"id": [str(i) for i in range(len(paragraphs))],
            "url": [f"https://ja.wikipedia.org/wiki?curid={i}" for i in range(len(paragraphs))],
            "title": [f"doc {i}" for i in range(len(paragraphs))],
            "text": ["".join(p.split("\n")) for p in paragraphs]}  # cleaned text: one paragraph, no breaks
    source = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.table(rows), source, row_group_size=100)
    out = tmp_path / "clean"
    assert main(["corpus", "extract", "--lang", "ja", "--source", str(source), "--out", str(out),
                 "--workers", "1", "--wandb", "off"]) == 0
    entry = read_manifest(out)["languages"]["ja"]
    assert entry["sources"][0]["kind"] == "parquet" and entry["units"] >= 1
    assert entry["documents"] == len(paragraphs)
    # sentencex split the run-together Japanese paragraphs back into sentences
    assert entry["sentences"] >= 0.8 * sum(p.count("\n") + 1 for p in paragraphs)
    # the same files as a `datasets` dataset folder (what a hub download leaves): `hf:FOLDER`
    hub_copy = tmp_path / "hub" / "ja"
    hub_copy.mkdir(parents=True)
    shutil.copy(source, hub_copy / source.name)
    assert main(["corpus", "extract", "--lang", "ja", "--source", f"hf:{hub_copy}", "--out",
                 str(tmp_path / "clean-hf"), "--workers", "1", "--wandb", "off"]) == 0
    via_hf = read_manifest(tmp_path / "clean-hf")["languages"]["ja"]
    assert via_hf["sources"][0]["kind"] == "hf"
    assert (via_hf["documents"], via_hf["sentences"]) == (entry["documents"], entry["sentences"])
    assert _texts(tmp_path / "clean-hf" / "ja") == _texts(out / "ja")


def test_rerun_skips_force_redoes_and_interrupted_language_resumes(data_dir, tmp_path, monkeypatch, capsys):
    source = str(data_dir / "wikipedia" / DUMPS["mr"][0])
    settings = CorpusSettings(sources={"mr": [source]}, workers=1, chunk_mb=0.05)
    out = tmp_path / "clean"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mbert.corpus.extract.finalize_language", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_corpus(settings, out)
    assert not is_complete(out) and not (out / "mr").exists()
    assert read_manifest(out)["languages"]["mr"]["complete"] is False
    monkeypatch.setattr("mbert.corpus.extract.finalize_language", worker.finalize_language)

    resumed = extract_corpus(settings, out)["languages"]["mr"]
    assert resumed["units"] >= 3 and resumed["units_reused"] == resumed["units"]
    fresh = extract_corpus(CorpusSettings(sources={"mr": [source]}, workers=1, chunk_mb=0.05),
                           tmp_path / "fresh")["languages"]["mr"]
    assert _texts(out / "mr") == _texts(tmp_path / "fresh" / "mr")
    assert resumed["documents"] == fresh["documents"] and fresh["units_reused"] == 0

    part = out / "mr" / "part-00000.parquet"
    stamp = part.stat().st_mtime_ns
    capsys.readouterr()
    extract_corpus(settings, out)
    assert part.stat().st_mtime_ns == stamp and "already complete" in capsys.readouterr().err
    settings.force = True
    again = extract_corpus(settings, out)["languages"]["mr"]
    assert again["units_reused"] == 0 and again["documents"] == fresh["documents"]
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


class RecordingTracker:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def table(self, key, columns, rows):
        self.calls.append(("table", key, list(columns), [list(r) for r in rows]))

    def image(self, key, path):
        self.calls.append(("image", key, Path(path)))

    def summary(self, metrics):
        self.calls.append(("summary", dict(metrics)))


def test_recipe_mode_all_languages_logs_to_tracker_and_loads_with_datasets(data_dir, tmp_path):
    from mbert.recipe import load_recipe

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[corpus]\nworkers = 1\nsources = {{kk = ["{data_dir / "corpus" / "kk.txt"}"], '
                      f'mr = ["{data_dir / "corpus" / "mr.txt"}"]}}\n')
    assert main(["corpus", "extract", "--recipe", str(recipe), "--out", str(tmp_path / "cli"), "--wandb", "off"]) == 0
    assert set(read_manifest(tmp_path / "cli")["languages"]) == {"kk", "mr"}

    tracker = RecordingTracker()
    out = tmp_path / "api"
    manifest = extract_corpus(load_recipe(recipe).corpus, out, tracker=tracker)
    table = next(c for c in tracker.calls if c[0] == "table")
    assert table[1] == "corpus/languages" and [r[0] for r in table[3]] == ["kk", "mr"]
    assert table[3][0][1] == manifest["languages"]["kk"]["documents"]

    import datasets
    loaded = datasets.load_dataset("parquet", data_files=str(out / "kk" / "part-*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert loaded.column_names == ["id", "title", "text"] and len(loaded) == manifest["languages"]["kk"]["documents"]


def test_a_recipe_declares_languages_beyond_the_104(data_dir, tmp_path, capsys):
    source = str(data_dir / "corpus" / "fo.txt")
    out = tmp_path / "clean"
    command = ["corpus", "extract", "--lang", "fo", "--source", source, "--out", str(out), "--wandb", "off",
               "--workers", "1"]
    assert main(command) == 2
    assert "unknown language code 'fo'" in capsys.readouterr().err and not (out / "fo").exists()
    assert main([*command, "--set", 'corpus.languages.fo={name = "Faroese", script = "latin"}']) == 2
    assert "ISO 15924" in capsys.readouterr().err
    assert main([*command, "--set", 'corpus.languages.fo={name = "Faroese", script = "Latn"}']) == 0
    entry = read_manifest(out)["languages"]["fo"]
    assert (entry["name"], entry["script"], entry["wiki"]) == ("Faroese", "Latn", "fo") and entry["documents"] > 0
    # declaring one more language leaves the finished one as it is
    part = out / "fo" / "part-00000.parquet"
    stamp = part.stat().st_mtime_ns
    declared = {"fo": DeclaredLanguage(name="Faroese", script="Latn"), "ug": DeclaredLanguage(name="Uyghur", script="Arab")}
    extract_corpus(CorpusSettings(sources={"fo": [source]}, workers=1, languages=declared), out)
    assert part.stat().st_mtime_ns == stamp


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent's pid
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from Linux /proc")
def test_pool_workers_die_with_a_killed_extract(data_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "mbert", "corpus", "extract", "--lang", "en", "--source",
               str(data_dir / "lab" / "en.txt"), "--out", str(tmp_path / "out"), "--workers", "2", "--wandb", "off"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(parent.pid)) < 2 and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, "the two pool workers never started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [w for w in workers if _alive(w)]
    finally:
        parent.kill()
    for pid in survivors:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"pool workers {survivors} outlived their killed parent"
