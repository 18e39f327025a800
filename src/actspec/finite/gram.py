"""``actspec.gram``: the G-matrix at infinite width (:mod:`actspec.kernels.gram`) or at finite width
from sampled or given weights (:mod:`actspec.finite.empirical`), behind one signature."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..activations.base import Activation
from ..activations.registry import activation
from ..core.devices import check_device
from ..core.errors import ActspecError
from ..core.inits import init_scheme
from ..core.resources import check_dense_fits
from ..core.validate import check_inputs
from ..kernels.gram import TRAINS, Train, gram_cross_infinite, gram_infinite, normalization_constant
from .checkpoint import Checkpoint
from .empirical import empirical_gram

__all__ = ["gram"]


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
    Y: Any = None,
) -> np.ndarray:
    """The n x n G-matrix of the two-layer net f(x) = (1/sqrt(m)) sum_k a_k phi(w_k . x).

    With ``Y`` (n' x d): the n x n' cross kernel G(x_i, y_j) between the rows of X (e.g. training
    points) and of Y (test points), as neural-tangents' ``kernel_fn(x1, x2)``: the (X, Y) block of
    ``gram(vstack(X, Y))``, at infinite width computed directly (n x n' entries), at finite width
    from the same weights as ``gram(X, width, seed=...)`` (computed as that block: the cost of
    the (n + n') x (n + n') G). With ``outputs`` C the result is nC x n'C, grouped by output.

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
    if train not in TRAINS:
        raise ActspecError(f"train must be one of {', '.join(TRAINS)} (got {train!r})")
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
    if Y is not None:
        Yv = check_inputs(Y)
        if Yv.shape[1] != Xv.shape[1]:
            raise ActspecError(f"Y must have d={Xv.shape[1]} columns like X, got shape {Yv.shape}")
        if infinite:
            from ..core.resources import check_budget, estimate

            n, n2 = Xv.shape[0], Yv.shape[0]
            check_budget(estimate(bytes=8.0 * n * n2 * outputs**2 + 16.0 * (n + n2) * Xv.shape[1]),
                         what=f"the {n} x {n2} cross kernel", way_out="use fewer points in X or Y")
            K = gram_cross_infinite(Xv, Yv, a, train=train, init=init)
            return np.kron(np.eye(outputs), K) if outputs != 1 and weights is None else K
        return _cross_block(
            gram(np.vstack([Xv, Yv]), a, width, train=train, init=init, seed=seed, weights=weights,
                 outputs=outputs, dtype=dtype, device=device, chunk=chunk, progress=progress,
                 checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                 keep_checkpoint=keep_checkpoint),
            Xv.shape[0], Yv.shape[0], outputs)
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


def _cross_block(G: np.ndarray, n: int, n2: int, outputs: int) -> np.ndarray:
    """The (X, Y) block of the G of the stacked rows (grouped by output: index c (n + n2) + i)."""
    N = n + n2
    if G.shape[0] == N:  # one output, or the G of given weights with a single output column
        return np.ascontiguousarray(G[:n, n:])
    C = G.shape[0] // N
    rows = (np.arange(C)[:, None] * N + np.arange(n)[None, :]).ravel()
    cols = (np.arange(C)[:, None] * N + n + np.arange(n2)[None, :]).ravel()
    return np.ascontiguousarray(G[np.ix_(rows, cols)])


def _checkpoint(
    spec: str | os.PathLike[str] | Checkpoint | None, every: float, keep: bool
) -> Checkpoint | None:
    """A :class:`Checkpoint` from a path (with ``every``, ``keep``), or the one given."""
    if spec is None or isinstance(spec, Checkpoint):
        return spec
    return Checkpoint(Path(spec), every=every, keep=keep)
