"""The pretraining loop: `pretrain(...)` for `mbert pretrain` and `mbert run`.

One process, or many under `torchrun` (DDP; gloo on CPU, NCCL on GPU). Each process trains on its
slice of every step's global batch (`inputs.TrainingData`, a function of (seed, step)); losses are
summed and divided by the *global* number of targets, so one process and N processes compute the
same loss and gradients, and a resumed run continues exactly where it stopped.

What the run folder holds and whether a command may use it is `run_folder.py`'s; data preparation
is `inputs.py`'s; what a checkpoint holds is `checkpoint.py`'s. What is left here is the loop.
"""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..artifact import output_settings, read_manifest, write_manifest, writing
from ..atomic import atomic_write_text, staging_dir
from ..config import to_plain, write_resolved
from ..corpus.layout import CorpusFolder, find_corpus
from ..devices import resolve_device
from ..diskspace import reported_as_disk_full
from ..errors import UserError
from ..progress import bar, info, summary
from ..schedule import linear_schedule
from .batching import Batch
from .card import model_card
from .checkpoint import checkpoint_dirs, full_states, restore_training, save_training
from .distributed import Distributed
from .inputs import input_fingerprint, load_tokenizer, prepare_data, vocab_fingerprint
from .model import PretrainingModel, build_config, build_hf_model, check_can_compile, make_optimizer, run_batch
from .run_folder import TrainLog, claim_out_dir
from .settings import PretrainSettings

# what a step adds up over micro-batches and processes, kept in one tensor (one device-to-host copy)
STEP_SUMS = ("mlm_loss_sum", "mlm_correct", "nsp_loss_sum", "nsp_correct")


class NonFiniteLoss(UserError):
    """The loss, gradient norm or weights became NaN/inf; the run stops, checkpoints stay good."""


def pretrain(corpus_dir: Path, vocab_dir: Path, out_dir: Path, settings: PretrainSettings,
             tracker=None, *, resume: bool | None = None, replace: bool = False,
             redo_hint: str = "--force", metric_prefix: str = "pretrain") -> dict:
    """Pretrain a BERT on `corpus_dir` with the tokenizer in `vocab_dir`; writes `out_dir`
    (model/, checkpoints/, train_log.jsonl, resolved_config.toml, manifest.json last).

    `resume`: True continues the newest checkpoint (refusing one of another model), False
    refuses an `out_dir` that holds a run, None uses a finished run or continues an unfinished
    one when its output settings and inputs are these, and otherwise stops naming the differences
    (`redo_hint` is the option the message offers). `replace` starts afresh whatever `out_dir`
    holds. Metrics go to the tracker as `<metric_prefix>/loss` etc. Under torchrun every process
    calls this; only rank 0 writes files (and holds the lock on `out_dir`)."""
    dist = Distributed(cuda=resolve_device(settings.device, "pretrain.device") == "cuda")
    try:
        with contextlib.ExitStack() as lock:
            error = None
            if dist.main:
                try:
                    lock.enter_context(writing(out_dir))
                except UserError as exc:
                    error = str(exc)
            dist.broadcast_error(error)  # every process stops when the folder is someone else's
            out_dir = Path(out_dir)
            corpus, tokenizer = find_corpus(corpus_dir), load_tokenizer(vocab_dir)
            inputs = input_fingerprint(corpus, tokenizer)
            # settings that cannot run here (device, compiler, batch split) fail before the folder is touched
            trainer = Trainer(corpus, Path(vocab_dir), tokenizer, inputs, out_dir, settings, tracker, dist,
                              metric_prefix)
            resume, finished = claim_out_dir(out_dir, Path(corpus_dir), Path(vocab_dir), settings, inputs,
                                             resume=resume, replace=replace, redo_hint=redo_hint, dist=dist)
            if finished is not None:
                summary(f"Pretraining in {out_dir} is already complete with these settings and inputs: kept as is.")
                return {"out_dir": str(out_dir), "model_dir": str(out_dir / "model"), **finished}
            with reported_as_disk_full(out_dir, trainer.space_needed, "the pretraining run"):
                return trainer.run(resume)
    finally:
        dist.close()


