"""Initialisation schemes of the two-layer net (SCIENCE §1, paper appendix D).

All schemes are written as f(x) = s_a sum_k a_k phi(w_k . x + b_k) with standard-normal draws
(w~, a~, b~) rescaled:

=========  ============  ==============  ==============  ==========================
scheme     w_k           a_k             b_k             G-matrix factor (eq. 2)
=========  ============  ==============  ==============  ==========================
dzps       N(0, I)       N(0, 1)         0               (1/m) sum a_k^2 ...
fanin      N(0, I/d)     N(0, 1/m)       N(0, 0.1^2)     sum a_k^2 ...   (eta = 1)
fanout     N(0, I/m)     N(0, 1)         N(0, 1/m)       (1/m) sum a_k^2 ... (eta = 1/m)
=========  ============  ==============  ==============  ==========================

so every scheme's G is (1/m) sum_k a~_k^2 phi'(u_ik) phi'(u_jk) <x_i, x_j>, u = sigma_w w~.x + beta b~,
and at infinite width G_ij = E[phi'(u) phi'(v)] <x_i, x_j> with Cov(u, v) = sigma_w^2 <x_i, x_j> + beta^2.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ActspecError

__all__ = [
    "INITS",
    "InitScheme",
    "init_scheme",
    "sample_weights",
    "sample_block",
    "block_generator",
    "draw_threads",
    "WEIGHT_BLOCK",
    "WEIGHTS_SCHEME",
    "LEGACY_WEIGHTS_SCHEMES",
]

# How the weights of a seeded finite-width network are drawn (recorded in results and
# checkpoints; bump the version whenever the numbers a seed draws change).
#
# blocked-randn32-v2: neurons are cut into blocks of WEIGHT_BLOCK = 256; block b of a run with
# seed s gets its own CPU torch.Generator (Mersenne twister) seeded with the first 64-bit word of
# numpy.random.SeedSequence(s, spawn_key=(_STREAM, b)); from it torch.randn draws, in this
# order and in float32, W~ (256, d), a~ (256, C) and b~ (256,), always for the whole block. So
# neuron k's draws depend only on (seed, k, d, C), not on m, the chunk size, the thread count or
# which blocks are drawn concurrently, and the blocks can be drawn in parallel. The float32
# normals are exact float64 numbers: float64 runs use them unchanged, times the scheme's scale.
WEIGHTS_SCHEME = "blocked-randn32-v2"
# earlier schemes: name -> what it was (checkpoints made with them are refused)
LEGACY_WEIGHTS_SCHEMES = {
    "blocked-randn64-v1": "float64 torch.randn per block of 4096 neurons, drawn serially "
    "(actspec before the parallel weight streams)",
}
WEIGHT_BLOCK = 256  # neurons per RNG block: weights do not depend on the compute chunk size
_STREAM = 0x57  # spawn key that keeps the weight streams apart from other uses of a seed
_PARALLEL_MIN = 1 << 20  # normals per call below which the blocks are drawn in this thread

_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] = (0, 0)  # (pid, threads): a forked child builds its own pool
_POOL_LOCK = threading.Lock()


@dataclass(frozen=True)
class InitScheme:
    name: str

    def weight_std(self, d: int, m: int | None) -> float:
        if self.name == "dzps":
            return 1.0
        if self.name == "fanin":
            return 1.0 / math.sqrt(d)
        if m is None:
            raise ActspecError(
                "init 'fanout' scales weights by 1/sqrt(m): it needs a finite --width"
            )
        return 1.0 / math.sqrt(m)

    def bias_std(self, m: int | None) -> float:
        if self.name == "dzps":
            return 0.0
        if self.name == "fanin":
            return 0.1
        if m is None:
            raise ActspecError("init 'fanout' has bias 1/sqrt(m): it needs a finite --width")
        return 1.0 / math.sqrt(m)

    def output_std(self, m: int) -> float:
        """Standard deviation of the output weights a_k."""
        return 1.0 / math.sqrt(m) if self.name == "fanin" else 1.0

    def gram_factor(self, m: int) -> float:
        """Factor c in G = c sum_k a_k^2 phi' phi' <x_i, x_j> for the actual output weights a."""
        return 1.0 if self.name == "fanin" else 1.0 / m


INITS = ("dzps", "fanin", "fanout")


def init_scheme(name: str) -> InitScheme:
    key = str(name).strip().lower()
    if key not in INITS:
        raise ActspecError(f"unknown init {name!r}; choose one of {', '.join(INITS)}")
    return InitScheme(key)


def block_generator(seed: int, block: int) -> torch.Generator:
    """The CPU generator of neuron block ``block`` of a run with ``seed`` (:data:`WEIGHTS_SCHEME`):
    a Mersenne twister seeded with the first 64-bit word of ``SeedSequence(seed, spawn_key=
    (0x57, block))``, i.e. one of the streams numpy spawns from the seed, independent of the
    others. Uses every bit of the seed (seeds of any size)."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(_STREAM, int(block)))
    g = torch.Generator(device="cpu")
    g.manual_seed(int(ss.generate_state(1, np.uint64)[0]))
    return g


