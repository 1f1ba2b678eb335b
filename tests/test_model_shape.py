"""Model shape as settings: layers, hidden size, heads and feed-forward size override the preset."""

from __future__ import annotations

import pytest

from mbert.config import build
from mbert.errors import ConfigError
from mbert.pretrain.model import build_config
from mbert.pretrain.settings import PRESETS, PretrainSettings


def test_shape_settings_override_the_preset():
    settings = build(PretrainSettings, {"model": "tiny", "layers": 8, "heads": 1})
    shape = settings.shape()
    assert shape == {**PRESETS["tiny"], "num_hidden_layers": 8, "num_attention_heads": 1}
    config = build_config(shape, vocab_size=100, pad_token_id=0, max_seq_length=64)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.intermediate_size) == (8, 64, 1, 256)


def test_hidden_size_alone_scales_the_feed_forward_layer():
    shape = build(PretrainSettings, {"model": "base", "hidden_size": 128, "heads": 2}).shape()
    assert shape["hidden_size"] == 128 and shape["intermediate_size"] == 512
    assert shape["num_hidden_layers"] == 12  # the preset's depth is kept
    explicit = build(PretrainSettings, {"hidden_size": 128, "heads": 2, "intermediate_size": 300}).shape()
    assert explicit["intermediate_size"] == 300


def test_heads_that_do_not_divide_the_hidden_size_are_refused():
    with pytest.raises(ConfigError, match="not divisible by pretrain.heads"):
        build(PretrainSettings, {"model": "tiny", "heads": 3}, section="pretrain")
