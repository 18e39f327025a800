"""Golden outputs: the JSON of a fixed set of commands and API calls (tests/golden/cases.py) must stay
byte-identical to what the baseline commit 95a09e7 wrote, apart from run metadata (``meta``) and
the few wall-clock values listed in tests/golden/record.py.

Every step runs in its own empty working directory, in a child forked from one process that has
imported ``actspec.cli`` and computed nothing (``record.ForkRunner``): the bytes of a fresh
``python -m actspec`` without paying its ~2 s import per step. (Plain in-process runs do not
reproduce them: actspec's process-wide caches make later cases differ in the last bits.)
A deliberate change of an output is recorded again with ``python tests/golden/record.py`` (see
its docstring), in the same commit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_RECORD = Path(__file__).resolve().parent / "golden" / "record.py"
_spec = importlib.util.spec_from_file_location("actspec_golden_record", _RECORD)
assert _spec is not None and _spec.loader is not None
record = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = record
_spec.loader.exec_module(record)
cases = record.load_cases()

_ALL = {c.name: c for c in [*cases.CASES, *cases.API_CASES]}


@pytest.fixture(scope="module")
def runner() -> Any:
    return record.ForkRunner()


def _actual(case: Any, runner: Any, tmp_path: Path) -> str:
    if isinstance(case, cases.ApiCase):
        return record.canonical(runner.api(case, tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    return record.canonical(runner.cli(case, work, tmp_path))


@pytest.mark.parametrize("name", list(_ALL))
def test_golden_output(name: str, runner: Any, tmp_path: Path) -> None:
    path = record.expected_path(name)
    assert path.exists(), f"{path} is missing: record it with python tests/golden/record.py --only {name}"
    expected = path.read_text(encoding="utf-8")
    actual = _actual(_ALL[name], runner, tmp_path)
    if actual != expected:
        pytest.fail(record.report(name, expected, actual), pytrace=False)


def test_every_case_has_an_expected_file_and_no_stale_ones() -> None:
    on_disk = {p.stem for p in record.EXPECTED.glob("*.json")}
    assert on_disk == set(_ALL), (
        f"missing: {sorted(set(_ALL) - on_disk)}; stale: {sorted(on_disk - set(_ALL))}"
    )
