"""Settings: TOML recipes plus command-line overrides, validated up front against dataclass schemas.

Each stage declares its settings as a dataclass whose fields use `setting(...)` to state the
allowed range, choices or path kind. `build()` turns a plain dict (from TOML, `--set` or flags)
into that dataclass or raises one `ConfigError` line naming the key, the bad value and what is
allowed. Relative input paths in a recipe resolve against the recipe's folder, relative output
paths (`path="out"`) against the current folder; `${VAR}` and
`${VAR:-default}` in strings expand from the environment.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import glob
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import tomli_w

from .atomic import atomic_write_text
from .errors import ConfigError

# file/dir/exists: an input that must exist; input: an input the stage checks itself (globs, `hf:`
# names); out: an output, relative to the current folder.
PathKind = Literal["file", "dir", "exists", "input", "out"]
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
INT64_LIMIT = 1 << 63


def is_url(value: str) -> bool:
    """`hf:name`, `https://...`: a location that is not a local path (never made absolute)."""
    return bool(_SCHEME.match(value))


def setting(default: Any = dataclasses.MISSING, *, help: str = "", min: float | None = None,
            max: float | None = None, min_exclusive: bool = False, choices: typing.Sequence | None = None,
            path: PathKind | None = None, runtime: bool = False, flag: str | None = None) -> Any:
    """A dataclass field with validation metadata. Mutable defaults are copied per instance.

    `runtime=True` marks a setting that changes how a stage runs (workers, device, logging,
    checkpoint intervals, W&B) but never what it produces: it is left out of every fingerprint
    (`mbert.artifact.output_settings`), so changing it never redoes or replaces work.
    `flag` is a short command-line name (`seq-len` for `max_seq_length`) offered before the
    field's own (`--max-seq-length`); `mbert.flags` makes every command's flags from this metadata."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive,
            "choices": choices, "path": path, "runtime": runtime, "flag": flag}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ----------------------------------------------------------------------------- loading

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: str, key: str) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key} = {value!r} uses ${{{name}}}, which is not set; "
                          f"set it or write ${{{name}:-default}}")
    return _ENV.sub(replace, value)


def read_toml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; pass an existing TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path} is not UTF-8 text") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value); the value is read as TOML when it parses, else as a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {text!r}: the key {key!r} is empty or has an empty part")
    return parts, parse_value(raw)


