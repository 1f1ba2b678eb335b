"""The model: a `transformers` BERT plus a training forward that applies the MLM output layer
to masked positions only.

With a ~120k vocabulary the output layer (hidden x vocab per position) costs more than the
encoder; only ~15% of positions carry a target, so gathering them first removes ~85% of that
work. The weights are the stock `BertForMaskedLM` / `BertForPreTraining` ones (decoder tied to
the word embeddings), so `save_pretrained` output loads with `AutoModelForMaskedLM` and `BertModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .batching import Batch


def build_config(shape: dict[str, int], *, vocab_size: int, pad_token_id: int, max_seq_length: int,
                 type_vocab_size: int = 2, dropout: float = 0.1, nsp: bool = False,
                 extra: dict | None = None):
    from transformers import BertConfig

    config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id,
                        max_position_embeddings=max(512, max_seq_length),
                        type_vocab_size=max(2, type_vocab_size), hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, **shape, **(extra or {}))
    config.architectures = ["BertForPreTraining" if nsp else "BertForMaskedLM"]
    return config


def build_hf_model(config, nsp: bool) -> nn.Module:
    from transformers import BertForMaskedLM, BertForPreTraining

    cls = BertForPreTraining if nsp else BertForMaskedLM
    return cls._from_config(config, attn_implementation="sdpa")


@dataclass
class StepOutput:
    mlm_loss_sum: torch.Tensor   # summed over masked positions (normalised by the caller)
    mlm_correct: torch.Tensor    # masked positions predicted right
    nsp_loss_sum: torch.Tensor   # summed over sequences; 0 without NSP
    nsp_correct: torch.Tensor


class PretrainingModel(nn.Module):
    """Wraps the HF model; `forward(batch)` returns summed losses so that any split of a global
    batch (accumulation, processes) can be normalised by the global count."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model
        self.nsp = hasattr(hf_model.cls, "seq_relationship")

    @property
    def encoder(self) -> nn.Module:
        return self.hf.bert

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                masked_positions: torch.Tensor, masked_labels: torch.Tensor,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                nsp_labels: torch.Tensor | None = None) -> StepOutput:
        out = self.hf.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids, position_ids=position_ids, return_dict=True)
        hidden = out.last_hidden_state
        gathered = hidden.reshape(-1, hidden.shape[-1]).index_select(0, masked_positions)
        heads = self.hf.cls
        logits = heads.predictions(gathered).float()
        mlm_loss = F.cross_entropy(logits, masked_labels, reduction="sum")
        correct = (logits.detach().argmax(-1) == masked_labels).sum()
        zero = mlm_loss.new_zeros(())
        if self.nsp and nsp_labels is not None:
            nsp_logits = heads.seq_relationship(out.pooler_output).float()
            nsp_loss = F.cross_entropy(nsp_logits, nsp_labels, reduction="sum")
            nsp_correct = (nsp_logits.detach().argmax(-1) == nsp_labels).sum()
        else:
            nsp_loss, nsp_correct = zero, zero
        return StepOutput(mlm_loss, correct, nsp_loss, nsp_correct)


def run_batch(model: nn.Module, batch: Batch) -> StepOutput:
    """Call `model` (possibly DDP/compiled-wrapped) on a batch already on its device."""
    return model(batch.input_ids, batch.token_type_ids, batch.masked_positions, batch.masked_labels,
                 attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                 nsp_labels=batch.nsp_labels)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and LayerNorm weights (as BERT). Tied weights appear once."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def check_can_compile(device: torch.device) -> None:
    """`torch.compile` generates C++ on the CPU: refuse up front, with the fix, when no compiler is there."""
    import shutil

    from ..errors import UserError

    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise UserError("torch.compile on the CPU needs a C++ compiler (it generates C++ there): install "
                        "g++, or run without compile")


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device):
    """AdamW with the fused kernel (CUDA and CPU): on CPU it is ~7x faster than the default
    for-each implementation on a 120k x hidden embedding matrix."""
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-6,
                             fused=device.type in ("cuda", "cpu"))
