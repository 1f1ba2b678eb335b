"""Fine-tuning on the source language and batched prediction for token and sentence-pair tasks.

Token labels go on the first sub-token of each word (the other sub-tokens get -100 and are ignored
by the loss), as XTREME does; words cut off by `max_length` are predicted as the task's fallback
label so prediction files keep one line per word. The epoch with the best source-dev score is kept.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from ..progress import bar
from ..schedule import linear_schedule
from .checkpoints import quiet_transformers
from .readers import SentencePair, TaggedSentence
from .scoring import score
from .suite import HyperParameters
from .tasks import TaskData

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    token_type_ids: list[int] | None
    labels: list[int] | int  # per position for token tasks, one id for pair tasks
    first_positions: list[int]  # token tasks: position of each kept word's first sub-token


@dataclass
class FineTuned:
    model: torch.nn.Module
    best_epoch: int
    dev_scores: list[float]
    frozen: list[str]


# ----------------------------------------------------------------------------- encoding

def _special_ids(tokenizer) -> tuple[int, int]:
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None:
        raise UserError("the tokenizer has no [CLS]/[SEP] (or <s>/</s>) tokens; a BERT-family tokenizer is needed")
    return start, end


def encode_tagged(tokenizer, sentences: Sequence[TaggedSentence], label2id: dict[str, int],
                  max_length: int) -> list[Encoded]:
    """Each word tokenized on its own (as XTREME does); the label sits on its first sub-token."""
    start, end = _special_ids(tokenizer)
    flat = [word for sentence in sentences for word in sentence.words]
    pieces = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    encoded, offset = [], 0
    for sentence in sentences:
        ids, labels, first = [start], [IGNORE], []
        for index, tag in enumerate(sentence.tags):
            word_ids = pieces[offset + index] or [tokenizer.unk_token_id]  # e.g. a lone zero-width char
            if len(ids) + len(word_ids) > max_length - 1:
                break  # the rest of the sentence does not fit
            first.append(len(ids))
            labels.extend([label2id.get(tag, IGNORE)] + [IGNORE] * (len(word_ids) - 1))
            ids.extend(word_ids)
        offset += len(sentence.words)
        encoded.append(Encoded(ids + [end], None, labels + [IGNORE], first))
    return encoded


def encode_pairs(tokenizer, pairs: Sequence[SentencePair], label2id: dict[str, int],
                 max_length: int) -> list[Encoded]:
    if not pairs:
        return []
    batch = tokenizer([p.first for p in pairs], [p.second for p in pairs], truncation=True,
                      max_length=max_length)
    types = batch.get("token_type_ids")
    return [Encoded(ids, types[i] if types is not None else None, label2id.get(pairs[i].label, IGNORE), [])
            for i, ids in enumerate(batch["input_ids"])]


def encode(task: TaskData, tokenizer, examples: Sequence, max_length: int) -> list[Encoded]:
    label2id = {label: i for i, label in enumerate(task.labels)}
    if task.is_token_task:
        return encode_tagged(tokenizer, examples, label2id, max_length)
    return encode_pairs(tokenizer, examples, label2id, max_length)


def collate(items: Sequence[Encoded], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(item.input_ids) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, :len(item.input_ids)] = torch.tensor(item.input_ids)
        mask[row, :len(item.input_ids)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if items[0].token_type_ids is not None:
        types = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            types[row, :len(item.token_type_ids)] = torch.tensor(item.token_type_ids)
        batch["token_type_ids"] = types
    if isinstance(items[0].labels, list):
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
        for row, item in enumerate(items):
            labels[row, :len(item.labels)] = torch.tensor(item.labels)
    else:
        labels = torch.tensor([item.labels for item in items], dtype=torch.long)
    batch["labels"] = labels
    return {key: value.to(device) for key, value in batch.items()}


# ----------------------------------------------------------------------------- model

def load_task_model(model_dir: Path, task: TaskData) -> torch.nn.Module:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    cls = AutoModelForTokenClassification if task.is_token_task else AutoModelForSequenceClassification
    with quiet_transformers():
        return cls.from_pretrained(model_dir, num_labels=len(task.labels),
                                   id2label=dict(enumerate(task.labels)),
                                   label2id={label: i for i, label in enumerate(task.labels)},
                                   ignore_mismatched_sizes=True)


def keep_lower_layers(model: torch.nn.Module, layers: int) -> None:
    """Drop every encoder layer above the lowest `layers`: the task head then reads layer `layers`
    (middle layers of a multilingual model can be more language-neutral than its last)."""
    base = model.base_model
    encoder_layers = getattr(getattr(base, "encoder", None), "layer", None)
    if encoder_layers is None:
        raise UserError(f"cannot drop layers of {type(base).__name__}: it has no encoder.layer "
                        "(a BERT-family model is needed); leave keep_layers unset")
    if layers > len(encoder_layers):
        raise UserError(f"keep_layers = {layers} but the model has {len(encoder_layers)} layers; "
                        f"use at most {len(encoder_layers)}")
    base.encoder.layer = encoder_layers[:layers]
    model.config.num_hidden_layers = layers


def freeze(model: torch.nn.Module, *, embeddings: bool, layers: int) -> list[str]:
    """Fix the embeddings and/or the lowest `layers` encoder layers; returns the frozen names."""
    base = model.base_model
    encoder_layers = getattr(getattr(base, "encoder", None), "layer", None)
    if (embeddings or layers) and (encoder_layers is None or not hasattr(base, "embeddings")):
        raise UserError(f"cannot freeze layers of {type(base).__name__}: it has no embeddings/encoder.layer "
                        "(a BERT-family model is needed); set freeze_layers = 0 and freeze_embeddings = false")
    if layers > len(encoder_layers or []):
        raise UserError(f"freeze_layers = {layers} but the model has {len(encoder_layers)} layers; "
                        f"use at most {len(encoder_layers)}")
    modules = ([base.embeddings] if embeddings else []) + (list(encoder_layers[:layers]) if layers else [])
    frozen = {id(p) for module in modules for p in module.parameters()}
    names = []
    for name, parameter in model.named_parameters():
        if id(parameter) in frozen:
            parameter.requires_grad_(False)
            names.append(name)
    return names


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


# ----------------------------------------------------------------------------- train / predict

@torch.no_grad()
def predict(model: torch.nn.Module, encoded: Sequence[Encoded], *, batch_size: int, pad_id: int,
            device: str, desc: str = "") -> list:
    """Predicted label ids: a list per example (one per kept word) or one id per pair.

    Batches are built from length-sorted examples, so padding stays small."""
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    results: list = [None] * len(encoded)
    progress = bar(total=len(encoded), desc=desc, unit="ex", leave=False)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin:begin + batch_size]
        batch = collate([encoded[i] for i in chunk], pad_id, device)
        batch.pop("labels")
        best = model(**batch).logits.argmax(-1).cpu()
        for row, index in enumerate(chunk):
            if isinstance(encoded[index].labels, list):  # token task
                results[index] = best[row, encoded[index].first_positions].tolist()
            else:
                results[index] = int(best[row])
        progress.update(len(chunk))
    progress.close()
    return results


def to_labels(task: TaskData, examples: Sequence, predicted_ids: Sequence, fallback: str) -> list:
    """Label strings per example; words cut off by max_length get `fallback`."""
    if not task.is_token_task:
        return [task.labels[i] for i in predicted_ids]
    out = []
    for sentence, ids in zip(examples, predicted_ids, strict=True):
        tags = [task.labels[i] for i in ids]
        out.append(tags + [fallback] * (len(sentence.words) - len(tags)))
    return out


def gold_labels(task: TaskData, examples: Sequence) -> list:
    return [list(e.tags) for e in examples] if task.is_token_task else [e.label for e in examples]


def fine_tune(model_dir: Path, task: TaskData, tokenizer, hyper: HyperParameters, *, seed: int,
              device: str, fallback: str, desc: str = "") -> FineTuned:
    """Train on the source language's training examples; keep the epoch best on the source dev set."""
    set_seed(seed)
    model = load_task_model(model_dir, task).to(device)
    if hyper.keep_layers is not None:
        keep_lower_layers(model, hyper.keep_layers)
    frozen = freeze(model, embeddings=bool(hyper.freeze_embeddings), layers=int(hyper.freeze_layers or 0))
    train = encode(task, tokenizer, task.train, hyper.max_length)
    dev = encode(task, tokenizer, task.dev, hyper.max_length)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hyper.learning_rate, weight_decay=hyper.weight_decay)
    steps_per_epoch = math.ceil(len(train) / hyper.batch_size)
    total = steps_per_epoch * hyper.epochs
    warmup = int(total * hyper.warmup_ratio)
    schedule = linear_schedule(optimizer, warmup, total)
    order_rng = random.Random(seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    dev_gold = gold_labels(task, task.dev)
    best_score, best_epoch, best_state, history = -1.0, 0, None, []
    progress = bar(total=total, desc=desc, unit="step", leave=False)
    for epoch in range(1, hyper.epochs + 1):
        model.train()
        order = list(range(len(train)))
        order_rng.shuffle(order)
        for begin in range(0, len(order), hyper.batch_size):
            batch = collate([train[i] for i in order[begin:begin + hyper.batch_size]], pad_id, device)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
        ids = predict(model, dev, batch_size=hyper.eval_batch_size, pad_id=pad_id, device=device)
        dev_score = score(task.kind, dev_gold, to_labels(task, task.dev, ids, fallback), task.metric)
        history.append(round(dev_score, 4))
        if dev_score > best_score:
            best_score, best_epoch = dev_score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()} \
                if epoch < hyper.epochs else None  # the last epoch's weights are already in place
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FineTuned(model=model, best_epoch=best_epoch, dev_scores=history, frozen=frozen)
