"""Finite-width G-matrix (and H) at initialisation, chunked over neurons, in PyTorch.

For a chunk of k neurons:  U = X W_c^T + b_c (n x k),  D = phi'(U) * a_c (n x k),  G += D D^T,
and at the end G <- factor * G (.) X X^T (SCIENCE eq. 2). Memory is O(n^2 + n k): the
n x m x d gradient tensor is never formed. The neuron weights are drawn block by block
(:func:`actspec.inits.sample_block`), so results do not depend on the chunk size or device.

Performance notes (CPU, see ``benchmarks/bench_gram.py``):

* G is symmetric, so only its upper triangle is accumulated: the rows are cut into a few
  blocks and each block row gets one GEMM against the rows at and below its diagonal
  (about (1 + 1/b)/2 of the full D D^T flops for b blocks); the lower triangle is mirrored once
  at the end, which also makes the result exactly symmetric.
* Seeded weights come from independent streams, one per block of
  :data:`~actspec.core.inits.WEIGHT_BLOCK` neurons (:data:`~actspec.core.inits.WEIGHTS_SCHEME`):
  the blocks of a chunk are drawn concurrently (float32 normals, torch's thread count), in a
  background thread one chunk ahead of the GEMMs. The automatic chunk size is a multiple of
  the RNG block, so no block is drawn twice, and the weights do not depend on it.
* ``dtype=float32``: the GEMMs run in float32, but the partial sums are flushed into a float64
  accumulator every few thousand neurons, so the float32 rounding error does not grow with
  the width m; X X^T is formed in float64 when that costs under ~5 % of the run.
* ``dtype=float64``: everything is float64; the result depends on the chunk size only through
  the summation order (~1e-16 relative).
* ``checkpoint=PATH``: the partial sums are saved at flush points every ``every`` seconds and
  on Ctrl-C, and a rerun resumes from them with a bit-identical result
  (:mod:`actspec.checkpoint`).
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..activations.base import Activation
from ..core.devices import check_device
from ..core.inits import WEIGHT_BLOCK, WEIGHTS_SCHEME, InitScheme, sample_block
from .checkpoint import (
    FORMAT,
    Checkpoint,
    CheckpointInterrupt,
    activation_fingerprint,
    array_digest,
    load_state,
    save_state,
)

__all__ = ["empirical_gram", "auto_chunk", "resolve_device"]

Train = Literal["hidden", "both", "output"]

_FLUSH_NEURONS = 8192  # float32 mode: neurons summed in float32 before a float64 flush
_MIN_BLOCK_ROWS = 1024  # rows per triangle block (one plain GEMM below 2048 rows)
_MAX_BLOCKS = 12
_PREFETCH = True
_PREFETCH_BLOCKS = 1  # chunk ranges drawn ahead (each range draws its RNG blocks in parallel)
_MAX_CHUNK = 4096  # neurons per automatic chunk at most


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device for ``device`` (None/"auto": CUDA when present), checked by the one
    device gate (:func:`actspec.core.devices.check_device`: a missing GPU is a one-line error)."""
    return check_device(device)


def auto_chunk(n: int, d: int, itemsize: int = 8, budget_bytes: int = 512 * 2**20) -> int:
    """Neurons per chunk so that the (n x k) and (k x d) work arrays stay within ``budget_bytes``."""
    k = budget_bytes // max(1, (3 * n + d) * itemsize)
    return int(max(64, min(16384, k)))


def _chunk_size(n: int, d: int, itemsize: int, m: int) -> int:
    """Automatic chunk: about :func:`auto_chunk`, as a power of two up to ``_MAX_CHUNK``.

    Chunks and RNG blocks (both powers of two) then tile each other exactly (each block is drawn
    once) and there are several chunks per run, so drawing the next chunk's weights overlaps
    with computing the current one.
    """
    k = auto_chunk(n, d, itemsize)
    k = 2 ** max(6, round(math.log2(k)))
    return max(1, min(k, _MAX_CHUNK, m))


