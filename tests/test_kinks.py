"""actspec.kinks: kink classes of the built-ins (as the activation paper states them) and of user
functions with kinks at nonzero points, located with their jump sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actspec import ActspecError, activation
from actspec.activations.kinks import derivatives, detect_kinks
from actspec.activations.registry import expression_activation

LAM, ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717

# (name, class, jump of phi^(r) at 0) -- Panigrahi et al. 2020, Section 4.1: ReLU, LReLU, SELU in
# J_1, ELU in J_2; the jump sizes are the one-sided derivative differences, worked out by hand.
BUILTIN_CLASSES = [
    ("relu", "J_1", 1.0),
    ("leaky_relu", "J_1", 0.99),
    ("leaky_relu:0.2", "J_1", 0.8),
    ("selu", "J_1", LAM * (1.0 - ALPHA)),  # phi'(0+) - phi'(0-) = lam - lam*alpha
    ("elu", "J_2", -1.0),  # phi'' is 0 on the right, e^x -> 1 on the left
    ("elu:0.5", "J_1", 0.5),  # phi'(0-) = 0.5, phi'(0+) = 1
    ("elu:0", "J_1", 1.0),
    ("gelu", "smooth", None),
    ("swish", "smooth", None),
    ("swish:1.5", "smooth", None),
    ("softplus", "smooth", None),
    ("tanh", "smooth", None),
    ("sigmoid", "smooth", None),
    ("erf", "smooth", None),
    ("linear", "polynomial of degree 1", None),
    ("quadratic", "polynomial of degree 2", None),
    ("cubic", "polynomial of degree 3", None),
]


@pytest.mark.parametrize("name,cls,jump", BUILTIN_CLASSES)
def test_builtin_classes(name: str, cls: str, jump: float | None) -> None:
    rep = detect_kinks(name)
    assert rep.kink_class == cls
    assert rep.agrees_with_declared is True
    if jump is None:
        assert rep.kinks == []
    else:
        (k,) = rep.kinks
        assert k.location == 0.0
        assert k.jump == pytest.approx(jump, rel=1e-6, abs=1e-7)
        assert rep.in_paper_range is True


def _spline3(x: torch.Tensor) -> torch.Tensor:
    # tanh plus a cubic spline piece: phi''' jumps by 6 at x = 0.3 (class J_3)
    return torch.tanh(x) + torch.where(x > 0.3, (x - 0.3) ** 3, torch.zeros_like(x))


def _spline4(x: torch.Tensor) -> torch.Tensor:
    # phi'''' jumps by -24 at x = -0.7 (quartic piece on the left)
    return torch.sin(x) + torch.where(x < -0.7, (x + 0.7) ** 4, torch.zeros_like(x))


def _broken_line(x: torch.Tensor) -> torch.Tensor:
    # continuous, slopes -0.5 (left) and 2 (right) at x = -0.5: J_1 with jump +2.5
    return torch.where(x > -0.5, 2 * x + 1, -0.5 * x - 0.25)


def _step(x: torch.Tensor) -> torch.Tensor:
    return x + torch.where(x > 0.7, torch.ones_like(x), torch.zeros_like(x))


def _bump(x: torch.Tensor) -> torch.Tensor:
    return x * torch.exp(-x * x) + 0.1 * torch.tanh(3 * x)


def _two_kinks(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x - 1.0) + 0.5 * torch.relu(-x - 2.0)


@pytest.mark.parametrize(
    "fn,cls,expected",
    [
        (_spline3, "J_3", [(0.3, 3, 6.0)]),
        (_spline4, "J_4", [(-0.7, 4, -24.0)]),
        (_broken_line, "J_1", [(-0.5, 1, 2.5)]),
        (_step, "discontinuous", [(0.7, 0, 1.0)]),
        (_bump, "smooth", []),
        (_two_kinks, "J_1", [(-2.0, 1, 0.5), (1.0, 1, 1.0)]),
    ],
)
def test_user_functions(fn, cls: str, expected: list[tuple[float, int, float]]) -> None:
    if cls == "discontinuous":  # refused as an activation (issue 18); detected as written
        from actspec.activations.base import from_callable

        with pytest.raises(ActspecError, match="phi jumps"):
            activation(fn)
        rep = detect_kinks(from_callable(fn))
    else:
        rep = detect_kinks(activation(fn))
    assert rep.kink_class == cls
    assert len(rep.kinks) == len(expected)
    for k, (loc, order, jump) in zip(rep.kinks, expected, strict=True):
        assert k.location == pytest.approx(loc, abs=1e-9)
        assert k.location_error < 1e-9
        assert k.order == order
        assert k.jump == pytest.approx(jump, rel=1e-5)
        # the derivatives below the order are continuous
        for j in range(order):
            assert abs(k.jumps[j]) < 1e-5


def test_spline_lower_derivatives_and_one_sided_values() -> None:
    rep = detect_kinks(activation(_spline3))
    (k,) = rep.kinks
    t = math.tanh(0.3)
    # phi''(0.3) of tanh: -2 tanh sech^2; the spline adds nothing to phi'' at the knot
    assert k.left[2] == pytest.approx(-2 * t * (1 - t * t), rel=1e-6)
    assert k.right[3] - k.left[3] == pytest.approx(6.0, rel=1e-6)


@pytest.mark.parametrize(
    "text,cls,loc,jump",
    [
        ("max(x, 0.1*x)", "J_1", 0.0, 0.9),
        ("abs(x - 0.25)", "J_1", 0.25, 2.0),
        ("x*sigmoid(x)", "smooth", None, None),
        ("x**3 + x", "polynomial of degree 3", None, None),
        ("relu(x + 0.5)**2", "J_2", -0.5, 2.0),
    ],
)
def test_expressions(text: str, cls: str, loc: float | None, jump: float | None) -> None:
    act = expression_activation(text)
    rep = detect_kinks(act)
    assert rep.kink_class == cls
    if cls != "smooth":  # the detected kinks / degree are declared on the activation
        assert act.kink_class == cls
    if loc is not None:
        (k,) = rep.kinks
        assert k.location == pytest.approx(loc, abs=1e-9)
        assert k.jump == pytest.approx(jump, rel=1e-6)
        assert act.kinks == pytest.approx((loc,), abs=1e-9)


def test_derivatives_match_closed_forms() -> None:
    x = np.linspace(-3, 3, 13) + 0.01
    D, reached = derivatives(activation("tanh"), x, 3)
    t = np.tanh(x)
    assert reached == 3
    np.testing.assert_allclose(D[1], 1 - t**2, atol=1e-14)
    np.testing.assert_allclose(D[2], -2 * t * (1 - t**2), atol=1e-14)
    np.testing.assert_allclose(D[3], -2 * (1 - t**2) * (1 - 3 * t**2), atol=1e-13)


def test_report_serialises_and_bad_input() -> None:
    rep = detect_kinks("relu")
    d = rep.to_dict()
    assert d["kink_class"] == "J_1" and d["kinks"][0]["order"] == 1
    assert "J_1" in rep.summary()
    with pytest.raises(ActspecError):
        detect_kinks("relu", interval=(1.0, -1.0))
    with pytest.raises(ActspecError):
        detect_kinks("relu", max_order=12)
