"""Task scores in percent (0-100), as XTREME reports them, and their aggregation over seeds.

NER uses `seqeval`'s entity-level F1 over the predicted and gold tag sequences, exactly what
XTREME's `evaluate.py` computes from its prediction files. POS is token accuracy (UPOS accuracy,
the number the UD literature and the mBERT papers report) unless the task asks for `metric = "f1"`:
XTREME's script applies seqeval F1 to POS tags, and its published udpos numbers are that.
Sentence-pair tasks use accuracy.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence


def token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    return 100.0 * sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    from seqeval.metrics import f1_score

    return 100.0 * float(f1_score([list(s) for s in gold], [list(s) for s in predicted]))


def label_accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    return 100.0 * sum(g == p for g, p in zip(gold, predicted)) / len(gold) if gold else 0.0


def score(kind: str, gold: Sequence, predicted: Sequence, metric: str = "") -> float:
    """The task's metric: pos -> accuracy (or seqeval F1 with metric "f1"), ner -> entity F1,
    pair -> accuracy."""
    if kind == "pos" and metric == "f1":
        with warnings.catch_warnings():  # seqeval warns that POS tags are no IOB tags: known and intended
            warnings.filterwarnings("ignore", message=".*seems not to be NE tag", category=UserWarning)
            return entity_f1(gold, predicted)
    if kind == "pos":
        return token_accuracy(gold, predicted)
    if kind == "ner":
        return entity_f1(gold, predicted)
    return label_accuracy(gold, predicted)


def aggregate(values: Sequence[float]) -> dict:
    """{"mean", "std", "seeds"}: std is the sample standard deviation (n-1), 0 for one seed."""
    values = [round(float(v), 4) for v in values]  # what is stored is what the mean/std describe
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": round(mean, 4), "std": round(std, 4), "seeds": values}
