"""The built-in activations, each with all of its math in one place: phi and phi' (numpy and torch
from one definition), kinks and class J_r, and the closed forms it knows (float64 and mpmath duals,
fused torch kernels for training, phi' from phi's value, the He/Kaiming gain), plus the parser of
built-in names with parameters (``"leaky_relu:0.2"``). Adding a built-in touches this file only.

The piecewise-linear activations are one family ``ABReLU(a, b)`` (phi(x) = b x for x > 0, a x
for x < 0), as in neural-tangents: relu (0, 1), leaky_relu (alpha, 1) for every slope, abs (-1, 1).

Kink class (Panigrahi, Shetty, Goyal 2020, Def. 4.1): ReLU, leaky ReLU and SELU are J_1; ELU
(alpha = 1) is J_2; the others are smooth; linear, quadratic and cubic are polynomials.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from .base import Activation

__all__ = ["ALIASES", "BUILTIN_NAMES", "SELU_ALPHA", "SELU_LAMBDA", "builtin", "is_builtin_name",
           "mp_sigmoid", "mp_softplus"]

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# ---------------------------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------------------------

_TWO_PI = 2.0 * math.pi


# ---- closed forms shared by families --------------------------------------------------------


def _angle(s1: np.ndarray, s2: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sqrt(s1 s2), theta = arccos(c / sqrt(s1 s2))); rho = 1 where a variance is 0."""
    sd = np.sqrt(s1 * s2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.clip(np.where(sd > 0, c / np.where(sd > 0, sd, 1.0), 1.0), -1.0, 1.0)
    return sd, np.arccos(rho)


def _abrelu_dual(a: float, b: float) -> Callable[..., np.ndarray]:
    """E[f(u) f(v)] of phi = ABReLU(a, b) (Cho & Saul's arc-cosine kernels of degree 0 and 1):
    phi': (a^2 + b^2)(pi - theta)/(2 pi) + ab theta/pi;  phi: a^2 c + a(b - a) c + (b - a)^2 J_1,
    J_1 = sqrt(s1 s2)(sin theta + (pi - theta) cos theta)/(2 pi). a = b is the line b x (exact).

    ``theta`` (an accurate angle, e.g. from the rows of close pairs): sin and cos of it, as
    written. ``rho`` (the correlation c / sqrt(s1 s2), already computed by the caller: the G∞
    tiles): theta = arccos(rho), and for phi the algebraic form J_1 = (sqrt(s1 s2 (1 - rho)
    (1 + rho)) + (pi - theta) c)/(2 pi), phi = ab c + (b - a)^2 J_1, without the two trig
    passes (the same values to a few ulps; sin theta = sqrt((1 - rho)(1 + rho)) and cos theta
    = rho are at least as accurate as sin and cos of arccos(rho)). phi' is the same arithmetic
    either way. Fresh output arrays, updated in place (no temporaries beyond two)."""
    ab, aabb, bma2 = a * b, a * a + b * b, (b - a) ** 2

    def derivative_of(th: np.ndarray) -> np.ndarray:
        # (a^2 + b^2) * (pi - th) / (2 pi) + a b th / pi, in place in th
        extra = None
        if ab != 0.0:
            extra = ab * th
            extra /= math.pi
        np.subtract(math.pi, th, out=th)
        if aabb != 1.0:
            th *= aabb
        th /= _TWO_PI
        if extra is not None:
            th += extra
        return th

    def dual(s1: np.ndarray, s2: np.ndarray, c: np.ndarray, which: str,
             theta: np.ndarray | None = None, rho: np.ndarray | None = None) -> np.ndarray:
        if a == b:
            return np.full_like(c, a * a) if which == "derivative" else a * a * c
        if theta is not None:
            if which == "derivative":
                return (a * a + b * b) * (math.pi - theta) / _TWO_PI + a * b * theta / math.pi
            sd = np.sqrt(s1 * s2)
            j1 = sd * (np.sin(theta) + (math.pi - theta) * np.cos(theta)) / _TWO_PI
            return a * a * c + a * (b - a) * c + (b - a) ** 2 * j1
        if rho is None:
            sd, th = _angle(s1, s2, c)
            if which == "derivative":
                return derivative_of(th)
            j1 = sd * (np.sin(th) + (math.pi - th) * np.cos(th)) / _TWO_PI
            return a * a * c + a * (b - a) * c + (b - a) ** 2 * j1
        r = np.clip(rho, -1.0, 1.0)
        th = np.arccos(r)
        if which == "derivative":
            return derivative_of(th)
        # 2 pi J_1 = sqrt(s1 s2 (1 - r)(1 + r)) + (pi - th) c
        j1 = np.subtract(1.0, r)
        r += 1.0
        j1 *= r
        j1 *= np.multiply(s1, s2)
        np.sqrt(j1, out=j1)
        np.subtract(math.pi, th, out=th)
        th *= c
        j1 += th
        j1 /= _TWO_PI
        if bma2 != 1.0:
            j1 *= bma2
        if ab != 0.0:
            np.multiply(ab, c, out=th)
            j1 += th
        return j1

    return dual


def _abrelu_mp_dual(a: float, b: float) -> Callable[[Any, str], Any]:
    def dual(r: Any, which: str) -> Any:
        import mpmath as mp

        am, bm = mp.mpf(a), mp.mpf(b)
        if a == b:
            return am * am if which == "derivative" else am * am * r
        th = mp.acos(max(min(r, mp.mpf(1)), mp.mpf(-1)))
        if which == "derivative":
            return (am * am + bm * bm) * (mp.pi - th) / (2 * mp.pi) + am * bm * th / mp.pi
        j1 = (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / (2 * mp.pi)
        return am * am * r + am * (bm - am) * r + (bm - am) ** 2 * j1

    return dual


def _poly_dual(p: int) -> Callable[..., np.ndarray]:
    """E[f(u) f(v)] of x^p (Isserlis): x: 1 | c;  x^2: 4c | s1 s2 + 2c^2;  x^3: 9(s1 s2 + 2c^2) |
    9 s1 s2 c + 6c^3 (the same arithmetic as written, on fresh arrays updated in place; c has
    the broadcast shape, see ``Activation.closed_form_dual``)."""

    def dual(s1: np.ndarray, s2: np.ndarray, c: np.ndarray, which: str,
             theta: np.ndarray | None = None, rho: np.ndarray | None = None) -> np.ndarray:
        d = which == "derivative"
        if p == 1:
            return np.ones_like(c) if d else c.copy()
        if p == 2:
            if d:
                return 4 * c
            t = 2 * c  # s1 s2 + 2 c c
            t *= c
            t += np.multiply(s1, s2)
            return t
        if d:  # 9 * (s1 s2 + 2 c c)
            t = 2 * c
            t *= c
            t += np.multiply(s1, s2)
            t *= 9
            return t
        t = 9 * s1 * s2  # 9 s1 s2 c + 6 c^3
        t = t * c
        u = c**3
        u *= 6
        t += u
        return t

    return dual


def _poly_mp_dual(p: int) -> Callable[[Any, str], Any]:
    def dual(r: Any, which: str) -> Any:
        import mpmath as mp

        d = which == "derivative"
        if p == 1:
            return mp.mpf(1) if d else r
        if p == 2:
            return 4 * r if d else 1 + 2 * r * r
        return 9 * (1 + 2 * r * r) if d else 9 * r + 6 * r**3

    return dual


def _poly_mp_fns(p: int) -> Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    return lambda: ((lambda x: x**p), (lambda x: p * x ** (p - 1)))


def mp_sigmoid(u: Any) -> Any:
    """The logistic function on an mpmath number (no overflow for large |u|)."""
    import mpmath as mp

    return 1 / (1 + mp.exp(-u)) if u >= 0 else mp.exp(u) / (1 + mp.exp(u))


def mp_softplus(u: Any) -> Any:
    """log(1 + e^u) on an mpmath number (no overflow for large |u|)."""
    import mpmath as mp

    return u + mp.log1p(mp.exp(-u)) if u > 0 else mp.log1p(mp.exp(u))


# ---- the piecewise-linear family ------------------------------------------------------------


def _relu_torch() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    import torch

    def dphi(x: Any) -> Any:
        return (x > 0).to(x.dtype)

    return torch.relu, dphi


def _leaky_torch(alpha: float) -> Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    def fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import torch.nn.functional as F

        def phi(x: Any) -> Any:
            return F.leaky_relu(x, alpha)

        def dphi(x: Any) -> Any:
            return (x > 0).to(x.dtype).mul_(1.0 - alpha).add_(alpha)

        return phi, dphi

    return fns


def _leaky_from_value(alpha: float) -> Callable[[float], Callable[[Any], Any] | None]:
    """relu/leaky relu (alpha >= 0): the sign of p = c phi(u) is the sign of u."""

    def make(sc: float) -> Callable[[Any], Any] | None:
        if alpha == 0.0:
            return lambda p: (p > 0).to(p.dtype).mul_(sc)
        if alpha < 0:
            return None
        return lambda p: (p > 0).to(p.dtype).mul_(sc * (1.0 - alpha)).add_(sc * alpha)

    return make


def _abrelu_hooks(a: float, b: float) -> dict[str, Any]:
    """The closed forms every member of ABReLU(a, b) shares."""
    return {"dual_fn": _abrelu_dual(a, b), "mp_dual_fn": _abrelu_mp_dual(a, b)}


def _relu() -> Activation:
    return Activation(
        "relu",
        lambda x, o: o.where(x > 0, x, 0 * x),
        lambda x, o: o.where(x > 0, 1 + 0 * x, 0 * x),
        kinks=(0.0,),
        kink_order=1,
        formula="max(x, 0)",
        torch_fns=_relu_torch,
        dphi_from_value_fn=_leaky_from_value(0.0),
        kaiming_gain2=2.0,
        **_abrelu_hooks(0.0, 1.0),
    )


def _leaky_relu(alpha: float = 0.01) -> Activation:
    if alpha == 1.0:  # the identity: a polynomial, and the family member a = b = 1
        return replace(_poly_activation(f"leaky_relu:{alpha:g}", 1, "x (leaky_relu with slope 1)"),
                       params={"alpha": alpha}, **_abrelu_hooks(1.0, 1.0), kaiming_gain2=1.0)
    return Activation(
        "leaky_relu" if alpha == 0.01 else f"leaky_relu:{alpha:g}",
        lambda x, o: o.where(x > 0, x, alpha * x),
        lambda x, o: o.where(x > 0, 1 + 0 * x, alpha + 0 * x),
        kinks=(0.0,),
        kink_order=1,
        formula=f"x if x > 0 else {alpha:g} x",
        params={"alpha": alpha},
        torch_fns=_leaky_torch(alpha),
        dphi_from_value_fn=_leaky_from_value(alpha),
        kaiming_gain2=2.0 / (1.0 + alpha**2),
        **_abrelu_hooks(alpha, 1.0),
    )


def _abs() -> Activation:
    return Activation(
        "abs",
        lambda x, o: o.where(x > 0, x, -x),
        lambda x, o: o.where(x > 0, 1 + 0 * x, -1 + 0 * x),
        kinks=(0.0,),
        kink_order=1,
        formula="|x|",
        **_abrelu_hooks(-1.0, 1.0),
    )


# ---- exponential linear units ---------------------------------------------------------------


def _elu_torch(alpha: float) -> Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    def fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import torch
        import torch.nn.functional as F

        def phi(x: Any) -> Any:
            return F.elu(x, alpha)

        def dphi(x: Any) -> Any:
            return torch.clamp(x, max=0.0).exp_().mul_(alpha).masked_fill_(x > 0, 1.0)

        return phi, dphi

    return fns


def _elu_from_value(alpha: float) -> Callable[[float], Callable[[Any], Any] | None]:
    """elu (alpha > 0): phi' = c for p > 0, p + c alpha for u <= 0 (p = c phi(u))."""

    def make(sc: float) -> Callable[[Any], Any] | None:
        import torch

        return lambda p: torch.where(p > 0, torch.full_like(p, sc), p + sc * alpha)

    return make


def _elu(alpha: float = 1.0) -> Activation:
    if alpha == 0.0:  # ELU with alpha = 0 is ReLU, with ReLU's closed forms
        act = _relu()
        return replace(act, name="elu:0", params={"alpha": 0.0}, kaiming_gain2=None)
    # phi'(0-) = alpha, phi'(0+) = 1: the first derivative jumps unless alpha == 1, in which case
    # phi'' jumps (0 on the right, alpha on the left): ELU(1) is in J_2.
    order = 2 if alpha == 1.0 else 1
    return Activation(
        "elu" if alpha == 1.0 else f"elu:{alpha:g}",
        lambda x, o: o.where(x > 0, x, alpha * o.expm1(o.where(x > 0, 0 * x, x))),
        lambda x, o: o.where(x > 0, 1 + 0 * x, alpha * o.exp(o.where(x > 0, 0 * x, x))),
        kinks=(0.0,),
        kink_order=order,
        formula=f"x if x > 0 else {alpha:g} (exp(x) - 1)",
        params={"alpha": alpha},
        torch_fns=_elu_torch(alpha),
        dphi_from_value_fn=_elu_from_value(alpha) if alpha > 0 else None,
    )


def _selu() -> Activation:
    lam, al = SELU_LAMBDA, SELU_ALPHA
    return Activation(
        "selu",
        lambda x, o: lam * o.where(x > 0, x, al * o.expm1(o.where(x > 0, 0 * x, x))),
        lambda x, o: lam * o.where(x > 0, 1 + 0 * x, al * o.exp(o.where(x > 0, 0 * x, x))),
        kinks=(0.0,),
        kink_order=1,
        formula="1.0507 (x if x > 0 else 1.6733 (exp(x) - 1))",
    )


# ---- smooth activations ---------------------------------------------------------------------


def _gelu() -> Activation:
    def mp_fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import mpmath as mp

        return (lambda x: x * mp.ncdf(x)), (lambda x: mp.ncdf(x) + x * mp.npdf(x))

    return Activation(
        "gelu",
        lambda x, o: x * o.ndtr(x),
        lambda x, o: o.ndtr(x) + x * _INV_SQRT_2PI * o.exp(-0.5 * x * x),
        formula="x Phi(x)  (Phi: standard normal CDF)",
        mp_fns=mp_fns,
    )


def _swish(beta: float = 1.0) -> Activation:
    name = "swish" if beta == 1.0 else f"swish:{beta:g}"

    def dphi(x: Any, o: Any) -> Any:
        s = o.sigmoid(beta * x)
        return s * (1 + beta * x * (1 - s))

    def mp_fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import mpmath as mp

        bm = mp.mpf(beta)

        def dswish(x: Any) -> Any:
            s = mp_sigmoid(bm * x)
            return s * (1 + bm * x * (1 - s))

        return (lambda x: x * mp_sigmoid(bm * x)), dswish

    return Activation(
        name,
        lambda x, o: x * o.sigmoid(beta * x),
        dphi,
        formula="x sigmoid(x)" if beta == 1.0 else f"x sigmoid({beta:g} x)",
        params={} if beta == 1.0 else {"beta": beta},
        mp_fns=mp_fns,
    )


def _softplus() -> Activation:
    return Activation(
        "softplus",
        lambda x, o: o.softplus(x),
        lambda x, o: o.sigmoid(x),
        formula="log(1 + exp(x))",
        mp_fns=lambda: (mp_softplus, mp_sigmoid),
    )


def _tanh_torch() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    import torch

    def dphi(x: Any) -> Any:
        t = torch.tanh(x)
        return t.mul_(t).neg_().add_(1.0)

    return torch.tanh, dphi


def _tanh_from_value(sc: float) -> Callable[[Any], Any]:
    """tanh' = c - p^2 / c for p = c tanh(u)."""
    import torch

    return lambda p: torch.square(p).div_(-sc).add_(sc)


def _tanh() -> Activation:
    def dphi(x: Any, o: Any) -> Any:
        t = o.tanh(x)
        return 1 - t * t

    def mp_fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import mpmath as mp

        return mp.tanh, lambda x: mp.sech(x) ** 2

    return Activation("tanh", lambda x, o: o.tanh(x), dphi, formula="tanh(x)", mp_fns=mp_fns,
                      torch_fns=_tanh_torch, dphi_from_value_fn=_tanh_from_value,
                      kaiming_gain2=25.0 / 9.0)


def _sigmoid() -> Activation:
    def dphi(x: Any, o: Any) -> Any:
        s = o.sigmoid(x)
        return s * (1 - s)

    return Activation("sigmoid", lambda x, o: o.sigmoid(x), dphi, formula="1 / (1 + exp(-x))",
                      mp_fns=lambda: (mp_sigmoid, lambda x: mp_sigmoid(x) * (1 - mp_sigmoid(x))),
                      kaiming_gain2=1.0)


def _erf_dual(s1: np.ndarray, s2: np.ndarray, c: np.ndarray, which: str,
              theta: np.ndarray | None = None, rho: np.ndarray | None = None) -> np.ndarray:
    """Williams (1997): phi' dual (4/pi)/sqrt((1+2 s1)(1+2 s2) - 4c^2); phi dual
    (2/pi) arcsin(2c / sqrt((1+2 s1)(1+2 s2))) (the same arithmetic as written, on fresh arrays
    updated in place; c has the broadcast shape, see ``Activation.closed_form_dual``)."""
    q = np.multiply(1 + 2 * s1, 1 + 2 * s2)
    if which == "derivative":
        t = 4 * c
        t *= c
        np.subtract(q, t, out=t)
        np.sqrt(t, out=t)
        np.divide(4 / math.pi, t, out=t)
        return t
    t = 2 * c
    np.divide(t, np.sqrt(q), out=t)
    np.arcsin(t, out=t)
    t *= 2 / math.pi
    return t


def _erf_mp_dual(r: Any, which: str) -> Any:
    import mpmath as mp

    if which == "derivative":
        return (4 / mp.pi) / mp.sqrt(9 - 4 * r * r)
    return (2 / mp.pi) * mp.asin(2 * r / 3)


def _erf() -> Activation:
    def mp_fns() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        import mpmath as mp

        return mp.erf, (lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x))

    return Activation(
        "erf",
        lambda x, o: o.erf(x),
        lambda x, o: _TWO_OVER_SQRT_PI * o.exp(-x * x),
        formula="erf(x)",
        dual_fn=_erf_dual,
        mp_dual_fn=_erf_mp_dual,
        mp_fns=mp_fns,
    )


# ---- polynomials ----------------------------------------------------------------------------


def _poly_activation(name: str, p: int, formula: str) -> Activation:
    if p == 1:
        phi, dphi = (lambda x, o: 1.0 * x), (lambda x, o: 1 + 0 * x)
    elif p == 2:
        phi, dphi = (lambda x, o: x * x), (lambda x, o: 2 * x)
    elif p == 3:
        phi, dphi = (lambda x, o: x * x * x), (lambda x, o: 3 * x * x)
    else:  # pragma: no cover - only degrees 1..3 are built in
        raise ValueError(p)
    return Activation(name, phi, dphi, polynomial_degree=p, formula=formula, dual_fn=_poly_dual(p),
                      mp_dual_fn=_poly_mp_dual(p), mp_fns=_poly_mp_fns(p),
                      kaiming_gain2=1.0 if name == "linear" else None)


_FACTORIES: dict[str, Callable[..., Activation]] = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "swish": _swish,
    "softplus": _softplus,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "erf": _erf,
    "linear": lambda: _poly_activation("linear", 1, "x"),
    "quadratic": lambda: _poly_activation("quadratic", 2, "x^2"),
    "cubic": lambda: _poly_activation("cubic", 3, "x^3"),
    "abs": _abs,
}
_PARAMETRIC = {"leaky_relu": "alpha", "elu": "alpha", "swish": "beta"}
ALIASES = {"silu": "swish", "lrelu": "leaky_relu", "identity": "linear", "square": "quadratic"}
BUILTIN_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def is_builtin_name(spec: str) -> bool:
    """Whether ``spec`` is handled as a built-in name (``"relu"``, ``"elu:0.5"``, or an unknown
    identifier, which gets the helpful unknown-name error) rather than an expression or
    ``module:function``."""
    base, sep, _ = spec.strip().lower().partition(":")
    base = ALIASES.get(base, base)
    return not (base and base not in _FACTORIES and (sep or not base.isidentifier()))


