"""Infinite-width G beyond dense limits: blocks, matrix-free products, iterative eigenvalues.

A dense float64 G∞ needs 8 n² bytes (20 GB at n = 5·10⁴). Here G∞ is never stored whole: it is
cut into ``block x block`` blocks of its upper triangle, each an exact G∞ block computed with the
same tile kernel as the dense :func:`actspec.gram` (:func:`actspec.kernels.gram.infinite_kernel`), and a
product ``G∞ @ V`` visits every block once ("one pass over G"), using ``B`` for the rows of the
block and ``Bᵀ`` for its mirror image below the diagonal.

Cost model (what the design optimises)
--------------------------------------
* Evaluating the kernel on a block (an arccos, or a piecewise-Chebyshev table, per entry) costs
  far more than multiplying the block by a few vectors. So evaluated blocks are **cached** up to
  a byte budget: in float64 when the whole upper triangle fits, otherwise in **float32** (half
  the memory; see "Accuracy" below). Blocks that do not fit are re-evaluated at every pass.
* Every pass multiplies by a *block of vectors* (a matrix-matrix product), so the iterative
  solver is block LOBPCG (Knyazev 2001; our own compact version, :func:`_lobpcg`) with a block of
  ``b = max(2k, k + 6, 32)`` vectors (at most ``max(k, n // 5)``): a pass over the float32 cache
  is memory-bound (each block read for B V and Bᵀ V), so 32 vectors cost about what 12 do, and
  the extra vectors speed the wanted ones up. Passes are counted (``GramOperator.passes``).

The solver (:func:`extreme_eigenvalues`, ``method="iterative"``)
---------------------------------------------------------------
Structure it uses. For unit-norm rows and the dzps init, G∞ = Σ_k a_k ρ^{⊙(k+1)} with a_k >= 0
and ρ = X Xᵀ: a dot-product kernel. Its spherical-harmonic components of degree <= 2 span the
values of the polynomials of degree <= 2 in x (1 + d + d(d+1)/2 functions, 2145 at d = 64) and
carry the large eigenvalues; the rest is close to a multiple μ of I plus fluctuations, so the
bottom of the spectrum is the edge of a dense bulk (relu, n = 5000, d = 64: 2144 eigenvalues from
24 down to 0.135, then the bulk 0.0918 ... 0.0849; tanh: 64 from 36 down to 23, then 0.146 ...
0.058, its degree-3 part having 45 696 directions, no low-rank help there).

1. *Sketch* (1 pass with ``ell`` vectors, which also fills the block cache): a Nyström
   approximation G ≈ U Λ̂ Uᵀ (Tropp et al. 2017) whose test matrix holds the degree <= 2
   polynomial features of the rows (plus 32 random vectors) when ``5 n ell`` float64 fit in
   35 % of the free memory and ell <= min(n/3, 4096), else the degree <= 1 features and random
   vectors up to that cap (``sketch`` random vectors at least). A rank-256 random sketch removed
   only the top 256 directions and left λ_257/λ_min ≈ 7 (relu, n = 5000): 300 LOBPCG iterations
   did not reach a 0.5 % relative residual; with the features, 72 (block 12) / 40 (block 64).
2. *Largest*: LOBPCG from the top Nyström vectors; they are usually converged at once.
3. *Smallest*: LOBPCG preconditioned with ``(U Λ̂ Uᵀ + μ I)⁻¹`` (Woodbury; Frangella, Tropp &
   Udell 2023, with the shift μ at the level of the bulk: the mean eigenvalue outside the
   sketch, ``(tr G − Σ λ̂)/(n − ell)``), from random vectors outside span(U). The preconditioned
   spread is then about λ_bulk,max/λ_min instead of λ_max/λ_min. Both ends stop as soon as the
   ``k`` wanted pairs have ‖G v − θ v‖ <= ``tol``·θ (or the cache's noise floor); scipy's
   :func:`~scipy.sparse.linalg.lobpcg` waits for all b block vectors and has no callback.
   *Shift-invert* (Lanczos on ``(G − σI)⁻¹``) is not used: matrix-free it needs an inner
   iterative solve of ``(G − σI)x = b`` per outer step, each costing as many passes as the
   preconditioned outer iteration itself; it pays only when G can be factorised, i.e. in the
   dense regime, where ``eigvalsh`` is cheaper still.
4. *Error bars*: a final pass in **float64 against exact blocks** (never the float32 cache)
   computes ``G Q`` for the converged blocks, a Rayleigh–Ritz step in their span, and the
   residual norms ``‖G v − θ v‖``. For symmetric G and unit v some eigenvalue lies within
   ``‖G v − θ v‖`` of θ (and ``θ_min ≥ λ_min`` always, the Rayleigh quotient is an upper
   bound). The error bars are therefore rigorous for "an eigenvalue is there"; that it is the
   k-th smallest relies on the solver having found the bottom of the spectrum, which the
   preconditioned block method makes very likely but cannot certify.

Before any of it, :func:`check_iterative_budget` estimates memory and time
(:func:`iterative_plan`: the sketch pass, the time of one pass, the planned passes, the exact
pass; the kernel's cost per entry measured on this machine) and refuses, with the estimate and
the way out, a run over the memory or time budget (``max_seconds``, ``--max-hours``).

Accuracy of the float32 cache
-----------------------------
Rounding the blocks to float32 perturbs G by E with ``|E_ij| ≤ 2⁻²⁴ |G_ij|``, so every
eigenvalue of the operator the solver sees moves by at most ``‖E‖₂`` (Weyl), in practice about
``6·10⁻⁸ · √n · max|G_ij|`` (≈ 10⁻⁵ at n = 5·10⁴ for unit-norm ReLU data). The solver stops at
that noise floor; the reported values and error bars come from the exact float64 pass, so they
are honest — the float32 cache costs error-bar width (about that floor), never correctness.

Distributed (Dask)
------------------
:class:`DistributedGramOperator` does the same products on a ``dask.distributed`` cluster: X is
scattered to every worker once; the blocks of the upper triangle are split into one
equal-cost group per worker, pinned to that worker, so each worker keeps its own blocks in a
worker-local cache (a module-level dict keyed by a token of X, activation, train, init and
block) across all passes of the solver. A pass sends V (n x b) to each worker and sums the
returned n x b partial products.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from ..activations.base import Activation
from ..activations.registry import activation
from ..core import resources as _mem
from ..core.cluster_tasks import PinnedGroups, live_workers
from ..core.errors import ActspecError
from ..core.inits import init_scheme
from ..core.resources import available_memory, check_dense_fits, dense_bytes
from ..core.validate import ParameterError, check_inputs
from ..kernels.dual import dual, eval_threads
from ..kernels.gram import gram_infinite, infinite_kernel, normalization_constant

__all__ = [
    "available_memory",
    "dense_bytes",
    "check_dense_fits",
    "choose_method",
    "infinite_block",
    "GramOperator",
    "DistributedGramOperator",
    "extreme_eigenvalues",
    "iterative_max_k",
    "iterative_estimate",
    "check_iterative_budget",
]

Train = Literal["hidden", "both", "output"]
Method = Literal["auto", "dense", "iterative"]

DENSE_MAX_N = 20_000  # auto: dense eigvalsh up to this n (when it fits)
_ROWS = 256  # rows per kernel call inside a block (cache-sized temporaries)
_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53


def _sq_norms(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X)


def _evaluate_block(
    X: np.ndarray,
    sqn: np.ndarray,
    kernel: Callable[[np.ndarray, slice, slice], np.ndarray],
    i0: int,
    i1: int,
    j0: int,
    j1: int,
) -> np.ndarray:
    """Exact float64 block G∞[i0:i1, j0:j1] (a diagonal block when i0 == j0: exactly symmetric).

    The diagonal of X Xᵀ is set to the squared norms the kernel was built with, so a diagonal
    entry has correlation exactly 1 (a rounding of 1e-16 there would cost ~1e-8 for kinked φ).
    """
    gx = X[i0:i1] @ X[j0:j1].T
    same = i0 == j0
    if same:
        gx = 0.5 * (gx + gx.T)
        np.fill_diagonal(gx, sqn[i0:i1])
    out = np.empty_like(gx)
    cols = slice(j0, j1)
    for r in range(0, i1 - i0, _ROWS):
        r1 = min(i1 - i0, r + _ROWS)
        out[r:r1] = kernel(gx[r:r1], slice(i0 + r, i0 + r1), cols)
    if same:
        out = np.triu(out) + np.triu(out, 1).T
    return out


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
    act = activation(act)
    Xa = np.ascontiguousarray(Xa, dtype=np.float64)
    if same:
        sqn = _sq_norms(Xa)
        kernel = infinite_kernel(act, sqn, Xa.shape[1], train=train, init=init, X=Xa)
        return _evaluate_block(Xa, sqn, kernel, 0, len(Xa), 0, len(Xa))
    Xb = np.ascontiguousarray(Xb, dtype=np.float64)
    X = np.vstack([Xa, Xb])
    sqn = _sq_norms(X)
    kernel = infinite_kernel(act, sqn, X.shape[1], train=train, init=init, X=X)
    return _evaluate_block(X, sqn, kernel, 0, len(Xa), len(Xa), len(X))


def _diagonal(X: np.ndarray, act: Activation, train: str, init: str) -> np.ndarray:
    """diag(G∞) without forming G (the trace, and max |G_ij| = max diag for a PSD kernel)."""
    scheme = init_scheme(init)
    nrm = _sq_norms(X)
    if scheme.name == "fanout":  # rare: evaluate the tile kernel on 1 x 1 tiles
        kernel = infinite_kernel(act, nrm, X.shape[1], train=train, init=init)  # type: ignore[arg-type]
        return np.array([kernel(nrm[i : i + 1, None], slice(i, i + 1), slice(i, i + 1))[0, 0]
                         for i in range(len(nrm))])
    sw2, b2 = scheme.weight_std(X.shape[1], None) ** 2, scheme.bias_std(None) ** 2
    s = sw2 * nrm + b2
    out = np.zeros(len(nrm))
    if train in ("hidden", "both"):
        out += dual(act, s, s, s, "derivative") * nrm
    if train in ("both", "output"):
        out += dual(act, s, s, s, "activation")
    return out


def _block_pairs(n: int, block: int) -> list[tuple[int, int, int, int]]:
    """(i0, i1, j0, j1) for every block of the upper triangle, j0 >= i0."""
    starts = list(range(0, n, block))
    return [(i, min(n, i + block), j, min(n, j + block)) for i in starts for j in starts if j >= i]


Pair = tuple[int, int, int, int]


def _split_even(pairs: Sequence[Pair], parts: int) -> list[list[Pair]]:
    """Split the blocks into ``parts`` groups of nearly equal entry counts (greedy, largest first)."""
    groups: list[list[Pair]] = [[] for _ in range(max(1, parts))]
    load = [0] * len(groups)
    for p in sorted(pairs, key=lambda q: -(q[1] - q[0]) * (q[3] - q[2])):
        g = int(np.argmin(load))
        groups[g].append(p)
        load[g] += (p[1] - p[0]) * (p[3] - p[2])
    return [g for g in groups if g]


def _triangle_bytes(n: int, block: int, itemsize: int) -> int:
    return sum((i1 - i0) * (j1 - j0) * itemsize for i0, i1, j0, j1 in _block_pairs(n, block))


class _BlockStore:
    """Evaluated blocks up to a byte budget, in float64 or float32 (thread-safe accounting)."""

    def __init__(self, budget: int, dtype: np.dtype) -> None:
        self.budget = int(budget)
        self.dtype = np.dtype(dtype)
        self.blocks: dict[tuple[int, int], np.ndarray] = {}
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> np.ndarray | None:
        return self.blocks.get(key)

    def put(self, key: tuple[int, int], B: np.ndarray) -> None:
        with self.lock:
            if key not in self.blocks and self.nbytes + B.nbytes <= self.budget:
                self.blocks[key] = B
                self.nbytes += B.nbytes


def _product_over_blocks(
    pairs: Sequence[tuple[int, int, int, int]],
    cached: Callable[[tuple[int, int, int, int]], np.ndarray | None],
    evaluate: Callable[[tuple[int, int, int, int]], np.ndarray],
    V: np.ndarray,
    threads: int,
) -> np.ndarray:
    """Σ over upper-triangle blocks of their contributions to G @ V (float64 accumulation).

    Cached blocks are multiplied first; the missing ones are evaluated on ``threads`` threads
    (the kernel's numpy ufuncs release the GIL) at most ``2·threads`` blocks ahead of the
    multiplication, so memory stays O(threads · block²). The products themselves run on this
    thread: BLAS is multi-threaded already, and Python threads around it only oversubscribe.
    """
    acc = np.zeros((V.shape[0], V.shape[1]))

    def use(p: tuple[int, int, int, int], B: np.ndarray) -> None:
        i0, i1, j0, j1 = p
        acc[i0:i1] += B @ V[j0:j1]
        if j0 != i0:  # the mirrored block below the diagonal
            acc[j0:j1] += B.T @ V[i0:i1]

    missing = []
    for p in pairs:
        B = cached(p)
        if B is None:
            missing.append(p)
        else:
            use(p, B)
    if not missing:
        return acc
    if threads <= 1 or len(missing) == 1:
        for p in missing:
            use(p, evaluate(p))
        return acc
    with ThreadPoolExecutor(max_workers=threads) as pool:
        window: list[tuple[tuple[int, int, int, int], Any]] = []
        todo = iter(missing)
        for p in todo:
            window.append((p, pool.submit(evaluate, p)))
            if len(window) >= 2 * threads:
                q, fut = window.pop(0)
                use(q, fut.result())
        for q, fut in window:
            use(q, fut.result())
    return acc


class GramOperator:
    """Matrix-free G∞ (or G∞ + H∞, H∞): ``op @ V`` evaluates G∞ block by block, upper triangle only.

    Parameters
    ----------
    X, act, train, init: as :func:`actspec.gram` at ``width=None`` (act already scaled if wanted).
    block: rows per block (2048: 32 MiB float64 blocks; the kernel is evaluated 256 rows at a time).
    cache_bytes: keep evaluated blocks up to this many bytes (None: 30 % of the free memory, at
        most 8 GiB; 0: no cache, every pass re-evaluates every block, memory O(block·n)).
    cache_dtype: ``"float64"``, ``"float32"`` or ``"auto"`` (float64 when the whole upper
        triangle fits in ``cache_bytes`` or nothing is cached, else float32, which holds twice as
        many blocks; see the module notes on accuracy).
    threads: threads for a pass (default: ``actspec.kernels.dual.eval_threads()``).

    ``op @ V`` (``matmat``) uses the cache dtype; ``op.matmat(V, exact=True)`` always uses exact
    float64 blocks (the residuals of the error bars). Counters: ``passes`` (products, each one
    pass over G), ``products`` (vectors multiplied), ``blocks_evaluated`` (kernel evaluations of
    a block; ``kernel_passes`` = that over the number of blocks), ``seconds`` (time in products).
    """

    def __init__(
        self,
        X: Any,
        act: Activation | str | Any,
        train: Train = "hidden",
        init: str = "dzps",
        block: int = 2048,
        cache_bytes: int | None = None,
        cache_dtype: Literal["auto", "float64", "float32"] = "auto",
        threads: int | None = None,
    ) -> None:
        self.X = check_inputs(X)
        self.act = activation(act)
        self.train = train
        self.init = init
        self.block = max(1, int(block))
        n, d = self.X.shape
        self.sqn = _sq_norms(self.X)
        self._kernel = infinite_kernel(self.act, self.sqn, d, train=train, init=init, X=self.X)
        caches = self._caches()
        if cache_bytes is None:
            cache_bytes = int(min(0.3 * available_memory() / caches, 8 * 2**30))
        self.cache_bytes = int(cache_bytes)
        if cache_dtype == "auto":
            fits = _triangle_bytes(n, self.block, 8) <= self.cache_bytes * caches
            cache_dtype = "float64" if fits or self.cache_bytes == 0 else "float32"
        if cache_dtype not in ("float64", "float32"):
            raise ActspecError(f"cache_dtype must be auto, float64 or float32 (got {cache_dtype!r})")
        self.cache_dtype = cache_dtype
        self._store = _BlockStore(self.cache_bytes if caches == 1 else 0, np.dtype(cache_dtype))
        self.pairs = _block_pairs(n, self.block)
        self.threads = int(threads) if threads else self._default_threads()
        self.passes = 0
        self.products = 0
        self.blocks_evaluated = 0
        self.seconds = 0.0
        self._count_lock = threading.Lock()

    def _caches(self) -> int:
        """How many block caches of ``cache_bytes`` each hold the blocks (one per Dask worker)."""
        return 1

    def _default_threads(self) -> int:
        return eval_threads()

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    @property
    def kernel_passes(self) -> float:
        """Kernel evaluations so far, in units of the whole upper triangle."""
        return self.blocks_evaluated / max(1, len(self.pairs))

    @property
    def cached_fraction(self) -> float:
        return len(self._store.blocks) / max(1, len(self.pairs))

    def _evaluate(self, p: tuple[int, int, int, int]) -> np.ndarray:
        with self._count_lock:
            self.blocks_evaluated += 1
        return _evaluate_block(self.X, self.sqn, self._kernel, *p)

    def _cached(self, p: tuple[int, int, int, int], exact: bool) -> np.ndarray | None:
        B = self._store.get((p[0], p[2]))
        if B is not None and (not exact or B.dtype == np.float64):
            return B
        return None

    def _fresh(self, p: tuple[int, int, int, int], exact: bool) -> np.ndarray:
        """Evaluate a block not usable from the cache (and cache it when it fits)."""
        B64 = self._evaluate(p)
        if exact and self._store.dtype == np.float32:
            return B64  # exact products never touch the float32 cache
        B = B64 if self._store.dtype == np.float64 else B64.astype(np.float32)
        self._store.put((p[0], p[2]), B)
        return B  # the same rounding whether cached or not: one consistent operator

    def matmat(self, V: np.ndarray, exact: bool = False) -> np.ndarray:
        """G∞ @ V in one pass over the blocks (V: (n,) or (n, b))."""
        t0 = time.perf_counter()
        V = np.asarray(V, dtype=np.float64)
        vec = V.ndim == 1
        V2 = V.reshape(self.n, -1)
        low = not exact and self._store.dtype == np.float32
        Vc = V2.astype(np.float32) if low else V2
        out = _product_over_blocks(self.pairs, lambda p: self._cached(p, exact),
                                   lambda p: self._fresh(p, exact), Vc, self.threads)
        self.passes += 1
        self.products += V2.shape[1]
        self.seconds += time.perf_counter() - t0
        return out.ravel() if vec else out

    def __matmul__(self, V: np.ndarray) -> np.ndarray:
        return self.matmat(V)

    def as_linear_operator(self) -> LinearOperator:
        return LinearOperator((self.n, self.n), matvec=self.matmat, matmat=self.matmat, dtype=np.float64)

    def diagonal(self) -> np.ndarray:
        """diag(G∞): the trace without forming G."""
        return _diagonal(self.X, self.act, self.train, self.init)

    def noise_floor(self) -> float:
        """Typical ‖G̃ − G‖₂ of the operator the solver sees (float32 or float64 rounding)."""
        u = _U32 if self._store.dtype == np.float32 else _U64
        return 4.0 * u * math.sqrt(self.n) * float(np.max(np.abs(self.diagonal())))

    def close(self) -> None:
        """Drop the cached blocks."""
        self._store = _BlockStore(self.cache_bytes, self._store.dtype)


# ------------------------------------------------------------------------------------ Dask

_WORKER_STORES: dict[str, _BlockStore] = {}
_WORKER_KERNELS: dict[str, tuple[np.ndarray, Callable[..., np.ndarray]]] = {}
_WORKER_LOCK = threading.Lock()


def _worker_product(
    X: np.ndarray,
    act: Activation,
    train: str,
    init: str,
    token: str,
    pairs: list[tuple[int, int, int, int]],
    V: np.ndarray,
    exact: bool,
    cache_bytes: int,
    cache_dtype: str,
    threads: int,
) -> tuple[np.ndarray, int]:
    """One worker's share of G∞ @ V: (partial n x b product, blocks evaluated this time).

    Runs on a Dask worker. The kernel (with its tables) and the evaluated blocks stay in this
    process's module-level dicts under ``token`` for the following passes."""
    with _WORKER_LOCK:
        if token not in _WORKER_KERNELS:
            sqn = _sq_norms(X)
            _WORKER_KERNELS[token] = (sqn, infinite_kernel(act, sqn, X.shape[1], train=train, init=init,  # type: ignore[arg-type]
                                                            X=X))
            _WORKER_STORES[token] = _BlockStore(cache_bytes, np.dtype(cache_dtype))
        sqn, kernel = _WORKER_KERNELS[token]
        store = _WORKER_STORES[token]
    evaluated = [0]
    lock = threading.Lock()

    def cached(p: tuple[int, int, int, int]) -> np.ndarray | None:
        B = store.get((p[0], p[2]))
        return B if B is not None and (not exact or B.dtype == np.float64) else None

    def fresh(p: tuple[int, int, int, int]) -> np.ndarray:
        with lock:
            evaluated[0] += 1
        B64 = _evaluate_block(X, sqn, kernel, *p)
        if exact and store.dtype == np.float32:
            return B64
        B = B64 if store.dtype == np.float64 else B64.astype(np.float32)
        store.put((p[0], p[2]), B)
        return B

    low = not exact and store.dtype == np.float32
    Vc = V.astype(np.float32) if low else V
    return _product_over_blocks(pairs, cached, fresh, Vc, threads), evaluated[0]


def _worker_drop(token: str) -> int:
    with _WORKER_LOCK:
        _WORKER_KERNELS.pop(token, None)
        store = _WORKER_STORES.pop(token, None)
    return 0 if store is None else store.nbytes


class DistributedGramOperator(GramOperator):
    """:class:`GramOperator` whose passes run on a ``dask.distributed`` cluster.

    ``client``: a connected :class:`distributed.Client`. ``cache_bytes`` is the budget *per
    worker* (None: 30 % of this machine's free memory divided by the number of workers, at
    most 8 GiB). ``threads``: threads per worker task (default 1: one per Dask worker thread).
    Blocks are assigned to workers once (equal entry counts) and pinned there, so each worker's
    cache serves all later passes. Call :meth:`close` to free the workers' caches.
    """

    def __init__(
        self,
        X: Any,
        act: Activation | str | Any,
        train: Train = "hidden",
        init: str = "dzps",
        block: int = 2048,
        cache_bytes: int | None = None,
        cache_dtype: Literal["auto", "float64", "float32"] = "auto",
        threads: int | None = None,
        *,
        client: Any,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.workers = live_workers(client)
        if not self.workers:
            raise ActspecError("the Dask cluster has no workers; start some or use a local cluster")
        # the local store only marks the dtype: the blocks live in the workers' caches
        super().__init__(X, act, train, init, block, cache_bytes, cache_dtype, threads)
        digest = hashlib.sha1(self.X.tobytes())
        digest.update(repr((self.act.key, train, init, self.block, self.cache_dtype, id(self))).encode())
        self.token = digest.hexdigest()
        self._groups = _split_even(self.pairs, len(self.workers))
        self._pinned = PinnedGroups(client, len(self._groups), workers=self.workers, log=log)
        self._Xf = client.scatter(self.X, broadcast=True)

    def _x_future(self) -> Any:
        """The scattered data; scattered again if the workers holding it were lost."""
        if self._Xf.status != "finished":
            self._Xf = self.client.scatter(self.X, broadcast=True)
        return self._Xf

    def _caches(self) -> int:
        return len(self.workers)

    def _default_threads(self) -> int:
        return 1  # one per Dask worker thread

    def matmat(self, V: np.ndarray, exact: bool = False) -> np.ndarray:
        t0 = time.perf_counter()
        V = np.asarray(V, dtype=np.float64)
        vec = V.ndim == 1
        V2 = np.ascontiguousarray(V.reshape(self.n, -1))
        parts = self._pinned.run(_worker_product, lambda i: (
            self._x_future(), self.act, self.train, self.init, self.token, self._groups[i], V2,
            exact, self.cache_bytes, self.cache_dtype, self.threads))
        out = np.zeros_like(V2)
        for part, evaluated in parts:
            out += part
            self.blocks_evaluated += evaluated
        self.passes += 1
        self.products += V2.shape[1]
        self.seconds += time.perf_counter() - t0
        return out.ravel() if vec else out

    @property
    def cached_fraction(self) -> float:  # not tracked centrally
        return float("nan")

    def close(self) -> None:
        try:
            self.client.run(_worker_drop, self.token)
        except Exception:  # noqa: BLE001 - cluster already gone
            pass


# ------------------------------------------------------------------------------- solvers


def choose_method(n: int, method: Method = "auto") -> tuple[str, str]:
    """(method, reason): dense eigvalsh when 3 n x n float64 arrays fit in half the free memory
    and n <= 20000, else the matrix-free iterative solver."""
    need = dense_bytes(n)
    have = _mem.available_memory()  # looked up at call time (tests patch actspec.memory)
    gib = 2**30
    if method == "dense":
        return "dense", f"dense (requested): n={n}, needs {need / gib:.2f} GiB"
    if method == "iterative":
        return "iterative", f"iterative (requested): matrix-free, dense would need {need / gib:.2f} GiB"
    if method != "auto":
        raise ActspecError(f"method must be auto, dense or iterative (got {method!r})")
    # the free memory enters the reason only when it decides: the same command on the same
    # machine state then gives the same (byte-identical) JSON
    if need > 0.5 * have:
        return "iterative", (f"iterative: dense G∞ for n={n} needs {need / gib:.1f} GiB "
                             f"(3 n x n float64) > half of the {have / gib:.1f} GiB free")
    if n > DENSE_MAX_N:
        return "iterative", (f"iterative: n={n} > {DENSE_MAX_N} (dense would fit, {need / gib:.1f} GiB, "
                             "but its O(n³) eigvalsh is slower than the k extreme eigenvalues)")
    return "dense", (f"dense: n={n} <= {DENSE_MAX_N} and G∞ fits ({need / gib:.2f} GiB, within half "
                     "the free memory)")


def iterative_max_k(n: int) -> int:
    """The largest k the iterative solver takes at size n: n // 5, so that the LOBPCG basis
    [X, W, P] of 3 blocks of b >= k vectors (b capped at max(k, n // 5)) stays well below n."""
    return max(0, int(n) // 5)


#: at most this many sketch vectors (the Nyström sketch holds about 5 n x ell float64 arrays)
SKETCH_MAX = 4096
#: LOBPCG block: at least this many vectors (a pass over the float32 cache is memory-bound, so up
#: to ~48 vectors cost no more than 12; measured at n = 5000, relu: 72 / 53 / 40 passes to a 0.5 %
#: relative residual with blocks of 12 / 32 / 64)
BLOCK_MIN = 32
#: bytes per second of a memory-bound pass over the cached blocks (2.0-2.8 GB/s measured for
#: float32 2048 x 2048 blocks times 12-32 vectors on the shared 2-core machine at load 5-7)
PASS_BANDWIDTH = 3e9


def _feature_count(d: int) -> int:
    """Columns of the degree <= 2 polynomial features [1, x, x_a x_b (a <= b)]."""
    return 1 + d + d * (d + 1) // 2


def _solver_sizes(n: int, k: int, sketch: int, d: int | None = None,
                  memory: float | None = None) -> tuple[int, int, int]:
    """(LOBPCG block b, sketch size ell, how many of its columns are polynomial features).

    The sketch holds the degree <= 2 polynomial features of the rows (their span holds the
    spherical harmonics of degree <= 2, which carry the large eigenvalues of a dot-product
    kernel: see the module notes) when they fit in ``SKETCH_MAX``, n/3 and 35 % of
    ``memory`` bytes (5 n x ell float64 arrays), else the degree <= 1 features; random vectors
    fill it up to ``sketch``, or up to that cap when the degree-2 features do not fit."""
    b = min(max(2 * k, k + 6, BLOCK_MIN), max(k, n // 5))
    cap = min(SKETCH_MAX, n // 3)
    if memory is not None:  # the features only where they fit; ``sketch`` is always honoured
        cap = min(cap, int(0.35 * memory / (5 * 8 * max(1, n))))
    cap = max(cap, b, min(sketch, max(b, n // 3)))
    nfeat = 0
    want = 0
    if d is not None:
        want = _feature_count(d) + 32
        for cand in (_feature_count(d), 1 + d):
            if cand + 32 <= cap:
                nfeat = cand
                break
    # when the degree-2 features do not fit, the sketch takes all the room the cap gives it (so
    # the memory estimate grows with n: never a drop where the features stop fitting)
    ell = int(min(cap, max(sketch, 2 * b, want)))
    return b, ell, nfeat


def _sketch_basis(X: np.ndarray, ell: int, nfeat: int, rng: np.random.Generator) -> np.ndarray:
    """Orthonormal n x ell test matrix: the ``nfeat`` polynomial features of the rows (degree
    <= 2, or <= 1), then random columns (built column block by column block: no n x d x d)."""
    n, d = X.shape
    Om = np.empty((n, ell))
    col = 0
    if nfeat:
        Om[:, 0] = 1.0
        Om[:, 1 : 1 + d] = X
        col = 1 + d
        if nfeat == _feature_count(d):
            for a in range(d):
                Om[:, col : col + d - a] = X[:, a : a + 1] * X[:, a:]
                col += d - a
    Om[:, col:] = rng.standard_normal((n, ell - col))
    Q, _ = np.linalg.qr(Om)  # rank-deficient features (Σ x_a² = 1 on the sphere) give
    return Q                  # arbitrary orthonormal columns: harmless


def _entry_seconds(X: np.ndarray, act: Activation, train: str, init: str) -> float:
    """Seconds per entry of one kernel evaluation of G∞ on this machine: the best of two timed
    evaluations of a block of up to 256 x 2048 entries of a sample of the rows."""
    n = X.shape[0]
    rows = X[: min(n, 256)]
    cols = X[: min(n, 2048)]
    Z = np.vstack([rows, cols])
    kernel = infinite_kernel(act, _sq_norms(Z), X.shape[1], train=train, init=init,  # type: ignore[arg-type]
                             X=Z)
    gx = rows @ cols.T
    r, c = slice(0, rows.shape[0]), slice(rows.shape[0], Z.shape[0])
    kernel(gx.copy(), r, c)  # warm-up (tables, caches)
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        kernel(gx.copy(), r, c)
        best = min(best, time.perf_counter() - t0)
    return best / gx.size


def _expected_passes(maxiter: int) -> int:
    """Passes over G the estimate plans for: the sketch, ~3 for the largest end, the smallest end
    (up to ``maxiter``, typically converged within 60 with the feature preconditioner), the exact
    pass."""
    return 1 + 3 + min(int(maxiter), 60) + 1


def iterative_plan(
    n: int, d: int, k: int, *, sketch: int = 256, block: int = 2048, maxiter: int = 200,
    cache_bytes: int | None = None, entry_seconds: float = 2e-8, workers: int = 1,
) -> dict[str, Any]:
    """The numbers behind :func:`iterative_estimate`: ``bytes`` (peak memory of this process),
    ``pass_seconds`` (one pass over G with the LOBPCG block), ``sketch_seconds`` (the sketch
    pass), ``exact_seconds`` (the float64 pass of the error bars), ``passes`` (planned),
    ``seconds`` (in all), ``block``, ``sketch``, ``features``, ``cache``."""
    from ..core.resources import matmul_rate

    free = float(available_memory())
    b, ell, nfeat = _solver_sizes(n, k, sketch, d, memory=free)
    threads = max(1, eval_threads())
    if cache_bytes is None:
        cache_bytes = int(min(0.3 * free, 8 * 2**30))
    tri64 = _triangle_bytes(n, block, 8)
    tri32 = _triangle_bytes(n, block, 4)
    fits = tri64 <= cache_bytes
    cache = 0 if workers > 1 else min(cache_bytes, tri64 if fits else tri32)
    inflight = 0 if workers > 1 else 4 * threads * 8 * min(block, n) ** 2
    # sketch: features/Ω, GΩ, the QR / Cholesky / SVD copies (~5 n x ell); LOBPCG: ~16 n x b
    nbytes = 8.0 * n * (5 * ell + 16 * b + d + 4) + cache + inflight
    passes = _expected_passes(maxiter)
    uncached = 0.0 if fits or workers > 1 else max(0.0, 1.0 - cache / tri32)
    entries = 0.5 * n * (n + 1)
    kernel = entries * entry_seconds / max(1, workers)  # one evaluation of every block
    rate = matmul_rate() if (entry_seconds > 0 or workers > 1) else 0.0
    w = max(1, workers)

    def flop_s(flops: float, low: bool) -> float:  # float32 products run at ~2x the float64 rate
        return 0.0 if rate <= 0 else flops / (0.5 * rate * (2.0 if low else 1.0)) / w

    low = not fits
    stream = (2.0 * cache / PASS_BANDWIDTH) / w  # every cached block read twice (B and Bᵀ)
    pass_s = max(stream, flop_s(2.0 * n * n * b, low)) + uncached * kernel
    sketch_s = kernel + flop_s(2.0 * n * n * ell, low) + flop_s(4.0 * n * ell * ell, False) * w
    exact_s = (kernel if low else stream) + flop_s(2.0 * n * n * 2 * b, False)
    seconds = sketch_s + (passes - 2) * pass_s + exact_s
    return {"bytes": nbytes, "pass_seconds": pass_s, "sketch_seconds": sketch_s,
            "exact_seconds": exact_s, "passes": passes, "seconds": seconds, "block": b,
            "sketch": ell, "features": nfeat, "cache": cache, "rate": rate}


def iterative_estimate(
    n: int, d: int, k: int, *, sketch: int = 256, block: int = 2048, maxiter: int = 200,
    cache_bytes: int | None = None, entry_seconds: float = 2e-8, workers: int = 1,
) -> Any:
    """Peak memory and time of the matrix-free solver, as a
    :class:`actspec.core.resources.Estimate` (the details: :func:`iterative_plan`).

    Memory (this process): the sketch (about 5 n x ell float64 arrays: the test matrix, G Ω and
    the QR / Cholesky / SVD copies), the LOBPCG blocks (about 16 n x b), the block cache and the
    in-flight blocks, and the data. Time: the sketch pass (kernel evaluation of every block,
    ``entry_seconds`` each: :func:`_entry_seconds` measures it, plus 2 n² ell flops), then
    :func:`_expected_passes` passes with b vectors (memory-bound over the cached blocks, at
    :data:`PASS_BANDWIDTH`; blocks not in the cache are evaluated again at every pass) and the
    exact float64 pass (every block evaluated again when the cache is float32). ``workers`` > 1
    (Dask) divides the time and moves the cache off this machine.
    """
    from ..core.resources import estimate

    plan = iterative_plan(n, d, k, sketch=sketch, block=block, maxiter=maxiter,
                          cache_bytes=cache_bytes, entry_seconds=entry_seconds, workers=workers)
    return estimate(bytes=plan["bytes"], seconds=plan["seconds"])


def check_iterative_budget(
    X: np.ndarray, act: Activation, k: int, *, train: str = "hidden", init: str = "dzps",
    sketch: int = 256, block: int = 2048, maxiter: int = 200, cache_bytes: int | None = None,
    workers: int = 1, max_seconds: float | None = None, log: Callable[[str], None] | None = None,
) -> Any:
    """Refuse (:class:`~actspec.core.validate.ParameterError`: one line, exit 2 from the CLI)
    an iterative spectrum whose memory or time estimate (:func:`iterative_estimate`, with the
    kernel's cost per entry measured here) does not fit this machine's budget
    (:func:`actspec.core.resources.check_budget`; ``max_seconds``: the time budget, default
    :func:`~actspec.core.resources.time_budget`, 0 or inf: none); returns the estimate.
    ``log`` receives the estimate (memory, time per pass and in all) before the run."""
    from ..core.resources import check_budget, estimate, format_bytes, format_seconds

    n, d = X.shape
    if k > iterative_max_k(n):
        raise ParameterError(
            f"{{-k}} {k} is too large for the iterative solver at n={n}: at most k = "
            f"{iterative_max_k(n)} (its LOBPCG blocks need n >= 5 k); use {{-method}} dense for "
            "all eigenvalues")
    if max_seconds is not None and (max_seconds <= 0 or not math.isfinite(max_seconds)):
        max_seconds = math.inf
    way = ("run the passes on a Dask cluster ({-workers} N / {-scheduler} ADDRESS), subsample "
           "with a smaller {-n}, or ask for fewer eigenvalues ({-k})")
    mem = iterative_estimate(n, d, k, sketch=sketch, block=block, maxiter=maxiter,
                             cache_bytes=cache_bytes, entry_seconds=0.0, workers=workers)
    check_budget(mem, what=f"the iterative spectrum of G∞ at n={n} (k={k})", way_out=way,
                 max_seconds=math.inf)
    plan = iterative_plan(n, d, k, sketch=sketch, block=block, maxiter=maxiter,
                          cache_bytes=cache_bytes, workers=workers,
                          entry_seconds=_entry_seconds(X, act, train, init))
    est = estimate(bytes=plan["bytes"], seconds=plan["seconds"])
    said = (f"{format_bytes(plan['bytes'])} peak memory, a sketch pass of "
            f"{format_seconds(plan['sketch_seconds'])}, then up to {plan['passes'] - 2} passes of "
            f"{format_seconds(plan['pass_seconds'])} and an exact pass of "
            f"{format_seconds(plan['exact_seconds'])}")
    check_budget(est, what=f"the iterative spectrum of G∞ at n={n} (k={k}: {said})",
                 way_out=way, max_seconds=max_seconds)
    if log is not None:
        log(f"estimate: {said}; about {format_seconds(plan['seconds'])} in all")
    return est


def _nystrom(Om: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable randomized Nyström G ≈ U diag(lam) Uᵀ from Y = G Ω, Ω orthonormal (Tropp et al.
    2017). Y is overwritten; the shift uses ‖Y‖_F (≥ ‖Y‖₂, no SVD of Y)."""
    nu = math.sqrt(Om.shape[0]) * float(np.finfo(np.float64).eps) * float(np.linalg.norm(Y))
    nu = max(nu, 1e-300)
    Y += nu * Om
    C = Om.T @ Y
    C = 0.5 * (C + C.T)
    try:
        L = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:  # numerically indefinite: shift a bit more
        w = np.linalg.eigvalsh(C)
        L = np.linalg.cholesky(C + (abs(w[0]) + nu) * np.eye(len(C)))
    B = scipy.linalg.solve_triangular(L, Y.T, lower=True, overwrite_b=True, check_finite=False).T
    del Y
    U, S, _ = scipy.linalg.svd(B, full_matrices=False, overwrite_a=True, check_finite=False)
    return U, np.maximum(S**2 - nu, 0.0)


def _orth(V: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(V)
    return Q


def _ritz(Q: np.ndarray, GQ: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rayleigh–Ritz in span(Q) (orthonormal) from GQ: (Ritz values ascending, residual norms,
    Ritz vectors Q S as the matching columns)."""
    H = Q.T @ GQ
    theta, S = np.linalg.eigh(0.5 * (H + H.T))
    V = Q @ S
    R = GQ @ S - V * theta
    return theta, np.linalg.norm(R, axis=0), V


def _blas_threads(n: int | None) -> Any:
    """A context limiting BLAS to ``n`` threads (None: as configured), when threadpoolctl is
    installed; else a no-op. The small dense algebra of LOBPCG (n x 3b blocks, 3b x 3b
    eigenproblems) on one thread: on a busy machine a 96 x 96 ``eigh`` took 0.26 s on two
    OpenBLAS threads and 2 ms on one."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return contextlib.nullcontext() if n is None else threadpool_limits(limits=n, user_api="blas")


def _configured_blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - optional
        return None
    counts = [int(i.get("num_threads", 1)) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else None


def _svqb(V: np.ndarray, AV: np.ndarray | None = None,
          drop: float = 1e-10) -> tuple[np.ndarray, np.ndarray | None]:
    """Orthonormalise the columns of V (and apply the same map to AV = G V) through the
    eigen-decomposition of VᵀV, dropping directions below ``drop`` of the largest (SVQB,
    Stathopoulos & Wu 2002): linear in V, so AV stays G times the new V."""
    if V.shape[1] == 0:
        return V, AV
    Gm = V.T @ V
    w, Q = np.linalg.eigh(0.5 * (Gm + Gm.T))
    keep = w > drop * max(float(w[-1]), 1e-300)
    T = Q[:, keep] / np.sqrt(w[keep])
    return V @ T, None if AV is None else AV @ T


def _lobpcg(matmat: Callable[[np.ndarray], np.ndarray], X0: np.ndarray, k: int, *,
            largest: bool, target: Callable[[np.ndarray], np.ndarray], maxiter: int,
            M: Callable[[np.ndarray], np.ndarray] | None = None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Block LOBPCG (Knyazev 2001) with one pass over G per iteration, stopping as soon as the
    ``k`` wanted pairs (of the ``b`` = X0.shape[1] in the block; the others only speed them up)
    have residual norms ‖G x − θ x‖ <= ``target(θ)``.

    scipy's :func:`~scipy.sparse.linalg.lobpcg` stops only when all b vectors converge, and a
    restart loses its search directions; here the basis [X, W, P] is kept orthonormal (W and P
    orthogonalised against X, SVQB with dropping), G P is updated from the products already made,
    W = M(R) only for the columns not yet converged. Returns (θ ascending, the Ritz vectors as
    columns, their residual norms, iterations)."""
    full = _configured_blas_threads()
    with _blas_threads(1 if full else None):
        return _lobpcg_loop(matmat, X0, k, largest=largest, target=target, maxiter=maxiter,
                            M=M, full=full)


def _lobpcg_loop(matmat: Callable[[np.ndarray], np.ndarray], X0: np.ndarray, k: int, *,
                 largest: bool, target: Callable[[np.ndarray], np.ndarray], maxiter: int,
                 M: Callable[[np.ndarray], np.ndarray] | None, full: int | None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    def mm(V: np.ndarray) -> np.ndarray:  # the passes (and the preconditioner) on every thread
        with _blas_threads(full):
            return matmat(V)

    def prec(V: np.ndarray) -> np.ndarray:
        if M is None:
            return V
        with _blas_threads(full):
            return M(V)

    X, _ = _svqb(X0)
    b = X.shape[1]
    AX = mm(X)
    sign = -1.0 if largest else 1.0  # work on the smallest of sign * G

    def rr(S: np.ndarray, AS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = S.T @ AS
        th, C = np.linalg.eigh(sign * 0.5 * (H + H.T))
        return sign * th, C

    th, C = rr(X, AX)
    X, AX = X @ C, AX @ C
    P: np.ndarray | None = None
    AP: np.ndarray | None = None
    rn = np.full(b, np.inf)
    it = 0
    while True:
        R = AX - X * th
        rn = np.linalg.norm(R, axis=0)
        goal = target(th)
        if np.all(rn[:k] <= goal[:k]) or it >= maxiter:
            break
        active = rn > 0.1 * goal
        W = prec(R[:, active])
        for _ in range(2):  # twice is enough (Kahan)
            W -= X @ (X.T @ W)
            if P is not None:
                W -= P @ (P.T @ W)
        W, _ = _svqb(W)
        if W.shape[1] == 0:
            break
        AW = mm(W)
        it += 1
        S = np.hstack([X, W] + ([P] if P is not None else []))
        AS = np.hstack([AX, AW] + ([AP] if AP is not None else []))
        th_all, C = rr(S, AS)
        th, C = th_all[:b], C[:, :b]
        Xn, AXn = S @ C, AS @ C
        Cp = C[b:]  # the new search directions: the W and P parts of the new X
        P, AP = S[:, b:] @ Cp, AS[:, b:] @ Cp
        c = Xn.T @ P
        P -= Xn @ c
        AP -= AXn @ c
        P, AP = _svqb(P, AP, drop=1e-8)
        X, AX = Xn, AXn
    order = np.argsort(th)
    return th[order], X[:, order], rn[order], it


def _iterative(op: GramOperator, k: int, *, tol: float, maxiter: int, sketch: int, seed: int,
               log: Callable[[str], None]) -> dict[str, Any]:
    n = op.n
    rng = np.random.default_rng(seed)
    d = op.X.shape[1]
    b, ell, nfeat = _solver_sizes(n, k, sketch, d, memory=float(available_memory()))
    floor = op.noise_floor()
    # 1. sketch: one pass with ell vectors (fills the cache) -> Nyström U, lam
    Om = _sketch_basis(op.X, ell, nfeat, rng)
    U, lam = _nystrom(Om, op.matmat(Om))
    del Om
    trace = float(op.diagonal().sum())
    # the preconditioner's shift: the mean eigenvalue outside the sketch (the level of the bulk)
    mu = (trace - float(lam.sum())) / max(1, n - ell)
    if not mu > 0:
        mu = max(float(lam[-1]), floor, 1e-300)
    what = (f"{nfeat} polynomial features of degree <= {2 if nfeat > 1 + d else 1} + "
            f"{ell - nfeat} random" if nfeat else f"{ell} random vectors")
    log(f"sketch: 1 pass with {ell} vectors ({what}), λ̂_max ≈ {lam[0]:.4g}, λ̂_{ell} ≈ "
        f"{lam[-1]:.3g}, bulk level μ ≈ {mu:.3g} ({op.seconds:.1f} s, {op.cached_fraction:.0%} of "
        f"the blocks cached as {op.cache_dtype})")

    def target(th: np.ndarray) -> np.ndarray:
        return np.maximum(tol * np.abs(th), floor)

    # 2. largest, from the top Nyström vectors (usually converged after a pass or two)
    p0 = op.passes
    _, Vl, _, it_l = _lobpcg(op.matmat, U[:, :b].copy(), k, largest=True, target=target,
                             maxiter=maxiter)
    log(f"largest: {op.passes - p0} passes ({it_l} LOBPCG iterations, block {b})")
    # 3. smallest, preconditioned with (U Λ̂ Uᵀ + μ I)⁻¹ (Woodbury; Frangella, Tropp & Udell 2023
    # with the shift at the bulk level), from random vectors outside the sketch's span
    scale = 1.0 / (lam + mu)

    def precond(V: np.ndarray) -> np.ndarray:
        UV = U.T @ V
        return U @ (UV * (scale - 1.0 / mu)[:, None]) + V / mu

    X0 = rng.standard_normal((n, b))
    X0 -= U @ (U.T @ X0)
    p0 = op.passes
    _, Vs, _, it_s = _lobpcg(op.matmat, X0, k, largest=False, target=target, maxiter=maxiter,
                             M=precond)
    log(f"smallest: {op.passes - p0} passes ({it_s} LOBPCG iterations, block {b}, "
        f"preconditioner of rank {ell})")
    # 4. exact float64 pass: Rayleigh–Ritz in each block and honest residuals
    Ql, Qs = _orth(Vl), _orth(Vs)
    t0 = time.perf_counter()
    GQ = op.matmat(np.hstack([Ql, Qs]), exact=True)
    th_l, r_l, V_l = _ritz(Ql, GQ[:, : Ql.shape[1]])
    th_s, r_s, V_s = _ritz(Qs, GQ[:, Ql.shape[1] :])
    del GQ
    log(f"error bars: 1 exact float64 pass ({time.perf_counter() - t0:.1f} s)")
    # did LOBPCG reach --tol? (relative residual ‖Gv − θv‖/θ of each of the k wanted values,
    # the criterion LOBPCG stopped on; the cache's noise floor is the best it can do, so that
    # counts as reached; a factor 2 of slack for the float32 cache against the exact pass).
    # Each residual is divided by its own θ: dividing all by θ_max understated the largest end
    # (converged=True with r_k/θ_k above tol), dividing all by θ_min overstated the smallest end
    # (a warning "stopped at --maxiter" for a run that had stopped early, at --tol)
    th_sk, r_sk = th_s[:k], r_s[:k]
    th_lk, r_lk = th_l[::-1][:k], r_l[::-1][:k]
    rel_s = float(np.max(r_sk / np.maximum(np.abs(th_sk), floor)))
    rel_l = float(np.max(r_lk / np.maximum(np.abs(th_lk), floor)))
    converged = bool(np.all(r_sk <= 2.0 * np.maximum(tol * np.abs(th_sk), floor))
                     and np.all(r_lk <= 2.0 * np.maximum(tol * np.abs(th_lk), floor)))
    if not converged:
        log(f"warning: LOBPCG stopped at --maxiter {maxiter} without reaching --tol {tol:g}: "
            f"achieved relative residual {rel_s:.2g} at the smallest, {rel_l:.2g} at the largest "
            "eigenvalues (raise --maxiter)")
    return {
        "largest": th_l[::-1][:k].tolist(),
        "largest_error": r_l[::-1][:k].tolist(),
        "smallest": th_s[:k].tolist(),
        "smallest_error": r_s[:k].tolist(),
        "largest_vectors": np.ascontiguousarray(V_l[:, ::-1][:, :k]),
        "smallest_vectors": np.ascontiguousarray(V_s[:, :k]),
        "converged": converged,
        "relative_residual": max(rel_s, rel_l),
        "lobpcg_iterations": int(it_s),
        "block_size": b,
        "sketch": ell,
        "sketch_features": nfeat,
        "noise_floor": floor,
    }


def extreme_eigenvalues(
    X: Any,
    act: Activation | str | Any,
    *,
    k: int = 6,
    train: Train = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    method: Method = "auto",
    tol: float = 1e-6,
    block: int = 2048,
    maxiter: int = 200,
    cache_bytes: int | None = None,
    cache_dtype: Literal["auto", "float64", "float32"] = "auto",
    sketch: int = 256,
    seed: int = 0,
    client: Any = None,
    log: Callable[[str], None] | None = None,
    vectors: bool = False,
    budget_checked: bool = False,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """The k largest and k smallest eigenvalues of G∞ with error bars and the method used.

    ``method``: ``"dense"`` (eigvalsh of the whole G∞), ``"iterative"`` (matrix-free, see the
    module notes) or ``"auto"`` (:func:`choose_method`; the reason is in ``"reason"``).
    ``tol``: relative residual wanted for the iterative eigenvalues (‖Gv − θv‖ ≤ tol·θ), never
    below the noise floor of the cache dtype; ``maxiter`` bounds the LOBPCG iterations of each
    end (largest, smallest). ``client``: a ``dask.distributed.Client`` to run the passes on.
    ``log``: called with one line per stage.

    Returns ``{"largest" (descending), "smallest" (ascending), "largest_error", "smallest_error"
    (residual norms ‖Gv − θv‖: an eigenvalue lies within that of each value; 0 for dense),
    "trace", "method", "reason", "passes" (passes over G), "products" (vectors multiplied),
    "kernel_passes" (kernel evaluations in units of all blocks), "seconds", "cache_dtype",
    "eigenvalues" (dense: all, descending; iterative: the known ones, largest then smallest,
    descending), "eigenvalues_complete", "converged" (iterative: every wanted value reached
    ``tol``; else a warning line went to ``log``), "relative_residual" (the worst ‖Gv − θv‖/θ)}``.
    ``vectors=True`` adds "largest_vectors" and "smallest_vectors": n x k arrays whose columns
    are the (Ritz) eigenvectors of "largest" and "smallest", in the same order.

    Before the iterative solver starts, its memory and time are estimated and checked against
    this machine's budget (:func:`check_iterative_budget`, time budget ``max_seconds``: default
    :func:`actspec.core.resources.time_budget`; ``budget_checked=True`` skips that when
    the caller has done it), and k above :func:`iterative_max_k` is refused.
    """
    t_start = time.perf_counter()
    say = log or (lambda _msg: None)
    Xv = check_inputs(X)
    a = activation(act)
    if normalize:
        a = a.scaled(1.0 / normalization_constant(a))
    n = Xv.shape[0]
    if k < 1 or 2 * k > n:
        raise ActspecError(f"k must satisfy 1 <= k <= n/2 (got k={k}, n={n})")
    if not (0 < tol < 1):
        raise ActspecError(f"tol must be in (0, 1) (got {tol})")
    chosen, reason = choose_method(n, method)
    if chosen == "iterative" and not budget_checked:
        info: dict[str, Any] = {} if client is None else dict(client.scheduler_info())
        workers = max(1, len(info.get("workers", {})))
        check_iterative_budget(Xv, a, k, train=train, init=init, sketch=sketch, block=block,
                               maxiter=maxiter, cache_bytes=cache_bytes, workers=workers,
                               max_seconds=max_seconds, log=say)
    if chosen == "dense":
        check_dense_fits(n, "G∞", copies=4.0 if vectors else 3.0)
        G = gram_infinite(Xv, a, train=train, init=init)
        trace = float(np.trace(G))
        extra: dict[str, Any] = {}
        if vectors:
            ev, V = scipy.linalg.eigh(G, driver="evd", overwrite_a=True, check_finite=False)
            ev, V = ev[::-1], V[:, ::-1]
            extra = {"largest_vectors": np.ascontiguousarray(V[:, :k]),
                     "smallest_vectors": np.ascontiguousarray(V[:, -k:][:, ::-1])}
            del V
        else:
            ev = scipy.linalg.eigvalsh(G, driver="evd", overwrite_a=True, check_finite=False)[::-1]
        return {
            **extra,
            "converged": True,
            "relative_residual": 0.0,
            "largest": ev[:k].tolist(),
            "smallest": ev[-k:][::-1].tolist(),
            "largest_error": [0.0] * k,
            "smallest_error": [0.0] * k,
            "eigenvalues": ev.tolist(),
            "eigenvalues_complete": True,
            "trace": trace,
            "method": "dense",
            "reason": reason,
            "passes": 0,
            "products": 0,
            "kernel_passes": 1.0,
            "cache_dtype": None,
            "seconds": time.perf_counter() - t_start,
        }
    if client is not None:
        op: GramOperator = DistributedGramOperator(Xv, a, train, init, block, cache_bytes, cache_dtype,
                                                   client=client, log=say)
    else:
        op = GramOperator(Xv, a, train, init, block, cache_bytes, cache_dtype)
    try:
        out = _iterative(op, k, tol=tol, maxiter=maxiter, sketch=sketch, seed=seed, log=say)
    finally:
        op.close()
    if not vectors:
        out.pop("largest_vectors")
        out.pop("smallest_vectors")
    where = f"Dask, {len(op.workers)} workers" if isinstance(op, DistributedGramOperator) else "matrix-free"
    known = sorted(out["largest"] + out["smallest"], reverse=True)
    return {
        **out,
        "eigenvalues": known,
        "eigenvalues_complete": False,
        "trace": float(op.diagonal().sum()),
        "method": f"iterative (LOBPCG, {where})",
        "reason": reason,
        "passes": op.passes,
        "products": op.products,
        "kernel_passes": op.kernel_passes,
        "cache_dtype": op.cache_dtype,
        "seconds": time.perf_counter() - t_start,
    }
