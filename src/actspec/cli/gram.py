"""``actspec gram``: compute one G-matrix and write it to a .npy file (resumable at finite width).

    actspec gram -a relu --data cifar10 --data-dir DIR --n 10000 --preprocess paper \\
        --width 100000 --dtype float32 --out G.npy --json G.json

Finite-width runs estimated to take over ~10 minutes checkpoint their partial sums to
``<out>.ckpt.npz`` automatically (or to ``--checkpoint PATH``). Ctrl-C stops at the next chunk
boundary, saves the state and exits with status 130 (one line ``error: interrupted after X
of M neurons; checkpoint saved to P; run the same command again to resume``); running the
same command again resumes and gives a G bit-identical to a run in one go
(:mod:`actspec.checkpoint`).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ..core.errors import ActspecError, Interrupted
from ..core.io import atomic_path, run_metadata, write_json
from ._app import app
from .common import (
    DEFAULT_DATA,
    DataOptions,
    JsonOpt,
    TimingsOpt,
    console,
    data_options,
    err_console,
    outputs_ok,
    parse_width,
)
from .progress import neuron_progress

AUTO_CHECKPOINT_SECONDS = 600.0  # runs estimated longer than this checkpoint by default
_TRAINS = ("hidden", "both", "output")
_DTYPES = ("float64", "float32")
_DEVICES = ("auto", "cpu", "cuda")


def flops_per_neuron(n: int, d: int, outputs: int, train: str) -> float:
    """Flops one neuron adds: X w (2nd), plus 2(nC)^2 for G and 2n^2 for H (full products)."""
    f = 2.0 * n * d
    if train in ("hidden", "both"):
        f += 2.0 * (n * outputs) ** 2
    if train in ("both", "output"):
        f += 2.0 * n * n
    return f


def _matmul_gflops(dtype: str, device: str) -> float:
    """Best GFLOP/s of a 1024^3 matmul on ``device`` in ``dtype`` (a ~0.1 s calibration)."""
    import torch

    tdt = getattr(torch, dtype)
    a = torch.randn(1024, 1024, dtype=tdt, device=device)
    best = math.inf
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ a
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * 1024**3 / max(best, 1e-9) / 1e9


def estimate_seconds(
    n: int, d: int, m: int, outputs: int, train: str, dtype: str, device: str
) -> float:
    """Rough run time: the flops at half the measured matmul rate, plus a third of the RNG
    time (~70 µs per neuron at d = 3072, mostly hidden behind the GEMMs)."""
    rate = _matmul_gflops(dtype, device) * 1e9
    return m * flops_per_neuron(n, d, outputs, train) / (0.5 * rate) + m * d * 8e-9


def _resolve_device(device: str) -> str:
    import torch

    if device not in _DEVICES:
        raise ActspecError(f"--device must be one of {', '.join(_DEVICES)} (got {device!r})")
    if device == "cuda" and not torch.cuda.is_available():
        raise ActspecError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _check_choices(train: str, dtype: str, every: float) -> None:
    if train not in _TRAINS:
        raise ActspecError(f"--train must be one of {', '.join(_TRAINS)} (got {train!r})")
    if dtype not in _DTYPES:
        raise ActspecError(f"--dtype must be float64 or float32 (got {dtype!r})")
    if not every >= 0:
        raise ActspecError(f"--checkpoint-every must be >= 0 seconds (got {every})")


def _check_disk(path: Path, need: int, what: str) -> None:
    """Refuse a run whose output cannot fit on the disk holding ``path``."""
    parent = path.parent if str(path.parent) else Path(".")
    free = shutil.disk_usage(parent).free
    if need > free:
        raise ActspecError(
            f"{what} {str(path)!r} needs about {need / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB is free on its disk; choose another directory or a smaller --n"
        )


def _choose_checkpoint(
    given: Path | None, out: Path, width: int | None, estimate: Any
) -> tuple[Path | None, str | None]:
    """The checkpoint file and why: the given one, an existing default one, or the default one
    when the run is estimated to take over AUTO_CHECKPOINT_SECONDS."""
    if width is None:
        if given is not None:
            raise ActspecError("--checkpoint is for finite widths; drop it or give --width M")
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


def _save_npy(path: Path, G: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, G, allow_pickle=False)


@app.command("gram")
@data_options
def gram_cmd(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Write G (float64, n x n; nC x nC with outputs) to this .npy file."),
    ],
    activation: Annotated[
        str,
        typer.Option(
            "--activation",
            "-a",
            help="Activation: relu, leaky_relu:0.2, elu:1.0, selu, gelu, swish, softplus, tanh, "
            "sigmoid, erf, linear, quadratic, cubic, an expression or module:function.",
        ),
    ] = "relu",
    opts: DataOptions = DEFAULT_DATA,
    width: Annotated[
        str,
        typer.Option("--width", "-m", help="'inf' for G∞, or the number of neurons m for G at a "
                     "random initialisation drawn with --seed."),
    ] = "inf",
    train: Annotated[
        str, typer.Option("--train", help="hidden: G (only W trained); both: G + H; output: H.")
    ] = "hidden",
    init: Annotated[str, typer.Option("--init", help="dzps (default), fanin or fanout.")] = "dzps",
    normalize: Annotated[
        bool,
        typer.Option("--normalize", help="Scale phi so that E phi(z)^2 = 1 (the paper's c_phi)."),
    ] = False,
    outputs: Annotated[
        int, typer.Option("--outputs", help="Output units C at finite width (G is nC x nC).")
    ] = 1,
    dtype: Annotated[
        str, typer.Option("--dtype", help="Finite-width GEMMs: float64 or float32 (faster; "
                          "partial sums are still flushed into float64).")
    ] = "float64",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    chunk: Annotated[
        int | None, typer.Option("--chunk", help="Neurons per chunk (default: by memory).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Save partial sums here and resume from it when it exists (default: "
            "<out>.ckpt.npz when the run is estimated to take over 10 minutes).",
        ),
    ] = None,
    checkpoint_every: Annotated[
        float,
        typer.Option("--checkpoint-every", help="Seconds between checkpoint saves (0: at every "
                     "flush point)."),
    ] = 300.0,
    keep_checkpoint: Annotated[
        bool,
        typer.Option("--keep-checkpoint", help="Keep the checkpoint file after success."),
    ] = False,
    json_path: JsonOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """Compute the G-matrix of one activation and write it to --out (.npy, float64).

    Example: actspec gram -a relu --data sphere --n 2000 --dim 50 --width 100000 --dtype float32 --out G.npy
    """
    outputs_ok((out, "--out"), (json_path, "--json"), (checkpoint, "--checkpoint"))
    m = parse_width(width)
    _check_choices(train, dtype, checkpoint_every)
    if outputs < 1:
        raise ActspecError(f"--outputs must be >= 1 (got {outputs})")
    if chunk is not None and chunk < 1:
        raise ActspecError(f"--chunk must be a positive number of neurons (got {chunk})")
    dev = _resolve_device(device)
    ds = opts.load(labels="none")
    size = ds.n * outputs
    from ..core.resources import check_dense_fits

    check_dense_fits(size, "G-matrix", copies=4.0 if m is None else 2.5)
    _check_disk(out, 8 * size * size + 4096, "--out")

    def estimate() -> float:
        return estimate_seconds(ds.n, ds.dim, m or 1, outputs, train, dtype, dev)

    ckpt_path, why = _choose_checkpoint(checkpoint, out, m, estimate)
    if why:
        err_console.print(why, markup=False, highlight=False, soft_wrap=True)
    ckpt = None
    if ckpt_path is not None:
        from ..finite.checkpoint import Checkpoint

        if not ckpt_path.exists():
            _check_disk(ckpt_path, 12 * size * size, "--checkpoint")
        ckpt = Checkpoint(ckpt_path, every=checkpoint_every, keep=keep_checkpoint)
    G, seconds = _compute(ds.X, activation, m, ckpt, train=train, init=init, normalize=normalize,
                          seed=opts.seed, outputs=outputs, dtype=dtype, device=dev, chunk=chunk)
    _save_npy(out, G)
    done = (m or 0) - (ckpt.resumed_from if ckpt else 0)
    gflops = done * flops_per_neuron(ds.n, ds.dim, outputs, train) / seconds / 1e9 if m else None
    rate = f", {gflops:.1f} GFLOP/s" if gflops is not None else ""
    console.print(f"wrote {out} ({G.shape[0]} x {G.shape[1]} float64, {seconds:.2f} s{rate})")
    if json_path is not None:
        write_json(json_path, {
            "settings": {
                "activation": activation, "width": "inf" if m is None else m, "train": train,
                "init": init, "normalize": normalize, "seed": opts.seed, "outputs": outputs,
                "dtype": dtype, "device": dev, "chunk": chunk, "data": opts.data, "out": str(out),
            },
            "data": {"n": ds.n, "dim": ds.dim, **ds.info},
            "result": {
                "shape": list(G.shape), "seconds": seconds, "gflops": gflops,
                "neurons_computed": done if m else None, "trace": float(np.trace(G)),
            },
            "checkpoint": ckpt.info() if ckpt else None,
            "meta": run_metadata(device=dev),
        }, timings=timings)
        console.print(f"wrote {json_path}")


def _compute(
    X: np.ndarray, act: str, m: int | None, ckpt: Any, **kw: Any
) -> tuple[np.ndarray, float]:
    """G and the seconds it took. Ctrl-C -> :class:`Interrupted` (one ``error: interrupted after
    X of M neurons; checkpoint saved to P; ...`` line, exit status 130)."""
    from ..finite.checkpoint import CheckpointInterrupt
    from ..finite.gram import gram

    t0 = time.perf_counter()
    try:
        with neuron_progress(enabled=m is not None and sys.stderr.isatty()) as prog:
            cb = None if prog is None else (lambda done, tot: prog("G", done, tot))
            G = gram(X, act, m, progress=cb, checkpoint=ckpt, **kw)
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
