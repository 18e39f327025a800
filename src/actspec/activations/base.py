"""Activation functions: phi, phi', kink locations and the kink class J_r of the activation paper.

Every activation works on numpy arrays (``act.phi``, ``act.dphi``) and on torch tensors
(``act.phi_torch``, ``act.dphi_torch``), so the same object drives the infinite-width kernels
(numpy/scipy quadrature) and the finite-width computations (PyTorch, CPU or GPU).

Kink class (Panigrahi, Shetty, Goyal 2020, Def. 4.1): phi is in J_r when it is made of two smooth
pieces whose first r-1 derivatives agree at the junction and whose r-th derivative jumps.
ReLU, leaky ReLU and SELU are J_1; ELU (alpha = 1) is J_2; smooth activations have no kink.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.special as sps

from ..core.errors import ActspecError

if TYPE_CHECKING:
    import torch

__all__ = ["Activation", "check_defined", "from_callable", "NUMPY_OPS", "torch_ops"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


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


def _torch_ops_class() -> type:
    import torch

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

    return _TorchOps


@functools.cache
def torch_ops() -> Any:
    """The torch evaluation backend (built on first use, so importing actspec loads no torch)."""
    return _torch_ops_class()()


def _is_tensor(x: Any) -> bool:
    """Whether x is a torch tensor (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


NUMPY_OPS = _NumpyOps()
# probe points of the value fingerprint: dense near 0, out to |x| = 20 (irregular spacing)
_KEY_PROBES = np.concatenate([np.linspace(-4.0, 4.0, 41), np.geomspace(4.1, 20.0, 12) * 1.0137,
                              -np.geomspace(4.1, 20.0, 12) * 0.9871])
_NP = NUMPY_OPS
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
    # Closed-form hooks (scipy.stats style): a built-in that knows a piece of its math in closed
    # form sets it here (see actspec.activations.builtins); None means the generic machinery
    # (theta-tables, quadrature, autograd) is used. All hooks are for the unscaled phi.
    dual_fn: Callable[..., np.ndarray] | None = field(
        default=None, repr=False)  # E[f(u) f(v)], Var u = s1, Var v = s2, Cov = c; f = phi' or phi
    mp_dual_fn: Callable[[Any, str], Any] | None = field(default=None, repr=False)  # same, mpmath,
    # unit variances, correlation r
    mp_fns: Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]] | None = field(
        default=None, repr=False)  # (phi, phi') on mpmath numbers
    torch_fns: Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any]]] | None = field(
        default=None, repr=False)  # fused torch (phi, phi') for training
    dphi_from_value_fn: Callable[[float], Callable[[Any], Any] | None] | None = field(
        default=None, repr=False)  # scale c -> (p = c phi(u) -> c phi'(u)), where exact
    kaiming_gain2: float | None = None  # He/Kaiming sigma_w^2 of deep nets, where defined

    # ---- evaluation -------------------------------------------------------------------------
    def phi(self, x: Any) -> Any:
        """phi(x): a torch tensor for a torch tensor (its dtype and device, as
        :meth:`phi_torch`), else a float64 numpy array."""
        if _is_tensor(x):
            return self.phi_torch(x)
        x = np.asarray(x, dtype=np.float64)
        return self.scale * np.asarray(self._phi(x, _NP), dtype=np.float64)

    def dphi(self, x: Any) -> Any:
        """phi'(x): a torch tensor for a torch tensor (as :meth:`dphi_torch`), else float64
        numpy."""
        if _is_tensor(x):
            return self.dphi_torch(x)
        x = np.asarray(x, dtype=np.float64)
        return self.scale * np.asarray(self._dphi(x, _NP), dtype=np.float64)

    def phi_torch(self, x: torch.Tensor) -> torch.Tensor:
        """phi on a torch tensor (any dtype/device)."""
        out = self._phi(x, torch_ops())
        return out * self.scale if self.scale != 1.0 else out

    def dphi_torch(self, x: torch.Tensor) -> torch.Tensor:
        """phi' on a torch tensor (any dtype/device)."""
        out = self._dphi(x, torch_ops())
        return out * self.scale if self.scale != 1.0 else out

    __call__ = phi

    # ---- closed forms and their generic fallbacks -------------------------------------------
    def closed_form_dual(
        self, s1: Any, s2: Any, c: Any, which: str, *, theta: Any = None, rho: Any = None
    ) -> np.ndarray | None:
        """Exact E[f(u) f(v)] (f = phi' for ``which="derivative"``, else phi) for Var u = s1,
        Var v = s2, Cov(u, v) = c, where the activation knows a closed form; else None.
        ``theta``: the angle between u and v when known more accurately than arccos(rho).
        ``rho``: c / sqrt(s1 s2) when the caller has it already (the G∞ tiles); the
        arc-cosine kernels then use it algebraically (see ``builtins._abrelu_dual``).

        s1 and s2 are passed to the hook as they are (e.g. a column and a row of variances:
        the hook forms only the products it needs), c broadcast to the full shape; the result
        is a fresh array."""
        if self.dual_fn is None:
            return None
        s1, s2, c = (np.asarray(a, dtype=np.float64) for a in (s1, s2, c))
        shape = np.broadcast_shapes(s1.shape, s2.shape, c.shape)
        if shape == ():  # scalars: as 1-element arrays (the hooks update arrays in place)
            s1, s2, c = s1.reshape(1), s2.reshape(1), c.reshape(1)
        c = np.broadcast_to(c, c.shape if shape == () else shape)
        if theta is not None:
            th = np.asarray(theta, np.float64)
            out = self.dual_fn(s1, s2, c, which, theta=th.reshape(1) if shape == () else th)
        elif rho is not None:
            r = np.asarray(rho, np.float64)
            out = self.dual_fn(s1, s2, c, which, rho=r.reshape(1) if shape == () else r)
        else:
            out = self.dual_fn(s1, s2, c, which)
        if self.scale != 1.0:
            out = self.scale**2 * out
        out = np.asarray(out, dtype=np.float64)
        return out.reshape(())[()] if shape == () else out

    def mp_closed_dual(self, r: Any, which: str) -> Any:
        """The same in mpmath at unit variances and correlation ``r`` (unscaled), or None."""
        return None if self.mp_dual_fn is None else self.mp_dual_fn(r, which)

    def torch_functions(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        """(phi, phi') on tensors: the built-in's fused torch kernels where it has them (the same
        values as :meth:`phi_torch`/:meth:`dphi_torch`), else those; scaled."""
        if self.torch_fns is None:
            return self.phi_torch, self.dphi_torch
        phi, dphi = self.torch_fns()
        sc = float(self.scale)
        if sc == 1.0:
            return phi, dphi
        return (lambda x: phi(x).mul_(sc)), (lambda x: dphi(x).mul_(sc))

    def derivative_from_value(self) -> Callable[[Any], Any] | None:
        """phi' as a function of the value p = phi(u), where that is exact, else None."""
        sc = float(self.scale)
        if self.dphi_from_value_fn is None or not sc > 0:
            return None
        return self.dphi_from_value_fn(sc)

    def one_sided_slopes(self) -> tuple[float, float]:
        """(phi'(0-), phi'(0+)): all that survives of phi' in the fan-out limit (signs only)."""
        left, right = self.dphi(np.array([-1e-200, 1e-200]))
        return float(left), float(right)

    # ---- derived objects --------------------------------------------------------------------
    def scaled(self, factor: float) -> Activation:
        """The activation ``factor * phi`` (used for the normalisation E phi(z)^2 = 1)."""
        from dataclasses import replace

        return replace(self, scale=self.scale * float(factor))

    def fingerprint_at(self, points: np.ndarray) -> str:
        """Name, parameters and scale, and a hash of phi and phi' at ``points``."""
        from ..core.io import array_digest

        with np.errstate(all="ignore"):
            vals = np.concatenate([np.asarray(self.phi(points)), np.asarray(self.dphi(points))])
        params = ",".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name}[{params}]*{self.scale!r}#{array_digest(vals)[:16]}"

    @functools.cached_property
    def fingerprint(self) -> str:
        """The activation's identity by value: two callables with the same values on the probe
        points (|x| <= 20, where every Gaussian average lives) are the same activation, in any
        process; a recycled ``id()`` never is (issue 16)."""
        return self.fingerprint_at(_KEY_PROBES)

    @property
    def key(self) -> str:
        """Cache key: name, parameters and scale; user functions also by their values."""
        base = self.name if self.builtin else self.fingerprint
        return base if self.scale == 1.0 or not self.builtin else f"{base}*{self.scale!r}"

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


