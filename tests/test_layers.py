"""Layers point one way: the shared bottom (settings, artefacts, tracking, I/O helpers) < corpus <
vocab < pretrain < transfer < report < the command line and `mbert run`. A module imports its own
layer or lower ones only; imports inside functions and under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mbert"
LAYERS = ("bottom", "corpus", "vocab", "pretrain", "transfer", "report", "cli")
TOP = {"mbert.cli", "mbert.__main__", "mbert.run_cli", "mbert.bench_cli", "mbert.pipeline", "mbert.recipe"}


def layer(module: str) -> int:
    """The layer of a module name: stage sub-packages by name, their `cli` modules and the
    top-level commands on top, every other top-level module at the bottom."""
    parts = module.split(".")
    if module in TOP or (len(parts) == 3 and parts[2] == "cli"):
        return LAYERS.index("cli")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return LAYERS.index("bottom")


def modules(root: Path) -> dict[str, Path]:
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `module` imports (`from . import x` resolved to the module `x` when it is one)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return {name for name in found if name == "mbert" or name.startswith("mbert.")}


def reverse_imports(root: Path) -> list[str]:
    found = modules(root)
    return sorted(f"{module} ({LAYERS[layer(module)]}) imports {target} ({LAYERS[layer(target)]})"
                  for module, path in found.items() for target in imported(module, path, set(found))
                  if layer(target) > layer(module))


def test_no_module_imports_a_higher_layer():
    assert reverse_imports(PACKAGE) == []


def test_a_planted_reverse_import_is_found(tmp_path):
    """The check itself: a stage reaching up into the report, at module level or inside a function."""
    root = tmp_path / "mbert"
    for name in ("__init__.py", "tracking.py", "corpus/__init__.py", "report/__init__.py", "report/plots.py",
                 "transfer/__init__.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    (root / "corpus" / "sample.py").write_text("from ..tracking import Tracker\n\n"
                                               "def draw():\n    from ..report import plots\n")
    (root / "transfer" / "evaluate.py").write_text("import mbert.report.plots\nfrom mbert.corpus import sample\n")
    assert reverse_imports(root) == [
        "mbert.corpus.sample (corpus) imports mbert.report (report)",
        "mbert.corpus.sample (corpus) imports mbert.report.plots (report)",
        "mbert.transfer.evaluate (transfer) imports mbert.report.plots (report)"]
    assert layer("mbert.pretrain.cli") == layer("mbert.pipeline") > layer("mbert.report.build")
