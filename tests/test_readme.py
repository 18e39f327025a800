"""The README runs as printed (issue 17, item 11): every fenced ```bash and ```python block of
README.md is extracted and run, at small sizes, in a temporary directory.

Sizes are reduced by one documented mapping (:data:`SIZES`: each flag's value is capped, nothing
else changes), so every command, flag and file name is the README's own. Commands that cannot run
here are listed in :data:`SKIP` with the reason. The model examples use the repository's
``examples/models`` files. The whole file takes about 25 s of CPU (most of it the first
command's kernel tables and the three model examples). Outputs (``--json``, ``--plot``,
``--out``, ...) must exist afterwards.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from actspec.cli import run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: commands (by their first words) that are not run, and why
SKIP: dict[str, str] = {
    "pip install": "installs the package; the suite runs against the installed package already",
    "python -m pytest": "runs this very test suite",
    "actspec gram -a relu --data cifar10": "needs the CIFAR-10 python batches on disk (actspec "
    "never downloads them); gram is run on synthetic data in tests/test_checkpoint.py",
    "actspec reproduce all": "the full set of reproductions takes minutes even with --quick; "
    "tests/test_reproduce.py runs its parts at small sizes",
    "actspec analyze 'x*sigmoid(2*x)'": "a new formula's kernel tables take ~12 s of CPU whatever "
    "the sizes; the analyze line above runs, and formulas are tested in test_expressions*.py",
    "actspec sweep examples/sweep.toml": "starts a Dask cluster (~10 s of CPU before the first "
    "task); tests/test_sweep.py and the golden sweep_and_results case run sweep and results",
    "actspec results examples/sweep.duckdb": "reads the store of the sweep example above (skipped)",
}


def _cap(limit: int) -> Callable[[str, list[str]], str]:
    return lambda value, argv: str(min(int(float(value)), limit))


def _n(value: str, argv: list[str]) -> str:
    # the iterative solver (LOBPCG) needs n well above its block size; dense: a small n suffices
    return str(min(int(float(value)), 300 if "iterative" in argv else 16))


def _width(value: str, argv: list[str]) -> str:
    return value if value == "inf" else str(min(int(float(value)), 200))


def _range(value: str, argv: list[str]) -> str:
    lo, hi = (int(v) for v in value.split(".."))
    return f"{lo}..{min(hi, lo + 1)}"


#: flag -> new value (from the README's value and the whole command): the only changes made
SIZES: dict[str, Callable[[str, list[str]], str]] = {
    "--n": _n,                    # points: 16 (300 with --method iterative)
    "--width": _width,            # neurons: at most 200 ('inf' unchanged)
    "--epochs": _cap(10),
    "--log-every": _cap(2),
    "--degree": _cap(24),         # Hermite / spherical-harmonic degree
    "--depth": _range,            # depth A..B -> A..A+1
    "--seeds": _cap(1),
    "--train-steps": _cap(3),
    "--sample": _cap(40),
}

#: flags naming files a command writes (checked to exist afterwards; a prefix gets a suffix)
OUTPUT_FLAGS = ("--json", "--plot", "--out", "--angle-plot")


def blocks(kind: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.M | re.S)
            if m.group(1) == kind]


def commands() -> list[str]:
    """Every command line of the bash blocks: continuation lines joined, ``&&`` chains split,
    comments dropped."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            cmd: list[str] = []
            for w in [*words, "&&"]:
                if w == "&&":
                    if cmd:
                        out.append(shlex.join(cmd))
                    cmd = []
                else:
                    cmd.append(w)
    return out


def _skip_reason(cmd: str) -> str | None:
    return next((why for prefix, why in SKIP.items() if cmd.startswith(prefix)), None)


def small(argv: list[str]) -> list[str]:
    out = list(argv)
    for k, w in enumerate(out[:-1]):
        if w in SIZES:
            out[k + 1] = SIZES[w](out[k + 1], argv)
    return out


RUNNABLE = [c for c in commands() if _skip_reason(c) is None]


def test_readme_has_the_blocks_this_test_expects() -> None:
    cmds = commands()
    assert len(cmds) >= 15 and len(blocks("python")) == 1
    assert all(c.startswith(("actspec ", "pip ", "python -m pytest")) for c in cmds), cmds
    assert all(any(c.startswith(p) for c in cmds) for p in SKIP), "a SKIP entry matches nothing"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # read only: the model files
    monkeypatch.chdir(tmp_path)
    return tmp_path


RUNNABLE = [c for c in commands() if _skip_reason(c) is None]


@pytest.mark.parametrize("cmd", RUNNABLE, ids=[" ".join(shlex.split(c)[:2]) + f"-{k}"
                                                 for k, c in enumerate(RUNNABLE)])
def test_readme_command_runs(cmd: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = small(shlex.split(cmd))
    assert argv[0] == "actspec"
    code = run(argv[1:])
    _, err = capsys.readouterr()
    assert code == 0, f"{shlex.join(argv)}\n{err[-2000:]}"
    for k, w in enumerate(argv[:-1]):
        if w in OUTPUT_FLAGS:
            assert (workdir / argv[k + 1]).exists(), (shlex.join(argv), argv[k + 1])


def test_readme_python_block_runs(workdir: Path) -> None:
    [code] = blocks("python")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert namespace["act"].kink_order == 2  # type: ignore[attr-defined]
    assert namespace["s"].lambda_min > 0  # type: ignore[attr-defined]
