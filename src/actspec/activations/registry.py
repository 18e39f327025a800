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
    refuse_ill_defined(act, rep)
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


def refuse_ill_defined(act: Activation, rep: Any) -> None:
    """Refuse an activation whose G-matrix is not defined (issue 18), with the reason:

    - phi jumps at a point: phi' holds a Dirac delta there, E[phi'(u) phi'(v)] does not exist
      (the formulas would silently give G = 0);
    - |phi'| grows like |x - a|^-p with p >= 1/2 at a point: E phi'(z)^2 = infinity.
    """
    import math

    import numpy as np

    for k in rep.kinks:
        if k.order == 0:
            raise ActspecError(
                f"activation {act.name!r}: phi jumps at x = {k.location:.6g} (by {k.jump:+.6g}): "
                "phi' has a Dirac delta there, so G∞ = E[phi'(u) phi'(v)] <x_i, x_j> is not "
                "defined; use a continuous activation (e.g. a steep smooth step such as "
                "sigmoid(10*x) or tanh(10*x))"
            )
    for a in _steep_points(act, [float(k.location) for k in rep.kinks]):
        t = np.array([1e-6, 1e-9])
        with np.errstate(all="ignore"):
            vals = np.abs(np.concatenate([act.dphi(a + t), act.dphi(a - t)]))
        p = 0.0
        for v1, v2 in ((vals[0], vals[1]), (vals[2], vals[3])):
            if v1 > 0 and math.isfinite(v1):
                p = max(p, math.log(v2 / v1) / math.log(1e3) if v2 > 0 else 0.0)
            if not math.isfinite(v2):
                p = math.inf
        if p >= 0.5 - 0.02:
            raise ActspecError(
                f"activation {act.name!r}: phi' is not square-integrable under the Gaussian: "
                f"|phi'| grows like |x - {a:.6g}|^-{p:.3g} at x = {a:.6g}, so E phi'(z)^2 = "
                "infinity and G∞ does not exist (finite widths disagree wildly); use an "
                "activation with a bounded derivative, e.g. sqrt(x*x + 0.01) instead of "
                "sqrt(abs(x))"
            )


def _steep_points(act: Activation, kinks: list[float]) -> list[float]:
    """Where |phi'| may blow up: the kinks, 0, and the largest |phi'| on a grid of [-10, 10]
    refined by a bounded scalar search (a singularity draws the search to itself)."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    pts = [*kinks, 0.0]
    x = np.linspace(-10.0, 10.0, 4000) + 0.000123456789
    with np.errstate(all="ignore"):
        d = np.abs(np.asarray(act.dphi(x), dtype=np.float64))
    if np.any(np.isfinite(d)):
        i = int(np.nanargmax(np.where(np.isfinite(d), d, np.nan)))
        h = float(x[1] - x[0])

        def neg(t: float) -> float:
            with np.errstate(all="ignore"):
                v = float(np.abs(act.dphi(np.array([t])))[0])
            return -v if np.isfinite(v) else -1e300

        res = minimize_scalar(neg, bounds=(x[i] - h, x[i] + h), method="bounded",
                              options={"xatol": 1e-12})
        pts.append(float(res.x))
    return pts


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
        refuse_ill_defined(act, rep)
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
        refuse_ill_defined(act, rep)
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

