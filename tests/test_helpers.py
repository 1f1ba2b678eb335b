"""Helpers every stage shares (one copy each): device choice, learning-rate schedule, text files,
atomic files, tokenizer folders."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest
import torch

from mbert.atomic import atomic_file
from mbert.devices import resolve_device
from mbert.errors import ConfigError, UserError
from mbert.schedule import linear_schedule
from mbert.textfiles import read_lines
from mbert.tokenizer_folder import load_tokenizer


def test_resolve_device() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="evaluate.device = 'gpu' is not a torch device"):
        resolve_device("gpu", "evaluate.device")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="pretrain.device = 'cuda:1' but no GPU is visible"):
            resolve_device("cuda:1", "pretrain.device")


def _rates(warmup: int, total: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = linear_schedule(optimizer, warmup, total)
    rates = []
    for _ in range(total):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    return rates


def test_linear_schedule_warms_up_to_the_peak_once_then_decays() -> None:
    assert _rates(2, 6) == pytest.approx([1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25])
    assert _rates(0, 4) == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_read_lines_splits_on_newlines_only(tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_bytes("one\u2028still one\r\ntwo\n\nfour\n".encode())
    assert read_lines(plain) == ["one\u2028still one", "two", "", "four"]
    packed = tmp_path / "a.txt.xz"
    packed.write_bytes(lzma.compress(plain.read_bytes()))
    assert read_lines(packed) == read_lines(plain)
    with pytest.raises(UserError, match="does not exist"):
        read_lines(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(UserError, match="as UTF-8 text"):
        read_lines(tmp_path / "latin1.txt")


def test_atomic_file_replaces_only_on_success(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    with atomic_file(path, "wb") as handle:
        handle.write(b"first")
    with pytest.raises(RuntimeError):
        with atomic_file(path, "wb") as handle:
            handle.write(b"half")
            raise RuntimeError
    assert path.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_load_tokenizer_errors_end_with_the_callers_hint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist; pass a vocab"):
        load_tokenizer(tmp_path / "missing", hint="pass a vocab")
    with pytest.raises(UserError, match="cannot load a tokenizer from .* with AutoTokenizer .*; pass a vocab"):
        load_tokenizer(tmp_path, hint="pass a vocab")
