"""``actspec.gram``: the G-matrix of a two-layer net, at infinite width or at initialisation.

Infinite width (SCIENCE §1, §3):

    G∞_ij = E[phi'(u) phi'(v)] <x_i, x_j>,    H∞_ij = E[phi(u) phi(v)],
    (u, v) ~ N(0, [[K_ii, K_ij], [K_ij, K_jj]]),  K = sigma_w^2 X X^T + beta^2  (init scheme)

The 2x2 expectations come from :mod:`actspec.kernels.dual` (closed forms, or theta-tables accurate to
1e-13). For ``init="fanout"`` the weights shrink like 1/sqrt(m), so at m = ∞ the pre-activations
collapse to 0 and phi'(u) becomes the step between the one-sided derivatives phi'(0-), phi'(0+)
(for smooth phi: the constant phi'(0)): that limit kernel is returned.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

from ..activations.base import Activation
from ..core.errors import ActspecError
from ..core.inits import init_scheme
from .dual import (
    MAX_VARIANCE_GROUPS,
    Which,
    closed_form_dual,
    dual,
    dual_table,
    eval_threads,
    gaussian_mean,
    quantize,
)

__all__ = ["gram_infinite", "gram_cross_infinite", "normalization_constant"]

Train = Literal["hidden", "both", "output"]
TRAINS = ("hidden", "both", "output")




def normalization_constant(act: Activation) -> float:
    """c_phi = sqrt(E phi(z)^2), z ~ N(0, 1)."""
    val = gaussian_mean(lambda x: act.phi(x) ** 2, act.kinks)
    if not (val > 0 and math.isfinite(val)):
        raise ActspecError(f"cannot normalise {act.name}: E phi(z)^2 = {val!r}")
    return math.sqrt(val)


_TILE_ROWS = 128  # rows per tile of the blocked G∞ evaluation
# columns per off-diagonal tile: ~1 MiB tiles (cache-sized temporaries), and NOT a power of two:
# mirroring a 128 x 1024 tile (G[cols, rows] = val.T) reads val at a stride of 8 KiB, which maps
# every read onto the same few cache sets; at 1000 columns the transposed copy is ~6x faster
# (0.4 instead of 2.4 ns an entry on the 2-core EPYC, the largest single cost of a tile before)
_TILE_COLS = 1000


def _tiles(n: int) -> list[tuple[int, int, int, int]]:
    """Tiles (r0, r1, c0, c1) covering the block-upper triangle: c0 >= r0 (diagonal tiles first)."""
    width = _TILE_COLS
    out = []
    for r0 in range(0, n, _TILE_ROWS):
        r1 = min(n, r0 + _TILE_ROWS)
        out.append((r0, r1, r0, r1))
        for c0 in range(r1, n, width):
            out.append((r0, r1, c0, min(n, c0 + width)))
    return out


def _dual_evaluator(
    act: Activation, which: Which, s: np.ndarray
) -> Callable[[np.ndarray, slice, slice, np.ndarray], np.ndarray]:
    """f(K_tile, rows, cols, rho_tile) -> E[f(u) f(v)] on a tile, the same values as
    :func:`dual.dual` (rho_tile = K_tile / sqrt(s_i s_j), computed once per tile by the caller).

    Same dispatch as ``dual``: closed form; else a theta-table per pair of distinct variances
    (variances equal to 12 digits share one table, built at their canonical variance), evaluated at
    rho_ij = K_ij / sqrt(s_i s_j) from each entry's own variances; else (more than 36 variance
    pairs) direct quadrature (the one threshold, ``dual.MAX_VARIANCE_GROUPS``).
    """
    probe = np.ones(1)
    if closed_form_dual(act, probe, probe, probe, which) is not None:
        def closed(c: np.ndarray, r: slice, k: slice, rho: np.ndarray) -> np.ndarray:
            out = act.closed_form_dual(s[r, None], s[None, k], c, which, rho=rho)
            assert out is not None  # a closed form exists (checked on the probe)
            return out

        return closed
    uniq, first, inverse = np.unique(quantize(s), return_index=True, return_inverse=True)
    cls = inverse.ravel()
    if len(uniq) > MAX_VARIANCE_GROUPS:
        return lambda c, r, k, rho: dual(act, s[r, None], s[None, k], c, which,
                                         method="quadrature")
    reps = [float(v) for v in s[first]]
    tabs = [[dual_table(act, which, a, b) for b in reps] for a in reps]  # built up front
    cts = [[np.ascontiguousarray(t.coeffs.T) for t in row] for row in tabs]

    def evaluate(c: np.ndarray, r: slice, k: slice, rho: np.ndarray) -> np.ndarray:
        out = np.empty(c.shape)
        if len(reps) == 1:
            return tabs[0][0].evaluate_into(rho, out, cts[0][0])
        cr, ck = cls[r], cls[k]
        for i in np.unique(cr):
            for j in np.unique(ck):
                sel = (cr == i)[:, None] & (ck == j)[None, :]
                vals = np.empty(int(sel.sum()))
                out[sel] = tabs[i][j].evaluate_into(rho[sel], vals, cts[i][j])
        return out

    return evaluate


def _run_tiles(work: Callable[[tuple[int, int, int, int]], None], n: int) -> None:
    tiles = _tiles(n)
    threads = min(eval_threads(), len(tiles))
    if threads <= 1 or n < 256:
        for tile in tiles:
            work(tile)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for fut in [pool.submit(work, tile) for tile in tiles]:
            fut.result()


def infinite_kernel(
    act: Activation, sqn: np.ndarray, d: int, *, train: Train = "hidden", init: str = "dzps",
    X: np.ndarray | None = None,
) -> Callable[[np.ndarray, slice, slice], np.ndarray]:
    """kernel(gx, rows, cols): the G∞ (H∞, G∞ + H∞) tile from the tile gx = X[rows] X[cols]^T.

    ``sqn`` holds the squared row norms <x_i, x_i> of all n rows and ``d`` the input dimension;
    ``rows``/``cols`` are slices into them. Shared by :func:`gram_infinite` (tiles of the dense
    G∞) and :mod:`actspec.spectra.iterative` (blocks of the matrix-free G∞), so both give the
    same numbers.

    With the rows ``X``, the angle of nearly parallel and nearly antipodal pairs is taken from
    the rows themselves, theta = 2 atan2(|x - y|, |x + y|), instead of arccos of the rounded
    correlation: near rho = +-1 a kinked (J_1) kernel moves like sqrt(1 -+ rho), so the rounding
    of rho (1e-16) would cost ~1e-8 in the entry (issue 17).
    """
    scheme = init_scheme(init)
    hidden = train in ("hidden", "both")
    output = train in ("both", "output")

    if scheme.name == "fanout":
        # limit m -> ∞ of Cov = (X X^T + 1)/m: only the signs of u, v survive
        left, right = act.one_sided_slopes()
        sf = sqn + 1.0  # squared norms of the augmented rows (x, 1)
        phi0_sq = float(act.phi(np.array([0.0]))[0]) ** 2
        # close pairs take their angle from the augmented rows
        close_fanout = None if X is None else _close_pair_angles(X, sf, 1.0, 1.0)

        def kernel(gx: np.ndarray, r: slice, k: slice) -> np.ndarray:
            # rho as in the other schemes: sqrt(s_i s_i) = s_i exactly, so the diagonal is 1
            rho = np.sqrt(np.multiply.outer(sf[r], sf[k]))
            np.divide(gx + 1.0, rho, out=rho)
            np.clip(rho, -1.0, 1.0, out=rho)
            theta = np.arccos(rho)
            close = None if close_fanout is None else close_fanout(gx, rho, r, k)
            if close is not None:
                theta[close[0], close[1]] = close[2]
            e = (left**2 + right**2) * (math.pi - theta) / (
                2 * math.pi
            ) + left * right * theta / math.pi
            out = e * gx if hidden else 0.0 * gx
            if output:
                out = out + phi0_sq
            return out

    else:
        sw2 = scheme.weight_std(d, None) ** 2
        b2 = scheme.bias_std(None) ** 2
        s = sw2 * sqn + b2
        if np.any(s <= 0):
            bad = int(np.argmin(s))
            raise ActspecError(
                f"row {bad} of X has zero norm: its pre-activation is identically 0; "
                "remove zero rows or add a bias (init='fanin')"
            )
        plain = sw2 == 1.0 and b2 == 0.0  # K = X X^T itself
        e_der = _dual_evaluator(act, "derivative", s) if hidden else None
        e_act = _dual_evaluator(act, "activation", s) if output else None
        # close pairs are re-evaluated at their accurate angle where the dual is a closed form or
        # a theta-table; direct quadrature (too many distinct variances) keeps its values
        probe = np.ones(1)
        in_theta = (act.closed_form_dual(probe, probe, probe, "derivative") is not None
                    or len(np.unique(quantize(s))) <= MAX_VARIANCE_GROUPS)
        angles = None if X is None or not in_theta else _close_pair_angles(X, s, math.sqrt(sw2), b2)

        def kernel(gx: np.ndarray, r: slice, k: slice) -> np.ndarray:
            K = gx if plain else sw2 * gx + b2
            # rho = K / sqrt(s_i s_j), once per tile: the close-pair scan, the tables and the
            # arc-cosine closed forms all read it
            rho = np.multiply.outer(s[r], s[k])
            np.sqrt(rho, out=rho)
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(K, rho, out=rho)
            close = None if angles is None else angles(K, rho, r, k)
            if e_der is not None:
                out = e_der(K, r, k, rho)
                if close is not None:
                    _fix_close(out, act, "derivative", s, K, r, k, close)
                out *= gx
                if e_act is not None:
                    ea = e_act(K, r, k, rho)
                    if close is not None:
                        _fix_close(ea, act, "activation", s, K, r, k, close)
                    out += ea
                return out
            assert e_act is not None
            ea = np.asarray(e_act(K, r, k, rho), dtype=np.float64)
            if close is not None:
                _fix_close(ea, act, "activation", s, K, r, k, close)
            return ea

    return kernel


_CLOSE = 1e-4  # |rho| above 1 - _CLOSE: the pair's angle is recomputed from its rows


def _close_pair_angles(
    X: np.ndarray, s: np.ndarray, sw: float, b2: float
) -> Callable[[np.ndarray, np.ndarray, slice, slice],
              tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """angles(K, rho, rows, cols) -> (i, j, theta) of the off-diagonal entries of a tile with
    |rho| > 1 - _CLOSE, theta from the rows, or None: the pre-activation vectors are
    w_i = (sw x_i, b) with |w_i| = sqrt(s_i), and theta = 2 atan2(|e_i - e_j|, |e_i + e_j|) for
    the unit vectors e_i = w_i / |w_i| (rows of different norms included).

    A tile off the diagonal is first checked by its largest and smallest rho (two reductions)
    and skipped when both are inside the band; only the rare tiles with a candidate (and the
    diagonal ones, whose diagonal has rho = 1) are scanned entry by entry."""
    lim = 1.0 - _CLOSE
    sig = np.sqrt(s)

    def angles(K: np.ndarray, rho: np.ndarray, r: slice, k: slice
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        if (r.stop <= k.start or k.stop <= r.start) and rho.size:
            if rho.max() <= lim and rho.min() >= -lim:  # NaN: falls through to the scan
                return None
        with np.errstate(invalid="ignore"):
            i, j = np.nonzero(np.abs(rho) > lim)
        off = (i + r.start) != (j + k.start)  # diagonal entries already have rho = 1 exactly
        i, j = i[off], j[off]
        if i.size == 0:
            return None
        si, sj = sig[r][i], sig[k][j]
        xi, xj = X[r][i] / si[:, None], X[k][j] / sj[:, None]  # unit pre-activation directions
        dx, px = xi - xj, xi + xj
        dn = np.sqrt(sw * sw * np.einsum("ij,ij->i", dx, dx) + b2 * (1.0 / si - 1.0 / sj) ** 2)
        sn = np.sqrt(sw * sw * np.einsum("ij,ij->i", px, px) + b2 * (1.0 / si + 1.0 / sj) ** 2)
        return i, j, 2.0 * np.arctan2(dn, sn)

    return angles


def _fix_close(
    out: np.ndarray, act: Activation, which: Which, s: np.ndarray, K: np.ndarray, r: slice,
    k: slice, close: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Overwrite the close pairs of a dual tile with the dual at their accurate angle: the closed
    form at theta, or the theta-table (tables are built in theta). Only called when the tile's
    duals come from one of those (see :func:`infinite_kernel`)."""
    i, j, theta = close
    s1, s2, c = s[r][i], s[k][j], K[i, j]
    exact = act.closed_form_dual(s1, s2, c, which, theta=theta)
    if exact is not None:
        out[i, j] = exact
        return
    keys = quantize(np.concatenate([s1, s2]))
    k1, k2 = keys[: i.size], keys[i.size :]
    for a, b in {(int(x), int(y)) for x, y in zip(k1, k2, strict=True)}:
        sel = (k1 == a) & (k2 == b)
        tab = dual_table(act, which, float(s1[sel][0]), float(s2[sel][0]))
        out[i[sel], j[sel]] = tab.evaluate_theta(theta[sel])


