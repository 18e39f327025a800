"""Blocked / matrix-free G∞ and iterative eigenvalues against the dense computation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import circle_points, unit_rows

import actspec
from actspec import ActspecError
from actspec.core.resources import check_dense_fits
from actspec.spectra.iterative import GramOperator, extreme_eigenvalues, infinite_block


@pytest.mark.parametrize("name,train", [("relu", "hidden"), ("tanh", "both"), ("elu", "output")])
def test_blocks_and_products_equal_dense(name: str, train: str, rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((130, 9)))
    G = actspec.gram(X, name, train=train)
    np.testing.assert_allclose(infinite_block(X, X, actspec.activation(name), train=train, same=True), G,
                               atol=1e-13)
    V = rng.standard_normal((130, 4))
    for cache in (0, None):  # re-evaluated blocks and cached blocks
        op = GramOperator(X, name, train=train, block=37, cache_bytes=cache)
        np.testing.assert_allclose(op @ V, G @ V, atol=1e-12)
        np.testing.assert_allclose(op @ V[:, 0], G @ V[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.diagonal(), np.diag(G), atol=1e-14)


def test_iterative_extremes_match_dense_within_error_bars(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((300, 12)))
    for name in ("relu", "swish"):
        ev = actspec.eigenvalues(actspec.gram(X, name))
        r = extreme_eigenvalues(X, name, k=3, method="iterative", block=64, maxiter=60, sketch=64)
        assert r["method"].startswith("iterative")
        for got, err, ref in zip(r["largest"], r["largest_error"], ev[:3], strict=True):
            assert abs(got - ref) <= err + 1e-11
        for got, err, ref in zip(r["smallest"], r["smallest_error"], ev[::-1][:3], strict=True):
            assert abs(got - ref) <= err + 1e-11
        assert r["trace"] == pytest.approx(ev.sum(), rel=1e-12)


def test_auto_picks_dense_for_small_n_and_says_why() -> None:
    r = extreme_eigenvalues(circle_points(21), "relu", k=2)
    assert r["method"] == "dense" and "fits" in r["reason"]


def test_memory_guard_refuses_impossible_dense_requests() -> None:
    with pytest.raises(ActspecError, match="GiB"):
        check_dense_fits(2_000_000)
    with pytest.raises(ActspecError, match="needs about"):
        actspec.gram(np.ones((100_000, 2)), "relu")


def test_bad_k() -> None:
    with pytest.raises(ActspecError, match="k must"):
        extreme_eigenvalues(circle_points(6), "relu", k=4)


# ---------------------------------------------------------------------------------------------
# issue 9 items 2-3: cache dtypes, Dask, the iterative solver at n = 2000, the CLI
# ---------------------------------------------------------------------------------------------


def test_cache_dtypes_and_exact_products(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((150, 7)))
    G = actspec.gram(X, "tanh")
    V = rng.standard_normal((150, 5))
    op = GramOperator(X, "tanh", block=40, cache_dtype="float32")
    assert op.cache_dtype == "float32"
    low = op @ V  # float32 blocks: relative rounding 2^-24 of each entry
    assert 1e-12 < np.max(np.abs(low - G @ V)) < 1e-5
    np.testing.assert_allclose(op.matmat(V, exact=True), G @ V, atol=1e-12)  # exact: float64 blocks
    assert op.passes == 2 and op.products == 10
    assert op.kernel_passes == 2.0  # exact products re-evaluate (never use the float32 cache)
    op64 = GramOperator(X, "tanh", block=40)  # auto: the whole triangle fits -> float64
    assert op64.cache_dtype == "float64"
    op64 @ V
    op64 @ V
    assert op64.kernel_passes == 1.0 and op64.cached_fraction == 1.0


def test_distributed_products_equal_dense(rng: np.random.Generator) -> None:
    distributed = pytest.importorskip("distributed")
    from actspec.spectra.iterative import DistributedGramOperator

    X = unit_rows(rng.standard_normal((160, 6)))
    V = rng.standard_normal((160, 3))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        for name, train in (("relu", "hidden"), ("tanh", "both")):
            G = actspec.gram(X, name, train=train)
            op = DistributedGramOperator(X, name, train, block=45, client=client)
            np.testing.assert_allclose(op @ V, G @ V, atol=1e-12)
            np.testing.assert_allclose(op @ V, G @ V, atol=1e-12)  # second pass from worker caches
            assert op.kernel_passes == 1.0 and op.passes == 2
            op.close()
        r = extreme_eigenvalues(X, "relu", k=2, method="iterative", client=client, block=45, maxiter=30,
                                sketch=32)
        ev = actspec.eigenvalues(actspec.gram(X, "relu"))
        assert r["method"] == "iterative (LOBPCG, Dask, 2 workers)"
        assert abs(r["largest"][0] - ev[0]) <= r["largest_error"][0] + 1e-12
        assert abs(r["smallest"][0] - ev[-1]) <= r["smallest_error"][0] + 1e-12


@pytest.fixture(scope="module")
def sphere2000() -> tuple[np.ndarray, np.ndarray]:
    """relu on 2000 random points of S^19: λ_min ≈ 0.06, κ ≈ 500 (resolvable, clustered bottom)."""
    X = unit_rows(np.random.default_rng(1).standard_normal((2000, 20)))
    return X, actspec.eigenvalues(actspec.gram(X, "relu"))


def test_iterative_lambda_min_matches_dense_at_n2000(sphere2000: tuple[np.ndarray, np.ndarray]) -> None:
    X, ev = sphere2000
    r = extreme_eigenvalues(X, "relu", k=3, method="iterative", tol=1e-4, maxiter=100, block=512)
    lmin, err = r["smallest"][0], r["smallest_error"][0]
    assert abs(lmin - ev[-1]) <= err  # within its own residual error bar ...
    assert err < 2e-3 * ev[-1]  # ... which is tight: 0.2 % of λ_min ≈ 0.06
    assert lmin >= ev[-1] - 1e-12  # a Rayleigh quotient never undershoots λ_min
    for got, bar, ref in zip(r["largest"], r["largest_error"], ev[:3], strict=True):
        assert abs(got - ref) <= bar and bar < 1e-4 * ev[0]
    assert r["passes"] < 200 and r["kernel_passes"] == 1.0  # each block evaluated once (cached)
    assert r["eigenvalues"] == sorted(r["largest"] + r["smallest"], reverse=True)


def test_choose_method_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from actspec.spectra.iterative import choose_method

    assert choose_method(1000)[0] == "dense"
    assert choose_method(30_000)[0] == "iterative"
    monkeypatch.setattr("actspec.core.resources.available_memory", lambda: 2**30)
    method, reason = choose_method(10_000)
    assert method == "iterative" and "2.2 GiB" in reason and "1.0 GiB free" in reason
    assert choose_method(500, "dense")[1] == "dense (requested): n=500, needs 0.01 GiB"


def test_cli_iterative_json_matches_library(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from actspec.cli import app

    out = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["spectrum", "-a", "relu", "--data", "sphere", "--n", "300", "--dim", "12",
                                   "--method", "iterative", "--k", "3", "--maxiter", "40",
                                   "--json", str(out), "--plot", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())["results"][0]
    for key in ("eigenvalues", "lambda_min", "lambda_max", "condition_number", "trace", "method",
                "method_reason", "lambda_min_error", "lambda_max_error", "largest", "smallest",
                "largest_error", "smallest_error"):
        assert key in row, key
    assert row["eigenvalues_complete"] is False and len(row["eigenvalues"]) == 6
    assert row["eigenvalues"] == sorted(row["eigenvalues"], reverse=True)
    assert row["method"].startswith("iterative") and "requested" in row["method_reason"]
    assert (tmp_path / "s.png").stat().st_size > 0
    X = actspec.datasets.sphere(300, 12, seed=0)
    lib = extreme_eigenvalues(X, "relu", k=3, method="iterative", maxiter=40)
    assert row["lambda_min"] == pytest.approx(lib["smallest"][0], rel=1e-10)
    assert row["lambda_max"] == pytest.approx(lib["largest"][0], rel=1e-10)
    ev = actspec.eigenvalues(actspec.gram(X, "relu"))
    assert abs(row["lambda_min"] - ev[-1]) <= row["lambda_min_error"]
    assert row["trace"] == pytest.approx(ev.sum(), rel=1e-12)


def test_cli_dense_too_large_exits_2_and_auto_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from actspec.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["spectrum", "-a", "relu", "--data", "sphere", "--n", "60", "--dim", "4"])
    assert res.exit_code == 0 and "method dense: n=60 <= 20000 and G∞ fits" in res.output
    monkeypatch.setattr("actspec.core.resources.available_memory", lambda: 2**20)  # 1 MiB free
    out = tmp_path / "d.json"
    res = runner.invoke(app, ["spectrum", "-a", "relu", "--data", "sphere", "--n", "1000", "--dim", "4",
                              "--method", "dense", "--json", str(out)])
    assert res.exit_code != 0 and not out.exists()
    assert isinstance(res.exception, ActspecError)
    msg = str(res.exception)
    assert "0.0 GiB" in msg and "--method iterative" in msg and "needs about" in msg
