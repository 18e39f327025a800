"""Activation functions: phi, phi', kink locations and the kink class J_r of the activation paper.

Every activation works on numpy arrays (``act.phi``, ``act.dphi``) and on torch tensors
(``act.phi_torch``, ``act.dphi_torch``), so the same object drives the infinite-width kernels
(numpy/scipy quadrature) and the finite-width computations (PyTorch, CPU or GPU).

Kink class (Panigrahi, Shetty, Goyal 2020, Def. 4.1): phi is in J_r when it is made of two smooth
pieces whose first r-1 derivatives agree at the junction and whose r-th derivative jumps.
ReLU, leaky ReLU and SELU are J_1; ELU (alpha = 1) is J_2; smooth activations have no kink.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.special as sps
import torch

from .errors import ActspecError

__all__ = ["Activation", "activation", "check_defined", "BUILTIN_NAMES", "ALIASES"]

ArrayFn = Callable[[np.ndarray], np.ndarray]
TensorFn = Callable[[torch.Tensor], torch.Tensor]

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


class _NumpyOps:
    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    tanh = staticmethod(np.tanh)
    sigmoid = staticmethod(sps.expit)
    erf = staticmethod(sps.erf)
    ndtr = staticmethod(sps.ndtr)

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        return np.where(c, a, b)

    @staticmethod
    def softplus(x: Any) -> Any:
        return np.logaddexp(0.0, x)

    @staticmethod
    def full_like(x: Any, v: float) -> Any:
        return np.full_like(x, v, dtype=np.result_type(x, np.float64))


class _TorchOps:
    exp = staticmethod(torch.exp)
    expm1 = staticmethod(torch.expm1)
    tanh = staticmethod(torch.tanh)
    sigmoid = staticmethod(torch.sigmoid)
    erf = staticmethod(torch.special.erf)
    ndtr = staticmethod(torch.special.ndtr)

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        return torch.where(c, a, b)

    @staticmethod
    def softplus(x: Any) -> Any:
        return torch.logaddexp(x, torch.zeros_like(x))

    @staticmethod
    def full_like(x: Any, v: float) -> Any:
        return torch.full_like(x, v)


_NP = _NumpyOps()
_TORCH = _TorchOps()
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function with what the theory needs to know about it.

    Attributes
    ----------
    name: canonical name with parameters, e.g. ``"leaky_relu:0.2"`` (used as a cache key).
    kinks: points where phi is not infinitely differentiable (boundaries of the smooth pieces).
    kink_order: r of the class J_r (the lowest derivative that jumps), ``None`` when smooth
        (or unknown for a user function without declared kinks).
    polynomial_degree: degree p when phi is a polynomial, else ``None``.
    formula: human-readable definition.
    """

    name: str
    _phi: Callable[[Any, Any], Any] = field(repr=False)
    _dphi: Callable[[Any, Any], Any] = field(repr=False)
    kinks: tuple[float, ...] = ()
    kink_order: int | None = None
    polynomial_degree: int | None = None
    formula: str = ""
    params: dict[str, float] = field(default_factory=dict)
    builtin: bool = True
    scale: float = 1.0

    # ---- evaluation -------------------------------------------------------------------------
    def phi(self, x: Any) -> np.ndarray:
        """phi(x) on numpy input (float64 output)."""
        x = np.asarray(x, dtype=np.float64)
        return self.scale * np.asarray(self._phi(x, _NP), dtype=np.float64)

    def dphi(self, x: Any) -> np.ndarray:
        """phi'(x) on numpy input (float64 output)."""
        x = np.asarray(x, dtype=np.float64)
        return self.scale * np.asarray(self._dphi(x, _NP), dtype=np.float64)

    def phi_torch(self, x: torch.Tensor) -> torch.Tensor:
        """phi on a torch tensor (any dtype/device)."""
        out = self._phi(x, _TORCH)
        return out * self.scale if self.scale != 1.0 else out

    def dphi_torch(self, x: torch.Tensor) -> torch.Tensor:
        """phi' on a torch tensor (any dtype/device)."""
        out = self._dphi(x, _TORCH)
        return out * self.scale if self.scale != 1.0 else out

    __call__ = phi

    # ---- derived objects --------------------------------------------------------------------
    def scaled(self, factor: float) -> Activation:
        """The activation ``factor * phi`` (used for the normalisation E phi(z)^2 = 1)."""
        from dataclasses import replace

        return replace(self, scale=self.scale * float(factor))

    @property
    def key(self) -> str:
        """Cache key: name, parameters and scale; user functions are keyed by identity."""
        base = self.name if self.builtin else f"{self.name}@{id(self._phi):x}"
        return base if self.scale == 1.0 else f"{base}*{self.scale!r}"

    @property
    def is_smooth(self) -> bool:
        return not self.kinks

    @property
    def kink_class(self) -> str:
        """'J_r', 'polynomial of degree p', 'smooth' or 'unknown' (user function, no kinks given)."""
        if self.kink_order is not None:
            return f"J_{self.kink_order}"
        if self.polynomial_degree is not None:
            return f"polynomial of degree {self.polynomial_degree}"
        return "smooth" if self.builtin else "unknown"

    def __repr__(self) -> str:
        return f"Activation({self.name!r}, kink_class={self.kink_class!r})"


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
    if alpha == 1.0:
        return _poly_activation(f"leaky_relu:{alpha:g}", 1, "x (leaky_relu with slope 1)")
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


