"""Training data sources: the instance order of each objective (MLM from the token store, TLM
from line-aligned parallel files)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..fake import fake_text, parse_fake_code
from ..textfiles import read_lines
from . import instances as I
from .settings import PretrainSettings

OBJECTIVES = {"mlm": 0, "tlm": 1}


class Order:
    """Instance order: a fresh seeded permutation per epoch; position p of the stream is
    instance perm_{p // n}[p % n]."""

    def __init__(self, n: int, seed: int, salt: int) -> None:
        self.n, self.seed, self.salt = n, seed, salt
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            self._cache[epoch] = np.random.default_rng([self.seed, self.salt, epoch]).permutation(self.n)
        return self._cache[epoch]

    def take(self, position: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        stream = np.arange(position, position + count)
        epochs = stream // self.n
        index = np.empty(count, np.int64)
        for epoch in np.unique(epochs):
            sel = epochs == epoch
            index[sel] = self.permutation(int(epoch))[stream[sel] % self.n]
        return index, epochs


class Source:
    """Token array + instances of one objective."""

    def __init__(self, name: str, tokens: np.ndarray, instances: np.ndarray, seed: int) -> None:
        self.name, self.tokens, self.instances = name, tokens, instances
        self.order = Order(len(instances), seed, OBJECTIVES[name])


def tlm_source(settings: PretrainSettings, tokenizer, languages: list[str]) -> Source | None:
    """Tokenise the parallel files (small) and pair their lines into TLM instances."""
    if not settings.tlm or settings.tlm_ratio == 0:
        return None
    chunks: list[np.ndarray] = []
    all_rows = []
    offset = 0
    rng = np.random.default_rng([settings.seed, 17])
    for pair in settings.tlm:
        src, tgt = read_lines(pair.src), read_lines(pair.tgt)
        if len(src) != len(tgt):
            raise UserError(f"TLM files are not line-aligned: {pair.src} has {len(src)} lines, "
                            f"{pair.tgt} has {len(tgt)}; give files with one translation per line")
        keep = [i for i in range(len(src)) if src[i].strip() and tgt[i].strip()]
        ranges = []
        for lines, code in ((src, pair.src_lang), (tgt, pair.tgt_lang)):
            side = [lines[i].strip() for i in keep]
            if parse_fake_code(code) is not None:  # a fake side is its base language's text, mapped
                side = [fake_text(line, code) for line in side]
            # verbose=False: a long line is cut into sequences later, not a mistake to warn about
            ids = tokenizer(side, add_special_tokens=False, verbose=False,
                            return_attention_mask=False)["input_ids"] if side else []
            lengths = np.fromiter((len(s) for s in ids), np.int64, len(ids))
            starts = offset + np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(ids) else lengths
            chunks.append(np.fromiter((t for s in ids for t in s), np.int32, int(lengths.sum())))
            offset += int(lengths.sum())
            ranges.append(np.stack([starts, lengths], 1) if len(ids) else np.zeros((0, 2), np.int64))
        for code in (pair.src_lang, pair.tgt_lang):
            if code not in languages:
                languages.append(code)
        all_rows.append(I.build_pair_instances(ranges[0], ranges[1], languages.index(pair.src_lang),
                                               languages.index(pair.tgt_lang), settings.max_seq_length, rng))
    rows = np.concatenate(all_rows)
    if len(rows) == 0:
        raise UserError("the TLM files hold no non-empty sentence pair; check pretrain.tlm")
    return Source("tlm", np.concatenate(chunks), rows, settings.seed)