def builtin(spec: str) -> Activation:
    """The built-in activation named by ``spec`` (``"relu"``, ``"leaky_relu:0.2"``, ``"silu"``)."""
    text = spec.strip().lower()
    base, sep, arg = text.partition(":")
    base = ALIASES.get(base, base)
    if base not in _FACTORIES:
        choices = list(_FACTORIES) + list(ALIASES)
        close = difflib.get_close_matches(base, choices, n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ActspecError(
            f"unknown activation {spec!r}.{hint} Built-ins: {', '.join(BUILTIN_NAMES)} "
            "(parameters as 'leaky_relu:0.2', 'elu:1.0', 'swish:1.5')."
        )
    if not sep:
        return _FACTORIES[base]()
    if base not in _PARAMETRIC:
        raise ActspecError(
            f"activation {base!r} takes no parameter (got {spec!r}); parametrised built-ins: "
            + ", ".join(f"{k}:{v.upper()}" for k, v in _PARAMETRIC.items())
        )
    try:
        value = float(arg)
    except ValueError:
        raise ActspecError(
            f"bad parameter {arg!r} in activation {spec!r}: give a number, e.g. '{base}:0.2'"
        ) from None
    if not math.isfinite(value):
        raise ActspecError(f"parameter of {spec!r} must be finite, e.g. '{base}:0.2'")
    if base == "elu" and value < 0:
        raise ActspecError(f"elu alpha must be >= 0 (got {value:g}), e.g. 'elu:1.0'")
    return _FACTORIES[base](value)
