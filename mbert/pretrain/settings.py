"""Settings of the pretraining stage (`[pretrain]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import setting
from ..errors import ConfigError


PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 256},
    "small": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024},
    "base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}


@dataclass
class TlmPair:
    """Two line-aligned files: line i of `tgt` translates line i of `src` (`[[pretrain.tlm]]`)."""

    src: Path = setting(path="file", help="file in the first language, one sentence per line")
    tgt: Path = setting(path="file", help="its translation, line-aligned; for a fake language (e.g. "
                                          "tgt_lang = \"en-fake\") the base language's text, which is mapped")
    src_lang: str = setting(help="language code of `src`, e.g. de")
    tgt_lang: str = setting(help="language code of `tgt`, e.g. en")


@dataclass
class PretrainSettings:
    model: Literal["tiny", "small", "base"] = setting("base", help="architecture preset (tiny 2x64, small "
                                                                   "4x256, base 12x768); the shape settings "
                                                                   "below override its parts")
    layers: int | None = setting(None, min=1, max=96, help="encoder layers; unset = the preset's")
    hidden_size: int | None = setting(None, min=8, max=16384, help="hidden size; unset = the preset's")
    heads: int | None = setting(None, min=1, max=256, help="attention heads (must divide hidden_size); "
                                                           "unset = the preset's")
    intermediate_size: int | None = setting(None, min=8, max=65536,
                                            help="feed-forward size; unset = 4 x hidden_size when "
                                                 "hidden_size is set, else the preset's")
    # upper bounds: per-step arrays and one step's batch must fit in memory (mBERT: 1M steps of 256)
    steps: int = setting(1000, min=1, max=100_000_000, help="optimizer steps")
    batch_size: int = setting(32, min=1, max=1 << 20,
                              help="sequences per step (global, before accumulation split)")
    grad_accum: int = setting(1, min=1, help="micro-batches per optimizer step (batch_size is split)")
    max_seq_length: int = setting(128, min=8, max=8192, flag="seq-len", help="maximum sequence length in tokens")
    learning_rate: float = setting(1e-4, min=0.0, min_exclusive=True, flag="lr",
                                   help="peak learning rate (AdamW), reached after warm-up")
    warmup_steps: int = setting(-1, min=-1, help="linear warm-up steps; -1 = 1% of steps")
    weight_decay: float = setting(0.01, min=0.0, help="AdamW weight decay")
    max_grad_norm: float = setting(1.0, min=0.0, help="gradient clipping; 0 = off")
    dropout: float = setting(0.1, min=0.0, max=0.9, help="hidden and attention dropout")
    seed: int = setting(0, help="seed of initialisation, masking and data order")

    # data and objectives
    short_seq_prob: float = setting(0.1, min=0.0, max=1.0,
                                    help="share of instances given a random shorter target length")
    mask_prob: float = setting(0.15, min=0.0, max=1.0, min_exclusive=True,
                               help="share of tokens predicted (80% [MASK], 10% random, 10% kept)")
    whole_word_masking: bool = setting(False, help="mask all pieces of a word together")
    nsp: bool = setting(False, help="next-sentence prediction (original mBERT)")
    tlm: list[TlmPair] = setting([], help="parallel files for translation LM (XLM)")
    tlm_ratio: float = setting(0.0, min=0.0, max=1.0,
                               help="share of optimizer steps that train TLM instead of MLM")
    language_embeddings: bool = setting(False,
                                        help="token_type ids carry the language (XLM); needs nsp off")
    heldout_docs: int = setting(2, min=0, help="documents held out per language for held-out MLM loss")
    heldout_instances: int = setting(16, min=1, help="at most this many held-out instances per language")
    tokenize_workers: int = setting(0, min=0, max=1024, runtime=True, help="processes for tokenization; 0 = all cores")
    token_store: Path | None = setting(None, path="out", runtime=True,
                                       help="folder of the token store (unset = OUT/data/store); "
                                            "runs on the same corpus and vocabulary can share one")

    # loop
    log_every: int = setting(10, min=1, runtime=True, help="log training metrics every N steps")
    eval_every: int = setting(200, min=1, runtime=True, help="held-out MLM loss every N steps (and at the end)")
    checkpoint_every: int = setting(500, min=1, runtime=True, help="save a checkpoint every N steps")
    keep_checkpoints: int = setting(2, min=1, runtime=True, help="keep the last K checkpoints")
    compile: bool = setting(False, runtime=True, help="torch.compile the model")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", runtime=True, help="auto = cuda when available")
    precision: Literal["auto", "bf16", "fp32"] = setting(
        "auto", runtime=True, help="bf16 autocast (weights and optimizer stay fp32) or fp32; auto = bf16 on GPU, "
                     "fp32 on CPU")
    fsdp: bool = setting(False, runtime=True, help="under torchrun, shard parameters, gradients and optimizer "
                                     "state (FSDP2) instead of replicating them (DDP)")

    def shape(self) -> dict[str, int]:
        """The architecture: the preset with the shape settings laid over it (BertConfig names)."""
        shape = dict(PRESETS[self.model])
        if self.hidden_size is not None:
            shape["hidden_size"] = self.hidden_size
            shape["intermediate_size"] = 4 * self.hidden_size
        for key, value in (("num_hidden_layers", self.layers), ("num_attention_heads", self.heads),
                           ("intermediate_size", self.intermediate_size)):
            if value is not None:
                shape[key] = value
        return shape

    def validate(self) -> None:
        shape = self.shape()
        if shape["hidden_size"] % shape["num_attention_heads"]:
            raise ConfigError(f"pretrain.hidden_size = {shape['hidden_size']} is not divisible by "
                              f"pretrain.heads = {shape['num_attention_heads']}; pick heads that divide it")
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"pretrain.batch_size = {self.batch_size} is not divisible by "
                              f"pretrain.grad_accum = {self.grad_accum}; make it a multiple")
        if self.language_embeddings and self.nsp:
            raise ConfigError("pretrain.language_embeddings needs pretrain.nsp = false "
                              "(both use token_type ids); turn one off")
        if self.tlm_ratio > 0 and not self.tlm:
            raise ConfigError("pretrain.tlm_ratio > 0 but no pretrain.tlm parallel files are given; "
                              "add [[pretrain.tlm]] src/tgt/src_lang/tgt_lang or set tlm_ratio = 0")
        if self.tlm and self.tlm_ratio == 0:
            raise ConfigError("pretrain.tlm files are given but pretrain.tlm_ratio = 0; "
                              "set tlm_ratio (e.g. 0.5) or drop the files")

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps >= 0 else max(1, self.steps // 100)


@dataclass
class BenchSettings:
    """What `mbert bench pretrain` measures (its flags are made from these fields)."""

    model: Literal["tiny", "small", "base"] = setting("base", help="architecture preset, as pretrain.model")
    vocab_size: int = setting(119547, min=1, help="vocabulary size (mBERT's is 119,547)")
    seq_len: int = setting(128, min=1, help="tokens per sequence")
    batch_size: int | None = setting(None, min=1, help="sequences per step; unset = 8 on CPU, 256 on GPU")
    steps: int | None = setting(None, min=1, help="timed steps; unset = 3 on CPU, 20 on GPU")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", help="auto = cuda when available")
    compile: bool = setting(False, help="torch.compile our model")
