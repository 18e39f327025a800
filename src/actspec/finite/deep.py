"""Finite-width deep networks: the empirical NTK at initialisation, by per-layer products.

The network is the one of :mod:`actspec.deep` (depth L hidden layers of width m, all weights
N(0, 1), post-activations x^l = (sigma_w/sqrt(m)) phi(h^l), output f = a . x^L + beta b_out).
Its NTK sum_theta df(x_i)/dtheta df(x_j)/dtheta splits over the layers::

    Theta_ij = <x^L_i, x^L_j> + beta^2                                    (a, b_out)
             + sum_{l=1..L} <delta^l_i, delta^l_j> (<x^{l-1}_i, x^{l-1}_j> + beta^2)   (W^l, b^l)

with x^0 = x and the backpropagated delta^l = df/dh^l:
delta^L = (sigma_w/sqrt(m)) phi'(h^L) * a,  delta^l = (sigma_w/sqrt(m)) phi'(h^l) * (W^{l+1 T} delta^{l+1}).
Only n x m and n x n arrays are formed (never the n x P Jacobian). The penultimate-layer G is the
W^L term alone: <delta^L_i, delta^L_j> <x^{L-1}_i, x^{L-1}_j>.

Weights are drawn per layer from generators seeded by (seed, layer), so a depth-l network is the
first l layers of a deeper one with the same seed (and the same output weights a): NTKs for
several depths come from one forward pass (:func:`empirical_deep_ntks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..activations.base import Activation
from ..core.devices import check_device
from ..core.errors import ActspecError
from ..core.validate import check_inputs
from ..kernels.deep import DeepParams, deep_params

__all__ = ["EmpiricalDeep", "empirical_deep_ntk", "empirical_deep_ntks", "layer_weights"]

_MEMORY_LIMIT = 24 * 2**30  # bytes of n x m / n x n work arrays accepted
_KEEP_WEIGHTS = 2 * 2**30  # keep the m x m weight matrices when they fit in this


@dataclass
class EmpiricalDeep:
    """Kernels of one finite-width network of depth ``depth`` (float64 numpy, n x n)."""

    depth: int
    width: int
    ntk: np.ndarray = field(repr=False)
    penultimate: np.ndarray = field(repr=False)
    nngp: np.ndarray = field(repr=False)  # <x^L_i, x^L_j> + beta^2: finite-width Sigma^L


def _generator(seed: int, layer: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), 0xD33F, int(layer)]).generate_state(2)
    g = torch.Generator(device="cpu")
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


def layer_weights(seed: int, layer: int, m: int, fan_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The standard-normal (W, b) of hidden layer ``layer`` (1-based): W (m, fan_in), b (m,).

    ``layer = 0`` gives the output weights: W (1, m) (that is a) and b (1,) (b_out)."""
    g = _generator(seed, layer)
    rows = 1 if layer == 0 else m
    cols = m if layer == 0 else fan_in
    W = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    b = torch.randn(rows, generator=g, dtype=torch.float64)
    return W, b


def _parse_weights(
    weights: Any, L: int, m: int | None, d: int
) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray] | None, float | None]:
    if not isinstance(weights, (tuple, list)) or len(weights) not in (2, 4):
        raise ActspecError(
            "weights must be (Ws, a) or (Ws, a, bs, b_out): Ws a list of the L hidden weight "
            "matrices (W^1 of shape (m, d), then (m, m)), a of shape (m,)"
        )
    Ws = [np.asarray(w, dtype=np.float64) for w in weights[0]]
    if len(Ws) != L:
        raise ActspecError(f"weights hold {len(Ws)} hidden matrices but depth is {L}")
    mw = Ws[0].shape[0]
    if m is not None and m != mw:
        raise ActspecError(f"width={m} but W^1 has {mw} rows; drop width or match")
    for k, W in enumerate(Ws, 1):
        want = (mw, d if k == 1 else mw)
        if W.shape != want:
            raise ActspecError(f"W^{k} must have shape {want}, got {W.shape}")
    a = np.asarray(weights[1], dtype=np.float64).reshape(-1)
    if a.shape != (mw,):
        raise ActspecError(f"output weights a must have shape ({mw},), got {a.shape}")
    bs = b_out = None
    if len(weights) == 4:
        bs = [np.asarray(b, dtype=np.float64).reshape(-1) for b in weights[2]]
        if len(bs) != L or any(b.shape != (mw,) for b in bs):
            raise ActspecError(f"bs must be {L} vectors of shape ({mw},)")
        b_out = float(weights[3])
    return Ws, a, bs, b_out


