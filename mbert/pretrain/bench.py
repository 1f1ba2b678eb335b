"""`mbert bench pretrain`: our training step against HF `BertForMaskedLM` on the same shape.

Both get the same config, batch (packed, no padding, 15% of positions masked), optimizer (AdamW,
fused) and bf16 autocast on GPU, in the same process, timed in alternating blocks; one step =
forward, backward, optimizer step. HF computes the output layer on every position (as
`BertForMaskedLM` does with `labels`); ours gathers the masked positions first.
"""

from __future__ import annotations

import contextlib
import time

import torch

from ..devices import resolve_device
from .model import PretrainingModel, build_config, build_hf_model, check_can_compile, make_optimizer
from .settings import PRESETS

# dense bf16 peak FLOP/s by GPU name fragment (spec sheets, SXM parts)
PEAK_BF16 = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _batch(config, batch_size: int, seq_len: int, mask_prob: float, device: torch.device, seed: int):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=gen)
    masked = torch.rand(batch_size, seq_len, generator=gen) < mask_prob
    masked[:, 0] = masked[:, -1] = False  # [CLS] / [SEP]
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    inputs[masked] = 4  # a [MASK] id; the value does not change the cost
    positions = masked.view(-1).nonzero().squeeze(1)
    types = torch.zeros_like(ids)
    return {k: v.to(device) for k, v in dict(inputs=inputs, labels=labels, positions=positions,
                                              masked_labels=ids.view(-1)[positions], types=types).items()}


