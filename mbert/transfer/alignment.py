"""Alignment fine-tuning on parallel text (Cao, Kitaev & Klein 2020, "Multilingual Alignment of
Contextual Word Representations").

1. Each `(source, target)` file pair is line-aligned parallel text; the source is the language the
   task is fine-tuned on (English), the target the language pulled toward it.
2. Words are the model tokenizer's own pre-tokenized words, so every word maps to its sub-tokens.
   `eflomal` (a real statistical aligner) aligns them in both directions; the intersection of the two
   directions is kept, as Cao et al. do, for high-precision links.
3. Loss per batch: mean squared distance between the contextual vectors (last layer by default) of
   aligned words, plus, with `regularize=True`, the mean squared distance between the source words'
   vectors and those of a frozen copy of the initial model, which keeps the source language's
   representations in place so the task head trained on them still fits. A word's vector is the mean
   of its sub-token vectors (`word_pooling="first"` takes the first sub-token instead).

Run `python -m mbert.transfer.alignment --help` for a before/after Tatoeba measurement.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from ..progress import bar, info, summary
from ..textfiles import read_lines
from .retrieval import encoder_of


@dataclass
class AlignedPair:
    """One sentence pair ready for training: token ids, word index per token (None for special
    tokens) and the word alignment links (source word, target word) kept after truncation."""

    source_ids: list[int]
    source_words: list[int | None]
    target_ids: list[int]
    target_words: list[int | None]
    links: list[tuple[int, int]]


# ----------------------------------------------------------------------------- data

def read_parallel(source_path: Path, target_path: Path, max_pairs: int | None = None
                  ) -> list[tuple[str, str]]:
    """Line-aligned sentence pairs; pairs with an empty side are skipped."""
    for path in (source_path, target_path):
        if not Path(path).is_file():
            raise UserError(f"parallel file {path} does not exist; give line-aligned "
                            f"(source, target) text files")
    source, target = read_lines(Path(source_path)), read_lines(Path(target_path))
    if len(source) != len(target):
        raise UserError(f"parallel files are not line-aligned: {source_path} has {len(source)} lines, "
                        f"{target_path} has {len(target)}; give one translation per line")
    pairs = [(s.strip(), t.strip()) for s, t in zip(source, target) if s.strip() and t.strip()]
    return pairs[:max_pairs] if max_pairs is not None else pairs


def split_words(tokenizer, sentences: Sequence[str]) -> list[list[str]]:
    """Each sentence as the words the tokenizer's pre-tokenizer sees (surface text from offsets)."""
    encoded = tokenizer(list(sentences), add_special_tokens=False, return_offsets_mapping=True)
    result = []
    for i, text in enumerate(sentences):
        spans: dict[int, tuple[int, int]] = {}
        for word, (start, end) in zip(encoded.word_ids(i), encoded["offset_mapping"][i]):
            if word is None:
                continue
            low, high = spans.get(word, (start, end))
            spans[word] = (min(low, start), max(high, end))
        words = [text[s:e].strip() or "<unk>" for _, (s, e) in sorted(spans.items())]
        result.append(["".join(w.split()) for w in words])  # eflomal splits on whitespace
    return result


def eflomal_links(source_words: list[list[str]], target_words: list[list[str]]
                  ) -> list[list[tuple[int, int]]]:
    """Intersection of eflomal's forward and reverse alignments, per sentence pair."""
    try:
        import eflomal
    except ImportError:
        raise UserError("alignment fine-tuning needs the eflomal aligner: pip install 'eflomal>=2.0' "
                        "(or pip install 'mbert[align]')") from None
    with tempfile.TemporaryDirectory(prefix="mbert-eflomal-") as tmp:
        forward, reverse = Path(tmp) / "fwd", Path(tmp) / "rev"
        eflomal.Aligner().align([" ".join(w) for w in source_words], [" ".join(w) for w in target_words],
                                links_filename_fwd=str(forward), links_filename_rev=str(reverse),
                                quiet=True)
        fwd_lines, rev_lines = read_lines(forward), read_lines(reverse)
    if len(fwd_lines) != len(source_words) or len(rev_lines) != len(source_words):
        raise UserError(f"eflomal returned {len(fwd_lines)} alignments for {len(source_words)} sentence "
                        f"pairs; check the parallel files for stray control characters")
    return [sorted(_parse_links(f) & _parse_links(r)) for f, r in zip(fwd_lines, rev_lines)]