def _autograd_dphi(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """phi' of a user callable: by PyTorch autograd when ``fn`` works on tensors (elementwise, so
    the gradient of the sum), else numerically (:func:`_numeric_derivative`), e.g. for a function
    written with numpy or scipy."""
    numeric: list[Callable[[np.ndarray], np.ndarray]] = []

    def dphi(x: Any, o: Any) -> Any:
        import torch

        is_numpy = o is _NP
        if numeric:
            return _on_backend(numeric[0], x, is_numpy)
        t = torch.as_tensor(x, dtype=torch.float64) if is_numpy else x
        try:
            with torch.enable_grad():
                t = t.detach().requires_grad_(True)
                y = fn(t)
                if not isinstance(y, torch.Tensor) or not y.requires_grad:
                    raise TypeError("not a differentiable torch function")
                (g,) = torch.autograd.grad(y.sum(), t, allow_unused=True)
        except Exception:  # noqa: BLE001 - numpy/scipy code (or no autograd graph): numerically
            numeric.append(_numeric_derivative(_numpy_call(fn)))
            return _on_backend(numeric[0], x, is_numpy)
        if g is None:
            g = torch.zeros_like(t)
        return g.detach().cpu().numpy() if is_numpy else g.detach()

    return dphi


def _on_backend(f: Callable[[np.ndarray], np.ndarray], x: Any, is_numpy: bool) -> Any:
    """Apply a numpy function to numpy input, or to a tensor's values (result on its device)."""
    if is_numpy:
        return f(np.asarray(x, dtype=np.float64))
    import torch

    out = f(x.detach().cpu().numpy().astype(np.float64))
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def _numpy_call(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
    def call(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(fn(x))

    return call


_DERIV_CHECK = np.linspace(-6.0, 6.0, 97) + 0.01234  # away from likely kinks (0, integers)


def _numeric_derivative(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """phi' of a numpy function without autograd.

    The complex step f'(x) = Im f(x + ih) / h (h = 1e-30) is exact to rounding for functions that
    numpy evaluates analytically in complex arithmetic (exp, tanh, polynomials...); it is used when
    it agrees with an independent Richardson-extrapolated central difference
    (:func:`scipy.differentiate.derivative`) on a grid of check points. Otherwise (real-only code,
    ``abs``, comparisons) the central difference is used everywhere (about 1e-10 relative).
    """
    from scipy.differentiate import derivative

    def central(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float64).ravel()
        res = derivative(lambda t: np.asarray(f(t), dtype=np.float64), flat,
                         tolerances={"rtol": 1e-13, "atol": 1e-300}, maxiter=20)
        return np.asarray(res.df, dtype=np.float64).reshape(np.shape(x))

    def complex_step(x: np.ndarray) -> np.ndarray:
        h = 1e-30
        with np.errstate(all="ignore"):
            y = f(np.asarray(x, dtype=np.float64) + 1j * h)
        return np.asarray(np.imag(y), dtype=np.float64) / h

    try:
        cs = complex_step(_DERIV_CHECK)
        ok = bool(np.all(np.isfinite(cs))) and cs.shape == _DERIV_CHECK.shape
    except Exception:  # noqa: BLE001 - the function does not take complex input
        ok = False
    if ok:
        ref = central(_DERIV_CHECK)
        ok = bool(np.all(np.abs(cs - ref) <= 1e-6 * np.maximum(1.0, np.abs(ref))))
    return complex_step if ok else central


def _wrap_user(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Call a user function on numpy input (numpy first, then torch) or on torch input (torch
    first, then the tensor's values as numpy)."""

    def call(x: Any, o: Any) -> Any:
        try:
            out = raw(x, o)
        except SystemExit as exc:  # a user function that exits (e.g. 'sys:exit')
            raise ActspecError(
                f"activation function {getattr(fn, '__name__', fn)!r} called sys.exit "
                f"({type(exc).__name__}) instead of returning values; an activation must map an "
                "array or tensor to one of the same shape"
            ) from None
        if _is_complex(out):
            raise ActspecError(
                f"activation function {getattr(fn, '__name__', fn)!r} returns complex values; "
                "an activation must be real-valued (take .real or abs() inside the function)"
            )
        return out

    def raw(x: Any, o: Any) -> Any:
        import torch

        if o is _NP:
            try:
                with np.errstate(all="ignore"):
                    out = fn(x)
                if isinstance(out, torch.Tensor):
                    return out.detach().cpu().numpy()
                if np.iscomplexobj(out):
                    return np.asarray(out)
                return np.asarray(out, dtype=np.float64)
            except Exception:  # noqa: BLE001 - a torch-only function: retry with a tensor
                out = fn(torch.as_tensor(x, dtype=torch.float64))
                return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        try:
            out = fn(x)
        except Exception:  # noqa: BLE001 - a numpy-only function: evaluate on the values
            return _on_backend(_numpy_call(fn), x, False)
        if isinstance(out, torch.Tensor):
            return out
        return torch.as_tensor(np.asarray(out, dtype=np.float64), dtype=x.dtype, device=x.device)

    return call


def _is_complex(out: Any) -> bool:
    if _is_tensor(out):
        return bool(out.is_complex())
    return bool(np.iscomplexobj(out))


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
        big = float(np.max(np.abs(v)))
        if 0.0 < big < 1e-150 or big > 1e150:
            raise ActspecError(
                f"activation {act.name!r}: {what} is at most {big:.3g} in size on "
                f"[-{bound:g}, {bound:g}]; its Gaussian averages (squares) "
                f"{'underflow' if big < 1 else 'overflow'} double precision. Rescale the "
                "formula (e.g. drop a constant factor: the spectrum scales with it)"
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


def from_callable(
    fn: Callable[..., Any],
    *,
    dphi: Callable[..., Any] | None = None,
    name: str | None = None,
    kinks: tuple[float, ...] | list[float] = (),
    kink_order: int | None = None,
) -> Activation:
    """An :class:`Activation` from a Python callable phi (phi' by autograd unless ``dphi``)."""
    label = str(name or getattr(fn, "__name__", "custom"))
    if label == "<lambda>":
        label = "custom"
    d = _wrap_user(dphi) if dphi is not None else _autograd_dphi(fn)
    k = tuple(sorted(float(v) for v in kinks))
    return Activation(
        label,
        _wrap_user(fn),
        d,
        kinks=k,
        kink_order=kink_order,
        formula=f"user function {label}",
        builtin=False,
    )
