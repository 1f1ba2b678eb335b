"""Parquet shard writing: each file appears under its final name only once closed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLEAN_SCHEMA = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
MIXTURE_SCHEMA = pa.schema([("lang", pa.string()), ("id", pa.string()), ("title", pa.string()),
                            ("text", pa.string())])


def string_array(values: list[str]) -> pa.Array:
    """An Arrow string array built from its buffers: `pa.array` would import pandas (≈0.4 s of
    start-up in every worker process) just to check whether the list is a pandas object."""
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(len(encoded), pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(b"".join(encoded)))
    large = pa.LargeStringArray.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))
    return large.cast(pa.string())  # over 2 GiB in one group: let Arrow fail clearly if it must


class ShardWriter:
    """Rows buffered in memory up to `group_rows` rows or `group_bytes` bytes of text, written as
    row groups of one Parquet file."""

    def __init__(self, path: Path, schema: pa.Schema = CLEAN_SCHEMA, group_rows: int = 1000,
                 group_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.schema = schema
        self.group_rows = group_rows
        self.group_bytes = group_bytes
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.rows = 0
        self.text_bytes = 0
        self.buffered_bytes = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, **row: str) -> None:
        for name in self.schema.names:
            self.columns[name].append(row[name])
        self.rows += 1
        size = len(row["text"].encode("utf-8"))
        self.text_bytes += size
        self.buffered_bytes += size
        if len(self.columns[self.schema.names[0]]) >= self.group_rows or self.buffered_bytes >= self.group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        table = pa.Table.from_arrays([string_array(self.columns[name]) for name in self.schema.names],
                                     schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)
        self.columns = {name: [] for name in self.schema.names}
        self.buffered_bytes = 0

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


class RotatingWriter:
    """`part-00000.parquet`, `part-00001.parquet`, ... of about `shard_bytes` of text each."""

    def __init__(self, folder: Path, schema: pa.Schema = CLEAN_SCHEMA, shard_bytes: int = 256 << 20,
                 group_rows: int = 1000) -> None:
        self.folder = Path(folder)
        self.schema = schema
        self.shard_bytes = shard_bytes
        self.group_rows = group_rows
        self.parts: list[Path] = []
        self._current: ShardWriter | None = None

    def write(self, **row: str) -> None:
        if self._current is None:
            path = self.folder / f"part-{len(self.parts):05d}.parquet"
            self._current = ShardWriter(path, self.schema, self.group_rows)
        self._current.write(**row)
        if self._current.text_bytes >= self.shard_bytes:
            self.parts.append(self._current.close())
            self._current = None

    def close(self) -> list[Path]:
        if self._current is not None:
            self.parts.append(self._current.close())
            self._current = None
        return self.parts

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()


def iter_rows(path: Path, columns: list[str], batch_size: int = 1000):
    """Rows of a Parquet file as dicts, read a batch at a time."""
    reader = pq.ParquetFile(path)
    for batch in reader.iter_batches(batch_size=batch_size, columns=columns):
        yield from batch.to_pylist()
