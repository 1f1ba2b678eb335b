"""`mbert pretrain`: train a BERT on a corpus folder with a vocabulary folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import ConfigError
from ..flags import add_command, add_settings_flags
from .settings import PretrainSettings


def register(sub: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--tlm", action="append", metavar="SRC_LANG=FILE,TGT_LANG=FILE",
                        help="line-aligned parallel files for TLM (repeatable), e.g. "
                             "de=tatoeba.deu-eng.deu,en=tatoeba.deu-eng.eng")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out (model, optimizer, data position)")
    parser.add_argument("--force", action="store_true",
                        help="replace the run --out holds (its checkpoints, log and model are deleted)")
    add_settings_flags(parser, "pretrain", PretrainSettings, skip=["tlm"])  # --tlm: SRC_LANG=FILE,TGT_LANG=FILE


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
    from ..recipe import stage_settings
    from ..tracking import Tracker
    from ..config import to_plain
    from ..errors import UserError
    from .run_folder import holds_run
    from .train import pretrain

    settings, run = stage_settings(args, "pretrain", PretrainSettings, {"tlm": _parse_tlm(args.tlm)})
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
