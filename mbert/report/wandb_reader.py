"""Read an offline W&B run file (`run-<id>.wandb`) without the W&B service.

The file is a LevelDB-style log (https://github.com/google/leveldb/blob/main/doc/log_format.md):
a 7-byte header (":W&B", magic 0xBEE1, version), then 32 KiB blocks of records, each with a
crc32 / length / type header; a record split across blocks comes as FIRST, MIDDLE..., LAST.
Every record is a `wandb_internal_pb2.Record` protobuf. Used by tests and to inspect offline runs."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

from ..errors import UserError

HEADER = struct.Struct("<4sHB")
RECORD_HEADER = struct.Struct("<IHB")
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes, path: Path) -> Iterator[bytes]:
    ident, magic, _version = HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise UserError(f"{path} is not a W&B run file (bad header); pass a run-<id>.wandb file")
    position, pending = HEADER.size, b""
    while position + RECORD_HEADER.size <= len(data):
        room = BLOCK - position % BLOCK
        if room < RECORD_HEADER.size:  # block trailer: zero padding
            position += room
            continue
        checksum, length, kind = RECORD_HEADER.unpack_from(data, position)
        position += RECORD_HEADER.size
        chunk = data[position:position + length]
        position += length
        if kind == 0 and length == 0:
            break  # preallocated, never written
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != checksum or len(chunk) != length:
            break  # torn tail of a run that is still writing
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def read_records(path: Path) -> Iterator[Any]:
    """Every protobuf `Record` in the file, in order."""
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    for payload in _payloads(path.read_bytes(), path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def find_run_file(folder: Path) -> Path:
    """The newest `run-*.wandb` below `folder` (a run folder or a tracker's `run_path`)."""
    files = sorted(Path(folder).rglob("run-*.wandb"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise UserError(f"no W&B run file (run-*.wandb) below {folder}; was W&B on (--wandb offline)?")
    return files[-1]


def wait_until_finished(path: Path) -> Path:
    """`path` once it holds its `exit` record. W&B's service writes the file in the background and
    may still be flushing it just after `run.finish()` returns; then this waits for the service of
    this process to shut down (`wandb.teardown()`), which closes every run file. It waits for that
    event, never for a fixed time, so a slow (loaded) machine only makes it slower. A run written
    by another process that is still running has no exit record yet: that is an error."""
    if not _has_exit_record(path):
        import wandb

        wandb.teardown()
    if not _has_exit_record(path):
        raise UserError(f"{path} has no exit record: the W&B run did not finish (or another process "
                        f"is still writing it)")
    return Path(path)


def _has_exit_record(path: Path) -> bool:
    return Path(path).is_file() and any(r.WhichOneof("record_type") == "exit" for r in read_records(path))


def _items(items: Any) -> dict[str, Any]:
    return {(item.key or ".".join(item.nested_key)): json.loads(item.value_json) for item in items}


def summary_values(path: Path) -> dict[str, Any]:
    """The run summary as the file leaves it (later updates win); nested keys joined with '.'."""
    summary: dict[str, Any] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == "summary":
            summary.update(_items(record.summary.update))
    return summary


def history_rows(path: Path) -> list[dict[str, Any]]:
    """Each logged history step as {key: value}; nested keys (tables, images) joined with '.'."""
    return [_items(record.history.item) for record in read_records(path)
            if record.WhichOneof("record_type") == "history"]


def logged_tables(path: Path) -> dict[str, dict[str, Any]]:
    """Tables logged in the run: key -> their reference (path under files/, nrows, ncols, sha256)."""
    tables: dict[str, dict[str, Any]] = {}
    for row in history_rows(path):
        for key, value in row.items():
            if key.endswith("._type") and value == "table-file":
                name = key[: -len("._type")]
                tables[name] = {k[len(name) + 1:]: v for k, v in row.items() if k.startswith(name + ".")}
    return tables


def chart_definitions(path: Path) -> dict[str, dict[str, Any]]:
    """Custom charts (e.g. `wandb.plot.bar`) the run defined: key -> panel config (panelDefId,
    fieldSettings, stringSettings, userQuery naming the chart's data table), from its config records."""
    charts: dict[str, dict[str, Any]] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == "config":
            for item in record.config.update:
                if list(item.nested_key[:2]) == ["_wandb", "visualize"] and len(item.nested_key) == 3:
                    charts[item.nested_key[2]] = json.loads(item.value_json)["panel_config"]
    return charts


def load_table(run_file: Path, reference: dict[str, Any]) -> dict[str, Any]:
    """The {columns, data} JSON a table reference points to, from the run's files/ folder."""
    return json.loads((Path(run_file).parent / "files" / reference["path"]).read_text(encoding="utf-8"))
