"""Language-neutrality analysis (mbert.transfer.neutrality): centroid PCA and per-layer retrieval with and
without centering, on real Tatoeba data with a tiny random BERT."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from mbert.errors import UserError
from mbert.transfer.neutrality import analyse_language_neutrality, pca_2d
from mbert.transfer.retrieval import encode_sentences, evaluate_tatoeba, read_tatoeba

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_analysis_writes_plots_and_consistent_numbers(tiny_bert, data_dir, tmp_path):
    import matplotlib.image

    model, tokenizer = tiny_bert
    tatoeba = data_dir / "tatoeba"
    out = tmp_path / "analysis"
    result = analyse_language_neutrality(model, tokenizer, tatoeba, ["de", "zh", "ru"], out, max_sentences=80)

    for name in ("centroids.png", "retrieval_by_layer.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0  # not blank
    assert json.loads((out / "language_neutrality.json").read_text(encoding="utf-8")) == result

    assert result["layers"] == [0, 1, 2]
    assert set(result["centroids_2d"]) == {"en", "de", "zh", "ru"}
    assert set(result["per_language"]) == {"de", "zh", "ru"}
    for kind in ("raw", "centered"):
        assert len(result["accuracy"][kind]) == 3
        assert all(0 <= value <= 100 for value in result["accuracy"][kind])
    # centering changes retrieval somewhere (compared over every language and layer: a random model's
    # accuracies are small numbers, and a single average could coincide by chance)
    assert any(result["per_language"][lang]["raw"] != result["per_language"][lang]["centered"]
               for lang in result["per_language"])

    # the last-layer numbers are exactly what the Tatoeba evaluation gives
    for center in (False, True):
        scores = evaluate_tatoeba(model, tokenizer, tatoeba, ["de", "zh", "ru"], max_sentences=80, center=center)
        kind = "centered" if center else "raw"
        for lang in scores:
            assert result["per_language"][lang][kind][-1] == pytest.approx(scores[lang]["mean"])
        expected = np.mean([scores[lang]["mean"] for lang in scores])
        assert result["accuracy"][kind][-1] == pytest.approx(expected)

    # the centroid map is the PCA of the real per-language mean vectors (English: all English sides)
    centroids, english = {}, []
    for lang in ["de", "zh", "ru"]:
        xx_text, en_text = read_tatoeba(tatoeba, lang, 80)
        centroids[lang] = encode_sentences(model, tokenizer, xx_text)[2].mean(0)
        english.append(encode_sentences(model, tokenizer, en_text)[2])
    centroids["en"] = np.concatenate(english).mean(0)
    full = mapped = 0.0
    for a, b in itertools.combinations(centroids, 2):
        distance = np.linalg.norm(centroids[a] - centroids[b])
        projected = np.linalg.norm(np.subtract(result["centroids_2d"][a], result["centroids_2d"][b]))
        assert projected <= distance + 1e-4  # a projection never stretches distances
        full, mapped = full + distance ** 2, mapped + projected ** 2
    # 4 points span 3 dimensions; the top 2 principal components keep at least 2/3 of their spread
    assert mapped >= (2 / 3) * full - 1e-4


def test_pca_recovers_a_line_and_its_distances():
    direction = np.array([3.0, 4.0, 0.0]) / 5
    points = np.outer([0.0, 1.0, 3.0], direction) + np.array([1.0, 2.0, 3.0])
    projected, variance = pca_2d(points)
    assert variance == pytest.approx([1.0, 0.0], abs=1e-9)
    assert np.allclose(projected[:, 1], 0, atol=1e-9)
    assert abs(projected[2, 0] - projected[0, 0]) == pytest.approx(3.0)


def test_english_only_or_unknown_language_is_a_user_error(tiny_bert, data_dir, tmp_path):
    model, tokenizer = tiny_bert
    with pytest.raises(UserError, match="at least one non-English"):
        analyse_language_neutrality(model, tokenizer, data_dir / "tatoeba", ["en"], tmp_path / "a")
    with pytest.raises(UserError, match="available:"):
        analyse_language_neutrality(model, tokenizer, data_dir / "tatoeba", ["de", "qq"], tmp_path / "b")
    assert not (tmp_path / "b" / "language_neutrality.json").exists()