def parse_value(raw: str) -> Any:
    """A value typed on the command line: TOML when it parses (`3`, `true`, `{name = "x"}`), else the text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(raw: dict, overrides: typing.Iterable[str]) -> dict:
    for text in overrides:
        parts, value = parse_override(text)
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is a value, not a section")
        node[parts[-1]] = value
    return raw


# ----------------------------------------------------------------------------- validation

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}"
    if tp is type(None):
        return "nothing (leave it out)"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            Path: "a path (string)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _fail(key: str, value: Any, allowed: str, where: str) -> typing.NoReturn:
    raise ConfigError(f"{where}{key} = {value!r} is invalid; allowed: {allowed}")


def _convert(value: Any, tp: Any, key: str, where: str, base_dir: Path, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        arms = [arg for arg in args if arg is not type(None)]
        if len(arms) == 1:  # Optional[X]: X's own message is the most precise
            return _convert(value, arms[0], key, where, base_dir, meta)
        for arg in arms:
            try:
                return _convert(value, arg, key, where, base_dir, meta)
            except ConfigError:
                continue
        _fail(key, value, _type_name(tp), where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            close = difflib.get_close_matches(str(value), [str(a) for a in typing.get_args(tp)], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(key, value, _type_name(tp) + hint, where)
        return value
    if origin is list:
        if isinstance(value, (str, Path)) and typing.get_args(tp)[0] in (str, Path):
            value = [value]  # one path where a list is expected is the common case
        if not isinstance(value, list):
            _fail(key, value, _type_name(tp), where)
        return [_convert(v, typing.get_args(tp)[0], f"{key}[{i}]", where, base_dir, meta)
                for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(key, value, _type_name(tp), where)
        return {str(k): _convert(v, typing.get_args(tp)[1], f"{key}.{k}", where, base_dir, meta)
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(key, value, "a table", where)
        return build(tp, value, section=key, where=where, base_dir=base_dir)
    if tp is bool:
        if not isinstance(value, bool):
            _fail(key, value, "true or false", where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, value, "an integer", where)
        if not -INT64_LIMIT <= value < INT64_LIMIT:  # numpy and torch counters are 64-bit
            _fail(key, value, f"an integer of at most 64 bits (below {INT64_LIMIT:.3g})", where)
        return _check_range(value, key, where, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(key, value, "a number", where)
        if not math.isfinite(value):  # nan passes every range check; inf is never a usable size or rate
            _fail(key, value, "a finite number", where)
        return _check_range(float(value), key, where, meta)
    if tp is str:
        if not isinstance(value, str):
            _fail(key, value, "a string", where)
        value = _expand_env(value, key)
        if meta.get("path") == "input" and not is_url(value) and not Path(value).is_absolute():
            value = str(base_dir / Path(value).expanduser())
        if meta.get("choices") and value not in meta["choices"]:
            _fail(key, value, "one of " + ", ".join(map(repr, meta["choices"])), where)
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            _fail(key, value, "a path (string)", where)
        return _check_path(Path(_expand_env(str(value), key)), key, where, base_dir, meta.get("path"))
    raise TypeError(f"unsupported setting type {tp!r} for {key}")


def allowed_range(meta: typing.Mapping) -> str:
    """The range a setting allows, as messages and flag help show it (`>= 1 and <= 96`); '' when it allows any."""
    parts = []
    if meta.get("min") is not None:
        parts.append(f"{'>' if meta.get('min_exclusive') else '>='} {meta['min']}")
    if meta.get("max") is not None:
        parts.append(f"<= {meta['max']}")
    return " and ".join(parts)


def _check_range(value: float, key: str, where: str, meta: dict) -> float:
    low, high = meta.get("min"), meta.get("max")
    too_low = low is not None and (value <= low if meta.get("min_exclusive") else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        raise ConfigError(f"{where}{key} = {value!r} is out of range; allowed: {allowed_range(meta)}")
    return value


def _check_path(path: Path, key: str, where: str, base_dir: Path, kind: str | None) -> Path:
    path = path.expanduser()
    if not path.is_absolute():
        # inputs live beside the recipe; outputs go where the user runs the command
        path = (Path.cwd() if kind == "out" else base_dir) / path
    if kind in (None, "out", "input"):
        return path
    if glob.has_magic(str(path)):
        if not glob.glob(str(path)):
            raise ConfigError(f"{where}{key} = {str(path)!r} matches no file; check the pattern")
        return path
    if not path.exists():
        raise ConfigError(f"{where}{key} = {str(path)!r} does not exist; give an existing "
                          f"{'file' if kind == 'file' else 'folder' if kind == 'dir' else 'path'}")
    if kind == "file" and not path.is_file():
        raise ConfigError(f"{where}{key} = {str(path)!r} is a folder; a file is expected")
    if kind == "dir" and not path.is_dir():
        raise ConfigError(f"{where}{key} = {str(path)!r} is a file; a folder is expected")
    return path


def build(cls: type, data: dict, *, section: str = "", where: str = "",
          base_dir: Path | None = None) -> Any:
    """Validate `data` against the dataclass `cls`; `section` prefixes keys in messages."""
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    prefix = f"{section}." if section else ""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}unknown key {prefix + name!r}{hint}; allowed keys: "
                              + ", ".join(sorted(known)))
    values = {}
    for name, fld in known.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], prefix + name, where, base_dir,
                                    dict(fld.metadata))
        elif isinstance(fld.default, Path) and not fld.default.is_absolute():
            values[name] = Path.cwd() / fld.default  # a relative default means the current folder
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}{prefix}{name} is required; allowed: {_type_name(hints[name])}")
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        check()  # cross-field rules, raising ConfigError
    return obj


# ----------------------------------------------------------------------------- saving

def to_plain(obj: Any) -> Any:
    """Dataclasses/Paths → TOML-ready dicts and strings; None values are dropped (TOML has no null)."""
    if dataclasses.is_dataclass(obj):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_resolved(out_dir: Path, sections: dict[str, Any], name: str = "resolved_config.toml") -> Path:
    """Write the fully resolved settings next to an artefact, as TOML."""
    path = Path(out_dir) / name
    atomic_write_text(path, "# Settings this artefact was produced with (resolved by mbert).\n"
                      + tomli_w.dumps(to_plain(sections)))
    return path
