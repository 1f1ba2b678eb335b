"""`tokenizer_report`: how well a (shared) vocabulary serves each language.

Per language, on the given text:
- fertility: subwords per word; per character for languages written without spaces (zh, ja, th);
- split_share: share of words cut into 2+ subwords (not given for zh/ja/th, whose "words" are
  whole phrases);
- unk_rate: share of subwords that are the unknown token;
- char_coverage: share of character occurrences (NFC, spaces aside) that the vocabulary can
  represent without the unknown token, plus the most frequent characters it cannot.
Words are runs of letters, marks and digits (punctuation and symbols separate words), the same
for every tokenizer so numbers compare across vocabularies. Over the whole vocabulary: the share
of entries in each Unicode script. Written as report.json, report.md and report.png."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import regex

from ..artifact import writing
from ..atomic import atomic_write_json, atomic_write_text
from ..config import write_resolved
from ..errors import UserError
from ..fake import base_language
from ..progress import bar, summary
from ..tokenizer_folder import load_tokenizer
from ..unicode_scripts import entry_script
from .texts import read_languages

CHAR_UNIT_LANGUAGES = {"zh", "ja", "th", "cmn", "jpn", "tha", "yue", "wuu", "lzh", "zh-yue", "zh-classical",
                       "zh-min-nan"}
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")
UNUSED = regex.compile(r"\[unused\d+\]")  # placeholder entries of Google's BERT vocabularies
ENCODE_BATCH = 256
MISSING_CHARS_SHOWN = 10


def tokenizer_report(tokenizer_dir: Path, texts: dict[str, list[Path]] | Path, out_dir: Path, tracker=None,
                     max_lines_per_language: int | None = None) -> dict:
    """Measure the tokenizer in `tokenizer_dir` on `texts`; write report.json/.md/.png to `out_dir`."""
    tokenizer_dir, out_dir = Path(tokenizer_dir), Path(out_dir)
    if max_lines_per_language is not None and max_lines_per_language < 1:
        raise UserError(f"max lines per language must be at least 1, not {max_lines_per_language}")
    tokenizer = _fast_tokenizer(tokenizer_dir)
    languages = read_languages(texts, max_lines_per_language)
    backend = tokenizer.backend_tokenizer
    unk_id = tokenizer.unk_token_id
    results = {}
    for lang, lines in bar(languages.items(), total=len(languages), desc="vocab report", unit="lang"):
        char_unit = base_language(lang) in CHAR_UNIT_LANGUAGES  # a fake copy is counted like its base
        results[lang] = language_metrics(backend, unk_id, lines, char_unit=char_unit)
    report = {
        "tokenizer": str(tokenizer_dir.resolve()),
        "vocab_size": len(tokenizer),
        "max_lines_per_language": max_lines_per_language,
        "languages": results,
        "scripts": script_shares(tokenizer.get_vocab(), set(tokenizer.all_special_tokens)),
    }
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "report.md", markdown(report))
        plot(report, out_dir / "report.png")
        write_resolved(out_dir, {"report": {"tokenizer": tokenizer_dir, "max_lines_per_language": max_lines_per_language,
                                            "texts": texts if isinstance(texts, Path) else
                                            {k: [str(p) for p in v] for k, v in texts.items()}}})
        atomic_write_json(out_dir / "report.json", report)
    if tracker is not None:
        columns, rows = table_rows(report)
        tracker.table("vocab/report", columns, rows)
        tracker.image("vocab/report_chart", out_dir / "report.png")
    spaced = {k: m["fertility"] for k, m in results.items() if m["fertility_unit"] == "word" and m["fertility"]}
    worst = max(spaced, key=spaced.__getitem__) if spaced else None
    summary(f"Tokenizer report for {tokenizer_dir} on {len(results)} languages: {out_dir / 'report.md'} "
            f"(+ report.json, report.png)."
            + (f" Highest fertility: {worst} ({spaced[worst]:.2f} subwords per word)." if worst else ""))
    return report


def _fast_tokenizer(tokenizer_dir: Path):
    tokenizer = load_tokenizer(tokenizer_dir, hint="give a folder with tokenizer.json, or vocab.txt plus "
                               "tokenizer_config.json (e.g. the output of `mbert vocab train`)")
    if not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "backend_tokenizer", None) is None:
        raise UserError(f"{tokenizer_dir} loads only as a slow tokenizer; the report needs a fast one "
                        "(a tokenizer.json, or a vocab.txt that transformers converts)")
    return tokenizer


def language_metrics(backend, unk_id: int | None, lines: list[str], *, char_unit: bool) -> dict:
    words_per_line = [WORD.findall(line) for line in lines]
    words_per_line = [w for w in words_per_line if w]
    n_words = sum(len(w) for w in words_per_line)
    n_word_chars = sum(len(word) for words in words_per_line for word in words)
    subwords = unknown = split_words = 0
    for start in range(0, len(words_per_line), ENCODE_BATCH):
        batch = words_per_line[start:start + ENCODE_BATCH]
        for encoding in backend.encode_batch(batch, is_pretokenized=True, add_special_tokens=False):
            pieces = Counter(i for i in encoding.word_ids if i is not None)
            split_words += sum(1 for n in pieces.values() if n >= 2)
            subwords += len(encoding.ids)
            unknown += encoding.ids.count(unk_id) if unk_id is not None else 0
    coverage, coverage_types, missing = char_coverage(backend, unk_id, lines)
    per_word = subwords / n_words if n_words else None  # None, not NaN: report.json stays valid JSON
    per_char = subwords / n_word_chars if n_word_chars else None
    return {
        "lines": len(lines),
        "words": n_words,
        "chars": n_word_chars,
        "subwords": subwords,
        "fertility": per_char if char_unit else per_word,
        "fertility_unit": "char" if char_unit else "word",
        "subwords_per_word": per_word,
        "subwords_per_char": per_char,
        "split_share": split_words / n_words if n_words and not char_unit else None,
        "unk_rate": unknown / subwords if subwords else 0.0,
        "char_coverage": coverage,
        "char_coverage_types": coverage_types,
        "missing_chars": missing,
    }


def char_coverage(backend, unk_id: int | None, lines: list[str]) -> tuple[float, float, list[str]]:
    """Share of character occurrences (and of distinct characters) the vocabulary represents.

    Characters are counted after NFC, so a letter written as base + combining accent counts as the
    one accented letter it is, not as a lone accent that no vocabulary holds."""
    counts = Counter(unicodedata.normalize("NFC", "\n".join(lines)))
    for space in [c for c in counts if c.isspace()]:
        del counts[space]
    if not counts:
        return 1.0, 1.0, []
    chars = sorted(counts)
    uncovered = [c for c, enc in zip(chars, backend.encode_batch(chars, add_special_tokens=False))
                 if unk_id is not None and unk_id in enc.ids]
    total = sum(counts.values())
    missed = sum(counts[c] for c in uncovered)
    missing = sorted(uncovered, key=lambda c: (-counts[c], c))[:MISSING_CHARS_SHOWN]
    return 1 - missed / total, 1 - len(uncovered) / len(chars), missing


def script_shares(vocab: dict[str, int], special: set[str]) -> dict[str, dict]:
    counts: Counter[str] = Counter()
    for entry in vocab:
        if entry in special or UNUSED.fullmatch(entry):
            continue
        bare = entry[2:] if entry.startswith("##") and len(entry) > 2 else entry.lstrip("▁") or entry
        counts[entry_script(bare)] += 1
    total = sum(counts.values()) or 1
    return {script: {"entries": n, "share": n / total}
            for script, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


# ----------------------------------------------------------------------------- outputs

COLUMNS = ["language", "lines", "words", "fertility", "per", "split 2+", "UNK rate", "char coverage",
           "chars not covered"]


def table_rows(report: dict) -> tuple[list[str], list[list]]:
    rows = []
    for lang, m in report["languages"].items():
        rows.append([lang, m["lines"], m["words"], _round(m["fertility"], 3), m["fertility_unit"],
                     None if m["split_share"] is None else round(m["split_share"], 4), round(m["unk_rate"], 5),
                     round(m["char_coverage"], 5), "".join(m["missing_chars"])])
    return COLUMNS, rows


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def markdown(report: dict) -> str:
    def cell(value) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{100 * value:.2f}%"
        return str(value).replace("|", "\\|")

    columns, rows = table_rows(report)
    lines = [f"# Tokenizer report: `{report['tokenizer']}`", "",
             f"Vocabulary: {report['vocab_size']:,} entries. Fertility = subwords per word (per character for "
             "zh/ja/th); split 2+ = share of words cut into two or more subwords; char coverage = share of "
             "character occurrences represented without [UNK].", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        row[3] = None if row[3] is None else f"{row[3]:.3f}"  # fertility is a ratio, not a share
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    lines += ["", "## Vocabulary by script", "", "| script | entries | share |", "|---|---|---|"]
    for script, s in report["scripts"].items():
        lines.append(f"| {script} | {s['entries']:,} | {100 * s['share']:.2f}% |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(report["languages"], key=lambda k: report["languages"][k]["fertility"] or 0.0)
    values = [report["languages"][k]["fertility"] or 0.0 for k in langs]
    colours = ["tab:orange" if report["languages"][k]["fertility_unit"] == "char" else "tab:blue" for k in langs]
    scripts = list(report["scripts"].items())[:15]
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8.0, 0.35 * len(langs) + 5), 4.5),
                                      gridspec_kw={"width_ratios": [max(len(langs), 3), 6]})
    left.bar(langs, values, color=colours)
    left.set_ylabel("subwords per word (orange: per character)")
    left.set_title("Fertility by language")
    left.tick_params(axis="x", rotation=90)
    right.barh([s for s, _ in scripts][::-1], [100 * v["share"] for _, v in scripts][::-1], color="tab:green")
    right.set_xlabel("% of vocabulary entries")
    right.set_title("Vocabulary by script")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
