"""Dual functions: 2x2 Gaussian expectations E[f(u) f(v)] for (u, v) ~ N(0, [[s1, c], [c, s2]]).

With f = phi' this is the factor of G-infinity, with f = phi the output-layer kernel H-infinity
(SCIENCE §1). Three evaluation paths, in order of preference:

1. Closed forms (relu, leaky_relu, linear, quadratic, cubic, erf) for any covariance.
2. :class:`DualTable` for inputs of one common variance s (unit-norm data, the default): the dual
   function is tabulated as a function of the angle theta = arccos(rho) on [0, pi]. Written in
   theta rather than rho it is smooth even for kinked activations (ReLU's is linear in theta,
   while in rho it has a square-root singularity at rho = 1, which is why a truncated Hermite
   series converges slowly there). The table is piecewise Chebyshev (degree 11 on P intervals),
   and P is doubled until an independent check at off-node angles agrees with direct quadrature
   to 1e-13 — so the accuracy claim is verified every time a table is built.
3. Direct quadrature per entry, for the rare case of many distinct input norms.

The quadrature itself (:func:`gaussian_pair_expectation`) uses polar coordinates z = r(cos psi,
sin psi) of the standard 2-D normal, u = sigma1 r cos psi, v = sigma2 r cos(psi - theta): every kink
of f is a straight line in the plane; the psi-integration is split at the directions of lines
through the origin and at the intersections of lines, and each ray's r-integration is split where
it crosses a line. Every panel then holds a smooth integrand and composite Gauss-Legendre
converges exponentially (about 1e-15 absolute in practice).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..activations.base import Activation
from ..core.errors import ActspecError

__all__ = [
    "dual",
    "closed_form_dual",
    "gaussian_pair_expectation",
    "DualTable",
    "dual_table",
    "gaussian_mean",
]

Which = Literal["derivative", "activation"]

_R = 10.0  # radius in units of the standard normal: tail mass ~ R^k e^{-R^2/2} < 1e-17
_NPSI = 16
_NR = 16
_TWO_PI = 2.0 * math.pi


def _fn(act: Activation, which: Which) -> Callable[[np.ndarray], np.ndarray]:
    return act.dphi if which == "derivative" else act.phi


# ---------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------


def closed_form_dual(
    act: Activation, s1: np.ndarray, s2: np.ndarray, c: np.ndarray, which: Which
) -> np.ndarray | None:
    """Exact E[f(u) f(v)] where the activation knows a closed form (its ``dual_fn`` hook), else
    ``None``."""
    return act.closed_form_dual(s1, s2, c, which)


# ---------------------------------------------------------------------------------------------
# quadrature
# ---------------------------------------------------------------------------------------------


def _leggauss(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(order)


def _panel_nodes(bps: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights on each interval of sorted breakpoints (last axis)."""
    x0, w0 = _leggauss(order)
    lo, hi = bps[..., :-1, None], bps[..., 1:, None]
    half = 0.5 * (hi - lo)
    nodes = 0.5 * (lo + hi) + half * x0
    weights = half * w0
    shape = bps.shape[:-1] + (-1,)
    return nodes.reshape(shape), weights.reshape(shape)


def gaussian_pair_expectation(
    f: Callable[[np.ndarray], np.ndarray],
    f_kinks: tuple[float, ...],
    s1: np.ndarray | float,
    s2: np.ndarray | float,
    c: np.ndarray | float,
    *,
    g: Callable[[np.ndarray], np.ndarray] | None = None,
    g_kinks: tuple[float, ...] | None = None,
    batch: int = 24,
) -> np.ndarray:
    """E[f(u) g(v)] (g = f by default) for (u, v) ~ N(0, [[s1, c], [c, s2]]), elementwise.

    Polar-coordinate Gauss-Legendre split at the kink lines (see module docstring). ``s1``,
    ``s2`` must be positive; |c| <= sqrt(s1 s2) (clipped).
    """
    if g is None:
        g, g_kinks = f, f_kinks
    g_kinks = f_kinks if g_kinks is None else g_kinks
    s1a, s2a, ca = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (s1, s2, c)))
    shape = s1a.shape
    s1f, s2f, cf = s1a.ravel(), s2a.ravel(), ca.ravel()
    if np.any(s1f <= 0) or np.any(s2f <= 0):
        raise ActspecError("pre-activation variances must be positive (zero-norm input rows?)")
    out = np.empty(s1f.size)
    for start in range(0, s1f.size, batch):
        sl = slice(start, start + batch)
        out[sl] = _polar_batch(f, tuple(f_kinks), g, tuple(g_kinks), s1f[sl], s2f[sl], cf[sl])
    return out.reshape(shape)


