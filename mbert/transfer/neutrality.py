"""Is the model language-neutral? The two analyses the mBERT literature relies on, on Tatoeba data.

* Language centroids: the mean sentence vector of each language (mean-pooled, last layer by default;
  English from the English sides of all pairs), projected to 2-D with PCA. Centroids far apart mean a
  strong language-specific component (Pires et al. 2019; Libovický et al. 2019).
* Retrieval accuracy layer by layer (0 = embeddings, then each transformer layer), raw and after
  subtracting each language's centroid (Libovický et al. 2019, "How language-neutral is multilingual
  BERT?"). If centering helps, part of each vector only says which language a sentence is in.
  Accuracy is the mean of the xx->en and en->xx directions, in percent.

Outputs in `out_dir`: `centroids.png`, `retrieval_by_layer.png` and, written last,
`language_neutrality.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_file, atomic_write_json
from ..errors import UserError
from ..progress import summary
from .retrieval import (center_vectors, encode_sentences, num_layers, read_tatoeba, tatoeba_scores)


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Project rows to their first two principal components; also the explained variance ratios."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    projected = np.zeros((len(points), 2))
    width = min(2, components.shape[0])
    projected[:, :width] = centred @ components[:width].T
    variance = singular ** 2
    ratios = (variance / variance.sum()).tolist() if variance.sum() > 0 else [0.0] * len(variance)
    return projected, [float(r) for r in (ratios + [0.0, 0.0])[:2]]


def _save_figure(figure, path: Path) -> None:
    """Write a PNG under a temporary name, then rename, so a half-written image never appears."""
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")


def _plot_centroids(centroids: dict[str, list[float]], variance: list[float], layer: int, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5))
    for lang, (x, y) in centroids.items():
        axes.scatter([x], [y], s=40, color="tab:red" if lang == "en" else "tab:blue")
        axes.annotate(lang, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=9)
    axes.set_xlabel(f"PC1 ({100 * variance[0]:.0f}% of variance)")
    axes.set_ylabel(f"PC2 ({100 * variance[1]:.0f}% of variance)")
    axes.set_title(f"Language centroids (mean-pooled layer {layer}, Tatoeba), PCA")
    axes.grid(alpha=0.3)
    _save_figure(figure, path)
    plt.close(figure)


def _plot_accuracy(layers: list[int], raw: list[float], centred: list[float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(layers, raw, marker="o", label="raw")
    axes.plot(layers, centred, marker="s", label="centred (language mean subtracted)")
    axes.set_xticks(layers)
    axes.set_xticklabels(["emb" if layer == 0 else str(layer) for layer in layers])
    axes.set_xlabel("layer")
    axes.set_ylabel("Tatoeba accuracy, mean of both directions (%)")
    axes.set_ylim(bottom=0)
    axes.set_title("Retrieval accuracy by layer")
    axes.grid(alpha=0.3)
    axes.legend()
    _save_figure(figure, path)
    plt.close(figure)


def analyse_language_neutrality(model, tokenizer, data_dir: Path, languages: list[str], out_dir: Path, *,
                                device: str = "cpu", max_sentences: int = 200,
                                centroid_layer: int | None = None, batch_size: int = 64,
                                max_length: int = 128, tracker=None) -> dict:
    """Centroid PCA and per-layer raw/centred Tatoeba retrieval; writes plots and JSON to `out_dir`
    and returns the JSON content."""
    languages = [lang for lang in languages if lang != "en"]
    if not languages:
        raise UserError("the language-neutrality analysis needs at least one non-English Tatoeba language")
    if max_sentences < 2:
        raise UserError(f"max_sentences must be at least 2 for retrieval (got {max_sentences})")
    data = {lang: read_tatoeba(data_dir, lang, max_sentences) for lang in languages}  # fail early
    top = num_layers(model)
    layers = list(range(top + 1))
    centroid_index = top if centroid_layer is None else centroid_layer
    if not 0 <= centroid_index <= top:
        raise UserError(f"centroid_layer {centroid_layer} does not exist: layers are 0..{top}")

    common = dict(layers=layers, batch_size=batch_size, max_length=max_length, device=device)
    per_language: dict[str, dict] = {}
    centroid_vectors: dict[str, np.ndarray] = {}
    english_sum, english_count = 0.0, 0
    for lang, (xx_text, en_text) in data.items():
        xx = encode_sentences(model, tokenizer, xx_text, desc=f"neutrality {lang}", **common)
        en = encode_sentences(model, tokenizer, en_text, desc=f"neutrality {lang}-en en", **common)
        per_language[lang] = {
            "sentences": len(xx_text),
            "raw": [tatoeba_scores(xx[i], en[i])["mean"] for i in layers],
            "centered": [tatoeba_scores(center_vectors(xx[i]), center_vectors(en[i]))["mean"] for i in layers],
        }
        centroid_vectors[lang] = xx[centroid_index].mean(axis=0)
        english_sum = english_sum + en[centroid_index].sum(axis=0)
        english_count += len(en_text)
    centroid_vectors = {"en": english_sum / english_count, **centroid_vectors}

    names = list(centroid_vectors)
    projected, variance = pca_2d(np.stack([centroid_vectors[n] for n in names]))
    centroids_2d = {name: [float(x), float(y)] for name, (x, y) in zip(names, projected)}
    raw = [float(np.mean([per_language[l]["raw"][i] for l in languages])) for i in layers]
    centred = [float(np.mean([per_language[l]["centered"][i] for l in languages])) for i in layers]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_centroids(centroids_2d, variance, centroid_index, out_dir / "centroids.png")
    _plot_accuracy(layers, raw, centred, out_dir / "retrieval_by_layer.png")
    result = {
        "layers": layers,
        "metric": "Tatoeba accuracy (%), mean of xx->en and en->xx; layer 0 = embeddings",
        "accuracy": {"raw": raw, "centered": centred},
        "per_language": per_language,
        "centroids_2d": centroids_2d,
        "centroid_layer": centroid_index,
        "pca_explained_variance": variance,
        "max_sentences": max_sentences,
    }
    atomic_write_json(out_dir / "language_neutrality.json", result)  # last: marks the analysis complete
    if tracker is not None:
        tracker.table("neutrality/retrieval_by_layer", ["layer", "raw", "centered"],
                      [[layer, r, c] for layer, r, c in zip(layers, raw, centred)])
        tracker.image("neutrality/centroids", out_dir / "centroids.png")
        tracker.image("neutrality/retrieval_by_layer", out_dir / "retrieval_by_layer.png")
    best = int(np.argmax(centred))
    summary(f"language neutrality: {len(languages)} languages x {max_sentences} Tatoeba sentences; "
            f"accuracy at the last layer {raw[-1]:.1f}% raw, {centred[-1]:.1f}% centred; best centred "
            f"layer {layers[best]} ({centred[best]:.1f}%); plots and JSON in {out_dir}")
    return result
