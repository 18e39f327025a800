"""Infinite-width G beyond dense limits: blocks, matrix-free products, iterative eigenvalues.

A dense float64 G∞ needs 8 n² bytes (20 GB at n = 5·10⁴). Here G∞ is never stored: its rows are
evaluated block by block (each block is an exact G∞ block, see :func:`infinite_block`) inside
matrix-vector products, and the extreme eigenvalues come from a well-kept iterative solver
(ARPACK's Lanczos via :func:`scipy.sparse.linalg.eigsh`) with residual-based error bars: for a
symmetric matrix and a unit vector v, some eigenvalue lies within ‖Gv − λv‖ of λ.

:func:`extreme_eigenvalues` chooses dense ``eigvalsh`` when G fits in memory (with the reason) and
the matrix-free path otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, eigsh

from .activations import Activation, activation
from .dual import dual
from .errors import ActspecError
from .gram import check_inputs, normalization_constant
from .inits import init_scheme
from .memory import available_memory, check_dense_fits, dense_bytes

__all__ = [
    "available_memory",
    "dense_bytes",
    "check_dense_fits",
    "infinite_block",
    "GramOperator",
    "extreme_eigenvalues",
]

Train = Literal["hidden", "both", "output"]


def _covariance_params(act: Activation, init: str, d: int) -> tuple[float, float]:
    scheme = init_scheme(init)
    if scheme.name == "fanout":
        raise ActspecError("init 'fanout' is not supported by the matrix-free path; use dense or dzps/fanin")
    return scheme.weight_std(d, None) ** 2, scheme.bias_std(None) ** 2


def infinite_block(
    Xa: np.ndarray,
    Xb: np.ndarray,
    act: Activation,
    *,
    train: Train = "hidden",
    init: str = "dzps",
    same: bool = False,
) -> np.ndarray:
    """The block G∞[a, b] between row sets Xa and Xb (``same=True`` when Xa is Xb: exact diagonal)."""
    sw2, b2 = _covariance_params(act, init, Xa.shape[1])
    gx = Xa @ Xb.T
    if same:
        gx = 0.5 * (gx + gx.T)
    K = sw2 * gx + b2
    sa = sw2 * np.einsum("ij,ij->i", Xa, Xa) + b2
    sb = sa if same else sw2 * np.einsum("ij,ij->i", Xb, Xb) + b2
    if same:
        np.fill_diagonal(K, sa)
    out = np.zeros_like(gx)
    if train in ("hidden", "both"):
        out += dual(act, sa[:, None], sb[None, :], K, "derivative") * gx
    if train in ("both", "output"):
        out += dual(act, sa[:, None], sb[None, :], K, "activation")
    return out


@dataclass
class GramOperator:
    """Matrix-free G∞: ``op @ V`` evaluates G∞ block by block (upper triangle only).

    Evaluated blocks are kept while they fit in ``cache_bytes`` (default: a quarter of the free
    memory, at most 4 GiB); beyond that, blocks are re-evaluated at every product, which costs
    n²/2 kernel evaluations (memory stays O(block·n)). A block of k vectors shares them (matmat).
    """

    X: np.ndarray
    act: Activation
    train: Train = "hidden"
    init: str = "dzps"
    block: int = 1024
    cache_bytes: int | None = None  # keep evaluated blocks up to this many bytes (None: auto)
    products: int = field(default=0, init=False)
    _cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _cached: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.X = check_inputs(self.X)
        self.act = activation(self.act)
        if self.cache_bytes is None:
            self.cache_bytes = int(min(0.25 * available_memory(), 4 * 2**30))

    def _block(self, i: int, j: int) -> np.ndarray:
        B = self._cache.get((i, j))
        if B is None:
            X = self.X
            B = infinite_block(X[i : i + self.block], X[j : j + self.block], self.act,
                               train=self.train, init=self.init, same=(i == j))
            if self._cached + B.nbytes <= (self.cache_bytes or 0):
                self._cache[(i, j)] = B
                self._cached += B.nbytes
        return B

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def matmat(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        vec = V.ndim == 1
        V2 = V.reshape(self.n, -1)
        out = np.zeros_like(V2)
        for i in range(0, self.n, self.block):
            for j in range(i, self.n, self.block):
                B = self._block(i, j)
                bi, bj = B.shape
                out[i : i + bi] += B @ V2[j : j + bj]
                if j != i:  # symmetry: the transposed block serves the lower triangle
                    out[j : j + bj] += B.T @ V2[i : i + bi]
        self.products += V2.shape[1]
        return out.ravel() if vec else out

    def __matmul__(self, V: np.ndarray) -> np.ndarray:
        return self.matmat(V)

    def as_linear_operator(self) -> LinearOperator:
        return LinearOperator((self.n, self.n), matvec=self.matmat, matmat=self.matmat, dtype=np.float64)

    def diagonal(self) -> np.ndarray:
        """diag(G∞): the trace without forming G."""
        sw2, b2 = _covariance_params(self.act, self.init, self.X.shape[1])
        nrm = np.einsum("ij,ij->i", self.X, self.X)
        s = sw2 * nrm + b2
        out = np.zeros(self.n)
        if self.train in ("hidden", "both"):
            out += dual(self.act, s, s, s, "derivative") * nrm
        if self.train in ("both", "output"):
            out += dual(self.act, s, s, s, "activation")
        return out


def extreme_eigenvalues(
    X: Any,
    act: Activation | str | Any,
    *,
    k: int = 6,
    train: Train = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    method: Literal["auto", "dense", "iterative"] = "auto",
    tol: float = 1e-10,
    block: int = 1024,
    maxiter: int | None = None,
    cache_bytes: int | None = None,
) -> dict[str, Any]:
    """The k largest and k smallest eigenvalues of G∞ with error bars and the method used.

    Returns ``{"largest", "smallest", "largest_error", "smallest_error", "trace", "method",
    "reason", "products"}`` (errors are residual norms ‖Gv − λv‖; 0 for dense).
    """
    Xv = check_inputs(X)
    a = activation(act)
    if normalize:
        a = a.scaled(1.0 / normalization_constant(a))
    n = Xv.shape[0]
    if k < 1 or 2 * k > n:
        raise ActspecError(f"k must satisfy 1 <= k <= n/2 (got k={k}, n={n})")
    fits = dense_bytes(n) <= 0.5 * available_memory()
    if method == "auto":
        method = "dense" if fits and n <= 20_000 else "iterative"
        reason = (
            f"dense: n={n} fits ({dense_bytes(n) / 2**30:.2f} GiB of {available_memory() / 2**30:.1f} GiB)"
            if method == "dense"
            else f"iterative: dense would need {dense_bytes(n) / 2**30:.1f} GiB or n > 20000"
        )
    else:
        reason = f"{method} (requested)"
    op = GramOperator(Xv, a, train=train, init=init, block=block, cache_bytes=cache_bytes)
    if method == "dense":
        check_dense_fits(n)
        G = infinite_block(Xv, Xv, a, train=train, init=init, same=True)
        ev = scipy.linalg.eigvalsh(G, driver="evd")[::-1]
        return {
            "largest": ev[:k].tolist(),
            "smallest": ev[-k:][::-1].tolist(),
            "largest_error": [0.0] * k,
            "smallest_error": [0.0] * k,
            "trace": float(np.trace(G)),
            "method": "dense",
            "reason": reason,
            "products": 0,
        }
    lin = op.as_linear_operator()
    big, vb = eigsh(lin, k=k, which="LA", tol=tol, maxiter=maxiter)
    order = np.argsort(big)[::-1]
    big, vb = big[order], vb[:, order]
    shift = float(big[0])
    # smallest of G = shift - largest of (shift I - G): Lanczos on the flipped spectrum
    flip = LinearOperator((n, n), matvec=lambda v: shift * v - op.matmat(v),
                          matmat=lambda V: shift * V - op.matmat(V), dtype=np.float64)
    fl, vs = eigsh(flip, k=k, which="LA", tol=tol, maxiter=maxiter)
    small = shift - fl
    order = np.argsort(small)
    small, vs = small[order], vs[:, order]
    res_b = np.linalg.norm(op.matmat(vb) - vb * big, axis=0)
    res_s = np.linalg.norm(op.matmat(vs) - vs * small, axis=0)
    return {
        "largest": big.tolist(),
        "smallest": small.tolist(),
        "largest_error": res_b.tolist(),
        "smallest_error": res_s.tolist(),
        "trace": float(op.diagonal().sum()),
        "method": "iterative (ARPACK Lanczos, matrix-free)",
        "reason": reason,
        "products": op.products,
    }