def _builtin(spec: str) -> Activation:
    text = spec.strip().lower()
    base, sep, arg = text.partition(":")
    base = ALIASES.get(base, base)
    if base and base not in _FACTORIES and (sep or not base.isidentifier()):
        # an expression such as 'x*sigmoid(x)' or 'module:function' (parsed safely, no eval)
        from .highprec import custom_activation

        try:
            return custom_activation(spec.strip())
        except ActspecError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user function that fails on tensors
            raise ActspecError(
                f"cannot use activation {spec!r}: {exc}; a module:function activation must take "
                "a torch tensor and return one of the same shape (e.g. built from torch.sin)"
            ) from None
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


def _autograd_dphi(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """phi' of a user callable by PyTorch autograd (elementwise, so grad of the sum)."""

    def dphi(x: Any, o: Any) -> Any:
        is_numpy = o is _NP
        t = torch.as_tensor(x, dtype=torch.float64) if is_numpy else x
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            y = fn(t)
            if not isinstance(y, torch.Tensor):
                raise ActspecError(
                    "the activation callable must accept and return torch tensors so its "
                    "derivative can be taken by autograd; otherwise pass dphi= explicitly"
                )
            (g,) = torch.autograd.grad(y.sum(), t, allow_unused=True)
        if g is None:
            g = torch.zeros_like(t)
        return g.detach().cpu().numpy() if is_numpy else g.detach()

    return dphi


def _wrap_user(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Call a user function on numpy input (numpy first, then torch) or on torch input."""

    def call(x: Any, o: Any) -> Any:
        if o is _NP:
            try:
                with np.errstate(all="ignore"):
                    out = fn(x)
                if isinstance(out, torch.Tensor):
                    return out.detach().cpu().numpy()
                return np.asarray(out, dtype=np.float64)
            except Exception:  # noqa: BLE001 - a torch-only function: retry with a tensor
                out = fn(torch.as_tensor(x, dtype=torch.float64))
                return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        return fn(x)

    return call


def check_defined(act: Activation, *, bound: float = 20.0, points: int = 4000) -> Activation:
    """Refuse a user activation that is undefined (NaN) or overflows on [-bound, bound].

    The Gaussian averages behind every G-matrix and Hermite coefficient sample phi and phi' on
    that range (|z| <= 20 covers the normal law to 1e-88). The grid has an even number of points,
    so it skips 0: an isolated kink with an unbounded derivative (sqrt(abs(x))) is allowed.
    """
    x = np.linspace(-bound, bound, points)
    for what, fn in (("phi", act.phi), ("its derivative", act.dphi)):
        with np.errstate(all="ignore"):
            v = np.asarray(fn(x), dtype=np.float64)
        if v.shape != x.shape:
            raise ActspecError(
                f"activation {act.name!r} must act elementwise: {what} of an array of shape "
                f"{x.shape} has shape {v.shape}"
            )
        nan = np.flatnonzero(np.isnan(v))
        if nan.size:
            raise ActspecError(
                f"activation {act.name!r} is undefined: {what} is NaN at x = {x[nan[0]]:.3g}; an "
                "activation must be defined on the whole real line (e.g. use abs(x) or relu(x) "
                "inside sqrt or log)"
            )
        inf = np.flatnonzero(np.isinf(v))
        if inf.size:
            at = x[inf[np.argmin(np.abs(x[inf]))]]
            raise ActspecError(
                f"activation {act.name!r} overflows: {what} is infinite at x = {at:.3g}; Gaussian "
                f"averages need finite values for |x| <= {bound:g}, so scale the formula down "
                "(e.g. a smaller power or exponent)"
            )
        if what == "phi":
            pole = _singular_point(fn, x, v)
            if pole is not None:
                raise ActspecError(
                    f"activation {act.name!r} has a singularity near x = {pole:.3g}: |phi| grows "
                    "without bound there (between the points of a grid check); an activation must "
                    "be finite on the whole real line for E phi(z)^2 and the G-matrix to exist"
                )
    return act


def _singular_point(fn: Callable[..., Any], x: np.ndarray, v: np.ndarray) -> float | None:
    """A point between grid nodes where |phi| blows up (a pole such as 1/x or tan), or None.

    The grid misses a pole that falls between its nodes, but |phi| has a sharp local maximum
    there. Around the most prominent interior local maxima of |phi| the cell is resampled twice,
    each time 5000x finer; a pole's |phi| grows by more than 5000^0.45 ~ 46x per refinement
    (singularities |x|^-p with p >= 1/2, the ones with E phi^2 = infinity), while a smooth or
    kinked function, or an integrable singularity like |x|^-1/4, gains far less.
    """
    a = np.abs(v)
    if a.size < 3:
        return None
    interior = np.flatnonzero((a[1:-1] >= a[:-2]) & (a[1:-1] >= a[2:])) + 1
    if interior.size == 0:
        return None
    h = float(x[1] - x[0])
    base = np.array([np.median(a[max(0, i - 5) : i + 6]) for i in interior]) + 1e-300
    interior, base = interior[a[interior] > 0], base[a[interior] > 0]
    for i in interior[np.argsort(-(a[interior] / base))][:16]:
        lo, hi, top = x[i] - h, x[i] + h, a[i]
        for _ in range(2):
            grid = np.linspace(lo, hi, 10_001)
            with np.errstate(all="ignore"):
                fine = np.abs(np.asarray(fn(grid), dtype=np.float64))
            if not np.all(np.isfinite(fine)):
                return float(grid[np.flatnonzero(~np.isfinite(fine))[0]])
            j = int(np.argmax(fine))
            if fine[j] <= 46.0 * top:
                break
            top, step = fine[j], grid[1] - grid[0]
            lo, hi = grid[j] - step, grid[j] + step
        else:
            return float(0.5 * (lo + hi))
    return None


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
        return _builtin(spec)
    if not callable(spec):
        raise ActspecError(f"activation must be a name or a callable, got {type(spec).__name__}")
    label = str(name or getattr(spec, "__name__", "custom"))
    if label == "<lambda>":
        label = "custom"
    d = _wrap_user(dphi) if dphi is not None else _autograd_dphi(spec)
    k = tuple(sorted(float(v) for v in kinks))
    return Activation(
        label,
        _wrap_user(spec),
        d,
        kinks=k,
        kink_order=kink_order,
        formula=f"user function {label}",
        builtin=False,
    )
