"""Hermite degrees below the hard cap still go through the one budget (core.resources.check_budget):
a degree whose estimated time is over ACTSPEC_MAX_SECONDS is refused before any work, with the
estimate, in the library and as one line with exit 2 from the CLI."""

from __future__ import annotations

import pytest

from actspec.cli import run
from actspec.core.validate import ParameterError
from actspec.kernels.hermite import MAX_DEGREE, check_degree, estimate_seconds


def test_degree_over_the_time_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    degree = 5000
    assert degree < MAX_DEGREE
    t = estimate_seconds(degree)
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", repr(t / 2))
    with pytest.raises(ParameterError, match="Hermite coefficients.*would take about"):
        check_degree(degree)
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", repr(t * 2))
    check_degree(degree)  # fits: no error


def test_cli_refuses_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", repr(estimate_seconds(8000) / 4))
    out = tmp_path / "h.json"
    code = run(["hermite", "relu", "--degree", "8000", "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and "--degree" in err[0], err
    assert "ACTSPEC_MAX_SECONDS" in err[0]
    assert not out.exists()