class Trainer:
    """One pretraining run: prepare the data, build the model, restore, loop, write the output."""

    def __init__(self, corpus: CorpusFolder, vocab_dir: Path, tokenizer, inputs: str, out_dir: Path,
                 settings: PretrainSettings, tracker, dist: Distributed, metric_prefix: str = "pretrain") -> None:
        self.corpus, self.vocab_dir, self.tokenizer, self.inputs = corpus, Path(vocab_dir), tokenizer, inputs
        self.out, self.s, self.tracker, self.dist = Path(out_dir), settings, tracker, dist
        self.metric_prefix = metric_prefix  # W&B keys: `mbert run` logs several variants into one run
        self.ckpt_root = self.out / "checkpoints"
        self.train_log = TrainLog(self.out)
        self.model: PretrainingModel | None = None
        use_cuda = resolve_device(settings.device, "pretrain.device") == "cuda"
        self.device = torch.device(f"cuda:{dist.local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        if settings.compile:
            check_can_compile(self.device)
        micro = settings.batch_size // settings.grad_accum
        if micro % dist.world:
            raise UserError(f"batch_size / grad_accum = {micro} sequences per micro-batch cannot be "
                            f"split over {dist.world} processes; make it a multiple of {dist.world}")

    def run(self, resume: bool) -> dict:
        """Train (from the newest checkpoint when `resume`) and write the output; returns the result."""
        s, dist = self.s, self.dist
        started = time.time()
        self.data = prepare_data(self.corpus, self.tokenizer, self.out, s, self.inputs, dist)
        self.build_model()
        start, last = self.restore(resume)
        if start > s.steps:
            raise UserError(f"the checkpoint in {self.ckpt_root} is already at step {start} > "
                            f"pretrain.steps = {s.steps}; raise --steps to train further")
        dist.barrier()
        progress = bar(total=s.steps, initial=start, desc="pretraining", unit="step") if dist.main else None
        window_tokens, window_start = 0, time.time()
        # a run stopped after its last checkpoint but before its output: only the output is left
        record: dict = dict(last) if start == s.steps else {}
        # held-out loss on the first process only, except with FSDP where every forward is collective
        evaluates = dist.main or self.sharded
        heldout: dict[str, float] = self.heldout_losses() if start == s.steps and evaluates else {}
        # the next step's batches are masked and collated in a thread while this step computes
        prefetch = ThreadPoolExecutor(1, thread_name_prefix="mbert-batches")
        try:
            upcoming = prefetch.submit(self.step_batches, start + 1) if start < s.steps else None
            for step in range(start + 1, s.steps + 1):
                prepared = upcoming.result()
                if step < s.steps:
                    upcoming = prefetch.submit(self.step_batches, step + 1)
                record = self.train_step(step, prepared)
                window_tokens += record.pop("_tokens")
                final = step == s.steps
                if step % s.eval_every == 0 or final:
                    if evaluates:
                        heldout = self.heldout_losses()
                        record["heldout_loss"] = heldout
                    dist.barrier()
                if dist.main:
                    if step % s.log_every == 0 or final or "heldout_loss" in record:
                        elapsed = max(1e-9, time.time() - window_start)
                        record.update(tokens_per_s=window_tokens / elapsed, tokens_seen=self.tokens_seen)
                        window_tokens, window_start = 0, time.time()
                        self.log(record)
                    progress.update(1)
                    progress.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['mlm_accuracy']:.2f}")
                if step % s.checkpoint_every == 0 or final:
                    self.save(step, record)
                dist.barrier()
        finally:
            prefetch.shutdown(cancel_futures=True)
        if progress is not None:
            progress.close()
        result = {"out_dir": str(self.out), "model_dir": str(self.out / "model"), "steps": s.steps,
                  "tokens_seen": self.tokens_seen, "padding_share": self.data.padding_share,
                  "final_loss": record.get("loss"), "final_mlm_accuracy": record.get("mlm_accuracy"),
                  "heldout_loss": heldout, "languages": self.data.languages,
                  "instances": {k: len(v.instances) for k, v in self.data.sources.items()},
                  "seconds": time.time() - started}
        model_state, _ = full_states(self.model, None, self.sharded)
        if dist.main:
            self.finish(result, model_state)
        dist.barrier()
        return result

    # ------------------------------------------------------------------ model, checkpoints

    def build_model(self) -> None:
        s, languages = self.s, self.data.languages
        vocab_size = max(len(self.tokenizer), self.data.vocab.size)
        extra = {"pretraining_languages": languages, "language_embeddings": s.language_embeddings}
        self.config = build_config(s.shape(), vocab_size=vocab_size, pad_token_id=self.tokenizer.pad_token_id,
                                   max_seq_length=s.max_seq_length,
                                   type_vocab_size=len(languages) if s.language_embeddings else 2,
                                   dropout=s.dropout, nsp=s.nsp, extra=extra)
        torch.manual_seed(s.seed)
        self.model = PretrainingModel(build_hf_model(self.config, s.nsp)).to(self.device)
        self.wrapped: torch.nn.Module = self.model
        self.sharded = s.fsdp and self.dist.active
        if self.sharded:
            from torch.distributed.fsdp import fully_shard

            # one unit per layer; the root holds the embeddings and the tied prediction head
            for layer in self.model.hf.bert.encoder.layer:
                fully_shard(layer)
            fully_shard(self.model)
        elif self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.wrapped = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward_model = torch.compile(self.wrapped) if s.compile else self.wrapped
        self.optimizer = make_optimizer(self.model, s.learning_rate, s.weight_decay, self.device)
        self.scheduler = linear_schedule(self.optimizer, s.warmup, s.steps)
        # what a checkpoint must have been written for to be resumed by this run
        self.model_fingerprint = {
            "model": s.model, "layers": self.config.num_hidden_layers, "hidden": self.config.hidden_size,
            "heads": self.config.num_attention_heads, "intermediate": self.config.intermediate_size,
            "vocab_size": vocab_size, "vocab": vocab_fingerprint(self.tokenizer), "nsp": s.nsp,
            "type_vocab_size": self.config.type_vocab_size}

    def restore(self, resume: bool) -> tuple[int, dict]:
        """(step, its logged loss and accuracy) of the newest checkpoint, loaded when resuming;
        (0, {}) when starting afresh."""
        found = checkpoint_dirs(self.ckpt_root)
        if not resume or not found:
            if resume:
                info(f"no checkpoint in {self.ckpt_root}; starting from step 0")
            self.tokens_seen = 0
            if self.dist.main:
                self.train_log.restart()
            return 0, {}
        step, path = found[-1]
        self.tokens_seen, meta, changed = restore_training(
            path, step, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
            sharded=self.sharded, fingerprint=self.model_fingerprint, settings=self.s)
        if self.dist.main:  # log lines written after the checkpoint are redone
            self.train_log.keep_until(step)
        info(f"resuming from {path} (step {step})")
        if changed:
            info(f"changed since that checkpoint, in effect from step {step + 1}: "
                 + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        return step, meta.get("record", {})

    def save(self, step: int, record: dict) -> None:
        """Write a checkpoint (called by every process; only the first writes)."""
        model_state, optimizer_state = full_states(self.model, self.optimizer, self.sharded)
        problem = None
        # a finite loss does not prove the update after it was finite: check before keeping it
        if self.dist.main and not all(torch.isfinite(t).all() for t in model_state.values()
                                      if t.is_floating_point()):
            problem = (f"the weights became non-finite in the update of step {step}; training "
                       f"stopped, {self._last_good()}; {self._retry_hint()}")
        self.dist.broadcast_error(problem, NonFiniteLoss)
        if self.dist.main:
            save_training(self.ckpt_root, step, model_state=model_state, optimizer_state=optimizer_state,
                          scheduler=self.scheduler, tokens_seen=self.tokens_seen, keep=self.s.keep_checkpoints,
                          meta={"fingerprint": self.model_fingerprint, "settings": output_settings(self.s),
                                "inputs": self.inputs, "loss": record["loss"],
                                "record": {k: record[k] for k in ("loss", "mlm_accuracy") if k in record},
                                "data_position": self.data.position(step)})

    def space_needed(self) -> int:
        """Rough disk use of the run: its checkpoints (weights and two Adam moments each, one more
        than kept while the next is written) and the final model; at least 1 MB."""
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters()) if self.model is not None else 0
        return max(1 << 20, weights * (3 * (self.s.keep_checkpoints + 1) + 1))

    def _retry_hint(self) -> str:
        return (f"resume with a lower learning rate or more warm-up, e.g. --resume --set "
                f"pretrain.learning_rate={self.s.learning_rate / 10:g}")

    def _last_good(self) -> str:
        last = checkpoint_dirs(self.ckpt_root)
        return f"the last good checkpoint is {last[-1][1]} (resume with --resume)" if last \
            else "no checkpoint was written yet"

    # ------------------------------------------------------------------ one step

    def _autocast(self):
        bf16 = self.s.precision == "bf16" or (self.s.precision == "auto" and self.device.type == "cuda")
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step_batches(self, step: int) -> tuple[str, list[Batch]]:
        """This process's micro-batches of `step`."""
        kind, batches = self.data.step_batches(step, self.dist.rank, self.dist.world)
        if self.device.type == "cuda":  # page-locked: the copy to the GPU runs asynchronously
            batches = [b.pin_memory() for b in batches]
        return kind, batches

    def train_step(self, step: int, prepared: tuple[str, list[Batch]] | None = None) -> dict:
        s = self.s
        kind, batches = prepared or self.step_batches(step)
        # dropout randomness per (step, process): independent of where a run was resumed
        torch.manual_seed(int(np.random.SeedSequence([s.seed, step, self.dist.rank]).generate_state(1)[0]))
        n_masked = sum(len(b.masked_labels) for b in batches)
        n_tokens = sum(b.n_tokens for b in batches)
        if self.dist.active:  # the loss is normalised by the global counts
            counts = torch.tensor([n_masked, n_tokens], dtype=torch.float64, device=self.device)
            n_masked, n_tokens = self.dist.sum(counts).tolist()
        use_nsp = s.nsp and kind == "mlm"
        sums = torch.zeros(len(STEP_SUMS), dtype=torch.float64, device=self.device)
        self.wrapped.train()
        for m, batch in enumerate(batches):
            last = m == len(batches) - 1
            if self.sharded:
                self.model.set_requires_gradient_sync(last)
                sync = contextlib.nullcontext()
            else:
                sync = contextlib.nullcontext() if last or not self.dist.active else self.wrapped.no_sync()
            with sync:
                batch = batch.to(self.device)
                # the number of targets varies: compile for any count, not once per count
                if s.compile and len(batch.masked_labels) > 1:
                    torch._dynamo.mark_dynamic(batch.masked_positions, 0)
                    torch._dynamo.mark_dynamic(batch.masked_labels, 0)
                with self._autocast():
                    out = run_batch(self.forward_model, batch)
                loss = out.mlm_loss_sum / n_masked
                if use_nsp:
                    loss = loss + out.nsp_loss_sum / s.batch_size
                # DDP averages gradients over processes; scaling by world makes that a global sum
                (loss * self.dist.world).backward()
            sums += torch.stack([getattr(out, name).detach() for name in STEP_SUMS]).double()
        max_norm = s.max_grad_norm if s.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP: a DTensor
        # one device-to-host copy per step: each one idles the GPU until the CPU queues more work
        *summed, grad_norm = torch.cat([self.dist.sum(sums), norm.detach().double().reshape(1)]).tolist()
        total = dict(zip(STEP_SUMS, summed))
        mlm_loss = total["mlm_loss_sum"] / n_masked
        nsp_loss = total["nsp_loss_sum"] / s.batch_size if use_nsp else None
        loss = mlm_loss + (nsp_loss or 0.0)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            raise NonFiniteLoss(f"the {what} became non-finite at step {step} ({loss=}, {grad_norm=}); "
                                f"training stopped, {self._last_good()}; {self._retry_hint()}")
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.tokens_seen += int(n_tokens)
        record = {"step": step, "objective": kind, "loss": loss, "mlm_loss": mlm_loss,
                  "mlm_accuracy": total["mlm_correct"] / n_masked, "lr": lr, "grad_norm": grad_norm}
        if use_nsp:
            record.update(nsp_loss=nsp_loss, nsp_accuracy=total["nsp_correct"] / s.batch_size)
        return record | {"_tokens": int(n_tokens)}

    @torch.no_grad()
    def heldout_losses(self) -> dict[str, float]:
        """MLM loss per language on the held-out documents, with fixed masks."""
        self.model.eval()
        sums: dict[str, list[float]] = {}
        for lang, batch in self.data.heldout_batches():
            with self._autocast():
                out = run_batch(self.model, batch.to(self.device))
            loss_sum, count = sums.setdefault(lang, [0.0, 0])
            sums[lang] = [loss_sum + float(out.mlm_loss_sum), count + len(batch.masked_labels)]
        self.model.train()
        return {lang: loss_sum / max(1, count) for lang, (loss_sum, count) in sums.items()}

    # ------------------------------------------------------------------ output

    def log(self, record: dict) -> None:
        self.train_log.append(record)
        if self.tracker is not None:
            # no W&B `step=`: `mbert run` logs several variants into one tracker, each from step 1
            flat = {f"{self.metric_prefix}/{k}": v for k, v in record.items() if isinstance(v, (int, float))}
            for lang, value in record.get("heldout_loss", {}).items():
                flat[f"{self.metric_prefix}/heldout_loss/{lang}"] = value
            self.tracker.log(flat)

    def finish(self, result: dict, model_state: dict) -> None:
        corpus_dir = self.corpus.root
        hf_model = self.model.hf
        if self.sharded:  # a plain copy of the gathered weights for save_pretrained
            plain = PretrainingModel(build_hf_model(self.config, self.s.nsp))
            plain.load_state_dict(model_state)
            hf_model = plain.hf
        with staging_dir(self.out / "model") as tmp:
            hf_model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            atomic_write_text(tmp / "README.md", model_card(
                settings=self.s, config=self.config, corpus_manifest=read_manifest(corpus_dir),
                store_info=self.data.store.info, result=result))
        write_resolved(self.out, {"pretrain": self.s, "inputs": {
            "corpus": str(corpus_dir), "vocab": str(self.vocab_dir), "world_size": self.dist.world}})
        if self.tracker is not None:
            self.tracker.summary({f"{self.metric_prefix}/{k}": v for k, v in result.items()
                                  if isinstance(v, (int, float))})
        write_manifest(self.out, {
            "stage": "pretrain", "complete": True, "model": "model", "settings": to_plain(self.s),
            "corpus": str(corpus_dir), "vocab": str(self.vocab_dir), "store": self.data.store.info,
            **{k: v for k, v in result.items() if k not in ("out_dir", "model_dir")}})
        held = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["heldout_loss"].items()))
        summary(f"Pretrained a {self.s.model} BERT for {result['steps']} steps "
                f"({result['tokens_seen']:,} tokens, padding {result['padding_share']:.1%}) in "
                f"{result['seconds']:.0f}s; final loss {result['final_loss']:.3f}, MLM accuracy "
                f"{result['final_mlm_accuracy']:.2f}. Held-out MLM loss: {held or 'none'}. "
                f"Model (transformers format): {self.out / 'model'}; log: {self.train_log.path}.")
