"""Hermite coefficients against mpmath, closed forms at high degree, and identities."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from mp_reference import MP_ACTS, he_normalized, mp_expect

import actspec
from actspec import ActspecError, hermite_coefficients
from actspec.kernels.hermite import dual_from_coefficients

mp.mp.dps = 20
DEG = 300


@pytest.mark.parametrize("name", sorted(MP_ACTS))
def test_coefficients_match_mpmath(name: str) -> None:
    c = hermite_coefficients(name, 40)
    b = hermite_coefficients(name, 40, of="activation")
    phi, dphi = MP_ACTS[name]
    for a in (0, 1, 2, 5, 13, 40):
        ref = mp_expect(lambda x, a=a: dphi(x) * he_normalized(a, x))
        assert abs(c[a] - float(ref)) < 1e-12, (name, a, c[a], ref)
    for a in (0, 3, 10):
        ref = mp_expect(lambda x, a=a: phi(x) * he_normalized(a, x))
        assert abs(b[a] - float(ref)) < 1e-12, (name, a, b[a], ref)


def _relu_closed(deg: int, slope_left: float = 0.0) -> np.ndarray:
    """phi' = 1{x>0} + s 1{x<0}: c_0 = (1+s)/2, c_a = (1-s) gamma(0) He_{a-1}(0)/sqrt(a!)."""
    out = np.zeros(deg + 1)
    out[0] = (1 + slope_left) / 2
    for a in range(1, deg + 1):
        k = a - 1
        if k % 2 == 0:
            j = k // 2
            log_df = math.lgamma(2 * j + 1) - j * math.log(2) - math.lgamma(j + 1)  # (2j-1)!!
            out[a] = (1 - slope_left) * (-1) ** j * math.exp(log_df - 0.5 * math.lgamma(a + 1)) / math.sqrt(
                2 * math.pi
            )
    return out


def test_relu_and_leaky_relu_closed_form_to_degree_300() -> None:
    np.testing.assert_allclose(hermite_coefficients("relu", DEG), _relu_closed(DEG), rtol=0, atol=1e-13)
    np.testing.assert_allclose(hermite_coefficients("leaky_relu:0.2", DEG), _relu_closed(DEG, 0.2),
                               rtol=0, atol=1e-13)


def test_erf_closed_form_to_degree_300() -> None:
    # E[e^{-z^2} He_{2k}(z)] = 3^{-1/2} (-1/3)^k (2k)!/k!  (generating function of He)
    c = hermite_coefficients("erf", DEG)
    for a in range(DEG + 1):
        if a % 2:
            assert abs(c[a]) < 1e-14
            continue
        k = a // 2
        log_mag = -0.5 * math.log(3) - k * math.log(3) + math.lgamma(2 * k + 1) - math.lgamma(k + 1)
        ref = 2 / math.sqrt(math.pi) * (-1) ** k * math.exp(log_mag - 0.5 * math.lgamma(a + 1))
        assert abs(c[a] - ref) < 1e-13, a


