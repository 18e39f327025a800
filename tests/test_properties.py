"""Property tests (hypothesis) for the numerical core: identities that hold for every input.

* G∞ (and G∞ + H∞) is symmetric positive semi-definite and permutation equivariant
  (tests/test_gram.py covers rotation invariance and finite width);
* the eigenvalues are non-negative within float64 resolution and sum to the trace;
* the Hermite coefficients of φ' reproduce the dual function: Σ_a c_a² ρ^a = E[φ'(u)φ'(v)]
  (the identity behind G∞ = Σ c_a² (XXᵀ)^{⊙(a+1)}), and at ρ = 1 Parseval Σ c_a² = E φ'(z)²,
  whose tail after degree K is bounded by the kink class (Σ_{a>K} a^{-(2r+1)/2}).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import unit_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate

import actspec
from actspec.kernels.dual import dual
from actspec.kernels.hermite import dual_from_coefficients
from actspec.spectra.summary import spectrum

SMOOTH = ["tanh", "swish", "gelu", "softplus", "sigmoid", "erf"]
KINKED = {"relu": 1, "leaky_relu:0.2": 1, "selu": 1, "elu": 2}
POLY = ["linear", "quadratic", "cubic"]
ALL = [*SMOOTH, *KINKED, *POLY]

rows = arrays(
    np.float64,
    st.tuples(st.integers(2, 9), st.integers(1, 6)),
    elements=st.floats(-2, 2, allow_nan=False, width=64),
)


def _usable(X: np.ndarray) -> bool:
    return bool(np.all(np.linalg.norm(X, axis=1) > 0.05))


def _expect_sq(act: actspec.Activation) -> float:
    """E φ'(z)² by adaptive quadrature, split at the kinks (independent of the Hermite code)."""
    f = lambda z: act.dphi(np.array([z]))[0] ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    pts = sorted({-12.0, *[float(k) for k in act.kinks], 12.0})  # e^{-72}: beyond float64
    return sum(
        integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-13, limit=400)[0]
        for a, b in zip(pts[:-1], pts[1:], strict=True)
    )


# ---- G∞ ----------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(rows, st.sampled_from(ALL), st.sampled_from(["hidden", "both"]), st.randoms(use_true_random=False))
def test_gram_symmetric_psd_permutation_equivariant(X: np.ndarray, name: str, train: str, r) -> None:
    if not _usable(X):
        return
    X = unit_rows(X)
    G = actspec.gram(X, name, train=train)
    assert np.array_equal(G, G.T)
    perm = np.array(r.sample(range(X.shape[0]), X.shape[0]))
    np.testing.assert_allclose(actspec.gram(X[perm], name, train=train), G[np.ix_(perm, perm)],
                               rtol=0, atol=1e-12 * max(1.0, np.abs(G).max()))
    ev = actspec.eigenvalues(G)
    assert ev.min() >= -1e-12 * max(1.0, ev.max())


@settings(max_examples=30, deadline=None)
@given(rows, st.sampled_from(ALL), st.one_of(st.none(), st.integers(5, 400)), st.integers(0, 2**31))
def test_eigenvalues_sum_to_trace_and_are_nonnegative(X: np.ndarray, name: str, width, seed: int) -> None:
    if not _usable(X):
        return
    X = unit_rows(X)
    G = actspec.gram(X, name, width, seed=seed)
    s = spectrum(G)
    scale = max(1.0, abs(s.lambda_max))
    assert s.eigenvalues.sum() == pytest.approx(np.trace(G), rel=1e-12, abs=1e-12 * scale)
    assert s.trace == pytest.approx(np.trace(G), rel=1e-14, abs=1e-300)
    assert s.eigenvalues.min() >= -s.resolution - 1e-14 * scale
    assert np.all(np.diff(s.eigenvalues) <= 0)


# ---- Hermite coefficients --------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ALL), st.floats(-0.9, 0.9))
def test_hermite_series_reproduces_dual_function(name: str, rho: float) -> None:
    """Σ_a c_a² ρ^a = E[φ'(u)φ'(v)] for |ρ| ≤ 0.9 (tail ≤ 0.9^400 ≈ 5e-19 of Σ c_a²)."""
    act = actspec.activation(name)
    c = actspec.hermite_coefficients(act, 400)
    series = float(dual_from_coefficients(c, rho))
    direct = float(dual(act, 1.0, 1.0, rho, "derivative"))
    assert series == pytest.approx(direct, rel=1e-11, abs=1e-12)


@pytest.mark.parametrize("name", [*SMOOTH, *POLY])
def test_parseval_smooth(name: str) -> None:
    """Smooth φ': the coefficients decay like exp(-c √a) or faster, Σ_{a ≤ 600} c_a² = E φ'(z)²."""
    act = actspec.activation(name)
    c = actspec.hermite_coefficients(act, 600)
    assert float(np.sum(c**2)) == pytest.approx(_expect_sq(act), rel=1e-10)


@pytest.mark.parametrize("name,r", list(KINKED.items()))
def test_parseval_kinked_within_tail_bound(name: str, r: int) -> None:
    """A kink of order r: c_a² ~ a^{-(2r+1)/2}, so the partial sums approach E φ'(z)² from below
    with a tail ≈ Σ_{a>K} C a^{-(2r+1)/2}; C is fitted on the computed coefficients."""
    act = actspec.activation(name)
    K = 800
    c2 = actspec.hermite_coefficients(act, K) ** 2
    total = _expect_sq(act)
    partial = np.cumsum(c2)
    assert np.all(partial <= total * (1 + 1e-12))
    p = (2 * r + 1) / 2
    a = np.arange(K // 2, K + 1)
    nz = c2[a] > 0  # ReLU's odd or even coefficients vanish
    C = float(np.max(c2[a][nz] * a[nz] ** p))
    tail_bound = C * K ** (1 - p) / (p - 1)  # ∫_K^∞ C x^{-p} dx over every degree
    gap = total - partial[-1]
    assert 0 <= gap <= tail_bound
    assert gap >= 0.05 * tail_bound * (np.count_nonzero(nz) / nz.size)  # the tail is really there
