"""Kink detection for any activation: where phi^(r) jumps, the class J_r, and the jump size.

The activation paper (Def. of J_r, Section 4.1) sorts activations by the lowest derivative that
jumps: phi = phi_1 on x < alpha, phi_2 on x >= alpha, with the first r-1 derivatives continuous
and the r-th jumping. ReLU, leaky ReLU and SELU are J_1, ELU (alpha = 1) is J_2; smooth
activations (tanh, swish, gelu...) have no kink, polynomials are their own case (Thm 4.3).

Method (works for any elementwise function on torch tensors, built-in or user-written):

1. Derivatives phi, phi', ..., phi^(r+1) by automatic differentiation (exact derivatives of the
   smooth pieces, no finite differences) on a fine grid of [lo, hi], shifted by an irrational
   offset so that common kink locations (0, +-1) are not grid points.
2. On every cell [a, b] and every order k <= max_order, the trapezoid residual
   ``|D_k(b) - D_k(a) - (b - a) (D_{k+1}(a) + D_{k+1}(b)) / 2|`` is O((b-a)^3) where D_k is smooth
   and about |jump of D_k| where D_k jumps inside the cell. Cells whose residual stands out are
   candidates.
3. Each candidate is bisected: the half with the larger residual is kept. A real discontinuity
   keeps its residual as the cell shrinks; a smooth but steep spot loses a factor ~8 per halving
   and is rejected. Bisection stops at a cell of width ~1e-12 (the location's accuracy).
4. At the located point the one-sided limits of D_0..D_max_order come from Richardson
   extrapolation of autograd values at alpha +- t (t = 1e-4, 5e-5); the order r is the lowest k
   whose jump exceeds ``rel_tol`` times the local size, and the jump is D_r(alpha+) - D_r(alpha-).

Limits: jumps smaller than about 1e-7 (relative to the size of phi^(k) on the interval) are not
seen; kinks outside [lo, hi] (default [-10, 10], beyond which the Gaussian weight is < 1e-22)
are not searched; a function that autograd cannot differentiate max_order + 1 times is analysed
only to the order it supports (reported in ``notes``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.errors import ActspecError
from .base import Activation
from .expressions import plain_activation

__all__ = ["Kink", "KinkReport", "detect_kinks", "derivatives"]

_OFFSET = 0.000123456789 * math.sqrt(2.0)  # irrational-looking shift of the search grid


@dataclass
class Kink:
    """A point where some derivative of phi jumps."""

    location: float
    order: int | None  # r: lowest derivative that jumps (0: phi itself); None if unbounded
    jump: float  # D_r(location+) - D_r(location-)
    jumps: list[float | None]  # jump of D_0..D_max_order (None where not available)
    left: list[float | None]
    right: list[float | None]
    location_error: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class KinkReport:
    """What :func:`detect_kinks` found."""

    activation: str
    kink_class: str  # "J_r", "smooth", "polynomial of degree p", "discontinuous", "singular"
    kink_order: int | None
    polynomial_degree: int | None
    kinks: list[Kink] = field(default_factory=list)
    interval: tuple[float, float] = (-10.0, 10.0)
    max_order: int = 4
    grid_step: float = 0.0
    declared_kinks: list[float] = field(default_factory=list)
    declared_order: int | None = None
    agrees_with_declared: bool | None = None
    in_paper_range: bool | None = None  # all kinks at |alpha| <= 1 (the paper's J_r assumes it)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kinks"] = [k.to_dict() for k in self.kinks]
        out["interval"] = list(self.interval)
        return out

    def summary(self) -> str:
        if not self.kinks:
            return self.kink_class
        parts = []
        for k in self.kinks:
            if k.order is None:
                parts.append(f"singular derivative at x = {k.location:.6g}")
            else:
                parts.append(
                    f"phi^({k.order}) jumps by {k.jump:+.6g} at x = {k.location:.6g}"
                )
        return f"{self.kink_class}: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# derivatives by autograd
# ---------------------------------------------------------------------------------------------


def derivatives(act: Activation, x: np.ndarray | torch.Tensor, order: int) -> tuple[np.ndarray, int]:
    """phi, phi', ..., phi^(order) at x (float64), by nested autograd.

    Returns an array (order + 1, len(x)) and the highest order that autograd could produce
    (rows above it are NaN).
    """
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).clone().requires_grad_(True)
    out = np.full((order + 1, xt.numel()), np.nan)
    with torch.enable_grad():
        y = act.phi_torch(xt)
        if not isinstance(y, torch.Tensor):
            raise ActspecError(
                f"{act.name}: phi must return a torch tensor on tensor input for kink detection"
            )
        y = y.to(torch.float64)
        out[0] = y.detach().numpy(force=True)
        cur = y
        reached = 0
        for k in range(1, order + 1):
            if not cur.requires_grad:
                out[k:] = 0.0
                reached = order
                break
            try:
                (g,) = torch.autograd.grad(cur.sum(), xt, create_graph=True, allow_unused=True)
            except RuntimeError:
                break
            if g is None:
                out[k:] = 0.0
                reached = order
                break
            out[k] = g.detach().numpy(force=True)
            cur = g
            reached = k
    return out, reached


def _residuals(D: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Trapezoid residual of D_k on each cell [x_i, x_{i+1}] using D_{k+1}."""
    dx = np.diff(x)
    return np.abs(np.diff(D[k]) - 0.5 * dx * (D[k + 1][:-1] + D[k + 1][1:]))


