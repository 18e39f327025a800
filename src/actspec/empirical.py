"""Finite-width G-matrix (and H) at initialisation, chunked over neurons, in PyTorch.

For a chunk of k neurons:  U = X W_c^T + b_c (n x k),  D = phi'(U) * a_c (n x k),  G += D D^T,
and at the end G <- factor * G (.) X X^T (SCIENCE eq. 2). Memory is O(n^2 + n k): the
n x m x d gradient tensor is never formed. The neuron weights are drawn block by block
(:func:`actspec.inits.sample_block`), so results do not depend on the chunk size or device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from .activations import Activation
from .inits import InitScheme, sample_block

__all__ = ["empirical_gram", "auto_chunk", "resolve_device"]

Train = Literal["hidden", "both", "output"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def auto_chunk(n: int, d: int, itemsize: int = 8, budget_bytes: int = 512 * 2**20) -> int:
    """Neurons per chunk so that the (n x k) and (k x d) work arrays stay within ``budget_bytes``."""
    k = budget_bytes // max(1, (3 * n + d) * itemsize)
    return int(max(64, min(16384, k)))


def empirical_gram(
    X: np.ndarray,
    act: Activation,
    width: int,
    *,
    train: Train = "hidden",
    scheme: InitScheme,
    seed: int = 0,
    weights: tuple[np.ndarray, ...] | None = None,
    outputs: int = 1,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = "cpu",
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """G (``train="hidden"``), G + H (``"both"``) or H (``"output"``) at width ``width``.

    With ``outputs = C > 1`` the hidden-layer kernel is the (nC x nC) matrix with blocks
    G[c*n:(c+1)*n, c'*n:(c'+1)*n] = (1/m) sum_k a_kc a_kc' phi'(u_ik) phi'(u_jk) <x_i, x_j>,
    and the output-layer kernel is block diagonal (C copies of H).
    ``progress(done, total)`` is called after each chunk of neurons.
    """
    dev = resolve_device(device)
    n, d = X.shape
    m = int(width)
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=dev)
    k = int(chunk) if chunk else auto_chunk(n * outputs, d, torch.finfo(dtype).bits // 8)
    want_g = train in ("hidden", "both")
    want_h = train in ("both", "output")
    nc = n * outputs
    G = torch.zeros(nc, nc, dtype=dtype, device=dev) if want_g else None
    H = torch.zeros(n, n, dtype=dtype, device=dev) if want_h else None
    if weights is not None:
        W_all = torch.as_tensor(np.asarray(weights[0], dtype=np.float64))
        a_all = torch.as_tensor(np.asarray(weights[1], dtype=np.float64)).reshape(m, -1)
        b_all = (
            torch.as_tensor(np.asarray(weights[2], dtype=np.float64))
            if len(weights) > 2 and weights[2] is not None
            else torch.zeros(m, dtype=torch.float64)
        )
    for start in range(0, m, k):
        stop = min(m, start + k)
        if weights is not None:
            w, a, b = W_all[start:stop], a_all[start:stop], b_all[start:stop]
        else:
            w, a, b = sample_block(d, m, start, stop, scheme, seed, outputs)
        w = w.to(device=dev, dtype=dtype)
        a = a.to(device=dev, dtype=dtype)
        b = b.to(device=dev, dtype=dtype)
        U = torch.addmm(b, Xt, w.T) if bool(b.any()) else Xt @ w.T  # (n, k)
        if want_h:
            P = act.phi_torch(U)
            H.addmm_(P, P.T)
            del P
        if want_g:
            Dp = act.dphi_torch(U)
            if outputs == 1:
                Dp.mul_(a[:, 0])
                G.addmm_(Dp, Dp.T)
            else:
                E = torch.cat([Dp * a[:, c] for c in range(outputs)], dim=0)  # (nC, k)
                G.addmm_(E, E.T)
                del E
            del Dp
        del U
        if progress is not None:
            progress(stop, m)
    out = None
    if want_g:
        gram_x = Xt @ Xt.T
        if outputs > 1:
            gram_x = gram_x.repeat(outputs, outputs)
        G.mul_(gram_x).mul_(scheme.gram_factor(m))
        out = G
    if want_h:
        H.mul_(1.0 / m)
        if outputs > 1:
            H = torch.block_diag(*([H] * outputs))
        out = H if out is None else out.add_(H)
    assert out is not None
    return out.to(dtype=torch.float64, device="cpu").numpy()
