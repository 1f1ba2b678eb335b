"""Command-line flags made from the settings dataclasses, and the options every command shares.

The bottom of the command line: each stage's `cli` module builds its commands with `add_command`
and `add_settings_flags`; `mbert.cli` only assembles them. As `transformers.HfArgumentParser`
does, every field of a settings dataclass becomes a flag whose name, type, choices, help, default
and range come from its `setting(...)`: `--max-seq-length` (plus the short name of its `flag`
metadata, `--seq-len`), `--nsp/--no-nsp` for a boolean, `--seeds 1 2 3` (repeatable) for a list,
`--compare NAME=DIR` (repeatable) for a table. A flag that is not given is absent from the parsed
arguments (argparse.SUPPRESS), so it never overrides the recipe: defaults < recipe < --set < flags."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from .config import allowed_range, parse_value
from .run_settings import RunSettings

Handler = Callable[[argparse.Namespace], int | None]


def common_options() -> argparse.ArgumentParser:
    """--debug/--quiet, accepted after the sub-command too (SUPPRESS keeps the top-level value)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    parent.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars (summaries still print)")
    return parent


def recipe_options() -> argparse.ArgumentParser:
    """Options every stage command shares: a recipe, overrides, the W&B settings of `[run]`."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--recipe", metavar="FILE", help="take settings from this recipe (TOML); flags override it")
    parent.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override one recipe setting, e.g. --set pretrain.steps=100 (repeatable)")
    add_settings_flags(parent, "run", RunSettings, only=("wandb", "wandb_project"))
    return parent


def add_command(sub: argparse._SubParsersAction, name: str, *, help: str, example: str,
                handler: Handler, recipe: bool = True) -> argparse.ArgumentParser:
    """A sub-command whose --help ends with a usage example."""
    parents = [common_options()] + ([recipe_options()] if recipe else [])
    parser = sub.add_parser(name, help=help, description=help, parents=parents, epilog="example:\n  " + example,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def add_settings_flags(parser: argparse.ArgumentParser, section: str, cls: type, *,
                       only: Iterable[str] | None = None, skip: Iterable[str] = (), title: str = "") -> None:
    """One flag per field of the settings dataclass `cls` (`[section]` of a recipe), except those in
    `skip` (fields a command sets with a hand-written flag, e.g. `--tlm`) or outside `only`; `title`
    names the group in --help when the settings are not a recipe's."""
    hints = typing.get_type_hints(cls)
    title = title or f"[{section}] settings (also in a recipe; a flag overrides it)"
    group = next((g for g in parser._action_groups if g.title == title), None) or parser.add_argument_group(title)
    for field in dataclasses.fields(cls):
        if field.name in skip or (only is not None and field.name not in only):
            continue
        group.add_argument(*option_strings(field), dest=f"{section}.{field.name}", default=argparse.SUPPRESS,
                           help=_help(field, hints[field.name]), **_parse_as(hints[field.name], field))


def option_strings(field: dataclasses.Field) -> list[str]:
    """`--seq-len`, `--max-seq-length`: the short name of the metadata (if any), then the field's."""
    own = "--" + field.name.replace("_", "-")
    short = field.metadata.get("flag")
    return [f"--{short}", own] if short else [own]


def flag_name(cls: type, name: str) -> str:
    """The flag of the field `name` of `cls` as help and messages show it (`--artifacts`)."""
    return option_strings(next(f for f in dataclasses.fields(cls) if f.name == name))[0]


def given(args: argparse.Namespace, section: str) -> dict[str, Any]:
    """The `[section]` settings given as flags: field name -> value."""
    prefix = f"{section}."
    return {key[len(prefix):]: value for key, value in vars(args).items() if key.startswith(prefix)}


def _parse_as(tp: Any, field: dataclasses.Field) -> dict[str, Any]:
    """argparse keywords (type, choices, action, nargs, metavar) for a field of type `tp`."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        tp = next(arg for arg in args if arg is not type(None))  # `int | None`: unset is the default
    origin = typing.get_origin(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is list:  # `--seeds 1 2 3` or `--seeds 1 --seeds 2`
        return {"action": "extend", "nargs": "+", **_scalar(typing.get_args(tp)[0], field)}
    if origin is dict:
        return {"action": _Table, "metavar": "KEY=VALUE", "text": typing.get_args(tp)[1] in (str, Path)}
    return _scalar(tp, field)


_METAVARS = {"file": "FILE", "dir": "DIR", "out": "DIR", "exists": "PATH", "input": "PATH"}


def _scalar(tp: Any, field: dataclasses.Field) -> dict[str, Any]:
    if typing.get_origin(tp) is Literal:
        return {"choices": list(typing.get_args(tp))}
    if tp in (int, float):
        return {"type": tp, "metavar": "N" if tp is int else "X"}
    if tp in (str, Path):
        choices = field.metadata.get("choices")
        metavar = _METAVARS.get(field.metadata.get("path"), field.name.upper())
        return {"choices": list(choices)} if choices else {"metavar": metavar}
    raise TypeError(f"no flag for the setting {field.name} of type {tp!r}: give its command a hand-written "
                    f"flag and list the field in `skip`")


class _Table(argparse.Action):
    """`KEY=VALUE`, repeatable, into one table. VALUE is text for a table of strings or paths,
    else read as TOML (`fo={name = "Faroese", script = "Latn"}`), as `--set` reads it."""

    def __init__(self, *args: Any, text: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text = text

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any,
                 option_string: str | None = None) -> None:
        key, sep, raw = str(value).partition("=")
        if not (sep and key.strip()):
            raise argparse.ArgumentError(self, f"{value!r} must look like KEY=VALUE")
        table = dict(getattr(namespace, self.dest, None) or {})
        table[key.strip()] = raw if self.text else parse_value(raw)
        setattr(namespace, self.dest, table)


def _help(field: dataclasses.Field, tp: Any) -> str:
    """The setting's help with its default and range appended (never written twice by hand)."""
    notes = []
    default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
    if default not in (dataclasses.MISSING, None, [], {}):
        notes.append(f"default: {_shown(default)}")
    if allowed_range(field.metadata):
        notes.append(f"allowed: {allowed_range(field.metadata)}")
    if typing.get_origin(tp) is dict:
        notes.append("repeatable")
    text = " ".join(filter(None, [field.metadata.get("help", ""), f"({'; '.join(notes)})" if notes else ""]))
    return text.replace("%", "%%")  # argparse formats help with %


def _shown(value: Any) -> str:
    """A default as a recipe would write it (true, 0.7, base)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
