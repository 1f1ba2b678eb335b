"""`mbert pretrain`: train a BERT on a corpus folder with a vocabulary folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from ..cli import add_command

    parser = add_command(
        sub, "pretrain", handler=_pretrain,
        help="pretrain a multilingual BERT (MLM, optional NSP/TLM) and save it in transformers format",
        example="mbert pretrain --corpus runs/demo/corpus/mixture --vocab runs/demo/vocab "
                "--out runs/demo/pretrain --model tiny --steps 200\n"
                "  torchrun --nproc-per-node 4 -m mbert pretrain ... (one process per GPU)")
    parser.add_argument("--corpus", required=True, metavar="DIR",
                        help="mixture folder (part-*.parquet) or clean folder (<lang>/part-*.parquet)")
    parser.add_argument("--vocab", required=True, metavar="DIR", help="tokenizer folder from `mbert vocab`")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--model", choices=["tiny", "small", "base"], help="architecture preset")
    parser.add_argument("--steps", type=int, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, help="sequences per step (global)")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per step")
    parser.add_argument("--seq-len", type=int, dest="max_seq_length", help="maximum sequence length")
    parser.add_argument("--lr", type=float, dest="learning_rate", help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--nsp", action="store_true", default=None, help="add next-sentence prediction")
    parser.add_argument("--whole-word-masking", action="store_true", default=None)
    parser.add_argument("--tlm", action="append", metavar="SRC_LANG=FILE,TGT_LANG=FILE",
                        help="line-aligned parallel files for TLM (repeatable), e.g. "
                             "de=tatoeba.deu-eng.deu,en=tatoeba.deu-eng.eng")
    parser.add_argument("--tlm-ratio", type=float, help="share of steps that train TLM")
    parser.add_argument("--language-embeddings", action="store_true", default=None,
                        help="token_type ids carry the language (XLM)")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                        help="bf16 autocast or fp32 (auto: bf16 on GPU, fp32 on CPU)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out (model, optimizer, data position)")
    parser.add_argument("--force", action="store_true",
                        help="replace the run --out holds (its checkpoints, log and model are deleted)")


def _parse_tlm(values: list[str] | None) -> list[dict] | None:
    if not values:
        return None
    pairs = []
    for value in values:
        sides = value.split(",")
        if len(sides) != 2 or not all("=" in side for side in sides):
            raise ConfigError(f"--tlm {value!r} must look like de=FILE,en=FILE")
        (src_lang, src), (tgt_lang, tgt) = (side.split("=", 1) for side in sides)
        pairs.append({"src": str(Path(src).absolute()), "tgt": str(Path(tgt).absolute()),
                      "src_lang": src_lang.strip(), "tgt_lang": tgt_lang.strip()})
    return pairs


def _pretrain(args: argparse.Namespace) -> int:
    from ..recipe import run_settings, stage_settings
    from ..tracking import Tracker
    from ..config import to_plain
    from .settings import PretrainSettings
    from ..errors import UserError
    from .run_folder import holds_run
    from .train import pretrain

    flags = {name: getattr(args, name) for name in (
        "model", "steps", "batch_size", "grad_accum", "max_seq_length", "learning_rate", "warmup_steps",
        "nsp", "whole_word_masking", "tlm_ratio", "language_embeddings", "checkpoint_every",
        "compile", "device", "precision")}
    flags["whole_word_masking"] = args.whole_word_masking
    flags["tlm"] = _parse_tlm(args.tlm)
    settings = stage_settings(args, "pretrain", PretrainSettings, flags)
    run = run_settings(args)
    out = Path(args.out)
    if args.resume and args.force:
        raise ConfigError("--resume continues the run in --out and --force replaces it; give one of them")
    if not args.resume and not args.force and holds_run(out):  # before W&B starts a run for nothing
        raise UserError(f"{out} already holds a pretraining run; pass --resume to continue it, "
                        f"--force to replace it, or choose another --out")
    tracker = None
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only the first process logs
        tracker = Tracker(mode=run.wandb, project=run.wandb_project, stage="pretrain", run_dir=out,
                          config=to_plain(settings))
    try:
        pretrain(Path(args.corpus), Path(args.vocab), out, settings, tracker, resume=bool(args.resume),
                 replace=args.force)
    finally:
        if tracker is not None:
            tracker.finish()
    return 0
