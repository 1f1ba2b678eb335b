"""The lab's target figures from an evaluation folder: per model and task, the target-language average
(mean and standard deviation over seeds of the per-seed averages, as the issue's targets are stated), the
source-language score and each target language's mean, to more digits than the report shows:

    python bench/lab_targets.py runs/lab-real-12x/eval/lab-real
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(folder: Path) -> None:
    source = json.loads((folder / "manifest.json").read_text()).get("source", "en")
    for model_dir in sorted((folder / "models").iterdir()):
        print(f"== {model_dir.name}")
        for task, langs in json.loads((model_dir / "metrics.json").read_text()).items():
            seeds = [scores["seeds"] for lang, scores in langs.items() if lang != source]
            per_seed = [statistics.mean(run[i] for run in seeds) for i in range(min(map(len, seeds)))]
            spread = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
            each = " ".join(f"{lang}={scores['mean']:.2f}" for lang, scores in langs.items() if lang != source)
            print(f"{task:18s} target avg {statistics.mean(per_seed):.3f} ± {spread:.3f}  "
                  f"({source} {langs.get(source, {}).get('mean')})  {each}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