def row_blocks(n: int) -> list[tuple[int, int]]:
    """Row blocks of the triangle update: one block for small n, up to _MAX_BLOCKS otherwise."""
    b = max(1, min(_MAX_BLOCKS, n // _MIN_BLOCK_ROWS))
    # edges on multiples of 64 rows: the GEMM kernels then see the same row alignment for
    # every chunk size (keeps float64 results chunk-independent to ~1e-16)
    edges = [min(n, 64 * round(i * n / (64 * b))) for i in range(b)] + [n]
    return [(edges[i], edges[i + 1]) for i in range(b) if edges[i + 1] > edges[i]]


def _syrk_upper(acc: torch.Tensor, E: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
    """acc[i, j] += (E E^T)[i, j] for the block-upper triangle (j >= start of i's block)."""
    if len(blocks) == 1:
        acc.addmm_(E, E.T)
        return
    for r0, r1 in blocks:
        acc[r0:r1, r0:].addmm_(E[r0:r1], E[r0:].T)


def mirror_upper(G: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
    """Make G exactly symmetric from its block-upper triangle (diagonal blocks: upper half)."""
    for r0, r1 in blocks:
        B = G[r0:r1, r0:r1]
        B.copy_(torch.triu(B) + torch.triu(B, 1).T)
        if r1 < G.shape[0]:
            G[r1:, r0:r1].copy_(G[r0:r1, r1:].T)


def _weight_chunks(
    m: int,
    k: int,
    d: int,
    scheme: InitScheme,
    seed: int,
    outputs: int,
    weights: tuple[np.ndarray, ...] | None,
    dtype: torch.dtype,
    dev: torch.device,
    first: int = 0,
) -> Generator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None], None, None]:
    """(stop, w, a, b) per chunk, in compute dtype on ``dev``; b is None when it is all zeros.

    Weights are drawn one range of chunks ahead in a worker thread (torch releases the GIL),
    the RNG blocks of a range concurrently, so drawing overlaps with the GEMMs. ``first`` (a chunk
    boundary of this chunking, e.g. from a checkpoint) skips the chunks before it: the chunks
    from ``first`` on are exactly those of a run from 0, with the same weights.
    """
    if weights is not None:
        W_all = torch.as_tensor(np.asarray(weights[0], dtype=np.float64))
        a_all = torch.as_tensor(np.asarray(weights[1], dtype=np.float64)).reshape(m, -1)
        b_all = (
            torch.as_tensor(np.asarray(weights[2], dtype=np.float64))
            if len(weights) > 2 and weights[2] is not None
            else None
        )

    def convert(
        w: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        w = w.to(device=dev, dtype=dtype).contiguous()
        a = a.to(device=dev, dtype=dtype)
        if b is not None:
            b = b.to(device=dev, dtype=dtype) if bool(b.any()) else None
        return w, a, b

    def prepare(lo: int, hi: int) -> list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Chunks (of at most k neurons) of the neurons [lo, hi) that start at or after ``first``."""
        starts = [s for s in range(lo, hi, k) if s >= first]
        if not starts:
            return []
        if weights is None:  # whole RNG blocks: the same numbers whatever the first neuron
            w_r, a_r, b_r = sample_block(d, m, starts[0], hi, scheme, seed, outputs,
                                         dtype=torch.float64 if dtype == torch.float64 else torch.float32)
        out = []
        for start in starts:
            stop = min(hi, start + k)
            if weights is not None:
                w, a = W_all[start:stop], a_all[start:stop]
                b = b_all[start:stop] if b_all is not None else None
            else:
                sl = slice(start - starts[0], stop - starts[0])
                w, a, b = w_r[sl], a_r[sl], b_r[sl]
            out.append((stop, *convert(w, a, b)))
        return out

    # ranges of neurons prepared together: single chunks, or one RNG block of several chunks
    # when the chunk divides the block (then no block is drawn twice; with a chunk that is
    # neither a multiple nor a divisor of the block, a block shared by two chunks is drawn by
    # both, with the same numbers). Chunks always start at multiples of k.
    step = WEIGHT_BLOCK if weights is None and k < WEIGHT_BLOCK and WEIGHT_BLOCK % k == 0 else k
    ranges = [(lo, min(m, lo + step)) for lo in range(0, m, step) if min(m, lo + step) > first]
    if not ranges:
        return
    if len(ranges) == 1 or not _PREFETCH:
        for lo, hi in ranges:
            yield from prepare(lo, hi)
        return
    ahead = max(1, min(_PREFETCH_BLOCKS, len(ranges) - 1))
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="actspec-weights") as pool:
        futs = [pool.submit(prepare, *r) for r in ranges[: ahead]]
        for i in range(len(ranges)):
            items = futs.pop(0).result()
            if i + ahead < len(ranges):
                futs.append(pool.submit(prepare, *ranges[i + ahead]))
            while items:
                yield items.pop(0)


class _Accumulator:
    """Upper-triangle sum of E E^T over chunks, float64 result, float32 or float64 GEMMs."""

    def __init__(self, size: int, dtype: torch.dtype, dev: torch.device) -> None:
        self.blocks = row_blocks(size)
        self.total = torch.zeros(size, size, dtype=torch.float64, device=dev)
        self.low = (
            torch.zeros(size, size, dtype=dtype, device=dev) if dtype != torch.float64 else None
        )
        self.pending = 0

    def add(self, E: torch.Tensor) -> None:
        if self.low is None:
            _syrk_upper(self.total, E, self.blocks)
            return
        _syrk_upper(self.low, E, self.blocks)
        self.pending += E.shape[1]
        if self.pending >= _FLUSH_NEURONS:
            self.flush()

    def flush(self) -> None:
        if self.low is None or self.pending == 0:
            return
        for r0, r1 in self.blocks:
            self.total[r0:r1, r0:].add_(self.low[r0:r1, r0:])
            self.low[r0:r1, r0:].zero_()
        self.pending = 0

    def result(self) -> torch.Tensor:
        """The float64 accumulated upper triangle (the low-precision buffer is released)."""
        self.flush()
        self.low = None
        return self.total


def _scale_by_data_gram(
    G: torch.Tensor, Xg: torch.Tensor, factor: float, outputs: int, blocks: list[tuple[int, int]]
) -> None:
    """Upper triangle of G (nC x nC) *= factor * <x_i, x_j> (formed in Xg's dtype), by blocks."""
    n = Xg.shape[0]
    if outputs == 1:
        for r0, r1 in blocks:
            gx = (Xg[r0:r1] @ Xg[r0:].T).to(torch.float64)
            G[r0:r1, r0:].mul_(gx.mul_(factor))
        return
    # multi-output: G has C x C blocks of size n, each scaled by the same n x n data Gram
    gx = (Xg @ Xg.T).to(torch.float64).mul_(factor)
    for r0, r1 in blocks:
        i0 = r0
        while i0 < r1:
            ci, ri = divmod(i0, n)
            i1 = min(r1, (ci + 1) * n)
            rows = slice(ri, ri + (i1 - i0))
            j0 = r0
            N = G.shape[1]
            while j0 < N:
                cj, rj = divmod(j0, n)
                j1 = min(N, (cj + 1) * n)
                G[i0:i1, j0:j1].mul_(gx[rows, rj : rj + (j1 - j0)])
                j0 = j1
            i0 = i1


class InterruptGuard:
    """Defers Ctrl-C (SIGINT) to the next chunk boundary, where the state can be saved exactly.

    Active only when enabled and on the main thread (Python delivers signals there). The first
    Ctrl-C sets ``requested``; a second one raises KeyboardInterrupt at once (the last saved
    checkpoint then stands). The previous handler is restored on exit.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self._old: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if self.enabled and threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # e.g. signals unavailable in this interpreter
                self._installed = False
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old if self._old is not None else signal.SIG_DFL)


def _run_settings(
    X: np.ndarray,
    act: Activation,
    m: int,
    train: str,
    scheme: InitScheme,
    seed: int,
    weights: tuple[np.ndarray, ...] | None,
    outputs: int,
    dtype: torch.dtype,
    chunk: int,
) -> dict[str, Any]:
    """Everything that determines the floating-point result of a run (the checkpoint's key).

    Device and thread count are left out: they change only the rounding, so a checkpoint can
    be resumed elsewhere (the result is then no longer bit-identical to a one-go run).
    """
    w = None
    if weights is not None:
        w = array_digest(weights[0], weights[1], weights[2] if len(weights) > 2 else None)
    low = dtype != torch.float64
    return {
        "format": FORMAT,
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "X": array_digest(X),
        "activation": activation_fingerprint(act),
        "width": int(m),
        "train": train,
        "init": scheme.name,
        "seed": None if weights is not None else int(seed),
        "weights": w,
        "outputs": int(outputs),
        "dtype": str(dtype).replace("torch.", ""),
        "chunk": int(chunk),
        "flush_neurons": _FLUSH_NEURONS if low else None,
        "weight_block": WEIGHT_BLOCK,
        **({"weights_scheme": WEIGHTS_SCHEME} if weights is None else {}),
        "torch": torch.__version__.split("+")[0],
    }


def _add_chunk(
    Xt: torch.Tensor,
    act: Activation,
    w: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor | None,
    G: _Accumulator | None,
    H: _Accumulator | None,
    dtype: torch.dtype,
) -> None:
    """Add one chunk of neurons: H += phi(U) phi(U)^T, G += (phi'(U) a)(phi'(U) a)^T, U = X w^T + b."""
    n, outputs = Xt.shape[0], a.shape[1]
    U = torch.addmm(b, Xt, w.T) if b is not None else Xt @ w.T  # (n, k)
    del w
    if H is not None:
        P = act.phi_torch(U).to(dtype)
        H.add(P)
        del P
    if G is None:
        return
    Dp = act.dphi_torch(U).to(dtype)
    del U
    if Dp.shape != (n, a.shape[0]):  # e.g. a constant phi' returned as a scalar
        Dp = Dp.expand(n, a.shape[0])
    if outputs == 1:
        if Dp.is_contiguous():
            Dp.mul_(a[:, 0])
        else:
            Dp = (Dp * a[:, 0]).contiguous()
        G.add(Dp)
    else:
        E = torch.cat([Dp * a[:, c] for c in range(outputs)], dim=0)  # (nC, k)
        G.add(E)


def _as_checkpoint(checkpoint: Checkpoint | str | os.PathLike[str] | None) -> Checkpoint | None:
    if checkpoint is None or isinstance(checkpoint, Checkpoint):
        return checkpoint
    return Checkpoint(Path(checkpoint))


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
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """G (``train="hidden"``), G + H (``"both"``) or H (``"output"``) at width ``width``.

    With ``outputs = C > 1`` the hidden-layer kernel is the (nC x nC) matrix with blocks
    G[c*n:(c+1)*n, c'*n:(c'+1)*n] = (1/m) sum_k a_kc a_kc' phi'(u_ik) phi'(u_jk) <x_i, x_j>,
    and the output-layer kernel is block diagonal (C copies of H).
    ``progress(done, total)`` is called after each chunk of neurons (and once at the start
    with the neurons loaded when resuming from a checkpoint).

    ``checkpoint`` (a path or a :class:`actspec.checkpoint.Checkpoint` with the interval
    ``every`` in seconds and ``keep``): partial sums are saved there at flush points, the run
    resumes from the file when it exists with the same settings (ActspecError when they
    differ), a Ctrl-C or a KeyboardInterrupt raised by ``progress`` saves the state at the
    chunk boundary and raises :class:`~actspec.checkpoint.CheckpointInterrupt`; the file is
    deleted after success unless ``keep``. The result is bit-identical to a run in one go.
    """
    dev = resolve_device(device)
    n, d = X.shape
    m = int(width)
    X64 = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float64, device=dev)
    Xt = X64 if dtype == torch.float64 else X64.to(dtype)
    itemsize = torch.finfo(dtype).bits // 8
    k = int(chunk) if chunk else _chunk_size(n * outputs, d, itemsize, m)
    want_g = train in ("hidden", "both")
    want_h = train in ("both", "output")
    nc = n * outputs
    G = _Accumulator(nc, dtype, dev) if want_g else None
    H = _Accumulator(n, dtype, dev) if want_h else None
    ckpt = _as_checkpoint(checkpoint)
    accs = {name: acc for name, acc in (("G", G), ("H", H)) if acc is not None}
    settings: dict[str, Any] = {}
    first = 0
    if ckpt is not None:
        settings = _run_settings(X, act, m, train, scheme, seed, weights, outputs, dtype, k)
        if ckpt.path.exists():
            first = load_state(ckpt, settings, accs)
            if progress is not None:
                progress(first, m)
    chunks = _weight_chunks(m, k, d, scheme, seed, outputs, weights, dtype, dev, first)
    # closing(): on an interrupt the weight prefetch thread is stopped before we return
    with closing(chunks), InterruptGuard(enabled=ckpt is not None) as guard:
        for stop, w, a, b in chunks:
            _add_chunk(Xt, act, w, a, b, G, H, dtype)
            del w, a, b
            try:
                if progress is not None:
                    progress(stop, m)
            except KeyboardInterrupt:
                if ckpt is None:
                    raise
                guard.requested = True
            if ckpt is None:
                continue
            if guard.requested:  # at a chunk boundary: the state (buffers included) is exact
                ckpt.interrupted = True
                save_state(ckpt, settings, stop, m, accs)
                raise CheckpointInterrupt(stop, m, ckpt.path)
            flushed = all(acc.pending == 0 for acc in accs.values())
            if stop < m and flushed and ckpt.due():
                save_state(ckpt, settings, stop, m, accs)
    if ckpt is not None and ckpt.keep and first < m:  # a rerun loads the finished sums
        save_state(ckpt, settings, m, m, accs)
    out = None
    if G is not None:
        Gt = G.result()
        # X X^T in float64 unless that would cost more than ~5 % of the run (float32 mode)
        cheap = 20 * n * d <= m * (d + n)
        Xg = X64 if cheap else Xt
        _scale_by_data_gram(Gt, Xg, scheme.gram_factor(m), outputs, G.blocks)
        mirror_upper(Gt, G.blocks)
        out = Gt
    if H is not None:
        Ht = H.result()
        mirror_upper(Ht, H.blocks)
        Ht.mul_(1.0 / m)
        if outputs > 1:
            Ht = torch.block_diag(*([Ht] * outputs))
        out = Ht if out is None else out.add_(Ht)
    assert out is not None
    result = out.to(dtype=torch.float64, device="cpu").numpy()
    if ckpt is not None:  # removed here unless the caller writes the result first (defer_removal)
        ckpt.run_finished()
    return result