def _polar_batch(
    f: Callable[[np.ndarray], np.ndarray],
    fk: tuple[float, ...],
    g: Callable[[np.ndarray], np.ndarray],
    gk: tuple[float, ...],
    s1: np.ndarray,
    s2: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    e = s1.size
    sig1, sig2 = np.sqrt(s1), np.sqrt(s2)
    cos_t = np.clip(c / (sig1 * sig2), -1.0, 1.0)
    theta = np.arccos(cos_t)
    sin_t = np.sin(theta)
    # kink lines {z : z . n = t}: f-lines have normal angle 0, g-lines normal angle theta
    lines_angle = [np.zeros(e) for _ in fk] + [theta for _ in gk]
    lines_t = [np.full(e, k) / sig1 for k in fk] + [np.full(e, k) / sig2 for k in gk]

    # ---- psi breakpoints -------------------------------------------------------------------
    psi_bps = [np.linspace(0.0, _TWO_PI, 17)[None, :].repeat(e, 0)]
    for ang, t in zip(lines_angle, lines_t, strict=True):
        through0 = t == 0.0
        for sgn in (0.5, -0.5):
            psi_bps.append(np.where(through0, ang + sgn * math.pi, 0.0)[:, None])
    for ka in fk:
        for kb in gk:
            ta = np.full(e, ka) / sig1
            tb = np.full(e, kb) / sig2
            ok = (sin_t > 1e-12) & ~((ta == 0) & (tb == 0))
            z1 = ta
            z2 = np.where(ok, (tb - ta * cos_t) / np.where(ok, sin_t, 1.0), 0.0)
            inside = ok & (z1 * z1 + z2 * z2 < _R * _R)
            psi_bps.append(np.where(inside, np.arctan2(z2, z1), 0.0)[:, None])
    bps = np.mod(np.concatenate(psi_bps, axis=1), _TWO_PI)
    bps = np.sort(np.concatenate([bps, np.full((e, 1), _TWO_PI)], axis=1), axis=1)
    bps[:, 0] = 0.0
    psi, wpsi = _panel_nodes(bps, _NPSI)  # (e, P*NPSI)

    # ---- r breakpoints per ray ---------------------------------------------------------------
    smax = float(max(1.0, np.sqrt(max(s1.max(), s2.max()))))
    n_rpanel = int(math.ceil(_R * smax / 1.25))
    r_bps = [np.broadcast_to(np.linspace(0.0, _R, n_rpanel + 1), psi.shape + (n_rpanel + 1,))]
    for ang, t in zip(lines_angle, lines_t, strict=True):
        cosd = np.cos(psi - ang[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            rstar = t[:, None] / cosd
        rstar = np.where(np.isfinite(rstar) & (rstar > 0) & (rstar < _R), rstar, _R)
        r_bps.append(rstar[..., None])
    rb = np.sort(np.concatenate(r_bps, axis=-1), axis=-1)
    r, wr = _panel_nodes(rb, _NR)  # (e, Npsi, Nr)

    u = (sig1[:, None, None] * np.cos(psi)[..., None]) * r
    v = (sig2[:, None, None] * np.cos(psi[..., None] - theta[:, None, None])) * r
    dens = r * np.exp(-0.5 * r * r) / _TWO_PI
    vals = f(u) * g(v) * dens
    return np.einsum("epr,epr,ep->e", vals, wr, wpsi)


def gaussian_mean(
    f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...], s: float = 1.0
) -> float:
    """E f(sqrt(s) z) for z ~ N(0, 1), by composite Gauss-Legendre split at the kinks."""
    from .hermite import gauss_legendre_panels

    sd = math.sqrt(s)
    bps = sorted({-20.0, 20.0, *(k / sd for k in kinks if abs(k / sd) < 20.0)})
    z, w = gauss_legendre_panels(np.array(bps), 0.5)
    return float(np.sum(w * f(sd * z) * np.exp(-0.5 * z * z)) / math.sqrt(_TWO_PI))


# ---------------------------------------------------------------------------------------------
# tabulation in theta
# ---------------------------------------------------------------------------------------------

_Q = 12  # Chebyshev points per interval (degree 11)
_TOL = 1e-13


@dataclass
class DualTable:
    """Piecewise-Chebyshev table of theta -> E[f(u) f(v)], u, v of variances s1, s2, angle theta."""

    coeffs: np.ndarray  # (P, _Q) Chebyshev coefficients per interval
    s1: float
    s2: float
    check_error: float  # max |table - quadrature| at the off-node check angles

    @property
    def intervals(self) -> int:
        return self.coeffs.shape[0]

    @classmethod
    def build(cls, act: Activation, which: Which, s1: float, s2: float) -> DualTable:
        f = _fn(act, which)
        cheb = np.cos(math.pi * (np.arange(_Q) + 0.5) / _Q)[::-1]  # Chebyshev points, ascending
        probe = np.array([-0.71, 0.13, 0.83])
        p = 16
        best: DualTable | None = None
        while True:
            h = math.pi / p
            left = np.arange(p) * h
            nodes = left[:, None] + 0.5 * h * (cheb[None, :] + 1.0)
            check = left[:, None] + 0.5 * h * (probe[None, :] + 1.0)
            theta = np.concatenate([nodes.ravel(), check.ravel()])
            sd = math.sqrt(s1 * s2)
            vals = gaussian_pair_expectation(f, act.kinks, s1, s2, sd * np.cos(theta))
            node_vals = vals[: nodes.size].reshape(p, _Q)
            coeffs = np.polynomial.chebyshev.chebfit(cheb, node_vals.T, _Q - 1).T
            tab = cls(coeffs, s1, s2, 0.0)
            err = float(np.max(np.abs(tab(np.cos(check.ravel())) - vals[nodes.size :])))
            scale = max(1.0, float(np.max(np.abs(node_vals))))
            tab.check_error = err
            # stop when verified, or when doubling no longer helps (quadrature noise floor)
            if err <= _TOL * scale or p >= 512 or (best is not None and err > 0.5 * best.check_error):
                return tab if best is None or err <= best.check_error else best
            best = tab
            p *= 2

    def __call__(self, rho: np.ndarray) -> np.ndarray:
        """Evaluate at correlations rho (clipped to [-1, 1]).

        Elementwise, in chunks of :data:`_EVAL_CHUNK` entries (cache-sized temporaries, memory
        O(size of rho)); large inputs are split over :func:`eval_threads` threads (numpy
        releases the GIL in the ufuncs and gathers used here).
        """
        rho = np.asarray(rho, dtype=np.float64)
        out = np.empty(rho.shape)
        flat_in = np.ascontiguousarray(rho).reshape(-1)
        flat_out = out.reshape(-1)
        size = flat_in.size
        ct = self._coeffs_by_degree()
        starts = range(0, size, _EVAL_CHUNK)
        threads = eval_threads() if size >= 4 * _EVAL_CHUNK else 1

        def run(start: int) -> None:
            sl = slice(start, start + _EVAL_CHUNK)
            self.evaluate_into(flat_in[sl], flat_out[sl], ct)

        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run, starts))
        else:
            for start in starts:
                run(start)
        return out[()] if out.ndim == 0 else out

    def _coeffs_by_degree(self) -> np.ndarray:
        """Coefficients transposed to (Q, P): one contiguous lookup row per Chebyshev degree."""
        return np.ascontiguousarray(self.coeffs.T)

    def evaluate_into(
        self, rho: np.ndarray, out: np.ndarray, ct: np.ndarray | None = None
    ) -> np.ndarray:
        """out[...] = table(rho) for 1-D (or any same-shape) float64 arrays; single-threaded.

        Same arithmetic as the reference Clenshaw evaluation, so results are bit-identical to it;
        the coefficients are gathered one degree at a time from a (Q, P) table (cache-resident)
        instead of materialising a (size, Q) array of per-entry coefficients.
        """
        theta = np.clip(rho, -1.0, 1.0)
        np.arccos(theta, out=theta)
        return self.evaluate_theta(theta, out, ct)

    def evaluate_theta(
        self, theta: np.ndarray, out: np.ndarray | None = None, ct: np.ndarray | None = None
    ) -> np.ndarray:
        """The table at angles theta in [0, pi] (theta is not modified); single-threaded.

        Coefficients are gathered one degree at a time from a (Q, P) table (cache-resident)
        instead of materialising a (size, Q) array of per-entry coefficients.
        """
        if ct is None:
            ct = self._coeffs_by_degree()
        if out is None:
            out = np.empty(theta.shape)
        q, p = ct.shape
        h = math.pi / p
        idx = (theta / h).astype(np.intp)
        np.minimum(idx, p - 1, out=idx)
        t = idx * h
        np.subtract(theta, t, out=t)
        t *= 2.0
        t /= h
        t -= 1.0
        t2 = t * 2.0
        tmp = np.empty_like(t)
        # Clenshaw recurrence for sum_k c_k T_k(t): b_k = c_k + 2t b_{k+1} - b_{k+2}
        b1 = np.take(ct[q - 1], idx)
        b2 = np.zeros_like(t)
        for k in range(q - 2, 0, -1):
            ck = np.take(ct[k], idx)
            np.multiply(t2, b1, out=tmp)
            ck += tmp
            ck -= b2
            b1, b2 = ck, b1
        np.multiply(t, b1, out=out)
        np.add(np.take(ct[0], idx), out, out=out)
        out -= b2
        return out


