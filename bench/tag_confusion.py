"""Per-tag accuracy and the commonest wrong tag, from an evaluation's XTREME-layout files.

Which words does zero-shot tagging get wrong? `mbert evaluate` writes the gold tags
(`OUT/labels/TASK/test-LANG.tsv`) and the first seed's predictions
(`OUT/predictions/...`, or `OUT/models/NAME/predictions/...` when models are compared), one
`word<TAB>tag` (or `tag`) line per word, a blank line between sentences.

    python bench/tag_confusion.py runs/lab-fake/eval/lab-fake --task udpos --lang en-fake --model mlm
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path


def read_tags(path: Path) -> list[str]:
    """The tag of every word of an XTREME-layout file (its last column), sentence breaks dropped."""
    return [line.rstrip("\n").split("\t")[-1] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def confusion(gold: list[str], predicted: list[str]) -> dict[str, dict]:
    """tag -> {"count", "accuracy" (%), "commonest" predicted tag}, commonest tags first."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold tags but {len(predicted)} predicted: not the same test set")
    table: dict[str, Counter] = defaultdict(Counter)
    for want, got in zip(gold, predicted):
        table[want][got] += 1
    rows = sorted(table.items(), key=lambda item: -sum(item[1].values()))
    return {tag: {"count": sum(got.values()), "accuracy": round(100 * got[tag] / sum(got.values()), 1),
                  "commonest": got.most_common(1)[0][0]} for tag, got in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval", type=Path, help="an evaluation output folder")
    parser.add_argument("--task", required=True)
    parser.add_argument("--lang", required=True)
    parser.add_argument("--model", help="the model's name when several were compared")
    args = parser.parse_args(argv)
    predictions = args.eval / ("models/" + args.model if args.model else "") / "predictions"
    files = (args.eval / "labels" / args.task / f"test-{args.lang}.tsv",
             predictions / args.task / f"test-{args.lang}.tsv")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    gold, predicted = (read_tags(p) for p in files)
    try:
        table = confusion(gold, predicted)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    overall = 100 * sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1)
    print(f"{args.task} {args.lang}: {overall:.1f} % of {len(gold)} words")
    print("tag\twords\taccuracy %\tcommonest prediction")
    for tag, row in table.items():
        print(f"{tag}\t{row['count']}\t{row['accuracy']}\t{row['commonest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
