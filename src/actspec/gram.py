"""``actspec.gram``: the G-matrix of a two-layer net, at infinite width or at initialisation.

Infinite width (SCIENCE §1, §3):

    G∞_ij = E[phi'(u) phi'(v)] <x_i, x_j>,    H∞_ij = E[phi(u) phi(v)],
    (u, v) ~ N(0, [[K_ii, K_ij], [K_ij, K_jj]]),  K = sigma_w^2 X X^T + beta^2  (init scheme)

The 2x2 expectations come from :mod:`actspec.dual` (closed forms, or theta-tables accurate to
1e-13). For ``init="fanout"`` the weights shrink like 1/sqrt(m), so at m = ∞ the pre-activations
collapse to 0 and phi'(u) becomes the step between the one-sided derivatives phi'(0-), phi'(0+)
(for smooth phi: the constant phi'(0)): that limit kernel is returned.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .activations import Activation, activation
from .checkpoint import Checkpoint
from .devices import check_device
from .dual import (
    Which,
    _quantize,
    closed_form_dual,
    dual,
    dual_table,
    eval_threads,
    gaussian_mean,
)
from .empirical import empirical_gram
from .errors import ActspecError
from .inits import init_scheme
from .memory import check_dense_fits

__all__ = ["gram", "gram_infinite", "normalization_constant", "check_inputs"]

Train = Literal["hidden", "both", "output"]
_TRAINS = ("hidden", "both", "output")


def check_inputs(X: Any) -> np.ndarray:
    """Validate a data matrix: 2-D, non-empty, finite, float64."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ActspecError(
            "X must be a numeric (n, d) array; ragged or non-numeric rows cannot be used"
        ) from None
    if arr.ndim != 2:
        raise ActspecError(f"X must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ActspecError(f"X is empty (shape {arr.shape}); give at least one row and column")
    if not np.all(np.isfinite(arr)):
        raise ActspecError("X contains NaN or inf; remove or impute those rows first")
    return np.ascontiguousarray(arr)


def normalization_constant(act: Activation) -> float:
    """c_phi = sqrt(E phi(z)^2), z ~ N(0, 1)."""
    val = gaussian_mean(lambda x: act.phi(x) ** 2, act.kinks)
    if not (val > 0 and math.isfinite(val)):
        raise ActspecError(f"cannot normalise {act.name}: E phi(z)^2 = {val!r}")
    return math.sqrt(val)


def _one_sided(act: Activation) -> tuple[float, float]:
    tiny = np.array([-1e-200, 1e-200])
    left, right = act.dphi(tiny)
    return float(left), float(right)


_TILE_ROWS = 128  # rows per tile of the blocked G∞ evaluation
_TILE_ENTRIES = 1 << 17  # entries per tile (cache-sized temporaries)


def _tiles(n: int) -> list[tuple[int, int, int, int]]:
    """Tiles (r0, r1, c0, c1) covering the block-upper triangle: c0 >= r0 (diagonal tiles first)."""
    width = max(_TILE_ROWS, _TILE_ENTRIES // _TILE_ROWS)
    out = []
    for r0 in range(0, n, _TILE_ROWS):
        r1 = min(n, r0 + _TILE_ROWS)
        out.append((r0, r1, r0, r1))
        for c0 in range(r1, n, width):
            out.append((r0, r1, c0, min(n, c0 + width)))
    return out


def _dual_evaluator(
    act: Activation, which: Which, s: np.ndarray
) -> Callable[[np.ndarray, slice, slice], np.ndarray]:
    """f(K_tile, rows, cols) -> E[f(u) f(v)] on a tile, the same values as :func:`dual.dual`.

    Same dispatch as ``dual``: closed form; else a theta-table per pair of distinct variances
    (variances equal to 12 digits share one table, built for the first occurrence), evaluated at
    rho_ij = K_ij / sqrt(s_i s_j) from each entry's own variances; else (more than 36 variance
    pairs) direct quadrature.
    """
    probe = np.ones(1)
    if closed_form_dual(act, probe, probe, probe, which) is not None:
        def closed(c: np.ndarray, r: slice, k: slice) -> np.ndarray:
            out = closed_form_dual(act, s[r, None], s[None, k], c, which)
            assert out is not None  # a closed form exists (checked on the probe)
            return out

        return closed
    uniq, first, inverse = np.unique(_quantize(s), return_index=True, return_inverse=True)
    cls = inverse.ravel()
    if len(uniq) ** 2 > 36:
        return lambda c, r, k: dual(act, s[r, None], s[None, k], c, which, method="quadrature")
    reps = [float(v) for v in s[first]]
    tabs = [[dual_table(act, which, a, b) for b in reps] for a in reps]  # built up front
    cts = [[np.ascontiguousarray(t.coeffs.T) for t in row] for row in tabs]

    def evaluate(c: np.ndarray, r: slice, k: slice) -> np.ndarray:
        rho = c / np.sqrt(np.multiply.outer(s[r], s[k]))
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
    act: Activation, sqn: np.ndarray, d: int, *, train: Train = "hidden", init: str = "dzps"
) -> Callable[[np.ndarray, slice, slice], np.ndarray]:
    """kernel(gx, rows, cols): the G∞ (H∞, G∞ + H∞) tile from the tile gx = X[rows] X[cols]^T.

    ``sqn`` holds the squared row norms <x_i, x_i> of all n rows and ``d`` the input dimension;
    ``rows``/``cols`` are slices into them. Shared by :func:`gram_infinite` (tiles of the dense
    G∞) and :mod:`actspec.largescale` (blocks of the matrix-free G∞), so both give the same
    numbers.
    """
    scheme = init_scheme(init)
    hidden = train in ("hidden", "both")
    output = train in ("both", "output")

    if scheme.name == "fanout":
        # limit m -> ∞ of Cov = (X X^T + 1)/m: only the signs of u, v survive
        left, right = _one_sided(act)
        sq = np.sqrt(sqn + 1.0)
        phi0_sq = float(act.phi(np.array([0.0]))[0]) ** 2

        def kernel(gx: np.ndarray, r: slice, k: slice) -> np.ndarray:
            theta = np.arccos(np.clip((gx + 1.0) / np.outer(sq[r], sq[k]), -1.0, 1.0))
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

        def kernel(gx: np.ndarray, r: slice, k: slice) -> np.ndarray:
            K = gx if plain else sw2 * gx + b2
            if e_der is not None:
                out = e_der(K, r, k)
                out *= gx
                if e_act is not None:
                    out += e_act(K, r, k)
                return out
            assert e_act is not None
            return np.asarray(e_act(K, r, k), dtype=np.float64)

    return kernel


def gram_infinite(
    X: np.ndarray, act: Activation, *, train: Train = "hidden", init: str = "dzps"
) -> np.ndarray:
    """G∞ (``"hidden"``), G∞ + H∞ (``"both"``) or H∞ (``"output"``) for the rows of X.

    Computed in place over the data Gram matrix X X^T (one n x n float64 array in all): the
    kernel is evaluated on cache-sized tiles of the upper triangle, on ``eval_threads()``
    threads, and each tile is mirrored into the lower triangle (so the result is exactly
    symmetric). Every tile only reads its own entries of X X^T, and the mirrored writes land
    in the lower triangle, which is never read, so the tiles are independent.
    """
    n = X.shape[0]
    G = X @ X.T  # overwritten, tile by tile, with the kernel
    kernel = infinite_kernel(act, np.diag(G).copy(), X.shape[1], train=train, init=init)

    def work(tile: tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = tile
        rows, cols = slice(r0, r1), slice(c0, c1)
        val = kernel(G[rows, cols], rows, cols)
        if c0 == r0:  # diagonal tile: keep its upper triangle, mirror it
            val = np.triu(val) + np.triu(val, 1).T
            G[rows, cols] = val
        else:
            G[rows, cols] = val
            G[cols, rows] = val.T

    _run_tiles(work, n)
    return G


def gram(
    X: Any,
    act: Activation | str | Any,
    width: int | None = None,
    *,
    train: Train = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    seed: int = 0,
    weights: tuple[np.ndarray, ...] | None = None,
    outputs: int = 1,
    dtype: str | torch.dtype = "float64",
    device: str | None = "cpu",
    chunk: int | None = None,
    progress: Any = None,
    checkpoint: str | os.PathLike[str] | Checkpoint | None = None,
    checkpoint_every: float = 300.0,
    keep_checkpoint: bool = False,
) -> np.ndarray:
    """The n x n G-matrix of the two-layer net f(x) = (1/sqrt(m)) sum_k a_k phi(w_k . x).

    Parameters
    ----------
    X: (n, d) inputs (rows are used as given: normalise them first for the paper's setting).
    act: an :class:`Activation`, a built-in name (``"relu"``, ``"elu:1.0"``...) or a callable.
    width: ``None`` for the infinite-width kernel, or the number of hidden neurons m.
    train: ``"hidden"`` (G, only W trained), ``"both"`` (G + H), ``"output"`` (H only).
    init: ``"dzps"`` (default), ``"fanin"`` or ``"fanout"`` (see :mod:`actspec.inits`).
    normalize: scale phi by 1/c_phi so that E phi(z)^2 = 1 (the paper's convention).
    seed: seed of the weights drawn at finite width (reproducible, independent of ``chunk``).
    weights: explicit ``(W, a)`` or ``(W, a, b)`` with W (m, d), a (m,) [or (m, C)], b (m,).
    outputs: number of output units C at finite width (then G is nC x nC, grouped by output).
    dtype, device, chunk: finite-width arithmetic (``"float32"`` is faster; G is returned as
        float64), torch device (``"cuda"`` when present), neurons per chunk (auto by memory).
    checkpoint, checkpoint_every, keep_checkpoint: finite width only. Save the partial sums to
        this file every ``checkpoint_every`` seconds (0: at every flush point) and on Ctrl-C;
        when the file exists (same settings) the run resumes from it, with a result
        bit-identical to a run in one go; it is deleted after success unless
        ``keep_checkpoint`` (see :mod:`actspec.checkpoint`).
    """
    Xv = check_inputs(X)
    a = activation(act)
    if train not in _TRAINS:
        raise ActspecError(f"train must be one of {', '.join(_TRAINS)} (got {train!r})")
    if normalize:
        a = a.scaled(1.0 / normalization_constant(a))
    if weights is not None:
        if not isinstance(weights, (tuple, list)) or len(weights) not in (2, 3):
            raise ActspecError("weights must be a tuple (W, a) or (W, a, b)")
        W = np.asarray(weights[0], dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != Xv.shape[1]:
            raise ActspecError(f"weights W must have shape (m, d={Xv.shape[1]}), got {W.shape}")
        m_w = W.shape[0]
        av = np.asarray(weights[1], dtype=np.float64)
        if av.shape[0] != m_w or av.ndim > 2:
            raise ActspecError(f"weights a must have shape (m={m_w},) or (m, C), got {av.shape}")
        if width is not None and int(width) != m_w:
            raise ActspecError(f"width={width} but weights W has {m_w} rows; drop width or match")
        width = m_w
        outputs = 1 if av.ndim == 1 else av.shape[1]
    infinite = width is None or (isinstance(width, str) and width.lower() in ("inf", "infinite"))
    check_dense_fits(Xv.shape[0] * outputs, "G-matrix", copies=4.0 if infinite else 2.5)
    if infinite and checkpoint is not None:
        raise ActspecError(
            "checkpoints are for finite-width runs; drop checkpoint or give width=m"
        )
    if infinite:
        if weights is None and outputs != 1:
            return np.kron(np.eye(outputs), gram_infinite(Xv, a, train=train, init=init))
        return gram_infinite(Xv, a, train=train, init=init)
    try:
        m = int(width)  # type: ignore[arg-type]  # width is not None here (not infinite)
        whole = m == float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ActspecError(
            f"width must be a positive integer or None/'inf' (got {width!r})"
        ) from None
    if m < 1 or not whole:
        raise ActspecError(f"width must be a positive integer (got {width!r})")
    if outputs < 1:
        raise ActspecError(f"outputs must be >= 1 (got {outputs})")
    tdtype = {"float64": torch.float64, "float32": torch.float32}.get(
        str(dtype).replace("torch.", "")
    )
    if tdtype is None:
        raise ActspecError(f"dtype must be 'float64' or 'float32' (got {dtype!r})")
    return empirical_gram(
        Xv,
        a,
        m,
        train=train,
        scheme=init_scheme(init),
        seed=int(seed),
        weights=weights,
        outputs=outputs,
        dtype=tdtype,
        device=check_device(device),
        chunk=chunk,
        progress=progress,
        checkpoint=_checkpoint(checkpoint, checkpoint_every, keep_checkpoint),
    )


def _checkpoint(
    spec: str | os.PathLike[str] | Checkpoint | None, every: float, keep: bool
) -> Checkpoint | None:
    """A :class:`Checkpoint` from a path (with ``every``, ``keep``), or the one given."""
    if spec is None or isinstance(spec, Checkpoint):
        return spec
    return Checkpoint(Path(spec), every=every, keep=keep)