_MALLOC_TUNED = False


def _keep_freed_tiles() -> None:
    """Let glibc keep freed ~1 MiB tile temporaries for reuse (once per process, Linux/glibc).

    Every tile allocates a few fresh arrays of ~1 MiB (numpy ufunc outputs). With glibc's
    dynamic thresholds the heap is trimmed as soon as a few of them are freed, so the next tile
    faults its pages in again: on the VMs measured (2-core EPYC under Firecracker) a fresh page
    costs ~3 ns per float64 written, more than most elementwise passes themselves (three chained
    fresh 1 MiB products: 8.9 -> 0.5 ns an entry with the thresholds below). Raising the mmap
    threshold to 32 MiB (the largest value glibc's own dynamic rule reaches) and the trim
    threshold to 128 MiB keeps them in the heap; large arrays (G itself) are still mmapped.
    ``ACTSPEC_MALLOPT=0`` leaves malloc alone."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    if os.environ.get("ACTSPEC_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def _gram_upper(X: np.ndarray) -> np.ndarray:
    """X X^T with (at least) its upper triangle and diagonal computed, as a C-ordered array.

    For C-contiguous float64 X this is one BLAS ``dsyrk`` (scipy's BLAS; the same call numpy's
    ``X @ X.T`` makes, without numpy's serial copy of the triangle into the lower half: the
    caller mirrors it anyway): the strict lower triangle is left at zero. Otherwise ``X @ X.T``.
    """
    n = X.shape[0]
    if X.dtype == np.float64 and X.flags.c_contiguous and n > 1 and X.shape[1] > 0:
        try:
            from scipy.linalg.blas import dsyrk

            c = np.zeros((n, n), order="F")  # calloc: zero pages, touched by BLAS first
            # Fortran view: X^T is (d, n) column-major; trans=1 gives (X^T)^T X^T = X X^T with its
            # lower (Fortran) triangle, i.e. the upper triangle of the C-ordered transpose
            out = dsyrk(1.0, X.T, trans=1, lower=1, c=c, overwrite_c=1)
            if out is c:
                return c.T
        except Exception:  # pragma: no cover - scipy's BLAS wrappers are always there
            pass
    return X @ X.T


def gram_infinite(
    X: np.ndarray, act: Activation, *, train: Train = "hidden", init: str = "dzps"
) -> np.ndarray:
    """G∞ (``"hidden"``), G∞ + H∞ (``"both"``) or H∞ (``"output"``) for the rows of X.

    Computed in place over the data Gram matrix X X^T (one n x n float64 array in all; only its
    upper triangle is computed, by a symmetric rank-k update): the kernel is evaluated on
    cache-sized tiles of the upper triangle, on ``eval_threads()`` threads, and each tile is
    mirrored into the lower triangle (so the result is exactly symmetric). Every tile only reads
    its own entries of X X^T, and the mirrored writes land in the lower triangle, which is never
    read (a diagonal tile first copies its own upper triangle into its lower one), so the tiles
    are independent.
    """
    n = X.shape[0]
    _keep_freed_tiles()
    G = _gram_upper(X)  # overwritten, tile by tile, with the kernel
    kernel = infinite_kernel(act, np.diag(G).copy(), X.shape[1], train=train, init=init, X=X)

    def work(tile: tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = tile
        rows, cols = slice(r0, r1), slice(c0, c1)
        if c0 == r0:  # diagonal tile: complete its lower triangle, evaluate, keep the upper one
            g = G[rows, cols]
            G[rows, cols] = np.triu(g) + np.triu(g, 1).T
            val = kernel(G[rows, cols], rows, cols)
            val = np.triu(val) + np.triu(val, 1).T
            G[rows, cols] = val
        else:
            val = kernel(G[rows, cols], rows, cols)
            G[rows, cols] = val
            G[cols, rows] = val.T

    _run_tiles(work, n)
    return G


def gram_cross_infinite(
    X: np.ndarray, Y: np.ndarray, act: Activation, *, train: Train = "hidden", init: str = "dzps"
) -> np.ndarray:
    """The n x n' cross kernel between the rows of X (e.g. training points) and of Y (test
    points): entry (i, j) is G∞(x_i, y_j) (H∞, G∞ + H∞ for ``train``), the same function as
    :func:`gram_infinite`, so it equals the (X, Y) block of ``gram_infinite(vstack(X, Y))``.

    Tiles of rows of X against columns of Y go through the same tile kernel
    (:func:`infinite_kernel` over the stacked rows: the same variance groups, tables and
    close-pair angles); memory is the n x n' result plus cache-sized tiles.
    """
    n, d = X.shape
    if Y.ndim != 2 or Y.shape[1] != d:
        raise ActspecError(f"Y must have shape (n', d={d}) like X, got {Y.shape}")
    _keep_freed_tiles()
    Z = np.vstack([X, Y])
    sqn = np.einsum("ij,ij->i", Z, Z)
    kernel = infinite_kernel(act, sqn, d, train=train, init=init, X=Z)
    n2 = Y.shape[0]
    out = np.empty((n, n2))
    width = _TILE_COLS
    tiles = [(r0, min(n, r0 + _TILE_ROWS), c0, min(n2, c0 + width))
             for r0 in range(0, n, _TILE_ROWS) for c0 in range(0, n2, width)]

    def work(tile: tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = tile
        gx = X[r0:r1] @ Y[c0:c1].T
        out[r0:r1, c0:c1] = kernel(gx, slice(r0, r1), slice(n + c0, n + c1))

    threads = min(eval_threads(), len(tiles))
    if threads <= 1 or n * n2 < 65536:
        for tile in tiles:
            work(tile)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for fut in [pool.submit(work, tile) for tile in tiles]:
                fut.result()
    return out
