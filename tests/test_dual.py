"""Dual functions E[f(u) f(v)]: closed forms, the theta-tables and the polar quadrature,
checked against each other, against mpmath, and against the Hermite series."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from mp_reference import MP_ACTS, gauss, mp_expect

import actspec
from actspec import activation
from actspec.kernels.dual import DualTable, closed_form_dual, dual, dual_table
from actspec.kernels.hermite import dual_from_coefficients, hermite_coefficients

mp.mp.dps = 20
RHO = np.array([-1.0, -1 + 1e-12, -0.9999, -0.97, -0.6, -0.2, 0.0, 0.35, 0.8, 0.99, 0.999999, 1 - 1e-13, 1.0])
CLOSED = ["relu", "leaky_relu:0.2", "linear", "quadratic", "cubic", "erf"]


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("which", ["derivative", "activation"])
def test_closed_forms_vs_quadrature_and_table(name: str, which: str) -> None:
    act = activation(name)
    exact = closed_form_dual(act, 1.0, 1.0, RHO, which)
    quad = dual(act, 1.0, 1.0, RHO, which, method="quadrature")
    table = dual(act, 1.0, 1.0, RHO, which, method="table")
    np.testing.assert_allclose(quad, exact, rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(table, exact, rtol=1e-14, atol=1e-12)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_forms_general_covariance(name: str, rng: np.random.Generator) -> None:
    act = activation(name)
    s1 = rng.uniform(0.2, 3.0, 12)
    s2 = rng.uniform(0.2, 3.0, 12)
    c = rng.uniform(-1, 1, 12) * np.sqrt(s1 * s2)
    for which in ("derivative", "activation"):
        exact = closed_form_dual(act, s1, s2, c, which)
        quad = dual(act, s1, s2, c, which, method="quadrature")
        np.testing.assert_allclose(quad, exact, rtol=1e-13, atol=1e-12)


def test_relu_closed_form_values() -> None:
    act = activation("relu")
    theta = np.arccos(RHO)
    np.testing.assert_allclose(dual(act, 1, 1, RHO), (np.pi - theta) / (2 * np.pi), atol=1e-15)
    np.testing.assert_allclose(dual(act, 1, 1, RHO, "activation"),
                               (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi), atol=1e-15)


@pytest.mark.parametrize("name", sorted(MP_ACTS))
def test_diagonal_and_antidiagonal_against_mpmath(name: str) -> None:
    """rho = 1: E phi'(z)^2; rho = -1: E phi'(z) phi'(-z): the hardest points for series methods."""
    act = activation(name)
    d = MP_ACTS[name][1]
    same = float(mp_expect(lambda x: d(x) ** 2))
    opposite = float(mp_expect(lambda x: d(x) * d(-x)))
    got = dual(act, 1.0, 1.0, np.array([1.0, -1.0]), method="table")
    assert abs(got[0] - same) < 1e-12
    assert abs(got[1] - opposite) < 1e-12


@pytest.mark.parametrize("name", ["elu", "elu:0.5", "selu"])
def test_elu_family_interior_against_mpmath(name: str) -> None:
    """phi' = lam (1{x>0} + alpha e^x 1{x<0}); the inner Gaussian expectation given u has a closed
    form, leaving a 1-D mpmath integral: exact reference at any rho."""
    from mp_reference import ALPHA, LAM

    lam, alpha = {"elu": (1, 1), "elu:0.5": (1, mp.mpf(1) / 2), "selu": (LAM, ALPHA)}[name]
    act = activation(name)
    d = MP_ACTS[name][1]
    for rho in (-0.999, -0.4, 0.5, 0.99, 0.99999):
        r = mp.mpf(rho)
        s = mp.sqrt(1 - r * r)

        def inner(x, r=r, s=s):  # E_y phi'(r x + s y)
            mu = r * x
            return lam * (mp.ncdf(mu / s) + alpha * mp.exp(mu + s * s / 2) * mp.ncdf(-mu / s - s))

        ref = mp.quad(lambda x: d(x) * inner(x) * gauss(x), [-13, -6, -2, 0, 2, 6, 13])
        got = dual(act, 1.0, 1.0, np.array([rho]), method="table")[0]
        assert abs(got - float(ref)) < 1e-12, (name, rho, got, ref)


@pytest.mark.parametrize("name", actspec.BUILTIN_NAMES)
def test_table_matches_hermite_series_where_it_converges(name: str) -> None:
    act = activation(name)
    rho = np.linspace(-0.55, 0.55, 23)
    for which in ("derivative", "activation"):
        c = hermite_coefficients(act, 250, of=which)
        scale = max(1.0, float(np.sum(c * c)))
        np.testing.assert_allclose(dual(act, 1, 1, rho, which, method="table"),
                                   dual_from_coefficients(c, rho), rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("name", ["tanh", "elu", "swish", "gelu"])
def test_general_norms_table_vs_quadrature(name: str, rng: np.random.Generator) -> None:
    act = activation(name)
    s1, s2 = 0.49, 2.25
    c = np.array([-1.0, -0.7, 0.0, 0.3, 0.95, 1.0]) * np.sqrt(s1 * s2)
    quad = dual(act, s1, s2, c, method="quadrature")
    table = dual(act, s1, s2, c, method="table")
    np.testing.assert_allclose(table, quad, rtol=0, atol=1e-12)


def test_table_self_check_is_tight() -> None:
    for name in ["tanh", "elu", "selu", "softplus", "cubic"]:
        tab = DualTable.build(activation(name), "derivative", 1.0, 1.0)
        assert tab.check_error < 1e-12


def test_tables_are_cached() -> None:
    act = activation("sigmoid")
    assert dual_table(act, "derivative") is dual_table(act, "derivative")


def test_user_activation_with_declared_kink() -> None:
    import torch

    act = activation(lambda x: torch.clamp(x, min=0.0), kinks=[0.0], name="myrelu")
    got = dual(act, 1.0, 1.0, RHO)
    np.testing.assert_allclose(got, (np.pi - np.arccos(RHO)) / (2 * np.pi), atol=1e-12)


def test_user_activation_with_off_origin_kinks() -> None:
    """hard-tanh: kinks at -1 and 1 (lines not through the origin) against mpmath at rho = 1, -1."""
    import torch

    act = activation(lambda x: torch.clamp(x, -1.0, 1.0), kinks=[-1.0, 1.0], name="hardtanh")
    p_in = float(mp.erf(1 / mp.sqrt(2)))  # P(|z| < 1)
    got = dual(act, 1.0, 1.0, np.array([1.0, -1.0, 0.0]))
    np.testing.assert_allclose(got, [p_in, p_in, p_in**2], atol=1e-12)
    # interior: E[1{|u|<1} 1{|v|<1}] is a bivariate normal rectangle probability
    from scipy.stats import multivariate_normal

    for rho in (0.3, -0.8, 0.95):
        mvn = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]])
        ref = mvn.cdf([1, 1]) - mvn.cdf([-1, 1]) - mvn.cdf([1, -1]) + mvn.cdf([-1, -1])
        assert abs(dual(act, 1.0, 1.0, np.array([rho]))[0] - ref) < 1e-7  # scipy's cdf is ~1e-8