def _parse_links(line: str) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in (link.split("-") for link in line.split())}


def prepare_aligned_pairs(tokenizer, parallel: list[tuple[Path, Path]], *, max_pairs: int | None = None,
                          max_length: int = 128) -> list[AlignedPair]:
    """Read, word-align and tokenize every file pair (each aligned separately: one language pair each).
    `max_pairs` caps the sentence pairs read from each file pair."""
    prepared: list[AlignedPair] = []
    for source_path, target_path in parallel:
        pairs = read_parallel(source_path, target_path, max_pairs)
        if not pairs:
            raise UserError(f"no non-empty sentence pairs in {source_path} / {target_path}")
        info(f"aligning {len(pairs)} sentence pairs of {Path(target_path).name} with eflomal")
        source_words = split_words(tokenizer, [s for s, _ in pairs])
        target_words = split_words(tokenizer, [t for _, t in pairs])
        links = eflomal_links(source_words, target_words)
        common = dict(is_split_into_words=True, truncation=True, max_length=max_length)
        source_enc = tokenizer(source_words, **common)
        target_enc = tokenizer(target_words, **common)
        for i, pair_links in enumerate(links):
            s_words, t_words = source_enc.word_ids(i), target_enc.word_ids(i)
            s_seen, t_seen = set(s_words) - {None}, set(t_words) - {None}
            kept = [(s, t) for s, t in pair_links if s in s_seen and t in t_seen]
            if kept:
                prepared.append(AlignedPair(source_enc["input_ids"][i], s_words,
                                            target_enc["input_ids"][i], t_words, kept))
    if not prepared:
        raise UserError("eflomal found no word alignment links in the parallel text; give more "
                        "sentence pairs (statistical aligners need hundreds at least)")
    return prepared


# ----------------------------------------------------------------------------- word vectors

