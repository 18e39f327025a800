"""The package's shape (shared/DESIGN.md): layered subpackages whose imports only point down, no
import cycles, and no private name imported from another module.

Walks ``src/actspec`` with ``ast`` (imports inside functions count too: a lazy import that
points up is still an upward dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "actspec"

# lowest first; a module may import from its own layer or any layer before it
LAYERS = ("core", "activations", "kernels", "highprec", "finite", "spectra", "data", "plots",
          "experiments", "sweep", "cli")
TOP = len(LAYERS)  # actspec/__init__.py and __main__.py sit above everything


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module} is in no layer: move it into one of {', '.join(LAYERS)}")
    return LAYERS.index(parts[1])


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every actspec import in the file."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "actspec":
                continue
            names = [a.name for a in node.names]
            # 'from . import x' names a submodule when one exists
            subs = [n for n in names if (PKG.parent / target.replace(".", "/") / n).exists()
                    or (PKG.parent / target.replace(".", "/") / f"{n}.py").exists()]
            for n in subs:
                out.append((node.lineno, f"{target}.{n}", []))
            rest = [n for n in names if n not in subs]
            if rest:
                out.append((node.lineno, target, rest))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "actspec":
                    out.append((node.lineno, a.name, []))
    return out


FILES = sorted(PKG.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in FILES:
        _layer(_module(path))


def test_imports_point_down() -> None:
    bad = []
    for path in FILES:
        src = _module(path)
        for line, target, _ in _imports(path):
            if target == "actspec" and src.count(".") > 0:
                bad.append(f"{src}:{line} imports the root package actspec")
            elif _layer(target) > _layer(src):
                bad.append(f"{src}:{line} imports {target} (layer {LAYERS[_layer(target)]} is above "
                           f"{LAYERS[_layer(src)] if _layer(src) < TOP else 'top'})")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules() -> None:
    bad = []
    for path in FILES:
        src = _module(path)
        for line, target, names in _imports(path):
            priv = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if priv and target != src:
                bad.append(f"{src}:{line} imports private {', '.join(priv)} from {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in FILES}
    for path in FILES:
        src = _module(path)
        for _, target, _ in _imports(path):
            # a package's __init__ importing its own submodules is not a cycle of concepts
            if target in modules and target != src and not target.startswith(src + "."):
                graph.setdefault(src, set()).add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", ["actspec", "actspec.cli"])
def test_fast_import(module: str) -> None:
    """``import actspec`` and the CLI (``actspec --help``) load none of the heavy libraries: they
    load where they are used."""
    import subprocess
    import sys

    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'matplotlib', 'dask', 'duckdb', "
            "'mpmath', 'scipy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loads {out.stdout.strip()}"