def eval_threads() -> int:
    """Worker threads for the elementwise kernel evaluation (torch's intra-op thread count)."""
    try:
        import torch

        return max(1, int(torch.get_num_threads()))
    except Exception:  # pragma: no cover - torch is a hard dependency
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


_EVAL_CHUNK = 1 << 16


# tables keyed by (activation fingerprint, kernel, variance keys); least recently used dropped
_TABLES: OrderedDict[tuple[str, str, int, int], DualTable] = OrderedDict()
MAX_CACHED_TABLES = 256
# the one dispatch threshold: rows with more distinct variances than this (2-layer and deep
# kernels alike) use direct quadrature instead of one table per pair of variances
MAX_VARIANCE_GROUPS = 6
_LOCK = threading.Lock()


def dual_table(act: Activation, which: Which, s1: float = 1.0, s2: float = 1.0) -> DualTable:
    """Cached :class:`DualTable` for this activation, kernel and variances."""
    q1, q2 = (int(k) for k in quantize(np.array([s1, s2], dtype=np.float64)))
    key = (act.key, str(which), q1, q2)
    with _LOCK:
        tab = _TABLES.get(key)
        if tab is not None:
            _TABLES.move_to_end(key)
    if tab is None:
        tab = DualTable.build(act, which, s1, s2)
        with _LOCK:
            _TABLES[key] = tab
            while len(_TABLES) > MAX_CACHED_TABLES:
                _TABLES.popitem(last=False)
    return tab


