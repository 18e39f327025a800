"""The built-in activations: phi and phi' of each (numpy and torch from one definition), its kinks
and class J_r, and the parser of built-in names with parameters (``"leaky_relu:0.2"``).

Kink class (Panigrahi, Shetty, Goyal 2020, Def. 4.1): ReLU, leaky ReLU and SELU are J_1; ELU
(alpha = 1) is J_2; the others are smooth; linear, quadratic and cubic are polynomials.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..core.errors import ActspecError
from .base import Activation

__all__ = ["ALIASES", "BUILTIN_NAMES", "SELU_ALPHA", "SELU_LAMBDA", "builtin", "is_builtin_name"]

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# ---------------------------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------------------------


def _relu() -> Activation:
    return Activation(
        "relu",
        lambda x, o: o.where(x > 0, x, 0 * x),
        lambda x, o: o.where(x > 0, 1 + 0 * x, 0 * x),
        kinks=(0.0,),
        kink_order=1,
        formula="max(x, 0)",
    )


def _leaky_relu(alpha: float = 0.01) -> Activation:
    if alpha == 1.0:  # the identity: a polynomial, but still the family member alpha = 1
        return replace(_poly_activation(f"leaky_relu:{alpha:g}", 1, "x (leaky_relu with slope 1)"),
                       params={"alpha": alpha})
    return Activation(
        "leaky_relu" if alpha == 0.01 else f"leaky_relu:{alpha:g}",
        lambda x, o: o.where(x > 0, x, alpha * x),
        lambda x, o: o.where(x > 0, 1 + 0 * x, alpha + 0 * x),
        kinks=(0.0,),
        kink_order=1,
        formula=f"x if x > 0 else {alpha:g} x",
        params={"alpha": alpha},
    )


def _elu(alpha: float = 1.0) -> Activation:
    if alpha == 0.0:
        act = _relu()
        return Activation(
            "elu:0",
            act._phi,
            act._dphi,
            kinks=(0.0,),
            kink_order=1,
            formula="max(x, 0)",
            params={"alpha": 0.0},
        )
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


def _gelu() -> Activation:
    return Activation(
        "gelu",
        lambda x, o: x * o.ndtr(x),
        lambda x, o: o.ndtr(x) + x * _INV_SQRT_2PI * o.exp(-0.5 * x * x),
        formula="x Phi(x)  (Phi: standard normal CDF)",
    )


def _swish(beta: float = 1.0) -> Activation:
    name = "swish" if beta == 1.0 else f"swish:{beta:g}"

    def dphi(x: Any, o: Any) -> Any:
        s = o.sigmoid(beta * x)
        return s * (1 + beta * x * (1 - s))

    return Activation(
        name,
        lambda x, o: x * o.sigmoid(beta * x),
        dphi,
        formula="x sigmoid(x)" if beta == 1.0 else f"x sigmoid({beta:g} x)",
        params={} if beta == 1.0 else {"beta": beta},
    )


def _softplus() -> Activation:
    return Activation(
        "softplus",
        lambda x, o: o.softplus(x),
        lambda x, o: o.sigmoid(x),
        formula="log(1 + exp(x))",
    )


def _tanh() -> Activation:
    def dphi(x: Any, o: Any) -> Any:
        t = o.tanh(x)
        return 1 - t * t

    return Activation("tanh", lambda x, o: o.tanh(x), dphi, formula="tanh(x)")


def _sigmoid() -> Activation:
    def dphi(x: Any, o: Any) -> Any:
        s = o.sigmoid(x)
        return s * (1 - s)

    return Activation("sigmoid", lambda x, o: o.sigmoid(x), dphi, formula="1 / (1 + exp(-x))")


def _erf() -> Activation:
    return Activation(
        "erf",
        lambda x, o: o.erf(x),
        lambda x, o: _TWO_OVER_SQRT_PI * o.exp(-x * x),
        formula="erf(x)",
    )


def _poly_activation(name: str, p: int, formula: str) -> Activation:
    if p == 1:
        phi, dphi = (lambda x, o: 1.0 * x), (lambda x, o: 1 + 0 * x)
    elif p == 2:
        phi, dphi = (lambda x, o: x * x), (lambda x, o: 2 * x)
    elif p == 3:
        phi, dphi = (lambda x, o: x * x * x), (lambda x, o: 3 * x * x)
    else:  # pragma: no cover - only degrees 1..3 are built in
        raise ValueError(p)
    return Activation(name, phi, dphi, polynomial_degree=p, formula=formula)


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