def draw_threads(threads: int | None = None) -> int:
    """Threads that draw weight blocks concurrently: ``threads``, else torch's thread count."""
    return max(1, int(threads) if threads else torch.get_num_threads())


def _pool(threads: int) -> ThreadPoolExecutor:
    """The process's weight-drawing thread pool (rebuilt after a fork or a new thread count)."""
    global _POOL, _POOL_KEY
    key = (os.getpid(), threads)
    with _POOL_LOCK:
        if _POOL is None or _POOL_KEY != key:
            if _POOL is not None and _POOL_KEY[0] == key[0]:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="actspec-rng")
            _POOL_KEY = key
        return _POOL


def _draw_block(
    seed: int, blk: int, d: int, outputs: int,
    w: torch.Tensor | None, a: torch.Tensor | None, b: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The float32 standard normals (W~, a~, b~) of a whole block, written into w, a, b when
    given (views of shape (WEIGHT_BLOCK, ...)), else into new tensors."""
    g = block_generator(seed, blk)
    f32 = torch.float32
    w = torch.randn(WEIGHT_BLOCK, d, generator=g, dtype=f32, out=w)
    a = torch.randn(WEIGHT_BLOCK, outputs, generator=g, dtype=f32, out=a)
    b = torch.randn(WEIGHT_BLOCK, generator=g, dtype=f32, out=b)
    return w, a, b


def sample_block(
    d: int,
    m: int,
    start: int,
    stop: int,
    scheme: InitScheme,
    seed: int,
    outputs: int = 1,
    *,
    dtype: torch.dtype = torch.float64,
    threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights of neurons [start, stop) (CPU, ``dtype``, float64 by default): W (k, d),
    a (k, outputs), b (k,), already scaled by the init scheme (``m`` enters only its scales).

    Neurons are drawn in fixed blocks of :data:`WEIGHT_BLOCK` (:data:`WEIGHTS_SCHEME`), each from
    its own stream, so any chunking of the neurons, and any number of drawing ``threads``
    (default: torch's thread count; blocks are drawn concurrently), sees exactly the same
    network. The draws are float32 normals: in float64 they are exact and then scaled in
    float64; with ``dtype=float32`` they are scaled in float32 (within one float32 rounding of
    the float64 weights; exactly equal for the unit scales of ``dzps``).
    """
    start, stop = int(start), min(int(stop), int(m))
    k = max(0, stop - start)
    f32 = torch.float32
    W = torch.empty(k, d, dtype=f32)
    A = torch.empty(k, outputs, dtype=f32)
    B = torch.empty(k, dtype=f32)
    jobs = []
    if k:
        for blk in range(start // WEIGHT_BLOCK, (stop - 1) // WEIGHT_BLOCK + 1):
            lo = blk * WEIGHT_BLOCK
            s0, s1 = max(start, lo), min(stop, lo + WEIGHT_BLOCK)
            whole = s0 == lo and s1 == lo + WEIGHT_BLOCK
            rows = slice(s0 - start, s1 - start)
            jobs.append((blk, rows, slice(s0 - lo, s1 - lo), whole))

    def run(job: tuple[int, slice, slice, bool]) -> None:
        blk, rows, part, whole = job
        if whole:  # straight into the output: no copy
            _draw_block(seed, blk, d, outputs, W[rows], A[rows], B[rows])
        else:
            w, a, b = _draw_block(seed, blk, d, outputs, None, None, None)
            W[rows], A[rows], B[rows] = w[part], a[part], b[part]

    nthreads = min(draw_threads(threads), len(jobs))
    if nthreads > 1 and len(jobs) * WEIGHT_BLOCK * (d + outputs + 1) >= _PARALLEL_MIN:
        for fut in [_pool(nthreads).submit(run, job) for job in jobs]:
            fut.result()
    else:
        for job in jobs:
            run(job)
    if dtype != f32:
        W, A, B = W.to(dtype), A.to(dtype), B.to(dtype)
    for t, std in ((W, scheme.weight_std(d, m)), (A, scheme.output_std(m)), (B, scheme.bias_std(m))):
        if std != 1.0:
            t.mul_(std)
    return W, A, B


def sample_weights(
    d: int, m: int, *, init: str = "dzps", seed: int = 0, outputs: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network drawn by ``gram(..., width=m, seed=seed)``: W (m, d), a (m,) or (m, C), b (m,)
    (float64; :data:`WEIGHTS_SCHEME`)."""
    scheme = init_scheme(init)
    w, a, b = sample_block(d, m, 0, m, scheme, seed, outputs)
    a_np = a.numpy()
    return w.numpy(), (a_np[:, 0] if outputs == 1 else a_np), b.numpy()
