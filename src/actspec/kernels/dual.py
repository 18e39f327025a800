"""Dual functions: 2x2 Gaussian expectations E[f(u) f(v)] for (u, v) ~ N(0, [[s1, c], [c, s2]]).

With f = phi' this is the factor of G-infinity, with f = phi the output-layer kernel H-infinity
(SCIENCE §1). Three evaluation paths, in order of preference:

1. Closed forms (relu, leaky_relu, linear, quadratic, cubic, erf) for any covariance.
2. :class:`DualTable` for inputs of one common variance s (unit-norm data, the default): the
   dual function is tabulated as a function of the angle theta = arccos(rho) on [0, pi]. Written in
   theta rather than rho it is smooth even for kinked activations (ReLU's is linear in theta,
   while in rho it has a square-root singularity at rho = 1, which is why a truncated Hermite
   series converges slowly there). The table is piecewise Chebyshev (degree 11) on dyadic
   intervals, halved where an off-node check against the quadrature fails; the quadrature itself
   is checked against independent references (adaptive Clenshaw-Curtis at theta = 0, pi/2, pi,
   the refined rule elsewhere), the rule refined when they disagree, and the build refuses
   (ActspecError with the measured error) when 1e-13 cannot be verified. Tables are built at
   canonical variances (:func:`canonical_variance`), so values never depend on what a process
   computed before. Built tables are also kept on disk (:mod:`.table_cache`: keyed by the
   activation's value fingerprint, the variance keys and every tabulation parameter; moved by
   ACTSPEC_CACHE_DIR, disabled by ACTSPEC_NO_CACHE=1), so a second process loads the very same
   coefficients instead of rebuilding them.
3. Direct quadrature per entry, for the rare case of many distinct input norms.

The quadrature itself (:func:`gaussian_pair_expectation`) uses polar coordinates z = r(cos psi,
sin psi) of the standard 2-D normal, u = sigma1 r cos psi, v = sigma2 r cos(psi - theta). The
argument axis of f is first cut into panels on which f is a polynomial to 1e-16
(:func:`resolve_partition`: adaptive bisection on Chebyshev tails; kinks are breakpoints), so
kinks and sharp layers of any width (tanh at large norms, tanh(1000 x)) are lines z . n = b in
the plane. Each ray's r-integration is split at the Gaussian grid and where it crosses these
lines; psi is split at the kink directions, at intersections of kink lines, and graded
geometrically toward the directions where a layer is seen edge-on (width ~ panel / (sigma R)).
Every panel then holds a smooth integrand and composite Gauss-Legendre converges exponentially
(about 1e-15 relative, checked against mpmath for input norms 0.1..30).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft as sp_fft

from ..activations.base import Activation
from ..core.errors import ActspecError
from ..core.resources import format_seconds, table_seconds
from . import shipped_tables, table_cache

__all__ = [
    "dual",
    "closed_form_dual",
    "gaussian_pair_expectation",
    "DualTable",
    "dual_table",
    "gaussian_mean",
    "quantize",
    "canonical_variance",
    "clear_caches",
    "resolve_partition",
    "Partition",
    "DOCUMENTED_ACCURACY",
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


# ---------------------------------------------------------------------------------------------
# resolving partitions of the integrands
# ---------------------------------------------------------------------------------------------

_CHEB_N = 33  # samples per panel of the resolution test (Chebyshev points of the first kind)
_CHEB_X = np.cos(math.pi * (np.arange(_CHEB_N) + 0.5) / _CHEB_N)
_PART_TOL = 1e-16  # Chebyshev tail (degrees >= 24) allowed, relative to max |f|
_MAX_PANELS = 20_000


@dataclass(frozen=True)
class Partition:
    """Breakpoints of [-U, U] (in the argument of f) between which f is a polynomial of degree
    < 16 to ~1e-16 of max |f| (weighted by the Gaussian at the panel): every panel is then
    integrated exactly enough by Gauss-Legendre. ``resolved`` is False when a panel could not be
    resolved down to the width floor (a singularity, or a jump that is not a declared kink)."""

    bps: np.ndarray
    hmin: float
    scale: float
    resolved: bool
    worst: float  # location of the worst unresolved panel (nan when resolved)


def resolve_partition(
    f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...], sigma: float, *,
    level: int = 0,
) -> Partition:
    """The partition of f(u), |u| <= sigma * R, resolving f for Gaussian averages at std sigma.

    Adaptive bisection from 16 equal panels split at the kinks and 0: a panel is kept when the
    Chebyshev coefficients of degrees 24..32 of f on it (33 points), times the Gaussian weight
    exp(-u^2 / (2 sigma^2)) at its nearest point to 0, are below 1e-16 max |f|; else halved.
    """
    U = sigma * _R
    tol = _PART_TOL
    pts = {-U, U, 0.0, *(float(k) for k in kinks if -U < k < U)}
    pts.update(np.linspace(-U, U, 17).tolist())
    bps = np.array(sorted(pts))
    lo, hi = bps[:-1], bps[1:]
    floor = 1e-13 * max(1.0, U)
    good_lo: list[np.ndarray] = []
    good_hi: list[np.ndarray] = []
    scale = 0.0
    worst = math.nan
    resolved = True
    total = 0
    while lo.size:
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        x = mid[:, None] + half[:, None] * _CHEB_X[None, :]
        with np.errstate(all="ignore"):
            v = np.asarray(f(x), dtype=np.float64).reshape(x.shape)
        fin = np.isfinite(v)
        if np.any(fin):
            scale = max(scale, float(np.max(np.abs(v[fin]))))
        c = sp_fft.dct(np.where(fin, v, 0.0), type=2, axis=1) / _CHEB_N
        tail = np.max(np.abs(c[:, 24:]), axis=1)
        near = np.where((lo < 0) & (hi > 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
        weight = np.exp(-0.5 * (near / sigma) ** 2)
        ok = (tail * weight <= tol * max(scale, 1e-300)) & np.all(fin, axis=1)
        tiny = (2 * half) <= floor * np.maximum(1.0, np.abs(mid))
        stop = ok | tiny
        if np.any(tiny & ~ok):
            bad = np.flatnonzero(tiny & ~ok)
            resolved = False
            worst = float(mid[bad[np.argmax((tail * weight)[bad])]])
        good_lo.append(lo[stop])
        good_hi.append(hi[stop])
        total += int(np.count_nonzero(stop))
        split = ~stop
        if total + 2 * int(np.count_nonzero(split)) > _MAX_PANELS:
            resolved = False
            worst = float(mid[split][0])
            good_lo.append(lo[split])
            good_hi.append(hi[split])
            break
        lo, hi = (np.concatenate([lo[split], mid[split]]), np.concatenate([mid[split], hi[split]]))
    L = np.concatenate(good_lo)
    H = np.concatenate(good_hi)
    out = np.unique(np.concatenate([L, H]))
    if level:  # the refined rule: every panel cut into 2^level equal pieces
        k = 2**level
        out = np.unique((out[:-1, None] + np.diff(out)[:, None] * (np.arange(k) / k)).ravel().tolist()
                        + [out[-1]])
    return Partition(out, float(np.min(np.diff(out))), scale, resolved, worst)


_PARTS: OrderedDict[tuple[str, str, int, int], Partition] = OrderedDict()


def _sigma_class(sigma: float) -> int:
    """Partitions are built for sigma rounded up to a power of 2 (shared by nearby variances;
    entries' results depend only on their own variances)."""
    return int(math.ceil(math.log2(max(sigma, 1e-300)) - 1e-12))


def cached_partition(
    key: str | None, f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...],
    sigma: float, level: int = 0,
) -> Partition:
    k = _sigma_class(sigma)
    if key is None:
        return resolve_partition(f, kinks, 2.0**k, level=level)
    ck = (key, repr(tuple(kinks)), k, level)
    with _LOCK:
        p = _PARTS.get(ck)
    if p is None:
        p = resolve_partition(f, kinks, 2.0**k, level=level)
        with _LOCK:
            _PARTS[ck] = p
            while len(_PARTS) > 256:
                _PARTS.popitem(last=False)
    return p