@pytest.mark.parametrize("name,lam,alpha", [("elu", 1, 1), ("elu:0.5", 1, 0.5), ("selu", None, None)])
def test_elu_selu_exact_to_degree_300(name: str, lam, alpha) -> None:
    """phi' = lam 1{x>0} + lam alpha e^x 1{x<0}. With e^x gamma(x) = e^{1/2} gamma(x-1) and the Appell
    identity He_a(y+1) = sum_k C(a,k) He_k(y), E[e^x 1{x<0} He_a(x)] = e^{1/2} sum_k C(a,k) I_k,
    I_0 = Phi(-1), I_k = -He_{k-1}(-1) gamma(-1): exact, evaluated at 400 digits."""
    from mp_reference import ALPHA, LAM

    lam = LAM if lam is None else mp.mpf(lam)
    alpha = ALPHA if alpha is None else mp.mpf(alpha)
    c = hermite_coefficients(name, DEG)
    with mp.workdps(400):
        g1 = mp.exp(mp.mpf(-0.5)) / mp.sqrt(2 * mp.pi)
        he_m1 = [mp.mpf(1), mp.mpf(-1)]
        for k in range(1, DEG + 1):
            he_m1.append(-he_m1[k] - k * he_m1[k - 1])  # He_{k+1}(x) = x He_k - k He_{k-1} at x = -1
        I = [mp.ncdf(-1)] + [-he_m1[k - 1] * g1 for k in range(1, DEG + 1)]
        right = [mp.mpf(1) / 2] + [mp.mpf(0)] * DEG
        for a in range(1, DEG + 1):  # E[1{x>0} He_a] = gamma(0) He_{a-1}(0)
            k = a - 1
            if k % 2 == 0:
                right[a] = (-1) ** (k // 2) * mp.fac2(k - 1) / mp.sqrt(2 * mp.pi)
        for a in (0, 1, 2, 5, 17, 50, 120, 199, 200, 300):
            left = mp.sqrt(mp.e) * mp.fsum(mp.binomial(a, k) * I[k] for k in range(a + 1))
            ref = lam * (right[a] + alpha * left) / mp.sqrt(mp.factorial(a))
            assert abs(c[a] - float(ref)) < 1e-13, (name, a, c[a], float(ref))


@pytest.mark.parametrize("name", actspec.BUILTIN_NAMES)
def test_derivative_and_activation_coefficients_are_linked(name: str) -> None:
    """Gaussian integration by parts: E[phi' h_a] = sqrt(a+1) E[phi h_{a+1}]."""
    c = hermite_coefficients(name, 200)
    b = hermite_coefficients(name, 201, of="activation")
    scale = max(1.0, np.abs(c).max())
    np.testing.assert_allclose(c, np.sqrt(np.arange(1, 202)) * b[1:], rtol=0, atol=2e-13 * scale)


@pytest.mark.parametrize("name", ["tanh", "swish", "gelu", "softplus", "sigmoid", "erf"])
def test_parseval_for_smooth_activations(name: str) -> None:
    c = hermite_coefficients(name, DEG)
    ref = mp_expect(lambda x: MP_ACTS[name][1](x) ** 2)
    assert abs(np.sum(c * c) - float(ref)) < 1e-13


def test_polynomials_have_finitely_many_coefficients() -> None:
    c = hermite_coefficients("cubic", 50)  # 3x^2 = 3 h_0 + 3 sqrt(2) h_2
    np.testing.assert_allclose(c[:3], [3, 0, 3 * math.sqrt(2)], atol=1e-13)
    assert np.abs(c[3:]).max() < 1e-13


def test_scale_argument() -> None:
    s = 1.7
    c = hermite_coefficients("tanh", 20, scale=s)
    ref = mp_expect(lambda x: MP_ACTS["tanh"][1](s * x) * he_normalized(2, x))
    assert abs(c[2] - float(ref)) < 1e-12


def test_series_reproduces_dual_function_for_moderate_rho() -> None:
    c = hermite_coefficients("relu", 200)
    rho = np.linspace(-0.6, 0.6, 13)
    exact = (np.pi - np.arccos(rho)) / (2 * np.pi)
    np.testing.assert_allclose(dual_from_coefficients(c, rho), exact, atol=1e-14)


def test_high_degree_is_stable() -> None:
    c = hermite_coefficients("relu", 1500)
    assert np.all(np.isfinite(c))
    np.testing.assert_allclose(c[1499], _relu_closed(1500)[1499], atol=1e-13)


@pytest.mark.parametrize("bad", [-1, 2.5, "x", True])
def test_bad_degree(bad) -> None:
    with pytest.raises(ActspecError):
        hermite_coefficients("relu", bad)


def test_bad_of() -> None:
    with pytest.raises(ActspecError):
        hermite_coefficients("relu", 3, of="second")  # type: ignore[arg-type]


def test_degree_cap_refuses_with_estimate() -> None:
    """Issue 18: `hermite relu --degree 100000` ran for hours; now refused up front with the
    time estimate and the cap (exit 2 in the CLI)."""
    import subprocess
    import sys

    from actspec.core.errors import ActspecError
    from actspec.kernels.hermite import MAX_DEGREE, check_degree

    with pytest.raises(ActspecError, match=r"minutes.*cap is degree"):
        check_degree(100_000)
    check_degree(MAX_DEGREE)  # the cap itself is allowed
    proc = subprocess.run([sys.executable, "-m", "actspec", "hermite", "relu", "--degree", "100000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cap is degree" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
