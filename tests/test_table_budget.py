"""A theta-table build that will not finish within ``ACTSPEC_TABLE_SECONDS`` is refused with one
clear error (exit status 2 from the CLI) instead of running on silently; nothing is cached.

A very steep user activation (``tanh(300*x)``) took more than 5 minutes before this check; the
tests use a tiny budget on a cheap activation, whose first refinement round always exceeds it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from actspec.activations import activation
from actspec.cli import run
from actspec.core import resources
from actspec.core.errors import ActspecError
from actspec.kernels import dual as dual_mod


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(d))
    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)
    dual_mod.clear_caches()
    yield d
    dual_mod.clear_caches()


def _files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.is_file()] if d.exists() else []


@pytest.mark.parametrize(("raw", "expected"), [
    ("", resources.DEFAULT_TABLE_SECONDS), ("120", 120.0), ("0", math.inf), ("-3", math.inf),
    ("inf", math.inf), ("soon", resources.DEFAULT_TABLE_SECONDS),
])
def test_table_seconds_from_the_environment(raw: str, expected: float,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTSPEC_TABLE_SECONDS", raw)
    assert resources.table_seconds() == expected


def test_build_over_budget_is_refused_and_not_cached(private_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    act = activation("tanh(4*x)")
    monkeypatch.setenv("ACTSPEC_TABLE_SECONDS", "0.001")
    with pytest.raises(ActspecError, match=r"tanh\(4\*x\).*ACTSPEC_TABLE_SECONDS") as exc:
        dual_mod.dual_table(act, "derivative")
    assert "\n" not in str(exc.value)
    assert _files(private_cache) == []
    # no limit: the same table builds, is cached, and matches the 2-D quadrature
    monkeypatch.setenv("ACTSPEC_TABLE_SECONDS", "0")
    tab = dual_mod.dual_table(act, "derivative")
    assert _files(private_cache) != []
    c = 0.3
    ref = dual_mod.dual(act, 1.0, 1.0, c, "derivative", method="quadrature")
    assert abs(float(tab(c)) - float(ref)) <= 1e-13 * tab.scale


def test_cli_refusal_is_one_line_exit_2(private_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    monkeypatch.setenv("ACTSPEC_TABLE_SECONDS", "0.001")
    js = tmp_path / "s.json"
    code = run(["spectrum", "-a", "tanh(4*x)", "--n", "5", "--json", str(js)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "ACTSPEC_TABLE_SECONDS" in lines[0] and "tanh(10*x)" in lines[0]
    assert not js.exists() and _files(private_cache) == []


def test_projection_counts_only_quadrature_time(private_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Time spent before the quadratures (the partition, first-call set-up: here a fake 100 s)
    is elapsed time, not a cost per angle: a build that fits the budget (150 s) is not refused.
    The earlier projection, elapsed / angles done x angles next, projected ~160 s and refused."""
    import time as real_time

    class Clock:
        calls = 0

        @staticmethod
        def perf_counter() -> float:
            Clock.calls += 1
            return real_time.perf_counter() - (100.0 if Clock.calls == 1 else 0.0)

    monkeypatch.setattr(dual_mod, "time", Clock)
    monkeypatch.setenv("ACTSPEC_TABLE_SECONDS", "150")
    tab = dual_mod.DualTable.build(activation("tanh(4*x)"), "derivative", 1.0, 1.0)
    assert tab.intervals > 16  # it did refine (the budget was checked between rounds)
    assert Clock.calls > 3


def test_check_build_time_arithmetic() -> None:
    """elapsed + next angles x seconds per angle against the budget, in one error line."""
    import time

    act = activation("tanh(4*x)")
    clock = (time.perf_counter() - 5.0, 6.0)
    dual_mod._check_build_time(act, "derivative", clock, 0.001, 150, 40)  # 5.15 s: fits
    with pytest.raises(ActspecError, match=r"more than 6 s .* 150 more quadratures"):
        dual_mod._check_build_time(act, "derivative", clock, 0.01, 150, 40)  # 6.5 s
    dual_mod._check_build_time(act, "derivative", (clock[0], math.inf), 1.0, 10**6, 40)
