"""The pretraining loop: `pretrain(...)` for `mbert pretrain` and `mbert run`, `is_complete(...)`.

One process, or many under `torchrun` (DDP; gloo on CPU, NCCL on GPU). The global batch of a
step is a fixed function of (seed, step): instance order is a seeded permutation per epoch and
masks are seeded per (epoch, instance). Each process takes its slice of every micro-batch and
losses are summed and divided by the *global* number of targets, so one process and N processes
compute the same loss and gradients, and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..artifact import differences, fingerprint, is_complete as artifact_complete, output_settings, \
    read_manifest, write_manifest, writing
from ..atomic import atomic_file, atomic_write_json, atomic_write_text, staging_dir
from ..config import to_plain, write_resolved
from ..corpus.layout import CorpusFolder, find_corpus
from ..devices import resolve_device
from ..diskspace import reported_as_disk_full
from ..errors import UserError
from ..progress import bar, info, summary
from ..schedule import linear_schedule
from . import instances as I
from .batching import Batch, Vocabulary, make_batch
from .card import model_card
from .checkpoint import checkpoint_dirs, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .inputs import continuation_table, input_fingerprint, load_tokenizer, vocab_fingerprint
from .distributed import Distributed
from .model import PretrainingModel, build_config, build_hf_model, check_can_compile, make_optimizer, run_batch
from .settings import PretrainSettings
from .sources import OBJECTIVES, Source, tlm_source
from .token_store import TokenStore, build_token_store, is_store_complete

HELDOUT_SALT = 99
# what a step adds up over micro-batches and processes, kept in one tensor (one device-to-host copy)
STEP_SUMS = ("mlm_loss_sum", "mlm_correct", "nsp_loss_sum", "nsp_correct")


def holds_run(out_dir: Path) -> bool:
    """Whether `out_dir` already holds a pretraining run (finished or not)."""
    out_dir = Path(out_dir)
    return is_complete(out_dir) or bool(checkpoint_dirs(out_dir / "checkpoints")) \
        or (out_dir / "train_log.jsonl").exists()


def is_complete(out_dir: Path) -> bool:
    return artifact_complete(out_dir)


def run_differences(out_dir: Path, corpus_dir: Path, vocab_dir: Path, settings: PretrainSettings,
                    inputs: str | None = None) -> list[str] | None:
    """How the run kept in `out_dir` (finished, or else its newest checkpoint) differs from a run of
    `settings` on these inputs, in output settings only: an empty list means it is that run (to use
    or resume); None means `out_dir` holds neither a finished run nor a checkpoint."""
    out_dir = Path(out_dir)
    found = checkpoint_dirs(out_dir / "checkpoints")
    if is_complete(out_dir):
        manifest = read_manifest(out_dir)
        made, made_inputs = manifest.get("settings", {}), manifest.get("store", {}).get("fingerprint")
    elif found:
        meta = json.loads((found[-1][1] / "meta.json").read_text(encoding="utf-8"))
        made, made_inputs = meta.get("settings"), meta.get("inputs")
        if not isinstance(made, dict):
            return ["its checkpoints were written by an older mbert that did not record their settings"]
    else:
        return None
    found_differences = differences(made, output_settings(settings))
    if inputs is None:
        inputs = input_fingerprint(find_corpus(corpus_dir), load_tokenizer(vocab_dir))
    if made_inputs != inputs:
        found_differences.append("it was trained on another corpus or vocabulary")
    return found_differences


def claim_out_dir(out: Path, corpus_dir: Path, vocab_dir: Path, settings: PretrainSettings, inputs: str, *,
                  resume: bool | None, replace: bool, redo_hint: str, dist: Distributed) -> tuple[bool, dict | None]:
    """Decide what an existing `out` means: (whether to resume from its checkpoints, the manifest of
    a finished run that already is what was asked for). replace=True: start afresh; resume=True:
    continue it; False: refuse to touch it; None (`mbert run`, the Python API default): use or
    continue a run with the same output settings and inputs, and refuse any other (never deleted
    implicitly; `redo_hint` names the option that replaces it)."""
    complete = is_complete(out)
    earlier = holds_run(out)
    found = run_differences(out, corpus_dir, vocab_dir, settings, inputs) \
        if earlier and resume is None and not replace else None
    dist.barrier()  # every process has looked before the first one changes anything
    if not earlier:
        return bool(resume), None
    if replace:
        if dist.main:
            info(f"{out} holds a pretraining run: replacing it, as asked")
            (out / "manifest.json").unlink(missing_ok=True)  # first: no longer looks complete
            for name in ("checkpoints", "model"):
                shutil.rmtree(out / name, ignore_errors=True)
            (out / "train_log.jsonl").unlink(missing_ok=True)
        dist.barrier()
        return False, None
    if resume is False:
        raise UserError(f"{out} already holds a pretraining run; pass --resume to continue "
                        f"it, --force to replace it, or choose another --out")
    if resume is None:
        if found:
            what = "a finished pretraining" if complete else "an unfinished pretraining"
            raise UserError(f"{out} holds {what} with other output settings or inputs "
                            f"({'; '.join(found)}); it is kept: make the settings match to "
                            f"{'use' if complete else 'resume'} it, pass {redo_hint} to replace "
                            f"it, or choose another output folder")
        if complete:
            return False, read_manifest(out)
        return found is not None, None  # checkpoints to continue, or only a log to restart
    if complete:
        done = read_manifest(out).get("steps", 0)
        if done >= settings.steps:
            raise UserError(f"{out} already holds a finished run of {done} steps; raise "
                            f"--steps to train further or choose another --out")
        if dist.main:
            (out / "manifest.json").unlink()  # training on: the run is no longer complete
    return True, None


# optimisation settings a resumed run may change (they take effect from the next step); any other
# output setting decides the data or model the checkpoint's steps were trained on
RESUME_MAY_CHANGE = {"steps", "learning_rate", "warmup_steps", "weight_decay", "max_grad_norm", "dropout"}


# ----------------------------------------------------------------------------- trainer

class NonFiniteLoss(UserError):
    """The loss, gradient norm or weights became NaN/inf; the run stops, checkpoints stay good."""


class Trainer:
    """One pretraining run: prepare data and model, restore, loop, write the output."""

    def __init__(self, corpus: CorpusFolder, vocab_dir: Path, tokenizer, out_dir: Path,
                 settings: PretrainSettings, tracker, dist: Distributed, metric_prefix: str = "pretrain") -> None:
        self.corpus, self.corpus_dir, self.vocab_dir, self.out = corpus, corpus.root, Path(vocab_dir), Path(out_dir)
        self.tokenizer, self.vocab_fp = tokenizer, vocab_fingerprint(tokenizer)
        self.inputs = input_fingerprint(corpus, tokenizer)
        self.s, self.tracker, self.dist = settings, tracker, dist
        self.resume = False
        self.ckpt_root = self.out / "checkpoints"
        self.log_path = self.out / "train_log.jsonl"
        self.metric_prefix = metric_prefix
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
        self.per_rank = micro // dist.world

    # ------------------------------------------------------------------ preparation

    def prepare_data(self) -> None:
        self.prepare_store()
        self.prepare_instances()

    def prepare_store(self) -> None:
        """The token store of the corpus: found complete, or built (by rank 0)."""
        s = self.s
        inputs = self.inputs
        store_dir = Path(s.token_store) if s.token_store else self.out / "data" / "store"
        error = None
        if self.dist.main and not is_store_complete(store_dir, inputs):
            try:
                # int32 token ids plus offsets: about 4x the Parquet shards (measured on the kit)
                needed = 4 * sum(shard.path.stat().st_size for shard in self.corpus.shards)
                with writing(store_dir), reported_as_disk_full(store_dir, needed, "the token store"):
                    if not is_store_complete(store_dir, inputs):  # runs sharing a store build it once
                        build_token_store(self.corpus.shards, self.vocab_dir, self.tokenizer, store_dir,
                                          inputs, s.tokenize_workers)
            except UserError as exc:
                error = str(exc)
        self.dist.broadcast_error(error)
        self.store = TokenStore.open(store_dir)
        self.languages = list(self.store.languages)

    def prepare_instances(self) -> None:
        """The training and held-out instances over the store: found in the run's cache, or built."""
        s = self.s
        specials = 3 if s.nsp else 2
        key = fingerprint(self.inputs, s.max_seq_length, s.short_seq_prob, s.nsp, s.seed, s.heldout_docs)[:12]
        # raw int64 rows written as they are made and read memory-mapped, like the token store: the
        # instance index (56 bytes an instance) stays on disk instead of growing the process
        data = self.out / "data"
        files = {part: data / f"instances-{key}-{part}.bin" for part in ("train", "heldout")}
        counts_file = data / f"instances-{key}.json"
        if self.dist.main and not counts_file.is_file():
            rng = np.random.default_rng([s.seed, 3])
            train_docs, held_docs = I.split_heldout(self.store, s.heldout_docs, rng)
            counts = {}
            for part, docs, short_seq_prob, nsp in (("train", train_docs, s.short_seq_prob, s.nsp),
                                                   ("heldout", held_docs, 0.0, False)):
                with atomic_file(files[part], "wb") as handle:
                    counts[part] = I.write_instances(handle, self.store, docs, s.max_seq_length,
                                                     short_seq_prob, nsp, rng)
            atomic_write_json(counts_file, counts)  # last: marks the cache complete
        self.dist.barrier()
        counts = json.loads(counts_file.read_text())
        train, held = (I.open_instances(files[part], counts[part]) for part in ("train", "heldout"))
        if len(train) == 0:
            raise UserError(f"the corpus in {self.corpus_dir} yields no training instance; it needs "
                            f"more documents than pretrain.heldout_docs per language")
        self.padding_share = I.padding_share(train, s.max_seq_length, specials)
        self.sources = {"mlm": Source("mlm", self.store.tokens, train, s.seed)}
        tlm = tlm_source(s, self.tokenizer, self.languages)
        if tlm is not None:
            self.sources["tlm"] = tlm
        self.heldout = held
        self.vocab = Vocabulary.from_tokenizer(self.tokenizer, continuation_table(self.tokenizer))
        rng = np.random.default_rng([s.seed, 5])
        self.step_kinds = np.where(rng.random(s.steps) < s.tlm_ratio, "tlm", "mlm") \
            if tlm is not None else np.full(s.steps, "mlm")

    def prepare_model(self) -> None:
        s = self.s
        vocab_size = max(len(self.tokenizer), self.vocab.size)
        extra = {"pretraining_languages": self.languages, "language_embeddings": s.language_embeddings}
        self.config = build_config(s.shape(), vocab_size=vocab_size, pad_token_id=self.tokenizer.pad_token_id,
                                   max_seq_length=s.max_seq_length,
                                   type_vocab_size=len(self.languages) if s.language_embeddings else 2,
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
        self.fingerprint = {"model": s.model, "layers": self.config.num_hidden_layers,
                            "hidden": self.config.hidden_size, "heads": self.config.num_attention_heads,
                            "intermediate": self.config.intermediate_size, "vocab_size": vocab_size,
                            "vocab": self.vocab_fp, "nsp": s.nsp,
                            "type_vocab_size": self.config.type_vocab_size}

    def restore(self) -> int:
        """Load the newest checkpoint when resuming; returns the step it holds (0 when none)."""
        found = checkpoint_dirs(self.ckpt_root)
        self.restored_meta: dict = {}
        if not self.resume or not found:
            if self.resume:
                info(f"no checkpoint in {self.ckpt_root}; starting from step 0")
            self.tokens_seen = 0
            if self.dist.main:
                atomic_write_text(self.log_path, "")
            return 0
        step, path = found[-1]
        state, meta = load_checkpoint(path, self.fingerprint)
        changed = self.settings_changed_since(meta, path, step)
        self.restored_meta = meta
        # this run's optimisation settings, not the checkpoint's: loading the states below brings back its own
        fresh = [{"weight_decay": g["weight_decay"], "initial_lr": g["initial_lr"]} for g in self.optimizer.param_groups]
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                                 set_optimizer_state_dict)

            full = StateDictOptions(full_state_dict=True)
            set_model_state_dict(self.model, state["model"], options=full)
            set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"], options=full)
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for group, settings in zip(self.optimizer.param_groups, fresh):
            group.update(settings)
        self.scheduler.base_lrs = [g["initial_lr"] for g in self.optimizer.param_groups]
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * factor(self.scheduler.last_epoch)  # what LambdaLR computes; unchanged when nothing changed
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        set_rng_state(state["rng"])
        self.tokens_seen = int(state["tokens_seen"])
        if self.dist.main:  # drop log lines written after the checkpoint: they are redone
            kept = []
            if self.log_path.is_file():
                for line in self.log_path.read_text(encoding="utf-8").split("\n"):
                    if line.strip() and json.loads(line)["step"] <= step:
                        kept.append(line)
            atomic_write_text(self.log_path, "".join(k + "\n" for k in kept))
        info(f"resuming from {path} (step {step})")
        if changed:
            info(f"changed since that checkpoint, in effect from step {step + 1}: "
                 + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        return step

    def settings_changed_since(self, meta: dict, path: Path, step: int) -> dict[str, tuple]:
        """{setting: (checkpoint's value, this run's)} for the output settings that differ; refuses
        a change that cannot take effect on resume."""
        made = meta.get("settings")
        if not isinstance(made, dict):  # written before checkpoints recorded their settings
            return {}
        now = output_settings(self.s)
        changed = {k: (made.get(k), now.get(k)) for k in sorted(set(made) | set(now)) if made.get(k) != now.get(k)}
        refused = [k for k in changed if k not in RESUME_MAY_CHANGE]
        if refused:
            detail = ", ".join(f"{k}: checkpoint {changed[k][0]!r} vs now {changed[k][1]!r}" for k in refused)
            raise UserError(f"cannot resume {path} with other settings ({detail}): they decide what its {step} "
                            f"steps were trained on; resume with the checkpoint's values (only "
                            f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change), or start afresh with another --out")
        return changed

    # ------------------------------------------------------------------ one step

    def _autocast(self):
        bf16 = self.s.precision == "bf16" or (self.s.precision == "auto" and self.device.type == "cuda")
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step_batches(self, step: int) -> tuple[str, list[Batch]]:
        s = self.s
        kind = str(self.step_kinds[step - 1])
        seen_before = int(np.count_nonzero(self.step_kinds[:step - 1] == kind))
        source = self.sources[kind]
        index, epochs = source.order.take(seen_before * s.batch_size, s.batch_size)
        micro = s.batch_size // s.grad_accum
        batches = []
        for m in range(s.grad_accum):
            lo = m * micro + self.dist.rank * self.per_rank
            sel = slice(lo, lo + self.per_rank)
            keys = [(s.seed, OBJECTIVES[kind], int(e), int(i)) for e, i in zip(epochs[sel], index[sel])]
            batches.append(make_batch(source.tokens, source.instances[index[sel]], keys, self.vocab,
                                      max_seq_length=s.max_seq_length, mask_prob=s.mask_prob,
                                      whole_word=s.whole_word_masking, nsp=s.nsp and kind == "mlm",
                                      restart_positions=kind == "tlm",
                                      language_types=s.language_embeddings))
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

    def _retry_hint(self) -> str:
        return (f"resume with a lower learning rate or more warm-up, e.g. --resume --set "
                f"pretrain.learning_rate={self.s.learning_rate / 10:g}")

    def _last_good(self) -> str:
        last = checkpoint_dirs(self.ckpt_root)
        return f"the last good checkpoint is {last[-1][1]} (resume with --resume)" if last \
            else "no checkpoint was written yet"

    @torch.no_grad()
    def heldout_losses(self) -> dict[str, float]:
        """MLM loss per language on the held-out documents, with fixed masks."""
        s = self.s
        if len(self.heldout) == 0:
            return {}
        self.model.eval()
        langs = self.heldout[:, I.LANG_A]
        result = {}
        for lang_index, lang in enumerate(self.languages):
            rows = self.heldout[langs == lang_index][:s.heldout_instances]
            if len(rows) == 0:
                continue
            loss_sum, count = 0.0, 0
            for start in range(0, len(rows), 32):
                chunk = rows[start:start + 32]
                keys = [(s.seed, HELDOUT_SALT, lang_index, start + i) for i in range(len(chunk))]
                batch = make_batch(self.store.tokens, chunk, keys, self.vocab,
                                   max_seq_length=s.max_seq_length, mask_prob=s.mask_prob,
                                   whole_word=s.whole_word_masking, nsp=False, restart_positions=False,
                                   language_types=s.language_embeddings)
                with self._autocast():
                    out = run_batch(self.model, batch.to(self.device))
                loss_sum += float(out.mlm_loss_sum)
                count += len(batch.masked_labels)
            result[lang] = loss_sum / max(1, count)
        self.model.train()
        return result

    def full_states(self, optimizer: bool = True) -> tuple[dict, dict | None]:
        """Whole (unsharded) model and optimizer state; with FSDP every process must call it."""
        if not self.sharded:
            return self.model.state_dict(), self.optimizer.state_dict() if optimizer else None
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        full = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model = get_model_state_dict(self.model, options=full)
        return model, get_optimizer_state_dict(self.model, self.optimizer, options=full) if optimizer else None

    def save(self, step: int, record: dict) -> None:
        """Write a checkpoint (called by every process; only the first writes)."""
        model_state, optimizer_state = self.full_states()
        problem = None
        # a finite loss does not prove the update after it was finite: check before keeping it
        if self.dist.main and not all(torch.isfinite(t).all() for t in model_state.values()
                                      if t.is_floating_point()):
            problem = (f"the weights became non-finite in the update of step {step}; training "
                       f"stopped, {self._last_good()}; {self._retry_hint()}")
        self.dist.broadcast_error(problem, NonFiniteLoss)
        if not self.dist.main:
            return
        state = {"model": model_state, "optimizer": optimizer_state,
                 "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "step": step,
                 "tokens_seen": self.tokens_seen}
        kinds = self.step_kinds[:step]
        meta = {"fingerprint": self.fingerprint, "settings": output_settings(self.s), "inputs": self.inputs,
                "loss": record["loss"],
                "record": {k: record[k] for k in ("loss", "mlm_accuracy") if k in record}, "tokens_seen": self.tokens_seen,
                "data_position": {k: int(np.count_nonzero(kinds == k)) * self.s.batch_size
                                  for k in self.sources}}
        save_checkpoint(self.ckpt_root, step, state, meta, self.s.keep_checkpoints)

    def space_needed(self) -> int:
        """Rough disk use of the run: its checkpoints (weights and two Adam moments each, one more
        than kept while the next is written) and the final model; at least 1 MB."""
        model = getattr(self, "model", None)
        weights = sum(p.numel() * p.element_size() for p in model.parameters()) if model is not None else 0
        return max(1 << 20, weights * (3 * (self.s.keep_checkpoints + 1) + 1))

    # ------------------------------------------------------------------ loop

    def log(self, record: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tracker is not None:
            # no W&B `step=`: `mbert run` logs several variants into one tracker, each from step 1
            flat = {f"{self.metric_prefix}/{k}": v for k, v in record.items() if isinstance(v, (int, float))}
            for lang, value in record.get("heldout_loss", {}).items():
                flat[f"{self.metric_prefix}/heldout_loss/{lang}"] = value
            self.tracker.log(flat)

    def run(self, resume: bool) -> dict:
        """Train (from the newest checkpoint when `resume`) and write the output; returns the result."""
        s, self.resume = self.s, resume
        started = time.time()
        self.prepare_data()
        self.prepare_model()
        start = self.restore()
        if start > s.steps:
            raise UserError(f"the checkpoint in {self.ckpt_root} is already at step {start} > "
                            f"pretrain.steps = {s.steps}; raise --steps to train further")
        self.dist.barrier()
        progress = bar(total=s.steps, initial=start, desc="pretraining", unit="step") \
            if self.dist.main else None
        window_tokens, window_start = 0, time.time()
        # a run stopped after its last checkpoint but before its output: only the output is left
        record: dict = dict(self.restored_meta.get("record", {})) if start == s.steps else {}
        # held-out loss on the first process only, except with FSDP where every forward is collective
        evaluates = self.dist.main or self.sharded
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
                    self.dist.barrier()
                if self.dist.main:
                    if step % s.log_every == 0 or final or "heldout_loss" in record:
                        elapsed = max(1e-9, time.time() - window_start)
                        record.update(tokens_per_s=window_tokens / elapsed, tokens_seen=self.tokens_seen)
                        window_tokens, window_start = 0, time.time()
                        self.log(record)
                    progress.update(1)
                    progress.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['mlm_accuracy']:.2f}")
                if step % s.checkpoint_every == 0 or final:
                    self.save(step, record)
                self.dist.barrier()
        finally:
            prefetch.shutdown(cancel_futures=True)
        if progress is not None:
            progress.close()
        result = {"out_dir": str(self.out), "model_dir": str(self.out / "model"), "steps": s.steps,
                  "tokens_seen": self.tokens_seen, "padding_share": self.padding_share,
                  "final_loss": record.get("loss"), "final_mlm_accuracy": record.get("mlm_accuracy"),
                  "heldout_loss": heldout, "languages": self.languages,
                  "instances": {k: len(v.instances) for k, v in self.sources.items()},
                  "seconds": time.time() - started}
        model_state, _ = self.full_states(optimizer=False)
        if self.dist.main:
            self.finish(result, model_state)
        self.dist.barrier()
        return result

    def finish(self, result: dict, model_state: dict) -> None:
        corpus_manifest = read_manifest(self.corpus_dir)
        hf_model = self.model.hf
        if self.sharded:  # a plain copy of the gathered weights for save_pretrained
            plain = PretrainingModel(build_hf_model(self.config, self.s.nsp))
            plain.load_state_dict(model_state)
            hf_model = plain.hf
        with staging_dir(self.out / "model") as tmp:
            hf_model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            atomic_write_text(tmp / "README.md", model_card(
                settings=self.s, config=self.config, corpus_manifest=corpus_manifest,
                store_info=self.store.info, result=result))
        write_resolved(self.out, {"pretrain": self.s, "inputs": {
            "corpus": str(self.corpus_dir), "vocab": str(self.vocab_dir), "world_size": self.dist.world}})
        if self.tracker is not None:
            self.tracker.summary({f"{self.metric_prefix}/{k}": v for k, v in result.items()
                                  if isinstance(v, (int, float))})
        write_manifest(self.out, {
            "stage": "pretrain", "complete": True, "model": "model", "settings": to_plain(self.s),
            "corpus": str(self.corpus_dir), "vocab": str(self.vocab_dir), "store": self.store.info,
            **{k: v for k, v in result.items() if k not in ("out_dir", "model_dir")}})
        held = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["heldout_loss"].items()))
        summary(f"Pretrained a {self.s.model} BERT for {result['steps']} steps "
                f"({result['tokens_seen']:,} tokens, padding {result['padding_share']:.1%}) in "
                f"{result['seconds']:.0f}s; final loss {result['final_loss']:.3f}, MLM accuracy "
                f"{result['final_mlm_accuracy']:.2f}. Held-out MLM loss: {held or 'none'}. "
                f"Model (transformers format): {self.out / 'model'}; log: {self.log_path}.")


