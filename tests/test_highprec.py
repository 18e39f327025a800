"""actspec.highprec: extended-precision G∞ spectra, checked against independent truths:
mpmath quadrature for Hermite coefficients, closed forms for kernels, the exact DFT of circulant
matrices (circle data) far below float64 resolution, and float64 where eigenvalues are large."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from conftest import subspace_points
from mp_reference import he_normalized, mp_expect

import actspec
from actspec import ActspecError
from actspec.activations.expressions import parse_expression
from actspec.activations.registry import custom_activation, expression_activation
from actspec.highprec.kernels import (
    MAX_N,
    circulant_eigenvalues,
    eigvalsh_highprec,
    flint_available,
    gram_highprec,
    hermite_coefficients_highprec,
    rho_highprec,
    run_spectrum_high,
    spectrum_highprec,
)


def test_coefficients_match_mpmath_quadrature() -> None:
    hc = hermite_coefficients_highprec("tanh", digits=30)
    c = hc.as_mpf()
    assert hc.tail < 1e-30
    with mp.workdps(45):
        for a in (0, 2, 10, 40):
            ref = mp_expect(lambda z, a=a: mp.sech(z) ** 2 * he_normalized(a, z), -16, 16)
            assert abs(c[a] - ref) < mp.mpf(10) ** -36, a
        # odd coefficients of the even function tanh' vanish
        assert abs(c[1]) < mp.mpf(10) ** -40 and abs(c[41]) < mp.mpf(10) ** -40
        # Parseval: the series reaches E tanh'(z)^2
        e2 = mp_expect(lambda z: mp.sech(z) ** 4, -16, 16)
        assert abs(hc.norm2 - e2) < mp.mpf(10) ** -36


def test_coefficients_agree_with_float64() -> None:
    for name in ("swish", "gelu"):
        hc = hermite_coefficients_highprec(name, digits=30)
        c64 = actspec.hermite_coefficients(name, 60)
        np.testing.assert_allclose(hc.as_float()[:61], c64, atol=1e-14)


def test_expression_kernel_equals_closed_form() -> None:
    # "erf(x)" as an expression goes through the Hermite series; the built-in erf has the closed
    # form E[erf'(u) erf'(v)] = (4/pi) / sqrt(9 - 4 rho^2) (Williams 1997)
    act = expression_activation("erf(x)")
    X = subspace_points(12, 5, 3, seed=3)
    G = gram_highprec(X, act, digits=40)
    assert G.method.startswith("Hermite series")
    R = rho_highprec(X, bits=G.bits)
    with mp.workprec(G.bits):
        worst = mp.mpf(0)
        for i in range(12):
            for j in range(12):
                r = mp.mpf((int(R[i, j]), -G.bits))
                ref = r * (4 / mp.pi) / mp.sqrt(9 - 4 * r * r)
                got = mp.mpf((int(G.fixed[i, j]), -G.bits))
                worst = max(worst, abs(got - ref))
    assert worst < mp.mpf(10) ** -38


def test_circle_eigenvalues_equal_exact_dft_below_float64() -> None:
    # gelu on 41 equally spaced points: a circulant G∞ whose eigenvalues (the DFT of its first
    # row) reach ~1e-21 lambda_max, five orders of magnitude below float64's n eps lambda_max
    n = 41
    s = spectrum_highprec(None, "gelu", circle_n=n, digits=40)
    G = gram_highprec(None, "gelu", circle_n=n, digits=40)
    with mp.workprec(G.bits + 32):
        exact = circulant_eigenvalues(G.first_row_mpf())
        for got, ref in zip(s.eigenvalues, exact, strict=True):
            assert abs(got - ref) <= mp.mpf(10) ** -20 * abs(ref), (got, ref)
    ev = s.eigenvalues_float()
    assert s.n_unresolved == 0
    assert ev[-1] / ev[0] < 1e-20  # far below float64 resolution ...
    res64 = n * np.finfo(float).eps * ev[0]
    assert np.sum(ev < res64) >= 8  # ... for many of them
    # and float64 agrees where it can resolve
    X = actspec.datasets.circle(n, 10, seed=0)
    e64 = actspec.spectrum(actspec.gram(X, "gelu")).eigenvalues
    np.testing.assert_allclose(ev, e64, rtol=0, atol=10 * res64)


def test_circle_exact_angles_match_float64_rows() -> None:
    # circle data: rho from the angles, or from the float64 rows taken as exact: the two differ
    # only by the rows' rounding (~1e-16), far above the series accuracy but tiny in relative terms
    n = 16
    X = actspec.datasets.circle(n, 6, seed=1)
    a = spectrum_highprec(X, "swish", digits=30).eigenvalues_float()
    b = spectrum_highprec(None, "swish", circle_n=n, digits=30).eigenvalues_float()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * b[0])


def test_subspace_matches_float64_where_resolvable() -> None:
    X = subspace_points(30, 8, 3, seed=5)
    s = spectrum_highprec(X, "tanh", digits=30)
    e64 = actspec.spectrum(actspec.gram(X, "tanh"))
    ev = s.eigenvalues_float()
    big = e64.eigenvalues > 1e-6 * e64.lambda_max
    np.testing.assert_allclose(ev[big], e64.eigenvalues[big], rtol=1e-7)
    np.testing.assert_allclose(ev, e64.eigenvalues, rtol=0, atol=10 * e64.resolution)
    assert s.trace == pytest.approx(e64.trace, rel=1e-12)


def test_relu_closed_form_and_symmetry_zeros() -> None:
    # 20 circle points = 10 antipodal pairs: relu's G∞ has exactly 10 - 2 = 8 zero eigenvalues
    n = 20
    s = spectrum_highprec(None, "relu", circle_n=n, digits=40)
    assert s.method == "closed form"
    ev = s.eigenvalues
    assert sum(1 for v in ev if abs(v) < mp.mpf(10) ** -35) == 8
    G = gram_highprec(None, "relu", circle_n=n, digits=40)
    with mp.workprec(G.bits):
        exact = circulant_eigenvalues(G.first_row_mpf())
        for got, ref in zip(ev, exact, strict=True):
            assert abs(got - ref) < mp.mpf(10) ** -38


def test_kinked_without_closed_form_falls_back_to_float64_entries() -> None:
    X = subspace_points(15, 6, 3, seed=2)
    s = spectrum_highprec(X, "elu", digits=30)
    assert s.method == "float64 entries"
    assert s.resolution > 1e-14 * s.lambda_max  # honest, coarse resolution
    with pytest.raises(ActspecError, match="kink"):
        hermite_coefficients_highprec("elu", digits=30)


@pytest.mark.skipif(not flint_available(), reason="python-flint not installed")
def test_backends_agree() -> None:
    X = subspace_points(14, 5, 2, seed=4)
    G = gram_highprec(X, "sigmoid", digits=30)
    a = eigvalsh_highprec(G, backend="flint")
    b = eigvalsh_highprec(G, backend="mpmath")
    for x, y in zip(a, b, strict=True):
        assert abs(x - y) < mp.mpf(10) ** -40


def test_normalize_and_train_both() -> None:
    X = subspace_points(10, 5, 3, seed=6)
    s = spectrum_highprec(X, "tanh", digits=30, normalize=True)
    G64 = actspec.gram(X, "tanh", normalize=True)
    assert s.trace == pytest.approx(np.trace(G64), rel=1e-12)
    sb = spectrum_highprec(X, "gelu", digits=30, train="both")
    Gb = actspec.gram(X, "gelu", train="both")
    np.testing.assert_allclose(sb.eigenvalues_float(), np.linalg.eigvalsh(Gb)[::-1], atol=1e-12)


def test_run_spectrum_high_rows() -> None:
    ds = actspec.datasets.load_data("circle", n=12)
    rows = run_spectrum_high(ds, ["tanh", "x*sigmoid(x)"], digits=30)
    for r in rows:
        for key in ("activation", "width", "eigenvalues", "lambda_min", "lambda_max",
                    "condition_number", "trace", "resolution", "precision"):
            assert key in r
        assert r["width"] == "inf" and r["precision"] == "high" and r["exact_circle"]
    assert rows[1]["activation"] == "x*sigmoid(x)"


def test_bad_inputs() -> None:
    X = subspace_points(5, 4, 2)
    with pytest.raises(ActspecError, match="unit-norm"):
        gram_highprec(2.0 * X, "tanh")
    with pytest.raises(ActspecError, match="digits"):
        gram_highprec(X, "tanh", digits=5)
    with pytest.raises(ActspecError, match=f"n <= {MAX_N}"):
        gram_highprec(None, "relu", circle_n=MAX_N + 1)
    with pytest.raises(ActspecError, match="extended-precision"):
        hermite_coefficients_highprec(actspec.activation(lambda x: x.tanh()), digits=30)


# ---- expressions ---------------------------------------------------------------------------


def test_expression_backends_agree() -> None:
    import torch

    e = parse_expression("x*sigmoid(x) + 0.1*tanh(2*x)**2 - exp(-x**2)/pi")
    x = np.linspace(-4, 4, 9) + 0.1
    ref = x / (1 + np.exp(-x)) + 0.1 * np.tanh(2 * x) ** 2 - np.exp(-x * x) / np.pi
    np.testing.assert_allclose(e(x), ref, rtol=1e-14)
    np.testing.assert_allclose(e(torch.as_tensor(x)).numpy(), ref, rtol=1e-14)
    act = custom_activation("x*sigmoid(x) + 0.1*tanh(2*x)**2 - exp(-x**2)/pi")
    with mp.workdps(40):
        for v in x:
            assert float(e.mp_phi(v)) == pytest.approx(float(e(np.array([v]))[0]), rel=1e-14)
            d_mp = e.mp_dphi(mp.mpf(v))
            d_num = mp.diff(e.mp_phi, mp.mpf(v))
            assert abs(d_mp - d_num) < mp.mpf(10) ** -30
            assert float(d_mp) == pytest.approx(float(act.dphi(np.array([v]))[0]), rel=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.real",
        "(lambda: 1)()",
        "[x]",
        "x if x > 0 else 0",
        "open('f')",
        "sigmoid(x, x)",
        "sigmoid(x=1)",
        "1 + 2",
        "exp",
        "y * x",
        "x @ x",
        "x % 2",
        "'x'",
        "x; x",
        "",
    ],
)
def test_parser_rejects(text: str) -> None:
    with pytest.raises(ActspecError, match="activation expression"):
        parse_expression(text)
