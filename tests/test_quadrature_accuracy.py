"""Gaussian pair expectations at large input norms and for steep activations (issue 19 item 1,
issue 18), against independent references: mpmath 1-D integrals at rho = +-1, the Mehler
(Hermite) series at |rho| <= 1/2, and history independence of G-infinity (issue 18)."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from mp_reference import MP_ACTS, gauss

import actspec
from actspec import activation
from actspec.kernels import dual as dual_mod
from actspec.kernels.dual import gaussian_pair_expectation
from actspec.kernels.hermite import dual_from_coefficients, hermite_coefficients

SMOOTH = ["tanh", "erf", "gelu", "swish", "elu", "softplus", "sigmoid"]


def _mp_line(d, sigma: float, sign: int) -> float:
    """E[phi'(sigma z) phi'(sign sigma z)] in mpmath, split where phi'(sigma z) varies."""
    mp.mp.dps = 18
    s = mp.mpf(sigma)
    pts = sorted({-13.0, 13.0, 0.0, *(k * j / sigma for j in (0.25, 0.5, 1, 2, 4, 8, 16, 32)
                                      for k in (-1, 1) if j / sigma < 13)})
    return float(mp.quad(lambda z: d(s * z) * d(sign * s * z) * gauss(z), pts))


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("norm", [0.1, 1.0, 5.0, 30.0])
def test_large_norms_against_mpmath(name: str, norm: float) -> None:
    """rho = 1 and -1 at input norms 0.1..30: 1.35e-7 relative off for tanh at norm 10 before
    (the sharp layer of phi'(sigma r cos psi) was under-resolved); now <= 1e-13."""
    act = activation(name)
    d = MP_ACTS[name][1]
    s = norm * norm
    got = gaussian_pair_expectation(act.dphi, act.kinks, s, s, np.array([s, -s]),
                                    key=f"{act.key}/derivative")
    for g, sign in zip(got, (1, -1), strict=True):
        ref = _mp_line(d, norm, sign)
        assert abs(g - ref) <= 1e-13 * abs(ref), (name, norm, sign, g, ref)


def test_issue_example_tanh_norm_10() -> None:
    """actspec.gram(np.array([[10.0, 0.0]]), "tanh")[0, 0] / 100 = E tanh'(10 z)^2."""
    got = actspec.gram(np.array([[10.0, 0.0]]), "tanh")[0, 0] / 100
    ref = _mp_line(MP_ACTS["tanh"][1], 10.0, 1)
    assert abs(got - ref) <= 1e-13 * ref, (got, ref)  # was 0.0531067806 vs 0.0531067877


@pytest.mark.parametrize("name", ["tanh", "gelu"])
def test_interior_against_mehler_series(name: str) -> None:
    """Generic correlations at norm 3: the Hermite (Mehler) series sum c_a^2 rho^a of
    z -> phi'(3 z) (1-D quadrature, a different rule) where it converges fast."""
    act = activation(name)
    sigma = 3.0
    c = hermite_coefficients(act, 160, scale=sigma)
    rho = np.array([-0.5, -0.2, 0.0, 0.3, 0.5])
    ref = dual_from_coefficients(c, rho)
    got = gaussian_pair_expectation(act.dphi, act.kinks, sigma**2, sigma**2, rho * sigma**2,
                                    key=f"{act.key}/derivative")
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)


def test_steep_activation_quadrature_against_mpmath() -> None:
    """tanh(100 x) at unit norm: E phi'(z)^2 (the G-infinity diagonal; 3 % off before)."""
    act = activation("tanh(100*x)")
    got = gaussian_pair_expectation(act.dphi, act.kinks, 1.0, 1.0, np.array([1.0]))[0]
    mp.mp.dps = 25
    pts = sorted({-12.0, 12.0, 0.0, *(k * j / 100 for j in range(1, 60) for k in (-1, 1))})
    ref = float(mp.quad(lambda z: (100 * mp.sech(100 * z) ** 2) ** 2 * gauss(z), pts))
    assert abs(got - ref) <= 1e-13 * ref, (got, ref)


def test_gram_does_not_depend_on_history() -> None:
    """G-infinity of XB is bit-identical in a fresh process and after G-infinity of XA, whose
    rows' variances differ from XB's by rounding (the table used to be built at whichever
    variance came first)."""
    rng = np.random.default_rng(3)
    XA = rng.standard_normal((6, 5))
    XA /= np.linalg.norm(XA, axis=1, keepdims=True)
    XA *= 1.0 - 3e-16  # same variance key as 1.0, a different first-seen variance
    XB = rng.standard_normal((7, 5))
    XB /= np.linalg.norm(XB, axis=1, keepdims=True)
    dual_mod.clear_caches()
    fresh = actspec.gram(XB, "swish")
    dual_mod.clear_caches()
    actspec.gram(XA, "swish")
    after = actspec.gram(XB, "swish")
    assert np.array_equal(fresh, after)


def test_quadrature_entry_does_not_depend_on_its_batch() -> None:
    """Direct quadrature (many variances): an entry's value is the same alone or among others."""
    act = activation("elu")
    s1 = np.array([0.3, 2.0, 7.5, 0.9])
    c = np.array([0.1, -0.4, 1.2, 0.5]) * np.sqrt(s1)
    together = gaussian_pair_expectation(act.dphi, act.kinks, s1, 1.0, c, key="elu/d")
    for k in range(4):
        alone = gaussian_pair_expectation(act.dphi, act.kinks, s1[k : k + 1], 1.0, c[k : k + 1],
                                          key="elu/d")
        assert alone[0] == together[k]


def test_canonical_variance_of_unit_rows_is_one() -> None:
    keys = dual_mod.quantize(np.array([1.0, 1.0 - 2.2e-16, 1.0 + 4.4e-16]))
    assert set(keys.tolist()) == {0}
    assert dual_mod.canonical_variance(0) == 1.0
