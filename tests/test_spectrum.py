"""Spectrum summaries against exact eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actspec import ActspecError, eigenvalues, spectrum


def test_known_spectrum(rng: np.random.Generator) -> None:
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.25])
    G = (Q * lam) @ Q.T
    s = spectrum(G)
    np.testing.assert_allclose(s.eigenvalues, lam, rtol=1e-13)
    assert s.lambda_max == pytest.approx(5.0, rel=1e-13)
    assert s.lambda_min == pytest.approx(0.25, rel=1e-12)
    assert s.condition_number == pytest.approx(20.0, rel=1e-12)
    assert s.trace == pytest.approx(lam.sum(), rel=1e-13)
    assert not s.condition_number_is_lower_bound


def test_effective_rank() -> None:
    assert spectrum(np.eye(7)).effective_rank == pytest.approx(7.0)
    assert spectrum(np.diag([1.0, 0, 0])).effective_rank == pytest.approx(1.0)


def test_singular_matrix_reports_a_lower_bound() -> None:
    v = np.arange(1.0, 5.0)
    s = spectrum(np.outer(v, v))
    assert s.condition_number_is_lower_bound
    assert s.n_unresolved == 3
    assert np.isfinite(s.condition_number) and s.condition_number > 1e13


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31))
def test_eigenvalues_sum_to_trace_and_are_sorted(n: int, seed: int) -> None:
    A = np.random.default_rng(seed).standard_normal((n, n + 2))
    G = A @ A.T
    ev = eigenvalues(G)
    assert np.all(np.diff(ev) <= 0)
    assert ev.sum() == pytest.approx(np.trace(G), rel=1e-12, abs=1e-12)
    assert ev.min() > -1e-12 * max(1.0, ev.max())


@pytest.mark.parametrize(
    "G,fragment",
    [(np.ones((2, 3)), "square"), (np.array([[1.0, np.inf], [np.inf, 1.0]]), "NaN or inf"),
     (np.array([[1.0, 2.0], [0.0, 1.0]]), "not symmetric"), (np.zeros((0, 0)), "square")],
)
def test_bad_matrices(G: np.ndarray, fragment: str) -> None:
    with pytest.raises(ActspecError, match=fragment):
        eigenvalues(G)
