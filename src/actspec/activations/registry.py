"""``activation(spec)``: the one entry point from a name, expression, ``module:function`` or
callable to an :class:`~actspec.activations.base.Activation`.

Expressions and ``module:function`` activations get their kinks located numerically
(:mod:`actspec.activations.kinks`) and declared, so the quadratures split there.
"""

from __future__ import annotations

import warnings
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
    kinks: tuple[float, ...] | list[float] | None = None,
    kink_order: int | None = None,
) -> Activation:
    """Build an :class:`Activation`.

    ``spec`` is a built-in name (``"relu"``, ``"leaky_relu:0.2"``, ``"elu:1.0"``, ``"silu"``...),
    an expression (``"x*sigmoid(x)"``), ``"module:function"``, an existing :class:`Activation`
    (returned unchanged), or a callable ``phi`` on torch tensors (phi' by autograd) or on numpy
    arrays (phi' numerically), unless ``dphi`` is given.

    ``kinks`` (points where phi is not smooth) let the quadratures split there; without them a
    kinked function gets a wrong G∞. When ``kinks`` is not given, the kinks of a torch callable
    are detected numerically, as for expressions (:mod:`actspec.activations.kinks`); a callable
    autograd cannot differentiate (numpy, scipy) is not analysed and gets a warning unless
    ``kinks`` is given (``kinks=()`` declares it smooth). ``kink_order`` declares its class J_r.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return _from_text(spec)
    if not callable(spec):
        raise ActspecError(f"activation must be a name or a callable, got {type(spec).__name__}")
    act = from_callable(spec, dphi=dphi, name=name, kinks=kinks or (), kink_order=kink_order)
    if kinks is not None:
        return act
    return _with_detected_kinks(act, spec)


def _with_detected_kinks(act: Activation, fn: Callable[..., Any]) -> Activation:
    """The callable's kinks, located by kink detection and declared (issue 17: a kinked callable
    without declared kinks got a wrong G∞ silently)."""
    hint = ("if phi has kinks, declare them: actspec.activation(fn, kinks=(0.0,)) for a kink at 0 "
            "(kinks=() declares it smooth and silences this warning)")
    if not _differentiable(fn):
        warnings.warn(f"activation {act.name!r}: kinks of a function autograd cannot differentiate "
                      f"(numpy/scipy code) are not detected; {hint}", stacklevel=3)
        return act
    try:
        rep = _detect(act)
    except Exception as exc:  # noqa: BLE001 - a user function the detector cannot analyse
        warnings.warn(f"activation {act.name!r}: kink detection failed ({exc}); {hint}", stacklevel=3)
        return act
    if rep.notes:
        warnings.warn(f"activation {act.name!r}: kink detection unsure ({'; '.join(rep.notes)}); {hint}",
                      stacklevel=3)
    if not rep.kinks and rep.polynomial_degree is None:
        return act
    return replace(
        act,
        kinks=tuple(k.location for k in rep.kinks),
        kink_order=rep.kink_order,
        polynomial_degree=rep.polynomial_degree,
    )


def _differentiable(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` maps a tensor to a tensor that autograd can differentiate."""
    import torch

    x = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64, requires_grad=True)
    try:
        with torch.enable_grad():
            y = fn(x)
    except Exception:  # noqa: BLE001 - not a torch function
        return False
    return isinstance(y, torch.Tensor) and y.requires_grad and y.shape == x.shape


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