def pretrain(corpus_dir: Path, vocab_dir: Path, out_dir: Path, settings: PretrainSettings,
             tracker=None, *, resume: bool | None = None, replace: bool = False,
             redo_hint: str = "--force", metric_prefix: str = "pretrain") -> dict:
    """Pretrain a BERT on `corpus_dir` with the tokenizer in `vocab_dir`; writes `out_dir`
    (model/, checkpoints/, train_log.jsonl, resolved_config.toml, manifest.json last).

    `resume`: True continues the newest checkpoint (refusing one of another model), False
    refuses an `out_dir` that holds a run, None uses a finished run or continues an unfinished
    one when its output settings and inputs are these, and otherwise stops naming the differences
    (`redo_hint` is the option the message offers). `replace` starts afresh whatever `out_dir`
    holds. Metrics go to the tracker as `<metric_prefix>/loss` etc. Under torchrun every process calls this; only rank 0 writes files (and holds the lock
    on `out_dir`)."""
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
            # settings that cannot run here (device, compiler, batch split) fail before the folder is touched
            trainer = Trainer(find_corpus(corpus_dir), vocab_dir, load_tokenizer(vocab_dir), out_dir, settings,
                              tracker, dist, metric_prefix)
            resume, finished = claim_out_dir(out_dir, Path(corpus_dir), Path(vocab_dir), settings, trainer.inputs,
                                             resume=resume, replace=replace, redo_hint=redo_hint, dist=dist)
            if finished is not None:
                summary(f"Pretraining in {out_dir} is already complete with these settings and inputs: kept as is.")
                return {"out_dir": str(out_dir), "model_dir": str(out_dir / "model"), **finished}
            with reported_as_disk_full(out_dir, trainer.space_needed, "the pretraining run"):
                return trainer.run(resume)
    finally:
        dist.close()
