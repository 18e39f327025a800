"""Issue 20 item 4: iterative extremes that converge and stop, estimated and refused up front.

Truths: dense eigvalsh of the same G∞, a diagonal matrix with known eigenvalues, and the
budget arithmetic itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

import actspec
from actspec.cli import run
from actspec.core import resources
from actspec.core.validate import ParameterError
from actspec.spectra.iterative import (
    _lobpcg,
    _sketch_basis,
    _solver_sizes,
    extreme_eigenvalues,
    iterative_estimate,
    iterative_plan,
)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def sphere600() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    X = actspec.datasets.sphere(600, 12, seed=3)
    return X, {a: actspec.eigenvalues(actspec.gram(X, a)) for a in ("relu", "tanh")}


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_extremes_match_dense_within_bars_that_meet_tol(act: str, sphere600: tuple) -> None:
    X, evs = sphere600
    ev = evs[act]
    tol, k, maxiter = 1e-3, 3, 150
    r = extreme_eigenvalues(X, act, k=k, method="iterative", tol=tol, maxiter=maxiter)
    for got, bar, ref in zip(r["smallest"], r["smallest_error"], ev[::-1][:k], strict=True):
        assert abs(got - ref) <= bar + 1e-14  # an eigenvalue within the bar: the true one
        assert bar <= 2 * tol * got  # the bar meets --tol (2x: float32 cache vs exact pass)
    for got, bar, ref in zip(r["largest"], r["largest_error"], ev[:k], strict=True):
        assert abs(got - ref) <= bar + 1e-12 and bar <= 2 * tol * got
    assert r["smallest"][0] >= ev[-1] - 1e-14  # a Rayleigh quotient never undershoots λ_min
    assert r["converged"] is True
    # stopped when the k wanted pairs converged, far before --maxiter (the old scipy LOBPCG
    # ran until all 2k block vectors converged, or to maxiter: 137 passes for the golden n=80)
    assert r["lobpcg_iterations"] < maxiter // 3
    assert r["passes"] < maxiter // 3


def test_own_lobpcg_stops_when_the_wanted_pairs_converge() -> None:
    # diag(1..n): the k smallest are 1..k exactly; with the exact inverse as preconditioner
    # a couple of iterations suffice, and the loop must stop there, not at maxiter
    n, k, b = 400, 3, 8
    d = np.arange(1.0, n + 1)
    calls: list[int] = []

    def mm(V: np.ndarray) -> np.ndarray:
        calls.append(V.shape[1])
        return d[:, None] * V

    X0 = np.random.default_rng(0).standard_normal((n, b))
    th, V, rn, it = _lobpcg(mm, X0, k, largest=False, target=lambda t: 1e-8 * np.abs(t),
                            maxiter=100, M=lambda R: R / d[:, None])
    np.testing.assert_allclose(th[:k], [1.0, 2.0, 3.0], rtol=1e-12)
    assert np.all(rn[:k] <= 1e-8 * th[:k])
    assert it < 30 and len(calls) == it + 1  # one product per iteration, plus the start
    # largest end, no preconditioner
    th, _, rn, it = _lobpcg(mm, X0, k, largest=True, target=lambda t: 1e-6 * np.abs(t), maxiter=300)
    np.testing.assert_allclose(th[-k:], [n - 2.0, n - 1.0, float(n)], rtol=1e-9)


def test_sketch_holds_the_degree_two_features() -> None:
    X = actspec.datasets.sphere(500, 8, seed=0)
    b, ell, nfeat = _solver_sizes(500, 3, 64, 8)
    assert nfeat == 1 + 8 + 36 and ell >= nfeat and b >= 6
    Q = _sketch_basis(X, ell, nfeat, np.random.default_rng(0))
    np.testing.assert_allclose(Q.T @ Q, np.eye(ell), atol=1e-12)
    F = np.hstack([np.ones((500, 1)), X, X[:, :1] * X[:, 3:4], X[:, 7:8] ** 2])
    np.testing.assert_allclose(Q @ (Q.T @ F), F, atol=1e-12)  # the span holds the features
    # too many features for the cap (d = 300: 45451 of them): degree <= 1 only
    assert _solver_sizes(2000, 3, 256, 300)[2] == 301


def test_memory_estimate_is_monotone_in_n_and_bounded_by_the_cache() -> None:
    cache = 2 * 2**30
    sizes = [1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000]
    gib = [iterative_plan(n, 64, 6, entry_seconds=0.0, cache_bytes=cache)["bytes"] for n in sizes]
    assert all(a < b for a, b in zip(gib, gib[1:], strict=False))
    # beyond the cache, memory grows only linearly in n (n x ell and n x b arrays)
    est = iterative_estimate(3_000_000, 64, 6, entry_seconds=0.0, cache_bytes=cache)
    assert est.bytes < cache + 8 * 3_000_000 * (5 * 4096 + 16 * 32 + 70) + 2**30


def test_time_limit_context_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "120")
    assert resources.time_budget() == 120.0
    with resources.time_limit(30.0):
        assert resources.time_budget() == 30.0
        with resources.time_limit(0):
            assert resources.time_budget() == math.inf
        assert resources.time_budget() == 30.0
        est = resources.estimate(seconds=60.0)
        with pytest.raises(ParameterError, match=r"over the 30 s budget \(--max-hours\)"):
            resources.check_budget(est, what="x", way_out="y")
    with resources.time_limit(None):
        assert resources.time_budget() == 120.0


def test_cli_refuses_over_max_hours_with_estimate_and_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "3000", "--dim", "8",
                "--method", "iterative", "--max-hours", "1e-7"]) == 2
    line = _one_line(capsys)
    assert line.startswith("error: the iterative spectrum of G∞ at n=3000")
    for part in ("peak memory", "a sketch pass of", "passes of", "would take about",
                 "(--max-hours)", "--workers", "--scheduler", "--n", "--k"):
        assert part in line, part


def test_cli_max_hours_zero_is_no_limit_and_negative_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "1e-6")  # the env var alone refuses ...
    args = ["spectrum", "-a", "relu", "--data", "sphere", "--n", "200", "--dim", "6",
            "--method", "iterative", "--k", "2"]
    assert run(args) == 2
    assert "(ACTSPEC_MAX_SECONDS)" in _one_line(capsys)
    assert run([*args, "--max-hours", "0"]) == 0  # ... --max-hours 0 lifts it
    capsys.readouterr()
    assert run([*args, "--max-hours", "-1"]) == 2
    assert "--max-hours must be >= 0" in _one_line(capsys)


def test_finite_width_uses_the_one_time_model(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ACTSPEC_MAX_SECONDS", raising=False)
    seen: list[tuple] = []

    def model(*a: object) -> float:
        seen.append(a)
        return 5 * 3600.0  # 5 h: over the default 4 h of --max-hours

    monkeypatch.setattr(resources, "estimate_seconds", model)
    assert run(["spectrum", "-a", "relu", "--n", "4", "--width", "100"]) == 2
    line = _one_line(capsys)
    assert "G at width 100" in line and "over the 4.0 h budget (--max-hours)" in line
    assert seen and seen[0][:5] == (4, 10, 100, 1, "hidden")  # the default --dim is 10
    assert run(["spectrum", "-a", "relu", "--n", "4", "--width", "100", "--max-hours", "6"]) == 0
    # the model itself: flops at half the matmul rate plus NEURON_SECONDS per neuron
    monkeypatch.undo()
    rate = resources.matmul_rate("float64", "cpu")
    t = resources.estimate_seconds(10, 3, 1000, 1, "hidden", "float64", "cpu")
    flops = 1000 * resources.flops_per_neuron(10, 3, 1, "hidden")
    assert t == pytest.approx(flops / (0.5 * rate) + 1000 * resources.NEURON_SECONDS, rel=1e-12)