def empirical_deep_ntks(
    X: Any,
    act: Activation | str | Callable[..., Any] | DeepParams,
    depths: Sequence[int],
    width: int | None = None,
    *,
    scaling: str | float = "cphi",
    bias: float = 0.0,
    seed: int = 0,
    weights: Any = None,
    dtype: str | torch.dtype = "float64",
    device: str | None = "cpu",
) -> dict[int, EmpiricalDeep]:
    """Empirical NTK (and penultimate G, NNGP estimate) at initialisation for each depth.

    One forward pass to max(depths); each depth gets its own output layer (the same a) and its own
    backward pass. ``weights`` = (Ws, a) or (Ws, a, bs, b_out) uses the given standard-normal
    parameters (then a single depth, len(Ws)); otherwise they are drawn with ``seed``.
    """
    Xv = check_inputs(X)
    n, d = Xv.shape
    params = act if isinstance(act, DeepParams) else deep_params(act, scaling, bias)
    ds = sorted({int(v) for v in depths})
    if not ds or ds[0] < 1:
        raise ActspecError(f"depths must be integers >= 1 (got {list(depths)!r})")
    L = ds[-1]
    given = None
    if weights is not None:
        if len(ds) != 1:
            raise ActspecError("explicit weights define one network: give a single depth")
        given = _parse_weights(weights, L, None if width is None else int(width), d)
        m = given[0][0].shape[0]
    else:
        if width is None or isinstance(width, bool) or int(width) != width or int(width) < 1:
            raise ActspecError(f"width must be a positive integer (got {width!r})")
        m = int(width)
    tdtype = {"float64": torch.float64, "float32": torch.float32}.get(str(dtype).replace("torch.", ""))
    if tdtype is None:
        raise ActspecError(f"dtype must be 'float64' or 'float32' (got {dtype!r})")
    dev = check_device(device)
    item = 8 if tdtype == torch.float64 else 4
    need = L * n * m * item + (L + 4) * n * n * 8 + 3 * n * m * item
    if need > _MEMORY_LIMIT:
        raise ActspecError(
            f"the empirical deep NTK with n={n}, width={m}, depth={L} needs about "
            f"{need / 2**30:.1f} GiB; use a smaller --n, --width or depth"
        )
    keep = L * m * m * item <= _KEEP_WEIGHTS
    cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    beta = math.sqrt(params.bias_var)
    sw = math.sqrt(params.weight_var) / math.sqrt(m)
    a_act = params.act

    def weight(layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(W, beta b) of hidden layer ``layer`` (0: the output layer a, beta b_out)."""
        if layer in cache:
            return cache[layer]
        if given is not None:
            Ws, a, bs, b_out = given
            if layer == 0:
                W = torch.as_tensor(a).reshape(1, -1)
                b = torch.tensor([b_out]) if b_out is not None else None
            else:
                W = torch.as_tensor(Ws[layer - 1])
                b = torch.as_tensor(bs[layer - 1]) if bs is not None else None
            b = b * beta if (b is not None and beta) else None
        else:
            W, b = layer_weights(seed, layer, m, d if layer == 1 else m)
            b = b * beta if beta else None
        out = (
            W.to(device=dev, dtype=tdtype).contiguous(),
            b.to(device=dev, dtype=tdtype) if b is not None else None,
        )
        if keep or layer <= 1:
            cache[layer] = out
        return out

    def gram64(A: torch.Tensor) -> torch.Tensor:
        G = (A @ A.T).to(torch.float64)
        return 0.5 * (G + G.T)

    with torch.no_grad():
        x = torch.as_tensor(Xv, dtype=tdtype, device=dev)
        gins: list[torch.Tensor] = []  # <x^{l-1}_i, x^{l-1}_j> (float64), l = 1..L
        dphis: list[torch.Tensor] = []  # phi'(h^l), l = 1..L
        feats: dict[int, torch.Tensor] = {}  # x^l for the requested depths
        for ell in range(1, L + 1):
            gins.append(gram64(x))
            W, b = weight(ell)
            h = x @ W.T
            if b is not None:
                h += b
            dphis.append(a_act.dphi_torch(h))
            x = a_act.phi_torch(h) * sw
            del h
            if ell in ds:
                feats[ell] = x
            if not keep and ell > 1:
                cache.pop(ell, None)
        a_row, b_out = weight(0)
        a_vec = a_row.reshape(-1)
        out: dict[int, EmpiricalDeep] = {}
        for Ld in ds:
            K_out = gram64(feats[Ld])
            if beta:
                K_out += params.bias_var
            theta = K_out.clone()
            delta = dphis[Ld - 1] * (a_vec * sw)
            pen = None
            for ell in range(Ld, 0, -1):
                if ell < Ld:
                    W, _ = weight(ell + 1)
                    delta = dphis[ell - 1] * (delta @ W) * sw
                dd = gram64(delta)
                term = dd * gins[ell - 1]
                if ell == Ld:
                    pen = term.clone()
                theta += term
                if beta:
                    theta += dd * params.bias_var
            assert pen is not None
            out[Ld] = EmpiricalDeep(
                Ld,
                m,
                theta.cpu().numpy(),
                pen.cpu().numpy(),
                K_out.cpu().numpy(),
            )
    return out


def empirical_deep_ntk(
    X: Any,
    act: Activation | str | Callable[..., Any] | DeepParams,
    depth: int,
    width: int | None = None,
    *,
    scaling: str | float = "cphi",
    bias: float = 0.0,
    seed: int = 0,
    weights: Any = None,
    dtype: str | torch.dtype = "float64",
    device: str | None = "cpu",
) -> EmpiricalDeep:
    """Empirical kernels of one depth-``depth`` network at width m (see :func:`empirical_deep_ntks`)."""
    return empirical_deep_ntks(
        X,
        act,
        [depth],
        width,
        scaling=scaling,
        bias=bias,
        seed=seed,
        weights=weights,
        dtype=dtype,
        device=device,
    )[int(depth)]
