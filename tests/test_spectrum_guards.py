"""Issue 18 resource guards of ``actspec spectrum`` and issue 17 item 12 (LOBPCG that misses
--tol): refused before any work with the estimate and the way out (exit 2, one line), or run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actspec.cli import run
from actspec.core import resources
from actspec.core.errors import ActspecError


def _err_line(capsys) -> str:
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    return lines[0]


def test_iterative_k_above_n_over_5_is_one_line(capsys):
    # before: "internal error (ValueError: not enough values to unpack)" at k = 17..40, n = 80
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "80", "--dim", "6",
                "--method", "iterative", "--k", "40"]) == 2
    line = _err_line(capsys)
    assert "--k 40 is too large" in line and "at most k = 16" in line and "--method dense" in line
    from actspec.largescale import extreme_eigenvalues

    X = np.random.default_rng(0).standard_normal((80, 6))
    with pytest.raises(ActspecError, match="at most k = 16"):
        extreme_eigenvalues(X, "relu", k=17, method="iterative")
    r = extreme_eigenvalues(X, "relu", k=16, method="iterative", maxiter=40)  # the limit works
    assert len(r["smallest"]) == 16


def test_iterative_memory_guard(monkeypatch, capsys):
    # before: the sketch grew past 15 GB and the run was killed; now the estimate refuses it
    monkeypatch.setattr(resources, "available_memory", lambda: 16 * 2**30)
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "3000000", "--dim", "5"]) == 2
    line = _err_line(capsys)
    assert "iterative spectrum of G∞ at n=3000000" in line and "GiB of memory" in line
    assert "--n" in line and "--workers" in line


def test_iterative_time_guard(monkeypatch, capsys):
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "30")
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "100000", "--dim", "5"]) == 2
    line = _err_line(capsys)
    assert "would take about" in line and "over the 30 s budget" in line


def test_iterative_estimate_numbers():
    from actspec.largescale import iterative_estimate

    # n = 3e6, k = 6: sketch 256 vectors -> 6 x 3e6 x 256 x 8 B = 34 GiB plus LOBPCG blocks
    est = iterative_estimate(3_000_000, 5, 6, entry_seconds=2e-8, cache_bytes=8 * 2**30)
    assert 40 * 2**30 < est.bytes < 60 * 2**30
    assert est.seconds > 30 * 86400  # n^2/2 kernel entries per pass, tens of passes
    small = iterative_estimate(2000, 5, 6, entry_seconds=2e-8, cache_bytes=8 * 2**30)
    assert small.seconds < 60 and small.bytes < 2**30


def test_finite_width_guard(monkeypatch, capsys):
    # --width 1e8 --n 4: about a minute of neuron overhead; over a 10 s budget it is refused
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "10")
    assert run(["spectrum", "-a", "relu", "--n", "4", "--width", "1e8"]) == 2
    line = _err_line(capsys)
    assert "G at width 100,000,000" in line and "would take about" in line and "--width inf" in line
    # within the budget it runs
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "3600")
    assert run(["spectrum", "-a", "relu", "--n", "4", "--width", "2000"]) == 0


def test_lobpcg_missing_tol_warns_in_the_cli(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "200", "--dim", "6",
                "--method", "iterative", "--k", "3", "--maxiter", "2", "--tol", "1e-10",
                "--json", str(out)]) == 0
    _, err = capsys.readouterr()
    warn = [ln for ln in err.splitlines() if "warning: LOBPCG stopped at --maxiter 2" in ln]
    assert len(warn) == 1 and "--tol 1e-10" in warn[0] and "achieved relative residual" in warn[0]
    row = json.loads(out.read_text())["results"][0]
    assert row["converged"] is False and row["relative_residual"] > 1e-10
