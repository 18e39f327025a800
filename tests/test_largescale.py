"""Blocked / matrix-free G∞ and iterative eigenvalues against the dense computation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import circle_points, unit_rows

import actspec
from actspec import ActspecError
from actspec.largescale import GramOperator, extreme_eigenvalues, infinite_block
from actspec.memory import check_dense_fits


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
        r = extreme_eigenvalues(X, name, k=3, method="iterative", block=64)
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
