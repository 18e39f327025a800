"""``actspec gram``: compute one G-matrix and write it to a .npy file (resumable at finite width).

    actspec gram -a relu --data cifar10 --data-dir DIR --n 10000 --preprocess paper \\
        --width 100000 --dtype float32 --out G.npy --json G.json

Finite-width runs estimated to take over ~10 minutes checkpoint their partial sums to
``<out>.ckpt.npz`` automatically (or to ``--checkpoint PATH``); Ctrl-C saves the state and
running the same command again resumes (:mod:`actspec.experiments.gram_job`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..core.io import run_metadata, write_json
from ..experiments import params as P
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
from .options import (
    ActivationOpt,
    DeviceOpt,
    InitOpt,
    NormalizeOpt,
    TrainOpt,
    WidthOpt,
    option,
)
from .progress import neuron_progress

GemmDtypeOpt = Annotated[str, option(P.DTYPE, help="Finite-width GEMMs: float64 or float32 (faster; "
                                    "partial sums are still flushed into float64).")]


@app.command("gram")
@data_options
def gram_cmd(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Write G (float64, n x n; nC x nC with outputs) to this .npy file."),
    ],
    activation: ActivationOpt = P.ACTIVATION.default,
    opts: DataOptions = DEFAULT_DATA,
    width: WidthOpt = P.WIDTH.default,
    train: TrainOpt = P.TRAIN.default,
    init: InitOpt = P.INIT.default,
    normalize: NormalizeOpt = P.NORMALIZE.default,
    outputs: Annotated[
        int, typer.Option("--outputs", help="Output units C at finite width (G is nC x nC).")
    ] = 1,
    dtype: GemmDtypeOpt = P.DTYPE.default,
    device: DeviceOpt = "auto",
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
    from ..experiments.gram_job import gram_job

    outputs_ok((out, "--out"), (json_path, "--json"), (checkpoint, "--checkpoint"))
    m = parse_width(width)
    ds = opts.load(labels="none")

    def log(msg: str) -> None:
        err_console.print(msg, markup=False, highlight=False, soft_wrap=True)

    with neuron_progress(enabled=m is not None and sys.stderr.isatty()) as prog:
        job = gram_job(
            ds.X, activation, m, out, train=train, init=init, normalize=normalize, seed=opts.seed,
            outputs=outputs, dtype=dtype, device=device, chunk=chunk, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, keep_checkpoint=keep_checkpoint, log=log,
            on_progress=None if prog is None else (lambda done, tot: prog("G", done, tot)),
        )
    res = job["result"]
    rate = f", {res['gflops']:.1f} GFLOP/s" if res["gflops"] is not None else ""
    console.print(f"wrote {out} ({res['shape'][0]} x {res['shape'][1]} float64, "
                  f"{res['seconds']:.2f} s{rate})")
    if json_path is not None:
        dev = job["device"]
        write_json(json_path, {
            "settings": {
                "activation": activation, "width": "inf" if m is None else m, "train": train,
                "init": init, "normalize": normalize, "seed": opts.seed, "outputs": outputs,
                "dtype": dtype, "device": dev, "chunk": chunk, "data": opts.data, "out": str(out),
            },
            "data": {"n": ds.n, "dim": ds.dim, **ds.info},
            "result": res,
            "checkpoint": job["checkpoint"],
            "meta": run_metadata(device=dev),
        }, timings=timings)
        console.print(f"wrote {json_path}")
