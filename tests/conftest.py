"""Shared test setup: the real data kit is reached through one setting, MBERT_TEST_DATA.

It defaults to ../shared/data beside the repository. When it is missing, every test that reads it
fails with a message saying how to point to it (rather than skipping silently); tests of pure
functions, the demo data and the stage contract still run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MBERT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared data kit (see its MANIFEST.md)."""
    if not (DATA / "MANIFEST.md").is_file():
        pytest.fail(f"the shared data kit was not found at {DATA}. This test uses real data: put the kit at "
                    f"../shared/data beside the repository, or set MBERT_TEST_DATA=/path/to/shared/data.",
                    pytrace=False)
    return DATA


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy 2-core machine two threads stall each other.
    Modules of tiny-model tests use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, data_dir):
    """(model, tokenizer): a random 2-layer BERT with a WordPiece vocabulary trained on kit text."""
    from helpers_transfer import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), data_dir / "corpus")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, data_dir) -> Path:
    """A random 2-layer BERT MLM checkpoint folder (3,000-entry WordPiece on kit text of 5 languages),
    built once for every fine-tuning test."""
    from helpers_transfer import tiny_mlm_checkpoint

    corpus = [data_dir / "corpus" / f"{lang}.txt" for lang in ("en", "de", "fr", "es", "zh")]
    return tiny_mlm_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", corpus, 3000)
