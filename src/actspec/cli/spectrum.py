"""``actspec spectrum``: the G-matrix spectrum of several activations side by side."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ..core.io import run_metadata, write_json
from ..core.resources import DEFAULT_MAX_HOURS, time_limit
from ..core.validate import ParameterError
from ..experiments import params as P
from ._app import app
from .common import (
    DEFAULT_DATA,
    OUTPUT_PANEL,
    DataOptions,
    JsonOpt,
    PlotOpt,
    TimingsOpt,
    console,
    data_options,
    outputs_ok,
    parse_width,
)
from .options import (
    ActivationsOpt,
    DeviceOpt,
    DigitsOpt,
    DtypeOpt,
    InitOpt,
    NormalizeOpt,
    PrecisionOpt,
    TrainOpt,
    WidthsOpt,
)
from .progress import neuron_progress

DEFAULT_ACTIVATIONS = ["relu", "elu", "tanh", "swish"]


def _time_limit_seconds(max_hours: float | None) -> float | None:
    """Seconds for :func:`actspec.core.resources.time_limit` from ``--max-hours`` (None: keep
    ACTSPEC_MAX_SECONDS when it is set, else the default of 4 hours)."""
    if max_hours is None:
        if os.environ.get("ACTSPEC_MAX_SECONDS", "").strip():
            return None
        return DEFAULT_MAX_HOURS * 3600.0
    if math.isnan(max_hours) or max_hours < 0:
        raise ParameterError(f"{{-max_hours}} must be >= 0 hours (0 or inf: no limit; got {max_hours:g})")
    return max_hours * 3600.0


def _fmt(x: float, lower: bool = False) -> str:
    s = f"{x:.3g}"
    return f"≥{s}" if lower else s


@app.command("spectrum")
@data_options
def spectrum_cmd(
    activation: ActivationsOpt = None,
    opts: DataOptions = DEFAULT_DATA,
    width: WidthsOpt = None,
    train: TrainOpt = P.TRAIN.default,
    init: InitOpt = P.INIT.default,
    normalize: NormalizeOpt = P.NORMALIZE.default,
    dtype: DtypeOpt = P.DTYPE.default,
    device: DeviceOpt = P.DEVICE.default,
    show: Annotated[
        int, typer.Option("--show", min=0, help="Also print the k smallest eigenvalues.")
    ] = 0,
    precision: PrecisionOpt = P.PRECISION.default,
    digits: DigitsOpt = P.DIGITS.default,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Width inf: dense (eigvalsh of the whole G∞), iterative (matrix-free LOBPCG: the "
            "--k largest and smallest eigenvalues with residual error bars; G∞ never stored, for n "
            "up to 10^5) or auto (dense when 3 n x n float64 arrays fit in half the free memory "
            "and n <= 20000; the reason is printed on stderr).",
        ),
    ] = "auto",
    k: Annotated[int, typer.Option("--k", help="Iterative: number of extreme eigenvalues per end "
                                   "(at most n/5).")] = 6,
    tol: Annotated[
        float, typer.Option("--tol", help="Iterative: wanted relative residual ‖Gv − λv‖/λ.")
    ] = 1e-6,
    maxiter: Annotated[
        int, typer.Option("--maxiter", help="Iterative: LOBPCG iterations for the smallest end.")
    ] = 200,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Iterative: run the matrix-free passes on a local Dask cluster of N worker "
            "processes (0: in this process).",
        ),
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Iterative: address of a running dask.distributed scheduler (tcp://host:8786) "
            "for the matrix-free passes.",
        ),
    ] = None,
    max_hours: Annotated[
        float | None,
        typer.Option(
            "--max-hours",
            help="Time budget: a run whose estimate (made before any work: memory, time per pass "
            "and in all for --method iterative; the time of a finite --width) exceeds it is "
            "refused with the estimate and the way out. Default 4, or ACTSPEC_MAX_SECONDS when "
            "that is set; 0 or inf: no limit.",
        ),
    ] = None,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
    save_vectors: Annotated[
        Path | None,
        typer.Option(
            "--save-vectors",
            help="Also compute the eigenvectors and write them: PATH.npy (one activation and "
            "width: the n x r matrix whose columns match the eigenvalues, descending) or PATH.npz "
            "(per result '<activation>_<width>.vectors', '.eigenvalues' and '.index', the "
            "1-based eigenvalue positions; the iterative solver's Ritz vectors are its k largest "
            "and k smallest).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    timings: TimingsOpt = False,
) -> None:
    """Eigenvalues of the G-matrix for each activation: λ_min, λ_max, condition number, trace.

    Example: actspec spectrum -a relu -a tanh --data circle --n 50 --plot spectrum.png --json s.json

    A smaller λ_min means slower training of the slowest mode (SCIENCE §2). Eigenvalues below
    n·eps·λ_max cannot be resolved in float64; the condition number is then shown as a lower bound.
    """
    from ..experiments.spectrum_study import check_vectors_path, spectrum_study, write_vectors

    outputs_ok((plot, "--plot"), (json_path, "--json"), (save_vectors, "--save-vectors"))
    acts = activation or list(DEFAULT_ACTIVATIONS)
    widths = [parse_width(w) for w in (width or ["inf"])]
    if save_vectors is not None:
        check_vectors_path(save_vectors, len(acts) * len(widths), precision)
    limit = _time_limit_seconds(max_hours)
    ds = opts.load()
    with time_limit(limit), neuron_progress(enabled=any(w is not None for w in widths)) as prog:
        results = spectrum_study(
            ds, acts, widths, precision=precision, digits=digits, train=train, init=init,
            normalize=normalize, seed=opts.seed, dtype=dtype, device=device, method=method, k=k,
            tol=tol, maxiter=maxiter, workers=workers, scheduler=scheduler, on_progress=prog,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
            vectors=save_vectors is not None,
        )
    vectors = [r.pop("eigenvectors", None) for r in results]

    table = Table(
        title=f"G-matrix spectrum — {ds.name}: n={ds.n}, dim={ds.dim}, train={train}, init={init}",
        box=box.SIMPLE_HEAD,
    )
    for col in ("activation", "class", "width", "λ_min", "λ_max", "cond", "trace", "eff.rank"):
        table.add_column(col, justify="left" if col in ("activation", "class") else "right", no_wrap=True)
    for r in results:
        singular = bool(r.get("structural_zeros"))
        lam_min = f"<{r['resolution']:.1e}" if r["lambda_min"] < r["resolution"] else _fmt(r["lambda_min"])
        if "lambda_min_error" in r:  # iterative: value ± residual error bar
            lam_min = f"{r['lambda_min']:.4g}±{r['lambda_min_error']:.1g}"
        if singular and r.get("eigenvalues_complete", True):
            lam_min = "0"  # exactly singular: the computed value is rounding noise
        kclass = r["kink_class"].replace("polynomial of degree ", "poly deg ")
        table.add_row(
            r["activation"],
            kclass,
            str(r["width"]),
            lam_min,
            _fmt(r["lambda_max"]),
            "∞" if singular and r.get("eigenvalues_complete", True)
            else _fmt(r["condition_number"], r["condition_number_is_lower_bound"]),
            _fmt(r["trace"]),
            "—" if r["effective_rank"] is None else f"{r['effective_rank']:.2f}",
        )
    console.print(table)
    for r in results:
        if r.get("structural_zeros"):
            z = r["structural_zeros"]
            console.print(
                f"{r['activation']}: G∞ is exactly singular: {z} zero eigenvalue{'s' if z > 1 else ''} "
                f"({r['structural_reason']}); more precision cannot change that."
            )
    unresolved = [r for r in results if r["condition_number_is_lower_bound"]]
    if any(r["width"] == "inf" and not r.get("structural_zeros") for r in unresolved):
        fix = ("raise --digits" if precision == "high"
               else "rerun with --precision high (infinite width, n ≤ 600)")
        console.print(
            "[yellow]note:[/] some eigenvalues of G∞ are below the resolution of the arithmetic "
            f"(n·eps·λ_max); their condition numbers are lower bounds. To resolve them, {fix}."
        )
    if any(r["width"] != "inf" for r in unresolved):
        console.print(
            "[yellow]note:[/] at finite width, eigenvalues below n·eps·λ_max are not resolved "
            "(G is a float64 sum over the neurons); those condition numbers are lower bounds."
        )
    if show > 0:
        for r in results:
            tail = ", ".join(f"{v:.3g}" for v in r["eigenvalues"][-show:][::-1])
            console.print(f"{r['activation']} (width {r['width']}): smallest {show}: {tail}")
    if plot is not None:
        from ..plots.spectra import plot_spectra

        curves = [
            {
                "label": f"{r['activation']} (m={r['width']})",
                "eigenvalues": r["eigenvalues"],
                "resolution": r["resolution"],
                "dashed": r["width"] != "inf",
                **({"index": r["eigenvalue_index"]} if "eigenvalue_index" in r else {}),
            }
            for r in results
        ]
        plot_spectra(curves, plot, title=f"G-matrix eigenvalues: {ds.name}, n={ds.n}")
        console.print(f"wrote {plot}")
    if json_path is not None:
        settings = {
            "activations": acts,
            "widths": ["inf" if w is None else w for w in widths],
            "train": train,
            "init": init,
            "normalize": normalize,
            "seed": opts.seed,
            "dtype": dtype,
            "device": device,
            "precision": precision,
            "data": opts.data,
            "method": method,
            "k": k,
        }
        write_json(
            json_path,
            {
                "settings": settings,
                "data": {"n": ds.n, "dim": ds.dim, **ds.info},
                "results": results,
                "meta": run_metadata(),
            },
            timings=timings,
        )
        console.print(f"wrote {json_path}")
    if save_vectors is not None:
        write_vectors(save_vectors, results, vectors)
        console.print(f"wrote {save_vectors}")
