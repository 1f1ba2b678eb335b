"""A plain `transformers` MLM baseline beside an mbert pretraining run, on the same text and budget.

When an mbert model transfers worse than expected, the first question is whether our masking,
batching or loop is at fault. This trains `BertForMaskedLM` with HF's own `Trainer` and
`DataCollatorForLanguageModeling` (as `run_mlm.py`: texts concatenated and cut into blocks) for the
same number of steps, batch size, sequence length, learning rate, warm-up and shape as the mbert
run, with the mbert run's tokenizer, on the mbert run's mixture, and then scores both models with
one function on the same masked held-out sentences (fixed masks), per language.

    python bench/lab_hf_baseline.py runs/lab-fake/pretrain/mlm --heldout-docs 2 --json

It reads the run's `resolved_config.toml` for the settings and `model/` for the mbert model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback


def mixture_documents(corpus: Path) -> list[tuple[str, str]]:
    """(lang, text) per document of a mixture folder, in file order."""
    docs = []
    for part in sorted(corpus.glob("part-*.parquet")):
        table = pq.read_table(part, columns=["lang", "text"]).to_pydict()
        docs += list(zip(table["lang"], table["text"]))
    return docs


def split(docs: list[tuple[str, str]], heldout: int, seed: int):
    """Per language, `heldout` documents (distinct texts) go to the held-out set."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for lang in sorted({lang for lang, _ in docs}):
        texts = sorted({text for l, text in docs if l == lang})
        for i in rng.choice(len(texts), size=min(heldout, len(texts) - 1), replace=False):
            held.add(texts[int(i)])
    train = [(l, t) for l, t in docs if t not in held]
    test = [(l, t) for l, t in docs if t in held]
    return train, test


@torch.no_grad()
def heldout_loss(model, tokenizer, docs: list[tuple[str, str]], seq_len: int, seed: int = 0) -> dict[str, float]:
    """Mean MLM loss per language on fixed masks (15%, 80/10/10 as BERT) of held-out sentences."""
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="pt")
    model.eval()
    out = {}
    for lang in sorted({l for l, _ in docs}):
        sentences = [s for l, t in docs if l == lang for s in t.split("\n") if s.strip()][:2000]
        torch.manual_seed(seed)
        total, count = 0.0, 0
        for begin in range(0, len(sentences), 64):
            enc = tokenizer(sentences[begin:begin + 64], truncation=True, max_length=seq_len)
            batch = collator([{"input_ids": ids} for ids in enc["input_ids"]])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"]
            keep = labels != -100
            total += torch.nn.functional.cross_entropy(logits[keep].float(), labels[keep], reduction="sum").item()
            count += int(keep.sum())
        out[lang] = total / max(1, count)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an mbert pretraining folder (resolved_config.toml, model/)")
    parser.add_argument("--heldout-docs", type=int, default=2, help="documents per language held out")
    parser.add_argument("--out", type=Path, default=None, help="where the HF baseline is saved")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop the baseline after this many steps (same schedule) and compare training "
                             "losses up to there; the held-out comparison needs the full run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from transformers import (AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM,
                              DataCollatorForLanguageModeling, Trainer, TrainingArguments)

    torch.set_num_threads(args.threads)
    config = tomllib.loads((args.run / "resolved_config.toml").read_text(encoding="utf-8"))
    s = config["pretrain"]
    corpus, vocab = Path(config["inputs"]["corpus"]), Path(config["inputs"]["vocab"])
    tokenizer = AutoTokenizer.from_pretrained(vocab)
    mbert_model = AutoModelForMaskedLM.from_pretrained(args.run / "model")
    train_docs, test_docs = split(mixture_documents(corpus), args.heldout_docs, s.get("seed", 0))

    # run_mlm.py's group_texts: concatenate every tokenised document and cut blocks of seq_len - 2
    block = s["max_seq_length"] - 2
    ids: list[int] = []
    for _, text in train_docs:
        for sentence_ids in tokenizer([x for x in text.split("\n") if x.strip()], add_special_tokens=False)["input_ids"]:
            ids += sentence_ids
    blocks = [[tokenizer.cls_token_id] + ids[i:i + block] + [tokenizer.sep_token_id]
              for i in range(0, len(ids) - block + 1, block)]
    dataset = [{"input_ids": b} for b in blocks]

    shape = mbert_model.config
    hf_config = BertConfig(vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
                           num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
                           intermediate_size=shape.intermediate_size, max_position_embeddings=shape.max_position_embeddings,
                           hidden_dropout_prob=s.get("dropout", 0.1), attention_probs_dropout_prob=s.get("dropout", 0.1),
                           pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(s.get("seed", 0))
    hf_model = BertForMaskedLM(hf_config)
    out = args.out or args.run.parent / f"{args.run.name}-hf-baseline"
    warmup = s["warmup_steps"] if s["warmup_steps"] >= 0 else max(1, s["steps"] // 100)
    training = TrainingArguments(
        output_dir=str(out), max_steps=s["steps"], per_device_train_batch_size=s["batch_size"],
        learning_rate=s["learning_rate"], warmup_steps=warmup, weight_decay=s.get("weight_decay", 0.01),
        max_grad_norm=s.get("max_grad_norm", 1.0), adam_epsilon=1e-6, lr_scheduler_type="linear",
        logging_steps=max(1, s["steps"] // 20), save_strategy="no", report_to=[], seed=s.get("seed", 0),
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, disable_tqdm=True)
    started = time.perf_counter()
    trainer = Trainer(model=hf_model, args=training, train_dataset=dataset,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
                      callbacks=[StopAt(args.stop_at)] if args.stop_at else None)
    trainer.remove_callback(PrinterCallback)  # it prints every log to stdout, where --json goes
    trainer.train()
    seconds = time.perf_counter() - started
    hf_model.save_pretrained(out)
    tokenizer.save_pretrained(out)

    train_log = [r for r in trainer.state.log_history if "loss" in r]
    mbert_log = [json.loads(line) for line in (args.run / "train_log.jsonl").read_text().split("\n") if line]
    curve = []
    for record in train_log:  # HF logs the mean loss since its previous log; mbert's over its own interval
        near = [r["mlm_loss"] for r in mbert_log if record["step"] - training.logging_steps < r["step"] <= record["step"]
                and r.get("objective", "mlm") == "mlm"]
        curve.append({"step": record["step"], "transformers": round(record["loss"], 4),
                      "mbert": round(float(np.mean(near)), 4) if near else None})
    result = {"run": str(args.run), "steps": s["steps"], "stopped_at": trainer.state.global_step,
              "batch_size": s["batch_size"], "seq_len": s["max_seq_length"], "hf_blocks": len(blocks),
              "hf_seconds": round(seconds, 1), "train_loss_curve": curve}
    if trainer.state.global_step >= s["steps"]:
        losses = {"mbert": heldout_loss(mbert_model, tokenizer, test_docs, s["max_seq_length"]),
                  "transformers": heldout_loss(hf_model, tokenizer, test_docs, s["max_seq_length"])}
        result["heldout_loss"] = losses
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for point in curve:
            print(f"step {point['step']:6d}  transformers {point['transformers']:.3f}  mbert {point['mbert']}")
        for model, per_lang in result.get("heldout_loss", {}).items():
            print(f"held-out {model:13s} " + "  ".join(f"{lang}: {loss:.3f}" for lang, loss in per_lang.items()))
    return 0


class StopAt(TrainerCallback):
    """Ends training after `step` steps (the schedule stays that of the full run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


if __name__ == "__main__":
    sys.exit(main())