def quantize(s: np.ndarray) -> np.ndarray:
    """Integer keys equal for variances that agree to ~12 significant digits."""
    with np.errstate(divide="ignore"):
        return np.round(np.log2(np.where(s > 0, s, 1e-300)) * 2.0**36).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# public entry
# ---------------------------------------------------------------------------------------------


def dual(
    act: Activation,
    s1: np.ndarray | float,
    s2: np.ndarray | float,
    c: np.ndarray | float,
    which: Which = "derivative",
    *,
    method: Literal["auto", "closed", "table", "quadrature"] = "auto",
) -> np.ndarray:
    """E[f(u) f(v)], (u, v) ~ N(0, [[s1, c], [c, s2]]), f = phi' or phi; elementwise, broadcasting."""
    s1a, s2a, ca = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (s1, s2, c)))
    if method in ("auto", "closed"):
        out = closed_form_dual(act, s1a, s2a, ca, which)
        if out is not None:
            return out
        if method == "closed":
            raise ActspecError(f"no closed form for {act.name}; use method='auto'")
    f = _fn(act, which)
    if method == "quadrature":
        return gaussian_pair_expectation(f, act.kinks, s1a, s2a, ca)
    out = np.empty(ca.shape)
    # group entries by their (s1, s2) pair: one table per distinct pair of variances
    # variances equal to 12 significant digits share a table (unit-norm rows differ by rounding)
    keys = np.stack([quantize(s1a.ravel()), quantize(s2a.ravel())], axis=1)
    uniq_keys, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    uniq = np.stack([s1a.ravel()[first], s2a.ravel()[first]], axis=1)
    flat_c, flat_out = ca.ravel(), out.reshape(-1)
    if method == "table" or len(uniq) <= MAX_VARIANCE_GROUPS**2:
        # correlations from each entry's own variances: a diagonal entry (c = s1 = s2) gets
        # rho = 1 exactly (sqrt(fl(s*s)) == s). Near rho = 1 a J_1 dual function moves like
        # sqrt(1 - rho), so a rounding of 1e-16 in rho would cost ~1e-8 in the value.
        sd = np.sqrt(s1a.ravel() * s2a.ravel())
        for k, (a, b) in enumerate(uniq):
            sel = inverse == k
            tab = dual_table(act, which, float(a), float(b))
            flat_out[sel] = tab(flat_c[sel] / sd[sel])
        return out
    return gaussian_pair_expectation(f, act.kinks, s1a, s2a, ca)
