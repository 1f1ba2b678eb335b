"""Masking and batching: instances (token ranges) become model inputs with MLM targets.

Masking is dynamic: every time an instance is seen it gets a new mask, drawn from a generator
seeded by (seed, objective, epoch, instance). The mask therefore depends only on which instance
is seen when, not on the process that sees it, so resumed and multi-process runs see exactly the
same masks as an uninterrupted single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import instances as I


@dataclass
class Vocabulary:
    """What masking needs to know about the tokenizer (ids read from it, never hard-coded)."""

    pad: int
    cls: int
    sep: int
    mask: int
    size: int
    replacement_ids: np.ndarray  # non-special ids a 10%-random replacement draws from
    continuation: np.ndarray     # bool per id: continues the previous word (whole-word masking)

    @classmethod
    def from_tokenizer(cls, tokenizer, continuation: np.ndarray) -> "Vocabulary":
        size = len(continuation)
        special = np.zeros(size, bool)
        special[[i for i in tokenizer.all_special_ids if i < size]] = True
        return cls(tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                   tokenizer.mask_token_id, size, np.flatnonzero(~special), continuation)


@dataclass
class Batch:
    input_ids: torch.Tensor                 # [B, L]
    attention_mask: torch.Tensor | None     # [B, L]; None when nothing is padding
    token_type_ids: torch.Tensor            # [B, L]
    position_ids: torch.Tensor | None       # [B, L]; set when positions restart (TLM)
    masked_positions: torch.Tensor          # [M] flat indices into B*L
    masked_labels: torch.Tensor             # [M] original ids
    nsp_labels: torch.Tensor | None         # [B] 1 = B is a random sentence
    n_tokens: int                           # non-padding tokens
    langs: torch.Tensor                     # [B] language index of segment A

    def _map(self, fn) -> "Batch":
        def apply(t):
            return None if t is None else fn(t)
        return Batch(apply(self.input_ids), apply(self.attention_mask), apply(self.token_type_ids),
                     apply(self.position_ids), apply(self.masked_positions), apply(self.masked_labels),
                     apply(self.nsp_labels), self.n_tokens, apply(self.langs))

    def to(self, device: torch.device) -> "Batch":
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> "Batch":
        return self._map(lambda t: t.pin_memory())


def mask_sequence(ids: np.ndarray, candidates: np.ndarray, vocab: Vocabulary, mask_prob: float,
                  whole_word: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BERT masking of one sequence: (masked ids, positions, original ids at those positions).

    `mask_prob` of the candidate positions are chosen (at least one); of those 80% become
    [MASK], 10% a random token, 10% stay unchanged. With whole-word masking the pieces of a
    word are chosen together."""
    positions = np.flatnonzero(candidates)
    if len(positions) == 0:
        return ids, positions, ids[positions]
    n_predict = max(1, int(round(len(positions) * mask_prob)))
    if whole_word:
        starts = ~vocab.continuation[ids[positions]]
        starts[0] = True
        # a continuation piece right after a non-candidate (e.g. [SEP]) starts a word of its own
        starts[1:] |= np.diff(positions) != 1
        word_id = np.cumsum(starts) - 1
        order = rng.permutation(int(word_id[-1]) + 1)
        sizes = np.bincount(word_id)
        chosen_words, count = [], 0
        for word in order:
            if count >= n_predict:
                break
            if count + sizes[word] > n_predict:
                continue  # as google-research/bert: skip words that would overshoot
            chosen_words.append(word)
            count += sizes[word]
        chosen = positions[np.isin(word_id, chosen_words)]
    else:
        chosen = np.sort(rng.choice(positions, size=n_predict, replace=False))
    labels = ids[chosen].copy()
    out = ids.copy()
    draw = rng.random(len(chosen))
    out[chosen[draw < 0.8]] = vocab.mask
    randomised = chosen[draw >= 0.9]
    out[randomised] = rng.choice(vocab.replacement_ids, size=len(randomised))
    return out, chosen, labels


def make_batch(tokens: np.ndarray, rows: np.ndarray, keys: list[tuple[int, ...]], vocab: Vocabulary,
               *, max_seq_length: int, mask_prob: float, whole_word: bool, nsp: bool,
               restart_positions: bool, language_types: bool) -> Batch:
    """One batch from instance rows; `keys[i]` seeds the mask of row i (see module docstring).

    `restart_positions` (TLM) numbers the second segment from 0 again; `language_types` puts
    each segment's language index in token_type_ids instead of 0/1."""
    sequences, types, positions_list, masked_pos, masked_lab = [], [], [], [], []
    for row, key in zip(rows, keys):
        a = np.asarray(tokens[row[I.A_START]:row[I.A_START] + row[I.A_LEN]], dtype=np.int64)
        parts = [[vocab.cls], a, [vocab.sep]]
        len_first = len(a) + 2
        if row[I.B_LEN] > 0:
            b = np.asarray(tokens[row[I.B_START]:row[I.B_START] + row[I.B_LEN]], dtype=np.int64)
            parts += [b, [vocab.sep]]
        seq = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        len_second = len(seq) - len_first
        first_type, second_type = (row[I.LANG_A], row[I.LANG_B]) if language_types else (0, 1)
        types.append(np.concatenate([np.full(len_first, first_type), np.full(len_second, second_type)]))
        if restart_positions:
            positions_list.append(np.concatenate([np.arange(len_first), np.arange(len_second)]))
        candidates = (seq != vocab.cls) & (seq != vocab.sep) & (seq != vocab.pad)
        masked, chosen, labels = mask_sequence(seq, candidates, vocab, mask_prob, whole_word,
                                               np.random.default_rng(list(key)))
        sequences.append(masked)
        masked_pos.append(chosen)
        masked_lab.append(labels)
    length = max(len(s) for s in sequences)
    length = min(max_seq_length, -(-length // 8) * 8)  # multiples of 8 suit the kernels
    batch = len(sequences)
    input_ids = np.full((batch, length), vocab.pad, dtype=np.int64)
    type_ids = np.zeros((batch, length), dtype=np.int64)
    position_ids = np.zeros((batch, length), dtype=np.int64) if restart_positions else None
    attention = np.zeros((batch, length), dtype=np.int64)
    flat_positions = []
    for i, seq in enumerate(sequences):
        input_ids[i, :len(seq)] = seq
        type_ids[i, :len(seq)] = types[i]
        attention[i, :len(seq)] = 1
        if position_ids is not None:
            position_ids[i, :len(seq)] = positions_list[i]
        flat_positions.append(masked_pos[i] + i * length)
    n_tokens = int(attention.sum())
    return Batch(
        input_ids=torch.from_numpy(input_ids),
        attention_mask=None if n_tokens == attention.size else torch.from_numpy(attention),
        token_type_ids=torch.from_numpy(type_ids),
        position_ids=None if position_ids is None else torch.from_numpy(position_ids),
        masked_positions=torch.from_numpy(np.concatenate(flat_positions).astype(np.int64)),
        masked_labels=torch.from_numpy(np.concatenate(masked_lab).astype(np.int64)),
        nsp_labels=torch.from_numpy(rows[:, I.RANDOM_NEXT].astype(np.int64)) if nsp else None,
        n_tokens=n_tokens,
        langs=torch.from_numpy(rows[:, I.LANG_A].astype(np.int64)))
