"""Where a corpus folder keeps its Parquet shards; read by every stage that consumes a corpus.

Two layouts, both written by the corpus stage:
- a mixture folder: `DIR/part-*.parquet` with columns lang, id, title, text;
- a clean folder: `DIR/<lang>/part-*.parquet` with columns id, title, text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..artifact import fingerprint
from ..errors import UserError


@dataclass(frozen=True)
class Shard:
    path: Path
    lang: str | None  # None: the language is in the shard's `lang` column (mixture layout)


@dataclass
class CorpusFolder:
    root: Path
    layout: str  # "mixture" or "clean"
    shards: list[Shard] = field(default_factory=list)


def find_corpus(root: Path) -> CorpusFolder:
    """Recognise the folder layout; a clear error when it holds no shards."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"corpus folder {root} does not exist; pass the output of `mbert corpus sample` "
                        f"(RUN/corpus/mixture) or `mbert corpus extract` (RUN/corpus/clean)")
    mixture = sorted(root.glob("part-*.parquet"))
    if mixture:
        return CorpusFolder(root, "mixture", [Shard(p, None) for p in mixture])
    clean = [Shard(p, p.parent.name) for p in sorted(root.glob("*/part-*.parquet"))]
    if clean:
        return CorpusFolder(root, "clean", clean)
    raise UserError(f"corpus folder {root} holds no Parquet shards: expected {root}/part-*.parquet (a mixture) "
                    f"or {root}/<lang>/part-*.parquet (a clean corpus); build it with `mbert corpus` first")


def corpus_fingerprint(folder: CorpusFolder) -> str:
    """Cheap identity of a corpus: its layout and each shard's name, size and row count (read from
    the Parquet footer), so a copied or moved corpus keeps its identity and a rebuilt one does not."""
    shards = []
    for shard in folder.shards:
        try:
            rows = pq.ParquetFile(shard.path).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise UserError(f"cannot read corpus shard {shard.path} ({exc}); it is damaged or not Parquet: "
                            f"rebuild the corpus or remove the file") from None
        shards.append([shard.path.relative_to(folder.root).as_posix(), shard.path.stat().st_size, rows])
    return fingerprint(folder.layout, shards)
