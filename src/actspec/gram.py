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
from typing import Any, Literal

import numpy as np
import torch

from .activations import Activation, activation
from .dual import dual, gaussian_mean
from .empirical import empirical_gram
from .errors import ActspecError
from .inits import init_scheme

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


def gram_infinite(
    X: np.ndarray, act: Activation, *, train: Train = "hidden", init: str = "dzps"
) -> np.ndarray:
    """G∞ (``"hidden"``), G∞ + H∞ (``"both"``) or H∞ (``"output"``) for the rows of X."""
    scheme = init_scheme(init)
    gx = X @ X.T
    gx = 0.5 * (gx + gx.T)
    if scheme.name == "fanout":
        # limit m -> ∞ of Cov = (X X^T + 1)/m: only the signs of u, v survive
        left, right = _one_sided(act)
        sq = np.sqrt(np.diag(gx) + 1.0)
        rho = np.clip((gx + 1.0) / np.outer(sq, sq), -1.0, 1.0)
        theta = np.arccos(rho)
        e = (left**2 + right**2) * (math.pi - theta) / (
            2 * math.pi
        ) + left * right * theta / math.pi
        out = e * gx if train in ("hidden", "both") else 0.0 * gx
        if train in ("both", "output"):
            out = out + float(act.phi(np.array([0.0]))[0]) ** 2
        return out
    d = X.shape[1]
    sw2 = scheme.weight_std(d, None) ** 2
    b2 = scheme.bias_std(None) ** 2
    K = sw2 * gx + b2
    s = np.diag(K).copy()
    if np.any(s <= 0):
        bad = int(np.argmin(s))
        raise ActspecError(
            f"row {bad} of X has zero norm: its pre-activation is identically 0; "
            "remove zero rows or add a bias (init='fanin')"
        )
    s1 = s[:, None]
    s2 = s[None, :]
    out = np.zeros_like(gx)
    if train in ("hidden", "both"):
        out += dual(act, s1, s2, K, "derivative") * gx
    if train in ("both", "output"):
        out += dual(act, s1, s2, K, "activation")
    return 0.5 * (out + out.T)


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
    if width is None or (isinstance(width, str) and width.lower() in ("inf", "infinite")):
        if weights is None and outputs != 1:
            return np.kron(np.eye(outputs), gram_infinite(Xv, a, train=train, init=init))
        return gram_infinite(Xv, a, train=train, init=init)
    try:
        m = int(width)
    except (TypeError, ValueError):
        raise ActspecError(
            f"width must be a positive integer or None/'inf' (got {width!r})"
        ) from None
    if m < 1 or m != float(width):
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
        device=device,
        chunk=chunk,
        progress=progress,
    )
