"""``activation(spec)``: the one entry point from a name, expression, ``module:function`` or
callable to an :class:`~actspec.activations.base.Activation`.

Expressions and ``module:function`` activations get their kinks located numerically
(:mod:`actspec.activations.kinks`) and declared, so the quadratures split there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..core.errors import ActspecError
from .base import Activation, check_defined, from_callable
from .builtins import ALIASES, BUILTIN_NAMES, builtin, is_builtin_name
from .expressions import import_function, looks_like_expression, parse_expression, register_mp
from .kinks import detect_kinks as _detect

__all__ = ["activation", "custom_activation", "expression_activation"]


def activation(
    spec: str | Activation | Callable[..., Any],
    *,
    dphi: Callable[..., Any] | None = None,
    name: str | None = None,
    kinks: tuple[float, ...] | list[float] = (),
    kink_order: int | None = None,
) -> Activation:
    """Build an :class:`Activation`.

    ``spec`` is a built-in name (``"relu"``, ``"leaky_relu:0.2"``, ``"elu:1.0"``, ``"silu"``...),
    an existing :class:`Activation` (returned unchanged), or a callable ``phi``. A callable should
    work on torch tensors (then phi' comes from autograd when ``dphi`` is not given); ``kinks``
    (points where phi is not smooth) let the quadratures split there for full accuracy, and
    ``kink_order`` declares its class J_r.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return _from_text(spec)
    if not callable(spec):
        raise ActspecError(f"activation must be a name or a callable, got {type(spec).__name__}")
    return from_callable(spec, dphi=dphi, name=name, kinks=kinks, kink_order=kink_order)


def _from_text(spec: str) -> Activation:
    if is_builtin_name(spec):
        return builtin(spec)
    # an expression such as 'x*sigmoid(x)' or 'module:function' (parsed safely, no eval)
    try:
        return custom_activation(spec.strip())
    except ActspecError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user function that fails on tensors
        raise ActspecError(
            f"cannot use activation {spec!r}: {exc}; a module:function activation must take "
            "a torch tensor and return one of the same shape (e.g. built from torch.sin)"
        ) from None


def expression_activation(text: str, *, detect_kinks: bool = True) -> Activation:
    """An :class:`Activation` from a formula such as ``"x*sigmoid(x)"``.

    phi' comes from autograd (torch) and from forward differentiation (mpmath, for high
    precision). With ``detect_kinks`` the kinks are located numerically and declared on the
    activation, so the quadratures split there.
    """
    expr = parse_expression(text)
    act = check_defined(from_callable(expr, name=expr.text))
    if detect_kinks:
        rep = _detect(act)
        if rep.kinks or rep.polynomial_degree is not None:
            act = replace(
                act,
                kinks=tuple(k.location for k in rep.kinks),
                kink_order=rep.kink_order,
                polynomial_degree=rep.polynomial_degree,
            )
    act = replace(act, formula=f"expression {expr.text}")
    register_mp(act, expr.mp_phi, expr.mp_dphi, "expression")
    return act


def custom_activation(spec: str) -> Activation:
    """Built-in name, ``module:function`` (a Python function on torch tensors) or an expression."""
    text = spec.strip()
    base = text.lower().partition(":")[0]
    if base in BUILTIN_NAMES or base in ALIASES:
        return activation(text)
    func = import_function(text)
    if func is not None:
        act = check_defined(from_callable(func, name=text))
        rep = _detect(act)
        return replace(
            act,
            kinks=tuple(k.location for k in rep.kinks),
            kink_order=rep.kink_order,
            polynomial_degree=rep.polynomial_degree,
            formula=f"python function {text}",
        )
    if looks_like_expression(text):
        return expression_activation(text)  # not a name: the parser says what is wrong
    return activation(text)  # unknown name: the built-in lookup raises the helpful error