def _time_in_rounds(steps_by_name: dict, steps: int, warmup: int, device: torch.device,
                    rounds: int = 2) -> tuple[dict, dict]:
    """(fastest wall seconds per step, fastest process CPU seconds per step) of each function.

    The functions run in blocks (warm-up, then timed steps) that take turns over `rounds`, so
    both meet the same machine load. The fastest step is the one least disturbed by other jobs
    (timeit's rule); process CPU time, which other processes do not inflate, backs it up."""
    wall: dict[str, list[float]] = {name: [] for name in steps_by_name}
    cpu: dict[str, list[float]] = {name: [] for name in steps_by_name}
    per_round = [steps // rounds + (i < steps % rounds) for i in range(rounds)]
    for count in per_round:
        for name, step in steps_by_name.items():
            for _ in range(warmup):
                step()
            for _ in range(count):
                _sync(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                step()
                _sync(device)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return ({name: min(values) for name, values in wall.items()},
            {name: min(values) for name, values in cpu.items()})


def _input_tokens_per_s(vocab_size: int, batch_size: int, seq_len: int, seed: int,
                       repeats: int = 3) -> float:
    """Tokens/s of the input pipeline (dynamic masking and collation of packed instances, as the
    training loop runs it in one background thread): it must outpace the step to keep a GPU busy."""
    import numpy as np

    from . import instances as I
    from .batching import Vocabulary, make_batch

    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, vocab_size, size=batch_size * seq_len * 2, dtype=np.int32)
    rows = np.zeros((batch_size, I.COLUMNS), dtype=np.int64)
    rows[:, I.A_START] = np.arange(batch_size) * seq_len
    rows[:, I.A_LEN] = seq_len - 2  # full-length instances, [CLS] and [SEP] added
    vocab = Vocabulary(pad=0, cls=2, sep=3, mask=4, size=vocab_size,
                       replacement_ids=np.arange(5, vocab_size), continuation=np.zeros(vocab_size, bool))
    fastest = float("inf")
    for repeat in range(repeats):
        keys = [(seed, 0, repeat, i) for i in range(batch_size)]
        start = time.perf_counter()
        make_batch(tokens, rows, keys, vocab, max_seq_length=seq_len, mask_prob=0.15, whole_word=False,
                   nsp=False, restart_positions=False, language_types=False)
        fastest = min(fastest, time.perf_counter() - start)
    return batch_size * seq_len / fastest


def _flops_per_step(config, batch_size: int, seq_len: int, n_masked: int) -> float:
    """Model FLOPs of one training step (3x forward) counting only useful work: encoder on all
    tokens, prediction head on masked tokens."""
    h, layers, ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    tokens = batch_size * seq_len
    encoder = layers * (4 * h * h + 2 * h * ff) * 2 * tokens + layers * 4 * seq_len * h * tokens
    head = (h * h + h * config.vocab_size) * 2 * n_masked
    return 3.0 * (encoder + head)


def bench_pretrain(*, model: str = "base", vocab_size: int = 119547, seq_len: int = 128,
                   batch_size: int = 8, steps: int = 3, warmup: int = 1, device: str = "auto",
                   compile: bool = False, seed: int = 0) -> dict:
    dev = torch.device(resolve_device(device))
    if compile:
        check_can_compile(dev)
    config = build_config(PRESETS[model], vocab_size=vocab_size, pad_token_id=0, max_seq_length=seq_len)
    data = _batch(config, batch_size, seq_len, 0.15, dev, seed)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if dev.type == "cuda" \
        else contextlib.nullcontext

    torch.manual_seed(seed)
    ours = PretrainingModel(build_hf_model(config, nsp=False)).to(dev).train()
    ours_forward = torch.compile(ours) if compile else ours
    ours_opt = make_optimizer(ours, 1e-4, 0.01, dev)
    n_masked = len(data["positions"])

    def ours_step() -> None:
        with autocast():
            out = ours_forward(data["inputs"], data["types"], data["positions"], data["masked_labels"])
        (out.mlm_loss_sum / n_masked).backward()
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    hf = BertForMaskedLM._from_config(config).to(dev).train()
    hf_opt = make_optimizer(hf, 1e-4, 0.01, dev)  # the same optimizer: the models are compared

    def hf_step() -> None:
        with autocast():
            loss = hf(input_ids=data["inputs"], token_type_ids=data["types"], labels=data["labels"]).loss
        loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    if compile:
        for _ in range(2):  # compilation happens in the first calls
            ours_step()
    timed, cpu = _time_in_rounds({"ours": ours_step, "hf": hf_step}, steps, warmup, dev)
    ours_s, hf_s = timed["ours"], timed["hf"]
    tokens = batch_size * seq_len
    result = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "model": model, "vocab_size": vocab_size, "seq_len": seq_len, "batch_size": batch_size,
              "steps": steps, "compile": compile, "threads": torch.get_num_threads(),
              "ours_step_s": ours_s, "hf_step_s": hf_s,
              "ours_tokens_per_s": tokens / ours_s, "hf_tokens_per_s": tokens / hf_s,
              "ratio": hf_s / ours_s, "ours_cpu_s": cpu["ours"], "hf_cpu_s": cpu["hf"],
              "cpu_time_ratio": cpu["hf"] / cpu["ours"], "mfu": None, "hf_mfu": None,
              "input_tokens_per_s": _input_tokens_per_s(vocab_size, batch_size, seq_len, seed)}
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        if peak:
            flops = _flops_per_step(config, batch_size, seq_len, n_masked)
            result["mfu"] = flops / ours_s / peak
            result["hf_mfu"] = flops / hf_s / peak
    return result


def format_result(result: dict) -> str:
    lines = [f"device {result['device']}, model {result['model']}, vocab {result['vocab_size']}, "
             f"batch {result['batch_size']} x seq {result['seq_len']}, {result['steps']} timed steps",
             f"  ours: {result['ours_tokens_per_s']:,.0f} tokens/s ({result['ours_step_s'] * 1000:.0f} ms/step)",
             f"  HF BertForMaskedLM: {result['hf_tokens_per_s']:,.0f} tokens/s "
             f"({result['hf_step_s'] * 1000:.0f} ms/step)",
             f"  ratio: {result['ratio']:.2f}x (fastest step each; process CPU time ratio "
             f"{result['cpu_time_ratio']:.2f}x)"]
    spare = result["input_tokens_per_s"] / result["ours_tokens_per_s"]
    lines.append(f"  input pipeline (masking, collation; one thread): {result['input_tokens_per_s']:,.0f} "
                 f"tokens/s, {spare:.1f}x our step" + ("" if spare > 1.5 else " - too close: it may stall the step"))
    if result.get("mfu") is not None:
        lines.append(f"  MFU: ours {result['mfu']:.1%}, HF {result['hf_mfu']:.1%} (useful FLOPs, bf16 peak)")
    return "\n".join(lines)