def _pad(sequences: list[list[int]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, :len(sequence)] = 1
    return ids.to(device), mask.to(device)


def _pooling_matrix(word_ids: list[list[int | None]], width: int, pooling: str, device: str) -> torch.Tensor:
    """(batch, words, tokens) weights turning token vectors into word vectors."""
    n_words = max((max((w for w in ids if w is not None), default=-1) + 1 for ids in word_ids), default=0)
    matrix = torch.zeros((len(word_ids), max(n_words, 1), width))
    for row, ids in enumerate(word_ids):
        seen: set[int] = set()
        for position, word in enumerate(ids):
            if word is None or (pooling == "first" and word in seen):
                continue
            seen.add(word)
            matrix[row, word, position] = 1.0
    if pooling != "first":
        matrix = matrix / matrix.sum(-1, keepdim=True).clamp(min=1.0)
    return matrix.to(device)


def word_vectors(encoder: torch.nn.Module, ids: list[list[int]], word_ids: list[list[int | None]], *,
                 pad_id: int, layer: int | None, pooling: str, device: str) -> torch.Tensor:
    """(batch, words, hidden) contextual word vectors of one layer (None = last)."""
    input_ids, attention = _pad(ids, pad_id, device)
    hidden = encoder(input_ids=input_ids, attention_mask=attention, output_hidden_states=True).hidden_states
    states = hidden[-1 if layer is None else layer]
    return _pooling_matrix(word_ids, input_ids.shape[1], pooling, device) @ states


def _link_index(batch: list[AlignedPair], device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = [row for row, pair in enumerate(batch) for _ in pair.links]
    sources = [s for pair in batch for s, _ in pair.links]
    targets = [t for pair in batch for _, t in pair.links]
    return (torch.tensor(rows, device=device), torch.tensor(sources, device=device),
            torch.tensor(targets, device=device))


def _word_mask(word_ids: list[list[int | None]], n_words: int, device: str) -> torch.Tensor:
    mask = torch.zeros((len(word_ids), n_words), dtype=torch.bool)
    for row, ids in enumerate(word_ids):
        for word in ids:
            if word is not None:
                mask[row, word] = True
    return mask.to(device)


# ----------------------------------------------------------------------------- training

def align_model(model, tokenizer, parallel: list[tuple[Path, Path]], *, steps: int, learning_rate: float,
                batch_size: int, regularize: bool = True, device: str = "cpu", seed: int = 0,
                max_pairs: int | None = None, regularization_weight: float = 1.0,
                layer: int | None = None, word_pooling: str = "mean", max_length: int = 128,
                aligned_pairs: list[AlignedPair] | None = None, tracker=None) -> dict:
    """Fine-tune the model's encoder in place so aligned words of target sentences move toward their
    source translations. Returns {"pairs", "links", "loss_start", "loss_end", "seconds", ...};
    loss_start/loss_end are the mean total loss over the first/last few steps. `aligned_pairs`
    (from `prepare_aligned_pairs`) reuses an earlier eflomal run instead of reading `parallel`."""
    if steps < 1 or batch_size < 1 or learning_rate <= 0:
        raise UserError(f"alignment needs steps >= 1, batch_size >= 1 and learning_rate > 0 "
                        f"(got {steps}, {batch_size}, {learning_rate})")
    if word_pooling not in ("mean", "first"):
        raise UserError(f"word_pooling must be 'mean' or 'first', not {word_pooling!r}")
    if not parallel and not aligned_pairs:
        raise UserError("alignment fine-tuning needs at least one (source, target) parallel file pair")
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pairs = aligned_pairs or prepare_aligned_pairs(tokenizer, parallel, max_pairs=max_pairs,
                                                   max_length=max_length)
    aligned_seconds = time.perf_counter() - started
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    encoder = encoder_of(model)
    encoder.to(device)
    reference = None
    if regularize:
        reference = copy.deepcopy(encoder).eval()
        reference.requires_grad_(False)
    was_training = encoder.training
    encoder.train()
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=learning_rate)
    common = dict(pad_id=pad_id, layer=layer, pooling=word_pooling, device=device)

    losses: list[float] = []
    order = rng.permutation(len(pairs))
    cursor = 0
    progress = bar(total=steps, desc="align", unit="step")
    try:
        for step in range(steps):
            if cursor + batch_size > len(order):  # new epoch, reshuffled
                order, cursor = rng.permutation(len(pairs)), 0
            batch = [pairs[i] for i in order[cursor:cursor + batch_size]]
            cursor += batch_size
            source_ids, source_words = [p.source_ids for p in batch], [p.source_words for p in batch]
            src = word_vectors(encoder, source_ids, source_words, **common)
            trg = word_vectors(encoder, [p.target_ids for p in batch], [p.target_words for p in batch],
                               **common)
            rows, s_idx, t_idx = _link_index(batch, device)
            align_loss = ((src[rows, s_idx] - trg[rows, t_idx]) ** 2).sum(-1).mean()
            loss = align_loss
            reg_loss = torch.zeros((), device=device)
            if reference is not None:
                with torch.no_grad():
                    anchor = word_vectors(reference, source_ids, source_words, **common)
                mask = _word_mask(source_words, src.shape[1], device)
                reg_loss = ((src - anchor) ** 2).sum(-1)[mask].mean()
                loss = loss + regularization_weight * reg_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
            if tracker is not None:
                tracker.log({"align/loss": losses[-1], "align/alignment_loss": align_loss.item(),
                             "align/regularizer": reg_loss.item()}, step=step)
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
    finally:
        progress.close()
        encoder.train(was_training)
    window = max(1, min(10, math.ceil(steps / 5)))
    stats = {
        "pairs": len(pairs),
        "links": sum(len(p.links) for p in pairs),
        "steps": steps,
        "loss_start": float(np.mean(losses[:window])),
        "loss_end": float(np.mean(losses[-window:])),
        "regularize": regularize,
        "alignment_seconds": aligned_seconds,
        "seconds": time.perf_counter() - started,
    }
    summary(f"alignment fine-tuning: {stats['pairs']} sentence pairs, {stats['links']} eflomal links, "
            f"{steps} steps, loss {stats['loss_start']:.4f} -> {stats['loss_end']:.4f} "
            f"in {stats['seconds']:.1f}s")
    return stats


# ----------------------------------------------------------------------------- measurement CLI

def main(argv: list[str] | None = None) -> int:
    """Tatoeba accuracy of a checkpoint before and after alignment fine-tuning."""
    from transformers import AutoModel, AutoTokenizer

    from .neutrality import analyse_language_neutrality
    from .retrieval import evaluate_tatoeba

    parser = argparse.ArgumentParser(
        prog="python -m mbert.transfer.alignment",
        description="Align a checkpoint on parallel text (Cao et al. 2020) and report Tatoeba accuracy "
                    "before and after.",
        epilog="example: python -m mbert.transfer.alignment RUN/pretrain/model --parallel en.txt de.txt "
               "--tatoeba ../shared/data/tatoeba --languages de fr --steps 200")
    parser.add_argument("model", type=Path, help="checkpoint folder (save_pretrained + tokenizer)")
    parser.add_argument("--parallel", nargs=2, action="append", type=Path, metavar=("SOURCE", "TARGET"),
                        required=True, help="line-aligned source (English) and target files; repeatable")
    parser.add_argument("--tatoeba", type=Path, required=True, help="folder with tatoeba.*-eng.* files")
    parser.add_argument("--languages", nargs="+", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-pairs", type=int, default=None)
    parser.add_argument("--no-regularize", action="store_true")
    parser.add_argument("--layer", type=int, default=None, help="Tatoeba layer (default: last)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--analysis", type=Path, default=None,
                        help="also write the language-neutrality analysis to ANALYSIS/before and /after")
    args = parser.parse_args(argv)
    try:
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        model = AutoModel.from_pretrained(args.model)
        before = evaluate_tatoeba(model, tokenizer, args.tatoeba, args.languages, layer=args.layer)
        if args.analysis:
            analyse_language_neutrality(model, tokenizer, args.tatoeba, args.languages, args.analysis / "before")
        stats = align_model(model, tokenizer, [tuple(p) for p in args.parallel], steps=args.steps,
                            learning_rate=args.learning_rate, batch_size=args.batch_size,
                            regularize=not args.no_regularize, seed=args.seed, max_pairs=args.max_pairs)
        after = evaluate_tatoeba(model, tokenizer, args.tatoeba, args.languages, layer=args.layer)
        if args.analysis:
            analyse_language_neutrality(model, tokenizer, args.tatoeba, args.languages, args.analysis / "after")
    except UserError as error:
        print(f"error: {error}")
        return error.exit_code
    print("language  xx->en before  xx->en after  en->xx before  en->xx after")
    for lang in args.languages:
        print(f"{lang:8}  {before[lang]['xx->en']:13.1f}  {after[lang]['xx->en']:12.1f}  "
              f"{before[lang]['en->xx']:13.1f}  {after[lang]['en->xx']:12.1f}")
    print(f"pairs {stats['pairs']}, links {stats['links']}, loss {stats['loss_start']:.4f} -> "
          f"{stats['loss_end']:.4f}, {stats['seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