def _gl(order: int) -> tuple[np.ndarray, np.ndarray]:
    got = _GL_CACHE.get(order)
    if got is None:
        got = _GL_CACHE[order] = np.polynomial.legendre.leggauss(order)
    return got


_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _panel_nodes(bps: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights on each interval of sorted breakpoints (last axis), shaped
    (..., panels, order)."""
    x0, w0 = _gl(order)
    lo, hi = bps[..., :-1, None], bps[..., 1:, None]
    half = 0.5 * (hi - lo)
    return 0.5 * (lo + hi) + half * x0, half * w0


def _seq_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis one term after the other: zero terms (the empty panels that pad a
    batch) leave the result bit-identical, so an entry's value never depends on its batch."""
    out = a[..., 0].copy()
    for k in range(1, a.shape[-1]):
        out += a[..., k]
    return out


def _graded(directions: list[np.ndarray], eps_min: np.ndarray, level: int) -> list[np.ndarray]:
    """Breakpoints graded geometrically toward each direction (where a factor's sharp layer is
    seen edge-on): d +- eps_min q^k up to pi/16 (q = 2, or 2^(1/2) at level 1)."""
    q = 2.0 ** (1.0 / (1 + level))
    top = math.pi / 16
    kmax = int(np.max(np.ceil(np.log(top / eps_min) / math.log(q)))) + 1
    out: list[np.ndarray] = []
    for d in directions:
        out.append(d[:, None])
        for k in range(max(kmax, 0)):
            eps = eps_min * q**k
            e = np.where(eps < top, eps, 0.0)
            out.append((d + e)[:, None])
            out.append((d - e)[:, None])
    return out


_R_GRID = np.array([0.0, 2.0, 4.0, 6.0, 8.0, _R])  # panels of the Gaussian r e^{-r^2/2}


def _ray_integrals(
    f: Callable[[np.ndarray], np.ndarray], fp: Partition,
    g: Callable[[np.ndarray], np.ndarray], gp: Partition,
    cf: np.ndarray, cg: np.ndarray, n_r: int,
) -> np.ndarray:
    """int_0^R f(cf r) g(cg r) r e^{-r^2/2} / (2 pi) dr for each ray (cf, cg), split at the
    Gaussian grid and where u = cf r or v = cg r crosses a breakpoint of f's or g's partition
    (so every panel holds resolved pieces of f, g and the Gaussian). Rays are processed in
    chunks of similar crossing counts; an empty panel adds an exact zero, so a ray's value does
    not depend on its chunk."""
    grid = _R_GRID[1:-1]
    fb = fp.bps[(fp.bps != 0.0) & (np.abs(fp.bps) < np.max(np.abs(cf), initial=0.0) * _R)]
    gb = gp.bps[(gp.bps != 0.0) & (np.abs(gp.bps) < np.max(np.abs(cg), initial=0.0) * _R)]
    fs, gs = np.sort(fb), np.sort(gb)

    def crossings(sorted_b: np.ndarray, coef: np.ndarray) -> np.ndarray:
        lim = np.abs(coef) * _R  # b / coef in (0, R): same sign as coef, |b| < |coef| R
        pos = np.searchsorted(sorted_b, lim, side="left") - np.searchsorted(sorted_b, 0.0, side="right")
        neg = np.searchsorted(sorted_b, 0.0, side="left") - np.searchsorted(sorted_b, -lim, side="right")
        return np.where(coef > 0, pos, np.where(coef < 0, neg, 0))

    count = crossings(fs, cf) + crossings(gs, cg)
    order = np.argsort(count, kind="stable")
    out = np.empty(cf.size)
    ncand = grid.size + fb.size + gb.size
    a = 0
    while a < order.size:
        # counts ascend along `order`: size the chunk by the count at its far end
        step = max(1, (1 << 20) // ((int(count[order[a]]) + grid.size + 2) * n_r))
        width = int(count[order[min(order.size, a + step) - 1]]) + grid.size + 2
        step = max(1, (1 << 20) // (width * n_r))
        sel = order[a : a + step]
        a += step
        cfs, cgs = cf[sel], cg[sel]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rf = fb[None, :] / cfs[:, None]
            rg = gb[None, :] / cgs[:, None]
        m = sel.size
        cand = np.concatenate([np.broadcast_to(grid, (m, grid.size)), rf, rg], axis=1)
        cand = np.where(np.isfinite(cand) & (cand > 0) & (cand < _R), cand, _R)
        cand.sort(axis=1)
        used = min(ncand, int(np.max(np.sum(cand < _R, axis=1))) + 1)
        rb = np.concatenate([np.zeros((m, 1)), cand[:, :used]], axis=1)
        r, wr = _panel_nodes(rb, n_r)  # (m, panels, n_r)
        u = cfs[:, None, None] * r
        v = cgs[:, None, None] * r
        dens = r * np.exp(-0.5 * r * r) * (wr / _TWO_PI)
        vals = f(u) * g(v) * dens
        out[sel] = _seq_sum(vals.sum(axis=-1))
    return out


def _polar_batch(
    f: Callable[[np.ndarray], np.ndarray], fk: tuple[float, ...], fp: Partition,
    g: Callable[[np.ndarray], np.ndarray], gk: tuple[float, ...], gp: Partition,
    s1: np.ndarray, s2: np.ndarray, c: np.ndarray, level: int = 0,
) -> np.ndarray:
    e = s1.size
    sig1, sig2 = np.sqrt(s1), np.sqrt(s2)
    cos_t = np.clip(c / (sig1 * sig2), -1.0, 1.0)
    theta = np.arccos(cos_t)
    sin_t = np.sin(theta)
    n_psi = 16 + 8 * level
    n_r = 16 + 8 * level

    # ---- psi breakpoints -------------------------------------------------------------------
    psi_bps = [np.linspace(0.0, _TWO_PI, 16 * 2**level + 1)[None, :].repeat(e, 0)]
    half_pi = 0.5 * math.pi
    eps_f = np.maximum(fp.hmin / (sig1 * _R), 1e-15)
    eps_g = np.maximum(gp.hmin / (sig2 * _R), 1e-15)
    zero = np.zeros(e)
    psi_bps += _graded([zero + half_pi, zero - half_pi], eps_f, level)
    psi_bps += _graded([theta + half_pi, theta - half_pi], eps_g, level)
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
    psi, wpsi = _panel_nodes(bps, n_psi)  # (e, Ppsi, n_psi)
    psi = psi.reshape(e, -1)
    wpsi = wpsi.reshape(e, -1)

    cf = (sig1[:, None] * np.cos(psi)).ravel()  # u = cf * r on each ray
    cg = (sig2[:, None] * np.cos(psi - theta[:, None])).ravel()  # v = cg * r
    ray = _ray_integrals(f, fp, g, gp, cf, cg, n_r).reshape(psi.shape)
    terms = (ray * wpsi).reshape(e, -1, n_psi).sum(axis=-1)
    return _seq_sum(terms)


def gaussian_pair_expectation(
    f: Callable[[np.ndarray], np.ndarray],
    f_kinks: tuple[float, ...],
    s1: np.ndarray | float,
    s2: np.ndarray | float,
    c: np.ndarray | float,
    *,
    g: Callable[[np.ndarray], np.ndarray] | None = None,
    g_kinks: tuple[float, ...] | None = None,
    key: str | None = None,
    g_key: str | None = None,
    level: int = 0,
) -> np.ndarray:
    """E[f(u) g(v)] (g = f by default) for (u, v) ~ N(0, [[s1, c], [c, s2]]), elementwise.

    Polar-coordinate Gauss-Legendre split at the kink lines and at the lines that resolve f and g
    (see the module docstring). ``s1``, ``s2`` must be positive; |c| <= sqrt(s1 s2) (clipped).
    ``key``/``g_key`` name f and g for the cache of their resolving partitions. Each entry's
    value depends only on its own (s1, s2, c), never on the other entries.
    """
    if g is None:
        g, g_kinks, g_key = f, f_kinks, key
    g_kinks = f_kinks if g_kinks is None else g_kinks
    s1a, s2a, ca = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (s1, s2, c)))
    shape = s1a.shape
    s1f, s2f, cf = s1a.ravel(), s2a.ravel(), ca.ravel()
    if np.any(~(s1f > 0)) or np.any(~(s2f > 0)):
        raise ActspecError("pre-activation variances must be positive (zero-norm input rows?)")
    out = np.empty(s1f.size)
    cls1 = np.array([_sigma_class(math.sqrt(v)) for v in s1f], dtype=np.int64)
    cls2 = np.array([_sigma_class(math.sqrt(v)) for v in s2f], dtype=np.int64)
    pairs = np.stack([cls1, cls2], axis=1)
    for k1, k2 in np.unique(pairs, axis=0) if pairs.size else []:
        idx = np.flatnonzero((cls1 == k1) & (cls2 == k2))
        fp = cached_partition(key, f, tuple(f_kinks), 2.0**k1, level)
        gp = cached_partition(g_key, g, tuple(g_kinks), 2.0**k2, level)
        for start in range(0, idx.size, 16):
            sl = idx[start : start + 16]
            out[sl] = _polar_batch(f, tuple(f_kinks), fp, g, tuple(g_kinks), gp,
                                   s1f[sl], s2f[sl], cf[sl], level)
    return out.reshape(shape)


def gaussian_mean(
    f: Callable[[np.ndarray], np.ndarray], kinks: tuple[float, ...], s: float = 1.0
) -> float:
    """E f(sqrt(s) z) for z ~ N(0, 1): composite Gauss-Legendre on the partition that resolves
    f (:func:`resolve_partition`: kinks and sharp layers of any width) and the Gaussian."""
    sd = math.sqrt(s)
    part = resolve_partition(f, tuple(kinks), sd)
    z = np.unique(np.concatenate([part.bps / sd, np.linspace(-_R, _R, 17)]))
    z = z[(z >= -_R) & (z <= _R)]
    x, w = _panel_nodes(z, 16)
    vals = f(sd * x) * np.exp(-0.5 * x * x) * w
    return float(_seq_sum(vals.sum(axis=-1))) / math.sqrt(_TWO_PI)


def _cc_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Clenshaw-Curtis nodes and weights on [-1, 1] with n + 1 points (n even)."""
    k = np.arange(n + 1)
    x = np.cos(math.pi * k / n)
    w = np.zeros(n + 1)
    for j in range(n + 1):
        s = sum((2.0 if 2 * m < n else 1.0) * math.cos(2 * m * j * math.pi / n) / (4 * m * m - 1)
                for m in range(1, n // 2 + 1))
        w[j] = (2.0 / n) * (1.0 - s) * (0.5 if j in (0, n) else 1.0)
    return x, w


_CC64 = _cc_rule(64)
_CC32 = _cc_rule(32)


def _cc_adaptive(h: Callable[[np.ndarray], np.ndarray], bps: np.ndarray) -> float:
    """int h over [bps[0], bps[-1]] by adaptive Clenshaw-Curtis (65 points against the nested
    33-point rule on every panel, halving panels where they differ): a rule independent of the
    Gauss-Legendre ones it checks. Vectorised over panels."""
    lo, hi = bps[:-1].astype(np.float64), bps[1:].astype(np.float64)
    total: list[np.ndarray] = []
    scale = 0.0
    for _ in range(40):
        if lo.size == 0:
            break
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        vals = h(mid[:, None] + half[:, None] * _CC64[0][None, :])
        fine = (vals @ _CC64[1]) * half
        coarse = (vals[:, ::2] @ _CC32[1]) * half
        scale = max(scale, float(np.max(np.abs(vals), initial=0.0)) * float(np.max(2 * half)))
        ok = np.abs(fine - coarse) <= 1e-16 * max(scale, 1e-300)
        ok |= half < 1e-14 * np.maximum(1.0, np.abs(mid))
        total.append(fine[ok])
        lo, hi = np.concatenate([lo[~ok], mid[~ok]]), np.concatenate([mid[~ok], hi[~ok]])
    if lo.size:  # not converged: count what is there
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        total.append((h(mid[:, None] + half[:, None] * _CC64[0][None, :]) @ _CC64[1]) * half)
    return math.fsum(np.concatenate(total).tolist())


def _line_check(
    f: Callable[[np.ndarray], np.ndarray], fp: Partition, g: Callable[[np.ndarray], np.ndarray],
    gp: Partition, sig1: float, sig2: float, sign: float,
) -> float:
    """E[f(sig1 z) g(sign sig2 z)], z ~ N(0, 1) (the dual at theta = 0 or pi): an independent
    1-D reference by adaptive Clenshaw-Curtis."""
    z = np.unique(np.concatenate([fp.bps / sig1, sign * gp.bps / sig2, np.linspace(-_R, _R, 9)]))
    z = z[(z >= -_R) & (z <= _R)]

    def h(x: np.ndarray) -> np.ndarray:
        return f(sig1 * x) * g(sign * sig2 * x) * np.exp(-0.5 * x * x)

    return _cc_adaptive(h, z) / math.sqrt(_TWO_PI)


def _mean_check(f: Callable[[np.ndarray], np.ndarray], fp: Partition, sig: float) -> float:
    """E f(sig z) by adaptive Clenshaw-Curtis (independent of the Gauss-Legendre rules)."""
    z = np.unique(np.concatenate([fp.bps / sig, np.linspace(-_R, _R, 9)]))
    z = z[(z >= -_R) & (z <= _R)]
    return _cc_adaptive(lambda x: f(sig * x) * np.exp(-0.5 * x * x), z) / math.sqrt(_TWO_PI)


# ---------------------------------------------------------------------------------------------
# tabulation in theta
# ---------------------------------------------------------------------------------------------

_Q = 12  # Chebyshev points per interval (degree 11)
_TOL = 2e-14  # interpolation check, relative to max |E[f(u) f(v)]|
DOCUMENTED_ACCURACY = 1e-13  # what a table must verify (relative), else it refuses
_MAX_DEPTH = 10  # intervals of [0, pi] are bisected down to pi / (16 * 2^10)
_MAX_LEVEL = 2
_CHEB = np.cos(math.pi * (np.arange(_Q) + 0.5) / _Q)[::-1]  # Chebyshev points, ascending
_PROBE = np.array([-0.71, 0.13, 0.83])
_CHECK_THETA = np.array([0.02, 1.1, 2.3, math.pi - 0.05])
_CENTRE = 0.5 * math.pi  # the extra interval of every table (see DualTable._centre_piece)
_CENTRE_HALF = math.pi / 32
_CENTRE_TOL = 2e-15  # its largest accepted deviation from the table, relative to the scale
def _check_build_time(act: Activation, which: Which, clock: tuple[float, float],
                      per_angle: float, next_angles: int, intervals: int) -> None:
    """Refuse a table build that will not finish within
    :func:`~actspec.core.resources.table_seconds`: the time since the build began plus the next
    refinement round (``next_angles`` quadratures) at this level's measured seconds per angle
    (``per_angle``; the partition and earlier levels are not counted as quadrature cost). A
    lower bound of the remaining time, so a refused build was going to overrun; the final checks
    of the last round are not projected."""
    start, budget = clock
    if not math.isfinite(budget) or next_angles == 0:
        return
    elapsed = time.perf_counter() - start
    projected = elapsed + next_angles * per_angle
    if projected <= budget:
        return
    f = "phi'" if which == "derivative" else "phi"
    raise ActspecError(
        f"the G-matrix kernel table of activation {act.name!r} would take more than "
        f"{format_seconds(budget)} to build (after {format_seconds(elapsed)}: {intervals} "
        f"theta-intervals, {next_angles} more quadratures needed next, about "
        f"{format_seconds(projected)} by then): "
        f"E[{f}(u) {f}(v)] varies too sharply in the angle. Use a less steep activation (e.g. "
        "tanh(10*x) instead of tanh(300*x)), rescale the inputs, or allow longer with "
        "ACTSPEC_TABLE_SECONDS=<seconds> (0: no limit)"
    )


@dataclass
class DualTable:
    """Piecewise-Chebyshev table of theta -> E[f(u) f(v)], u, v of variances s1, s2, angle theta.

    The intervals are dyadic pieces of [0, pi] (16 to start, halved where the dual varies fast);
    ``check_error`` is the largest absolute error the build measured: the interpolation against
    the quadrature at off-node angles, and the quadrature against independent references
    (adaptive Clenshaw-Curtis at theta = 0, pi/2, pi; the refined rule at other angles).
    """

    coeffs: np.ndarray  # (P, _Q) Chebyshev coefficients per interval
    s1: float
    s2: float
    check_error: float  # max |table - reference| at the check angles
    edges: np.ndarray | None = None  # (P + 1) interval edges (None: P uniform intervals)
    level: int = 0  # quadrature refinement level that passed the independent check
    quad_error: float = 0.0  # the independent check's measured error (absolute)
    scale: float = 1.0  # max |E[f(u) f(v)]| over the nodes

    def __post_init__(self) -> None:
        self._lookup: np.ndarray | None = None
        self._left: np.ndarray | None = None
        self._inv_half: np.ndarray | None = None
        if self.edges is not None:
            e = np.asarray(self.edges, dtype=np.float64)
            widths = np.diff(e)
            h = float(np.min(widths))
            nf = int(round(math.pi / h))
            cells = np.round(e / h).astype(np.int64)
            self._lookup = np.repeat(np.arange(e.size - 1, dtype=np.intp), np.diff(cells))
            assert self._lookup.size == nf
            self._left = e[:-1].copy()
            self._inv_half = 2.0 / widths
        self._centre: list[float] | None | bool = False  # False: not yet made

    @property
    def intervals(self) -> int:
        return self.coeffs.shape[0]

    @classmethod
    def build(cls, act: Activation, which: Which, s1: float, s2: float) -> DualTable:
        """Build and verify; raise ActspecError when the documented accuracy cannot be verified."""
        last: tuple[float, float, float] | None = None
        clock = (time.perf_counter(), table_seconds())
        for level in range(_MAX_LEVEL + 1):
            tab, quad_err, interp_err, scale = cls._build_level(act, which, s1, s2, level, clock)
            last = (quad_err, interp_err, scale)
            if quad_err <= 10 * _TOL * scale and interp_err <= DOCUMENTED_ACCURACY * scale:
                return tab
            if interp_err > DOCUMENTED_ACCURACY * scale and quad_err <= 10 * _TOL * scale:
                break  # the quadrature is fine; the dual itself is too sharp to tabulate
        assert last is not None
        quad_err, interp_err, scale = last
        f = "phi'" if which == "derivative" else "phi"
        raise ActspecError(
            f"cannot verify the G-matrix kernel of activation {act.name!r} to the documented "
            f"{DOCUMENTED_ACCURACY:g} at pre-activation variance {s1:.6g} x {s2:.6g}: measured "
            f"error {max(quad_err, interp_err) / max(scale, 1e-300):.2g} relative (quadrature "
            f"{quad_err / max(scale, 1e-300):.2g}, table {interp_err / max(scale, 1e-300):.2g}); "
            f"{f} varies on a scale too fine to resolve here. Use a less steep activation "
            "(e.g. tanh(10*x) instead of tanh(1000*x)) or rescale the inputs"
        )

    @classmethod
    def _build_level(
        cls, act: Activation, which: Which, s1: float, s2: float, level: int,
        clock: tuple[float, float] = (0.0, math.inf),
    ) -> tuple[DualTable, float, float, float]:
        f = _fn(act, which)
        key = f"{act.key}/{which}"
        sig1, sig2 = math.sqrt(s1), math.sqrt(s2)
        sd = sig1 * sig2
        fp = cached_partition(key, f, act.kinks, sig1, level)
        gp = cached_partition(key, f, act.kinks, sig2, level)
        for p in (fp, gp):
            if not p.resolved:
                fname = "phi" if which == "activation" else "phi'"
                raise ActspecError(
                    f"activation {act.name!r}: {fname} cannot be resolved near x = "
                    f"{p.worst:.6g} (a jump or a singularity that is not a declared kink); "
                    "Gaussian averages of it are not reliable"
                )

        def quad(theta: np.ndarray) -> np.ndarray:
            return gaussian_pair_expectation(f, act.kinks, s1, s2, sd * np.cos(theta), key=key,
                                             level=level)

        # adaptive dyadic intervals: halve every interval whose off-node check fails
        base = 16
        todo = [(k, 0) for k in range(base)]  # (index at its depth, depth)
        done: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        scale = 0.0
        angles, quad_seconds = 0, 0.0
        while todo:
            lefts = np.array([i * math.pi / (base * 2**d) for i, d in todo])
            widths = np.array([math.pi / (base * 2**d) for _, d in todo])
            nodes = lefts[:, None] + 0.5 * widths[:, None] * (_CHEB[None, :] + 1.0)
            check = lefts[:, None] + 0.5 * widths[:, None] * (_PROBE[None, :] + 1.0)
            t0 = time.perf_counter()
            vals = quad(np.concatenate([nodes.ravel(), check.ravel()]))
            quad_seconds += time.perf_counter() - t0
            node_vals = vals[: nodes.size].reshape(len(todo), _Q)
            check_vals = vals[nodes.size :].reshape(len(todo), _PROBE.size)
            coeffs = np.polynomial.chebyshev.chebfit(_CHEB, node_vals.T, _Q - 1).T
            interp = np.stack([np.polynomial.chebyshev.chebval(_PROBE, cf) for cf in coeffs])
            errs = np.max(np.abs(interp - check_vals), axis=1)
            scale = max(scale, float(np.max(np.abs(node_vals))))
            nxt = []
            for (i, d), cf, err in zip(todo, coeffs, errs, strict=True):
                if err <= _TOL * scale or d >= _MAX_DEPTH:
                    done[(i, d)] = (cf, float(err))
                else:
                    nxt += [(2 * i, d + 1), (2 * i + 1, d + 1)]
            todo = nxt
            angles += nodes.size + check.size
            _check_build_time(act, which, clock, quad_seconds / angles,
                              len(todo) * (_Q + _PROBE.size), len(done) + len(todo))
        # an interval accepted early can fail against the final scale only if the dual grew;
        # the recorded errors are absolute, so the final comparison below uses them as they are
        order = sorted(done, key=lambda k: k[0] / 2 ** k[1])
        coeffs = np.stack([done[k][0] for k in order])
        interp_err = max(done[k][1] for k in order)
        depths = {d for _, d in order}
        edges = None
        if len(depths) > 1:
            edges = np.array([i * math.pi / (base * 2**d) for i, d in order] + [math.pi])
        tab = cls(coeffs, s1, s2, interp_err, edges, level, 0.0, max(scale, 1e-300))
        # independent check of the quadrature: adaptive Clenshaw-Curtis at theta = 0, pi/2, pi, the rule one
        # level finer at other angles
        refs = [
            (0.0, _line_check(f, fp, f, gp, sig1, sig2, 1.0)),
            (math.pi, _line_check(f, fp, f, gp, sig1, sig2, -1.0)),
            (0.5 * math.pi, _mean_check(f, fp, sig1) * _mean_check(f, gp, sig2)),
        ]
        fine = gaussian_pair_expectation(f, act.kinks, s1, s2, sd * np.cos(_CHECK_THETA),
                                         key=key, level=level + 1)
        refs += list(zip(_CHECK_THETA.tolist(), fine.tolist(), strict=True))
        th = np.array([t for t, _ in refs])
        got = tab.evaluate_theta(th)
        quad_err = float(np.max(np.abs(got - np.array([r for _, r in refs]))))
        tab.quad_error = quad_err
        tab.check_error = max(interp_err, quad_err)
        return tab, quad_err, interp_err, tab.scale

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
        instead of materialising a (size, Q) array of per-entry coefficients. When all angles
        fall in one interval (a tile of high-dimensional data: its angles crowd around pi/2),
        the recurrence runs with that interval's scalar coefficients instead (no gathers): the
        same operations on the same numbers, so bit-identical. The interval index is monotone
        in theta, so the smallest and largest angle decide that. When they lie in two intervals
        but within pi/2 +- pi/32, the extra centred interval (:meth:`_centre_piece`) is used:
        not bit-identical to the per-interval values, but within 2e-15 of the table's scale.
        """
        if ct is None:
            ct = self._coeffs_by_degree()
        if out is None:
            out = np.empty(theta.shape)
        q, p = ct.shape
        if theta.size >= 64 and q >= 3:
            ends = np.array([theta.min(), theta.max()])
            if np.all(np.isfinite(ends)):
                lo, hi = self._interval_index(ends, p)
                if lo == hi:
                    return self._clenshaw_scalar(theta, out, ct, int(lo))
                col = self._centre_piece()
                if (col is not None and ends[0] >= _CENTRE - _CENTRE_HALF
                        and ends[1] <= _CENTRE + _CENTRE_HALF):
                    return self._clenshaw_col(theta, out, col, _CENTRE, 1.0 / _CENTRE_HALF)
        return self._gathered(theta, out, ct)

    def _centre_piece(self) -> list[float] | None:
        """Chebyshev coefficients of the table on [pi/2 - w, pi/2 + w] (w = pi/32); None when
        their largest measured deviation from the table exceeds ``_CENTRE_TOL``.

        High-dimensional data put nearly every angle of a tile near pi/2, which is an edge of the
        dyadic intervals, so such a tile spans two intervals and would take the gathered path.
        This one extra interval, centred there and fitted to the table's own values, lets it take
        the scalar path. It is accepted only when it reproduces the table to 2e-15 of its scale
        at 257 off-node angles (measured for the built-ins: <= 1.3e-15).
        """
        if self._centre is False:
            q = self.coeffs.shape[1]
            ct = self._coeffs_by_degree()
            nodes = _CENTRE + _CENTRE_HALF * _CHEB
            cf = np.polynomial.chebyshev.chebfit(_CHEB, self._gathered(nodes, None, ct), q - 1)
            col = [float(v) for v in cf]
            th = np.linspace(_CENTRE - _CENTRE_HALF, _CENTRE + _CENTRE_HALF, 257)
            ref = self._gathered(th, None, ct)
            got = self._clenshaw_col(th, np.empty_like(th), col, _CENTRE, 1.0 / _CENTRE_HALF)
            dev = float(np.max(np.abs(got - ref)))
            ok = q >= 3 and np.isfinite(dev) and dev <= _CENTRE_TOL * self.scale
            self._centre = col if ok else None
        return self._centre  # type: ignore[return-value]

    def _gathered(
        self, theta: np.ndarray, out: np.ndarray | None, ct: np.ndarray
    ) -> np.ndarray:
        """The table at any angles: each entry's coefficients gathered from its interval."""
        if out is None:
            out = np.empty(theta.shape)
        q, p = ct.shape
        idx = self._interval_index(theta, p)
        if self._lookup is None:
            h = math.pi / p
            t = idx * h
            np.subtract(theta, t, out=t)
            t *= 2.0
            t /= h
            t -= 1.0
        else:  # dyadic intervals: a uniform grid of the finest cells points to its interval
            assert self._left is not None and self._inv_half is not None
            t = theta - np.take(self._left, idx)
            t *= np.take(self._inv_half, idx)
            t -= 1.0
        t2 = t * 2.0
        tmp = np.empty_like(t)
        spare = np.empty_like(t)
        # Clenshaw recurrence for sum_k c_k T_k(t): b_k = c_k + 2t b_{k+1} - b_{k+2}
        b1 = np.take(ct[q - 1], idx)
        b2 = np.zeros_like(t)
        for k in range(q - 2, 0, -1):
            ck = np.take(ct[k], idx, out=spare, mode="clip")  # idx is valid: unbuffered
            np.multiply(t2, b1, out=tmp)
            ck += tmp
            ck -= b2
            b1, b2, spare = ck, b1, b2
        np.multiply(t, b1, out=out)
        np.add(np.take(ct[0], idx, out=tmp, mode="clip"), out, out=out)
        out -= b2
        return out

    def _interval_index(self, theta: np.ndarray, p: int) -> np.ndarray:
        """Index of the interval of each angle (monotone non-decreasing in theta)."""
        if self._lookup is None:
            idx = (theta / (math.pi / p)).astype(np.intp)
            np.minimum(idx, p - 1, out=idx)
            return idx
        nf = self._lookup.size
        cell = (theta * (nf / math.pi)).astype(np.intp)
        np.clip(cell, 0, nf - 1, out=cell)
        return np.take(self._lookup, cell)

    def _clenshaw_scalar(
        self, theta: np.ndarray, out: np.ndarray, ct: np.ndarray, i: int
    ) -> np.ndarray:
        """:meth:`evaluate_theta` when every angle lies in interval i: the same arithmetic with
        scalar coefficients (x - 0 skipped: exact)."""
        q, p = ct.shape
        col = [float(v) for v in ct[:, i]]
        if self._lookup is None:
            h = math.pi / p
            t = np.subtract(theta, float(i) * h)
            t *= 2.0
            t /= h
            t -= 1.0
        else:
            assert self._left is not None and self._inv_half is not None
            t = np.subtract(theta, float(self._left[i]))
            t *= float(self._inv_half[i])
            t -= 1.0
        return self._clenshaw_t(t, out, col)

    @staticmethod
    def _clenshaw_col(
        theta: np.ndarray, out: np.ndarray, col: list[float], centre: float, inv_half: float
    ) -> np.ndarray:
        """sum_k col[k] T_k((theta - centre) * inv_half) (the centred interval)."""
        t = np.subtract(theta, centre)
        t *= inv_half
        return DualTable._clenshaw_t(t, out, col)

    @staticmethod
    def _clenshaw_t(t: np.ndarray, out: np.ndarray, col: list[float]) -> np.ndarray:
        """Clenshaw recurrence with scalar coefficients at local coordinates t in [-1, 1]."""
        q = len(col)
        t2 = t * 2.0
        bufs = [np.empty_like(t), np.empty_like(t), np.empty_like(t)]
        # k = q - 2: c_k + 2t c_{q-1} - 0
        b1: np.ndarray | float = np.multiply(t2, col[q - 1], out=bufs[0])
        b1 += col[q - 2]
        b2: np.ndarray | float = col[q - 1]
        for n, k in enumerate(range(q - 3, 0, -1)):
            new = np.multiply(t2, b1, out=bufs[(n + 1) % 3])
            new += col[k]
            new -= b2
            b1, b2 = new, b1
        np.multiply(t, b1, out=out)
        out += col[0]
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


_QUANT = 2.0**44  # variance keys: log2(s) in steps of 2^-44 (relative 4e-14)


def dual_table(act: Activation, which: Which, s1: float = 1.0, s2: float = 1.0) -> DualTable:
    """Cached :class:`DualTable` for this activation, kernel and variances.

    The table is built at the canonical variances of the keys (:func:`canonical_variance`), never
    at the variances of whichever call came first, so a table, and every value read from it,
    is the same in every process whatever was computed before (issue 18).

    Looked up, in order: the tables of this process; the tables shipped with the package
    (:mod:`.shipped_tables`: the built-ins at the variances common commands use, taken only for
    the built-in by value and when they were built under this code's tabulation parameters);
    the user's on-disk cache (:mod:`.table_cache`); else built, and written to that cache."""
    q1, q2 = (int(k) for k in quantize(np.array([s1, s2], dtype=np.float64)))
    key = (act.key, str(which), q1, q2)
    with _LOCK:
        tab = _TABLES.get(key)
        if tab is not None:
            _TABLES.move_to_end(key)
    if tab is None:
        s1c, s2c = canonical_variance(q1), canonical_variance(q2)
        tab = _table_from_arrays(shipped_tables.load(act, which, q1, q2, _table_params()),
                                 s1c, s2c)
        if tab is None:
            disk_key = _disk_key(act, which, q1, q2)
            tab = _table_from_arrays(table_cache.load(_DISK_KIND, disk_key), s1c, s2c)
            if tab is None:
                tab = DualTable.build(act, which, s1c, s2c)
                table_cache.save(_DISK_KIND, disk_key, _table_to_arrays(tab))
        with _LOCK:
            tab = _TABLES.setdefault(key, tab)
            while len(_TABLES) > MAX_CACHED_TABLES:
                _TABLES.popitem(last=False)
    return tab


_DISK_KIND = "dual-tables"


def _table_params() -> str:
    """The table format and every parameter of the tabulation and the quadrature: what a stored
    table must have been built under to be used (the shipped tables record its digest)."""
    params = (_Q, _TOL, DOCUMENTED_ACCURACY, _MAX_DEPTH, _MAX_LEVEL, _PROBE.tolist(),
              _CHECK_THETA.tolist(), _R, _NPSI, _NR, _R_GRID.tolist(), _CHEB_N, _PART_TOL,
              _MAX_PANELS, _QUANT)
    return f"format={table_cache.FORMAT_VERSION}|params={params!r}"


def _disk_key(act: Activation, which: Which, q1: int, q2: int) -> str:
    """The on-disk cache key of a table: the activation by value (fingerprint, in-memory key,
    kinks), the kernel, the canonical variance keys, and every parameter of the tabulation and
    the quadrature (and the numpy/scipy versions that computed it), so a change of any of them
    misses instead of returning a table the current code would not build."""
    import scipy

    return "|".join([
        _table_params(), f"fingerprint={act.fingerprint}",
        f"key={act.key}", f"kinks={tuple(float(k) for k in act.kinks)!r}", f"which={which}",
        f"q={q1},{q2}", f"numpy={np.__version__}", f"scipy={scipy.__version__}",
    ])


def _table_to_arrays(tab: DualTable) -> dict[str, np.ndarray]:
    return {
        "coeffs": np.asarray(tab.coeffs, dtype=np.float64),
        "edges": (np.zeros(0) if tab.edges is None else np.asarray(tab.edges, dtype=np.float64)),
        "s": np.array([tab.s1, tab.s2], dtype=np.float64),
        "errors": np.array([tab.check_error, tab.quad_error, tab.scale], dtype=np.float64),
        "level": np.array(tab.level, dtype=np.int64),
    }


def _table_from_arrays(
    arrays: dict[str, np.ndarray] | None, s1: float, s2: float
) -> DualTable | None:
    """A table from cached arrays, or None unless every array has the shape, dtype and values a
    build at these variances can produce (finite coefficients, dyadic edges from 0 to pi,
    errors within the documented accuracy)."""
    if arrays is None:
        return None
    try:
        coeffs, edges = arrays["coeffs"], arrays["edges"]
        s, errors, level = arrays["s"], arrays["errors"], arrays["level"]
        if (coeffs.dtype != np.float64 or coeffs.ndim != 2 or coeffs.shape[1] != _Q
                or not 1 <= coeffs.shape[0] <= 16 * 2**_MAX_DEPTH
                or not np.all(np.isfinite(coeffs))):
            return None
        if s.dtype != np.float64 or s.shape != (2,) or s[0] != s1 or s[1] != s2:
            return None
        if errors.dtype != np.float64 or errors.shape != (3,) or not np.all(np.isfinite(errors)):
            return None
        check_error, quad_error, scale = (float(v) for v in errors)
        if not (scale > 0 and 0 <= quad_error <= check_error
                <= max(DOCUMENTED_ACCURACY, 10 * _TOL) * scale):
            return None
        if level.shape != () or level.dtype.kind != "i" or not 0 <= int(level) <= _MAX_LEVEL:
            return None
        edge_arr: np.ndarray | None = None
        if edges.size:
            cells = edges * (16 * 2**_MAX_DEPTH / math.pi)
            if (edges.dtype != np.float64 or edges.shape != (coeffs.shape[0] + 1,)
                    or edges[0] != 0.0 or edges[-1] != math.pi or not np.all(np.diff(edges) > 0)
                    or not np.all(np.abs(cells - np.round(cells)) < 1e-6)):
                return None
            edge_arr = edges
        return DualTable(coeffs, s1, s2, check_error, edge_arr, int(level), quad_error, scale)
    except Exception:  # noqa: BLE001 - anything odd in a cache file: rebuild
        return None


def quantize(s: np.ndarray) -> np.ndarray:
    """Integer keys equal for variances that agree to ~13 significant digits (log2 s rounded to
    multiples of 2^-44); unit-norm rows with rounding errors all get the key of 1 exactly."""
    with np.errstate(divide="ignore"):
        return np.round(np.log2(np.where(s > 0, s, 1e-300)) * _QUANT).astype(np.int64)


def canonical_variance(key: int) -> float:
    """The variance a table with this key is built at: 2^(key / 2^44) (exactly 1 for key 0)."""
    return float(np.exp2(np.float64(key) / _QUANT))


def clear_caches() -> None:
    """Forget every table and partition built in this process (tests: a fresh process)."""
    with _LOCK:
        _TABLES.clear()
        _PARTS.clear()


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
    key = f"{act.key}/{which}"
    if method == "quadrature":
        return gaussian_pair_expectation(f, act.kinks, s1a, s2a, ca, key=key)
    out = np.empty(ca.shape)
    # group entries by their (s1, s2) pair: one table per distinct pair of variances
    # variances equal to 13 significant digits share a table (unit-norm rows differ by rounding)
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
    return gaussian_pair_expectation(f, act.kinks, s1a, s2a, ca, key=key)
