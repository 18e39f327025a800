"""Static checks in CI: ruff (style, imports, bug patterns) and mypy (types of the package).

Both tools come with the ``test`` extra, so the README's test command runs them from a clean
checkout; they are skipped only when not installed (e.g. a bare ``pip install pytest``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    try:
        __import__(name)
    except ImportError:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
        return [name]
    return [sys.executable, "-m", name]


def test_ruff_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = subprocess.run([*_tool("mypy"), "src"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
