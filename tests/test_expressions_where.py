"""Piecewise expressions ``where(cond, a, b)`` (issue 17, item 10), checked against independent
truths: the built-ins' closed forms and G∞ (ELU, leaky ReLU, ReLU, softplus), derivatives against
mpmath numerical differentiation, the kink class, and clear errors for misuse."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

import actspec
from actspec import ActspecError
from actspec.activations.expressions import EXPRESSION_FUNCTIONS, parse_expression
from actspec.activations.kinks import detect_kinks
from actspec.activations.registry import expression_activation

ELU = "where(x > 0, x, exp(x) - 1)"
# grid that avoids the kinks and contains no exact branch points
XS = np.linspace(-4.0, 4.0, 41) + 0.0137


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def _elu_d(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))


# ---- same G∞ and the same kink class as the built-ins -------------------------------------------


@pytest.mark.parametrize(
    "text, name, order, jump",
    [
        (ELU, "elu", 2, -1.0),  # phi'' jumps from e^0 = 1 to 0
        ("where(x > 0, x, 0.2*x)", "leaky_relu:0.2", 1, 0.8),
        ("where(x>0, x, 0)", "relu", 1, 1.0),
        ("where(x <= 0, 0.2*x, x)", "leaky_relu:0.2", 1, 0.8),  # the same, condition reversed
        ("where(not (x > 0), exp(x) - 1, x)", "elu", 2, -1.0),
    ],
)
def test_piecewise_equals_builtin(text: str, name: str, order: int, jump: float) -> None:
    X = actspec.datasets.circle(13, 5, seed=0)
    G_expr = np.asarray(actspec.gram(X, text))
    G_ref = np.asarray(actspec.gram(X, name))
    np.testing.assert_allclose(G_expr, G_ref, rtol=0, atol=1e-12)
    act = expression_activation(text)
    ref = actspec.activation(name)
    assert act.kink_class == f"J_{order}" == ref.kink_class
    assert act.kink_order == order
    assert act.kinks == pytest.approx((0.0,), abs=1e-12)
    rep = detect_kinks(act)
    (k,) = rep.kinks
    assert rep.kink_class == f"J_{order}"
    assert k.jump == pytest.approx(jump, rel=1e-6)
    # phi and phi' agree with the built-in off the kink
    np.testing.assert_allclose(act.phi(XS), ref.phi(XS), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.dphi(XS), ref.dphi(XS), rtol=1e-13, atol=1e-15)


def test_kinks_away_from_zero() -> None:
    rep = detect_kinks(expression_activation("where(x >= 0.5, x, 0.5)"))
    assert rep.kink_class == "J_1"
    (k,) = rep.kinks
    assert k.location == pytest.approx(0.5, abs=1e-9) and k.jump == pytest.approx(1.0, rel=1e-6)
    # x^3 on (-1, 1), x outside: phi' jumps 1 -> 3 at -1 and 3 -> 1 at +1
    rep = detect_kinks(expression_activation("where(abs(x) < 1, x**3, x)"))
    assert rep.kink_class == "J_1"
    assert [k.location for k in rep.kinks] == pytest.approx([-1.0, 1.0], abs=1e-9)
    assert [k.jump for k in rep.kinks] == pytest.approx([2.0, -2.0], rel=1e-6)
    # a step is discontinuous (phi itself jumps)
    rep = detect_kinks(expression_activation("where(x > 0.25, 1, 0)", detect_kinks=False))
    assert rep.kink_class == "discontinuous"
    assert rep.kinks[0].location == pytest.approx(0.25, abs=1e-9)


def test_smooth_piecewise_has_no_kink() -> None:
    # the numerically stable softplus that numpy users write: one smooth function on both sides
    act = expression_activation("where(x > 0, x + log1p(exp(-x)), log1p(exp(x)))")
    assert not act.kinks
    assert detect_kinks(act).kink_class == "smooth"
    np.testing.assert_allclose(act.phi(XS), np.logaddexp(0.0, XS), rtol=1e-15)


# ---- the three backends -----------------------------------------------------------------------


def test_elu_three_backends_values_and_derivatives() -> None:
    e = parse_expression(ELU)
    np.testing.assert_allclose(e(XS), _elu(XS), rtol=1e-15, atol=1e-16)
    t = torch.as_tensor(XS).requires_grad_(True)
    y = e(t)
    np.testing.assert_allclose(y.detach().numpy(), _elu(XS), rtol=1e-15, atol=1e-16)
    (g,) = torch.autograd.grad(y.sum(), t, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), _elu_d(XS), rtol=1e-15)
    (g2,) = torch.autograd.grad(g.sum(), t)
    np.testing.assert_allclose(g2.numpy(), np.where(XS > 0, 0.0, np.exp(np.minimum(XS, 0))), rtol=1e-15)
    with mp.workdps(40):
        for v in XS:
            assert float(e.mp_phi(v)) == pytest.approx(float(_elu(np.array([v]))[0]), rel=1e-15)
            d = e.mp_dphi(mp.mpf(v))
            assert abs(d - mp.diff(e.mp_phi, mp.mpf(v))) < mp.mpf(10) ** -30
            assert float(d) == pytest.approx(float(_elu_d(np.array([v]))[0]), rel=1e-15)
        # at the branch point the condition is false: the exp(x) - 1 branch (value 0, slope 1)
        assert e.mp_phi(0) == 0 and e.mp_dphi(0) == 1
    assert e(0.5) == mp.mpf(0.5)  # a Python float goes to mpmath
    assert e(torch.zeros(3, dtype=torch.float32)).dtype == torch.float32


@pytest.mark.parametrize(
    "text, truth",
    [
        ("where(-1 < x <= 1, x, 0)", lambda v: v if -1 < v <= 1 else 0.0),
        ("where(x > -1 and x < 1, x**2, 1)", lambda v: v * v if -1 < v < 1 else 1.0),
        ("where((x > -1) & (x < 1), x**2, 1)", lambda v: v * v if -1 < v < 1 else 1.0),
        ("where(x < -2 or x > 2, 2*x, -x)", lambda v: 2 * v if (v < -2 or v > 2) else -v),
        ("where((x < -2) | (x > 2), 2*x, -x)", lambda v: 2 * v if (v < -2 or v > 2) else -v),
        ("where(not x >= 1, sin(x), cos(x))", lambda v: math.sin(v) if not v >= 1 else math.cos(v)),
        ("where(~(x >= 1), sin(x), cos(x))", lambda v: math.sin(v) if not v >= 1 else math.cos(v)),
        ("where(x != 1, x, 7)", lambda v: v if v != 1 else 7.0),
        (
            "where(x*x >= 2, x, where(x > 0, tanh(x), x**3))",
            lambda v: v if v * v >= 2 else (math.tanh(v) if v > 0 else v**3),
        ),
        ("1 + 2*where(exp(x) > 3, x, -x)", lambda v: 1 + 2 * (v if math.exp(v) > 3 else -v)),
        ("where(1 > 0, x, 0)", lambda v: v),
    ],
)
def test_conditions_in_all_backends(text: str, truth) -> None:  # type: ignore[no-untyped-def]
    xs = np.concatenate([XS, [-1.0, 1.0, 2.0, -2.0, 0.0]])
    ref = np.array([truth(float(v)) for v in xs])
    e = parse_expression(text)
    np.testing.assert_allclose(e(xs), ref, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(e(torch.as_tensor(xs)).numpy(), ref, rtol=1e-15, atol=1e-15)
    with mp.workdps(30):
        got = np.array([float(e.mp_phi(mp.mpf(float(v)))) for v in xs])
        np.testing.assert_allclose(got, ref, rtol=1e-15, atol=1e-15)
        # forward derivative = numerical derivative of the chosen branch (off branch points)
        for v in XS[::4]:
            d = e.mp_dphi(mp.mpf(v))
            assert abs(d - mp.diff(e.mp_phi, mp.mpf(v))) < mp.mpf(10) ** -20 * max(1, abs(d))


def test_torch_derivatives_match_finite_differences() -> None:
    text = "where(x > 0.3, x*sigmoid(x), where(x < -1, -x**2, sin(x)))"
    e = parse_expression(text)
    t = torch.as_tensor(XS).requires_grad_(True)
    (g,) = torch.autograd.grad(e(t).sum(), t)
    h = 1e-6
    fd = (e(XS + h) - e(XS - h)) / (2 * h)
    np.testing.assert_allclose(g.numpy(), fd, rtol=1e-7, atol=1e-8)
    act = expression_activation(text, detect_kinks=False)  # phi jumps at -1: refused with them
    np.testing.assert_allclose(act.dphi(XS), fd, rtol=1e-7, atol=1e-8)


def test_undefined_branch_does_not_poison_gradients() -> None:
    # the branch not chosen is NaN (sqrt, log of x < 0) or 0/0: values and every derivative stay
    # those of the chosen branch (torch.where alone would give NaN gradients here)
    xs = np.array([-2.0, -0.5, 0.25, 1.0, 3.0])
    t = torch.as_tensor(xs).requires_grad_(True)
    y = parse_expression("where(x > 0, sqrt(x), 0)")(t)
    (g,) = torch.autograd.grad(y.sum(), t, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), t)
    pos = xs > 0
    np.testing.assert_allclose(y.detach().numpy(), np.where(pos, np.sqrt(np.abs(xs)), 0.0))
    np.testing.assert_allclose(g.detach().numpy(), np.where(pos, 0.5 / np.sqrt(np.abs(xs)), 0.0))
    np.testing.assert_allclose(g2.numpy(), np.where(pos, -0.25 * np.abs(xs) ** -1.5, 0.0))
    # sinc with its removable singularity, as numpy users write it
    sinc = parse_expression("where(x == 0, 1, sin(x)/x)")
    t0 = torch.tensor([0.0, 0.5], dtype=torch.float64, requires_grad=True)
    y0 = sinc(t0)
    (g0,) = torch.autograd.grad(y0.sum(), t0)
    assert y0[0].item() == 1.0 and g0[0].item() == 0.0
    assert g0[1].item() == pytest.approx((0.5 * math.cos(0.5) - math.sin(0.5)) / 0.25, rel=1e-14)
    assert sinc(np.array([0.0]))[0] == 1.0
    # mpmath evaluates only the chosen branch: no complex log of a negative number
    lg = parse_expression("where(x > 0, log(x), 0)")
    assert lg.mp_phi(-2) == 0 and lg.mp_dphi(-2) == 0
    assert lg.mp_dphi(2) == mp.mpf(1) / 2
    # a condition that is NaN / complex compares false, as in numpy
    c = parse_expression("where(log(x) > 0, 1, x)")
    assert c.mp_phi(-2) == -2 and float(c(np.array([-2.0]))[0]) == -2.0


def test_step_is_on_the_autograd_graph() -> None:
    # both branches constant: phi' = 0 from autograd (no fallback to numerical differentiation)
    act = expression_activation("where(x > 0, 1, -1)", detect_kinks=False)  # refused with them
    np.testing.assert_array_equal(act.dphi(XS), np.zeros_like(XS))
    np.testing.assert_array_equal(act.phi(XS), np.sign(XS))


# ---- extended precision (mpmath backend) ---------------------------------------------------------


def test_highprec_coefficients_of_piecewise_softplus() -> None:
    from actspec.highprec.kernels import hermite_coefficients_highprec

    text = "where(x > 0, x + log1p(exp(-x)), log1p(exp(x)))"
    a = hermite_coefficients_highprec(expression_activation(text), digits=30)
    b = hermite_coefficients_highprec("softplus", digits=30)
    assert a.degree == b.degree
    for u, v in zip(a.as_mpf(), b.as_mpf(), strict=True):
        assert abs(u - v) < mp.mpf(10) ** -30


def test_highprec_spectrum_of_piecewise_elu_matches_builtin() -> None:
    from actspec.highprec.kernels import spectrum_highprec

    X = actspec.datasets.circle(9, 4, seed=0)
    s = spectrum_highprec(X, ELU, digits=30)
    r = spectrum_highprec(X, "elu", digits=30)
    assert s.method == r.method
    np.testing.assert_allclose(s.eigenvalues_float(), r.eigenvalues_float(), rtol=0, atol=1e-12)


# ---- misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, why",
    [
        ("where(x > 0, x)", "where takes 3 arguments"),
        ("where(x > 0, x, 0, 1)", "where takes 3 arguments"),
        ("where(x > 0)", "where takes 3 arguments"),
        ("x > 0", "comparison is only allowed in the condition of where"),
        ("x*(x > 0)", "comparison is only allowed in the condition of where"),
        ("where(x > 0, x > 1, 0)", "comparison is only allowed in the condition of where"),
        ("max(x > 0, 1)", "comparison is only allowed in the condition of where"),
        ("x > 0 and x < 1", "and/or is only allowed in the condition of where"),
        ("not x", "'not' / '~' is only allowed"),
        ("~x", "'not' / '~' is only allowed"),
        ("(x > 0) & (x < 1)", "'&' / '|' is only allowed"),
        ("where(x, x, 0)", "condition of where must be a comparison such as x > 0"),
        ("where(x > 0 and x, x, 0)", "condition of where must be a comparison"),
        ("where(x & 1, x, 0)", "condition of where must be a comparison"),
        ("where(True, x, 0)", "not True/False"),
        ("where(x is 0, x, 0)", "comparison Is is not allowed"),
        ("where(x in 0, x, 0)", "comparison In is not allowed"),
        ("where", "function 'where' must be called, e.g. where(x > 0, x, 0.2*x)"),
        ("where(cond=x > 0, a=x, b=0)", "keyword or starred"),
        ("x if x > 0 else 0", "write where"),
        ("where(x > 0, 1, 0) + 1 > 0", "comparison is only allowed"),
        ("where(0 > 1, 1, 2)", "does not depend on x"),
    ],
)
def test_misuse_is_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(ActspecError, match="activation expression") as exc:
        parse_expression(text)
    assert why in str(exc.value)


def test_where_is_documented() -> None:
    assert EXPRESSION_FUNCTIONS["where"] == 3
    import actspec.activations.expressions as mod

    assert mod.__doc__ is not None and "where(cond, a, b)" in mod.__doc__
    with pytest.raises(ActspecError) as exc:
        parse_expression("y")
    assert "where(cond, a, b)" in str(exc.value)
