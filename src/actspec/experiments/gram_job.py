"""One G-matrix written to a ``.npy`` file (``actspec gram``): checked before any work (choices,
device, memory, disk), checkpointed when long, resumable, interrupted cleanly.

Finite-width runs estimated to take over :data:`AUTO_CHECKPOINT_SECONDS` checkpoint their partial
sums to ``<out>.ckpt.npz`` automatically (or to ``checkpoint``). Ctrl-C stops at the next chunk
boundary, saves the state and raises :class:`~actspec.core.errors.Interrupted` ("interrupted
after X of M neurons; checkpoint saved to P; run the same command again to resume"); running
the same job again resumes and gives a G bit-identical to a run in one go
(:mod:`actspec.finite.checkpoint`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.devices import resolve_device
from ..core.errors import Interrupted
from ..core.io import atomic_path
from ..core.resources import check_dense_fits, check_disk_fits, estimate_seconds, flops_per_neuron
from ..core.validate import ParameterError, check_choice
from . import params as P

__all__ = ["AUTO_CHECKPOINT_SECONDS", "gram_job", "choose_checkpoint"]

AUTO_CHECKPOINT_SECONDS = 600.0  # runs estimated longer than this checkpoint by default


def choose_checkpoint(
    given: Path | None, out: Path, width: int | None, estimate: Callable[[], float]
) -> tuple[Path | None, str | None]:
    """The checkpoint file and why: the given one, an existing default one, or the default one
    when the run is estimated to take over :data:`AUTO_CHECKPOINT_SECONDS`."""
    if width is None:
        if given is not None:
            raise ParameterError("{-checkpoint} is for finite widths; drop it or give {-width} M")
        return None, None
    if given is not None:
        return given, None
    default = out.with_name(out.name + ".ckpt.npz")
    if default.exists():
        return default, f"resuming from {default}"
    secs = estimate()
    if secs > AUTO_CHECKPOINT_SECONDS:
        return default, (
            f"estimated run time ~{secs / 60:.0f} min: checkpointing to {default} "
            "(--checkpoint PATH to choose the file)"
        )
    return None, None


def _check(train: str, dtype: str, every: float, outputs: int, chunk: int | None) -> None:
    check_choice(train, P.TRAIN.choices, "train")
    check_choice(dtype, P.DTYPE.choices, "dtype")
    if not every >= 0:
        raise ParameterError(f"{{-checkpoint_every}} must be >= 0 seconds (got {every})")
    if outputs < 1:
        raise ParameterError(f"{{-outputs}} must be >= 1 (got {outputs})")
    if chunk is not None and chunk < 1:
        raise ParameterError(f"{{-chunk}} must be a positive number of neurons (got {chunk})")


def _save_npy(path: Path, G: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, G, allow_pickle=False)


def gram_job(
    X: np.ndarray,
    activation: str | Any,
    width: int | None,
    out: str | os.PathLike[str],
    *,
    train: str = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    seed: int = 0,
    outputs: int = 1,
    dtype: str = "float64",
    device: str = "auto",
    chunk: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: float = 300.0,
    keep_checkpoint: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compute G (``width`` None: G∞) of ``activation`` on the rows of ``X`` and save it to ``out``
    (float64 ``.npy``). Returns ``{"device", "result": {shape, seconds, gflops,
    neurons_computed, trace}, "checkpoint": info or None}``; ``log`` receives the checkpoint
    decision, ``on_progress(done, total)`` the neurons done."""
    _check(train, dtype, checkpoint_every, outputs, chunk)
    dev = resolve_device(device)
    out = Path(out)
    n, d = int(np.shape(X)[0]), int(np.shape(X)[1])
    size = n * outputs
    check_dense_fits(size, "G-matrix", copies=4.0 if width is None else 2.5)
    check_disk_fits(out, 8 * size * size + 4096, "out")

    def estimate() -> float:
        return estimate_seconds(n, d, width or 1, outputs, train, dtype, dev)

    ckpt_path, why = choose_checkpoint(None if checkpoint is None else Path(checkpoint), out,
                                       width, estimate)
    if why and log is not None:
        log(why)
    ckpt = None
    if ckpt_path is not None:
        from ..finite.checkpoint import Checkpoint

        if not ckpt_path.exists():
            check_disk_fits(ckpt_path, 12 * size * size, "checkpoint")
        ckpt = Checkpoint(ckpt_path, every=checkpoint_every, keep=keep_checkpoint, defer_removal=True)
    G, seconds = _compute(X, activation, width, ckpt, on_progress, train=train, init=init,
                          normalize=normalize, seed=seed, outputs=outputs, dtype=dtype, device=dev,
                          chunk=chunk)
    _save_npy(out, G)
    if ckpt is not None:  # G is durable (written, flushed, renamed): the checkpoint may go
        ckpt.finish()
    done = (width or 0) - (ckpt.resumed_from if ckpt else 0)
    gflops = done * flops_per_neuron(n, d, outputs, train) / seconds / 1e9 if width else None
    return {
        "device": dev,
        "result": {
            "shape": list(G.shape), "seconds": seconds, "gflops": gflops,
            "neurons_computed": done if width else None, "trace": float(np.trace(G)),
        },
        "checkpoint": ckpt.info() if ckpt else None,
    }


def _compute(
    X: np.ndarray, act: Any, m: int | None, ckpt: Any,
    on_progress: Callable[[int, int], None] | None, **kw: Any
) -> tuple[np.ndarray, float]:
    """G and the seconds it took. Ctrl-C -> :class:`Interrupted` ("interrupted after X of M
    neurons; checkpoint saved to P; ...")."""
    from ..finite.checkpoint import CheckpointInterrupt
    from ..finite.gram import gram

    t0 = time.perf_counter()
    try:
        G = gram(X, act, m, progress=on_progress, checkpoint=ckpt, **kw)
    except CheckpointInterrupt as exc:  # "interrupted after X of M neurons; checkpoint saved ..."
        raise Interrupted(str(exc)) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the last periodic checkpoint stands
        if ckpt is None or not ckpt.path.exists():
            raise
        raise Interrupted(
            f"interrupted after {ckpt.saved_neurons} of {m} neurons; checkpoint saved to "
            f"{ckpt.path}; run the same command again to resume"
        ) from None
    return G, time.perf_counter() - t0