def _cell_residual(act: Activation, a: float, b: float, k: int) -> float:
    D, _ = derivatives(act, np.array([a, b]), k + 1)
    r = abs(D[k, 1] - D[k, 0] - 0.5 * (b - a) * (D[k + 1, 0] + D[k + 1, 1]))
    return float(r) if math.isfinite(r) else math.inf


def _bisect(act: Activation, a: float, b: float, k: int, r0: float) -> tuple[float, float] | None:
    """Shrink [a, b] around a jump of D_k; None when the residual decays (smooth)."""
    r_prev = r0
    smooth_steps = 0
    for _ in range(80):
        width = b - a
        if width <= 1e-12 * max(1.0, abs(a)):
            return a, b
        m = 0.5 * (a + b)
        r1 = _cell_residual(act, a, m, k)
        r2 = _cell_residual(act, m, b, k)
        if r1 >= r2:
            b, r = m, r1
        else:
            a, r = m, r2
        # a jump keeps its residual; smooth cells lose ~8x per halving (~2x for a jump of D_{k+1})
        if r < 0.3 * r_prev:
            smooth_steps += 1
            if smooth_steps >= 3:
                return None
        else:
            smooth_steps = 0
        r_prev = r
    return a, b


def _one_sided(act: Activation, alpha: float, max_order: int, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Richardson-extrapolated limits D_k(alpha -) and D_k(alpha +), k = 0..max_order."""
    pts = np.array([alpha - t, alpha - t / 2, alpha + t / 2, alpha + t])
    D, reached = derivatives(act, pts, max_order)
    left = 2 * D[:, 1] - D[:, 0]
    right = 2 * D[:, 2] - D[:, 3]
    left[reached + 1 :] = np.nan
    right[reached + 1 :] = np.nan
    return left, right


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def detect_kinks(
    act: Activation | str | Any,
    *,
    interval: tuple[float, float] = (-10.0, 10.0),
    max_order: int = 4,
    step: float = 1e-3,
    rel_tol: float = 1e-6,
    max_poly_degree: int = 8,
) -> KinkReport:
    """Locate the kinks of phi on ``interval`` and classify it (see the module docstring).

    ``max_order``: highest derivative examined (J_r for r <= max_order); ``step``: search grid
    spacing; ``rel_tol``: smallest jump reported, relative to max(1, size of that derivative).
    """
    act = plain_activation(act)
    lo, hi = (float(v) for v in interval)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ActspecError(f"interval must be finite with lo < hi (got {interval!r})")
    if not 0 <= int(max_order) <= 8:
        raise ActspecError(f"max_order must be between 0 and 8 (got {max_order})")
    max_order = int(max_order)
    npts = int(math.ceil((hi - lo) / step)) + 1
    if npts > 2_000_001:
        raise ActspecError("search grid too fine; use a larger step or a smaller interval")
    x = np.linspace(lo, hi, npts) + _OFFSET * step
    D, reached = derivatives(act, x, max_order + 1)
    notes: list[str] = []
    if reached < max_order + 1:
        notes.append(
            f"autograd gives derivatives only up to order {reached}; kinks of order >= {reached} "
            "cannot be examined"
        )
    top = min(max_order, reached - 1)

    # ---- candidates --------------------------------------------------------------------------
    cand: list[tuple[float, float, int, float]] = []  # (a, b, k, residual)
    bad = ~np.all(np.isfinite(D[: top + 2]), axis=0) if top >= 0 else np.zeros(x.size, bool)
    for k in range(top + 1):
        res = _residuals(D, x, k)
        cellbad = bad[:-1] | bad[1:]
        res = np.where(cellbad, np.inf, res)
        scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(D[k]), D[k], 0.0)))))
        thresh = max(rel_tol * 0.05 * scale, 1e-9)
        # stand out from the neighbours (smooth residuals vary slowly from cell to cell)
        pad = np.pad(np.where(np.isfinite(res), res, 0.0), 3, mode="edge")
        neigh = np.max(
            np.stack([pad[3 + s : 3 + s + res.size] for s in (-3, -2, -1, 1, 2, 3)]), axis=0
        )
        hit = np.flatnonzero((res > thresh) & ((res > 4.0 * neigh) | ~np.isfinite(res)))
        hit = np.union1d(hit, np.flatnonzero(~np.isfinite(res) & ~cellbad))
        for i in hit:
            cand.append((float(x[i]), float(x[i + 1]), k, float(res[i])))
    # isolated non-finite points (poles, log(0)): examine them as order-0 candidates
    for i in np.flatnonzero(bad)[:50]:
        a = float(x[max(i - 1, 0)])
        b = float(x[min(i + 1, x.size - 1)])
        cand.append((a, b, 0, math.inf))

    # ---- refine, merge -----------------------------------------------------------------------
    found: list[tuple[float, float]] = []
    for a, b, k, r in sorted(cand, key=lambda c: (c[2], c[0])):
        if any(abs(0.5 * (a + b) - f) < 3 * step for f, _ in found):
            continue
        got = _bisect(act, a, b, k, r if math.isfinite(r) else 1e300)
        if got is None:
            continue
        a2, b2 = got
        found.append((0.5 * (a2 + b2), 0.5 * (b2 - a2) + 1e-15))
        if len(found) > 50:
            notes.append("more than 50 kinks; search stopped")
            break

    kinks: list[Kink] = []
    for alpha, err in sorted(found):
        if abs(alpha) < 1e-10:
            alpha = 0.0
        t = 1e-4 * max(1.0, abs(alpha) ** 0.5)
        left, right = _one_sided(act, alpha, max_order, t)
        jumps = right - left
        order: int | None = None
        jump = float("nan")
        for k in range(max_order + 1):
            if not (math.isfinite(left[k]) and math.isfinite(right[k])):
                if k <= top:
                    order = None
                    notes.append(f"derivative {k} is unbounded near x = {alpha:.6g}")
                break
            size = max(1.0, abs(left[k]), abs(right[k]))
            if abs(jumps[k]) > rel_tol * size * (10.0 ** k):
                order, jump = k, float(jumps[k])
                break
        else:
            continue  # no jump confirmed: a false alarm of the residual test
        kinks.append(
            Kink(
                location=float(alpha),
                order=order,
                jump=jump,
                jumps=[_finite_or_none(v) for v in jumps],
                left=[_finite_or_none(v) for v in left],
                right=[_finite_or_none(v) for v in right],
                location_error=float(err),
            )
        )

    # ---- classify ------------------------------------------------------------------------------
    poly: int | None = None
    orders = [k.order for k in kinks]
    if kinks:
        if any(o is None for o in orders):
            kclass, korder = "singular", None
        else:
            korder = min(o for o in orders if o is not None)
            kclass = "discontinuous" if korder == 0 else f"J_{korder}"
    else:
        korder = None
        poly = _polynomial_degree(act, lo, hi, max_poly_degree)
        kclass = f"polynomial of degree {poly}" if poly is not None else "smooth"
    declared = list(act.kinks)
    agrees: bool | None = None
    if act.builtin or act.kinks or act.kink_order is not None:
        agrees = korder == act.kink_order and len(declared) == len(kinks) and all(
            abs(a - k.location) < 1e-8 for a, k in zip(declared, kinks, strict=False)
        )
        if act.polynomial_degree is not None:
            agrees = poly == act.polynomial_degree
    in_range = all(abs(k.location) <= 1.0 for k in kinks) if kinks else None
    if kinks and not in_range:
        notes.append("a kink lies outside [-1, 1], where the paper's J_r definition puts it")
    if len({k.order for k in kinks}) > 1 or len(kinks) > 1:
        notes.append(
            f"{len(kinks)} kinks; the class is set by the lowest order (the paper treats one kink)"
        )
    return KinkReport(
        activation=act.name,
        kink_class=kclass,
        kink_order=korder,
        polynomial_degree=poly,
        kinks=kinks,
        interval=(lo, hi),
        max_order=max_order,
        grid_step=float(step),
        declared_kinks=declared,
        declared_order=act.kink_order,
        agrees_with_declared=agrees,
        in_paper_range=in_range,
        notes=notes,
    )


def _polynomial_degree(act: Activation, lo: float, hi: float, max_degree: int) -> int | None:
    """Degree p if phi^(p+1) vanishes identically on a sample of [lo, hi], else None."""
    xs = np.linspace(lo, hi, 257) + _OFFSET
    D, reached = derivatives(act, xs, max_degree + 1)
    for p in range(0, min(max_degree, reached - 1) + 1):
        nxt = D[p + 1]
        if not np.all(np.isfinite(nxt)):
            continue
        size = max(1.0, float(np.max(np.abs(D[p]))))
        if float(np.max(np.abs(nxt))) <= 1e-12 * size and float(np.max(np.abs(D[p]))) > 0:
            return p
    return None
