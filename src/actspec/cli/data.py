"""``actspec data``: the properties of the data that the theorems depend on (d0, delta, ...)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.io import run_metadata, write_json
from ._app import app
from .common import (
    DEFAULT_DATA,
    OUTPUT_PANEL,
    DataOptions,
    JsonOpt,
    TimingsOpt,
    console,
    data_options,
    outputs_ok,
)
from .options import ActivationsOpt


def _g(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None else format(x, fmt)


def _pairs(diag: dict, key: str) -> str:
    count = diag[f"{key}_pairs"]
    if not count:
        return "0"
    ex = ", ".join(f"({i},{j})" for i, j in diag[f"{key}_examples"][:3])
    return f"{count}  e.g. {ex}"


@app.command("data")
@data_options
def data_cmd(
    activation: ActivationsOpt = None,
    opts: DataOptions = DEFAULT_DATA,
    rank_tol: Annotated[
        float | None,
        typer.Option(
            "--rank-tol",
            help="Absolute tolerance on singular values for the span dimension "
            "(default sigma_max*max(n,dim)*eps with an SVD).",
        ),
    ] = None,
    svd_method: Annotated[
        str,
        typer.Option(
            "--svd-method",
            help="auto, svd (exact) or gram (eigenvalues of the smaller Gram matrix; faster "
            "for large data).",
        ),
    ] = "auto",
    bins: Annotated[
        int, typer.Option("--bins", help="Approximate number of histogram bins.")
    ] = 50,
    chunk: Annotated[
        int, typer.Option("--chunk", help="Rows per block of the pairwise pass (memory).")
    ] = 2048,
    plot_prefix: Annotated[
        Path | None,
        typer.Option(
            "--plot-prefix",
            help="Write PREFIX_distances.png (Figure 2(a)) and PREFIX_singular.png "
            "(Figure 2(b)).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    distances_png: Annotated[
        Path | None,
        typer.Option(
            "--distances-png",
            help="Pairwise-distance histogram PNG (overrides --plot-prefix).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    singular_png: Annotated[
        Path | None,
        typer.Option(
            "--singular-png",
            help="Cumulative squared-singular-value PNG (overrides --plot-prefix).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    json_path: JsonOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """Diagnostics of the data: span dimension d0, min distance, the separation delta of
    Assumption 2, duplicate/(anti)parallel points, pairwise-distance histogram and the cumulative
    singular-value curve (the paper's Figure 2(a), 2(b)).

    For each activation (-a, default relu elu tanh swish) it says whether G∞ is exactly singular
    on these data for a structural reason (duplicates, antipodal pairs, polynomial rank) and how
    many of its eigenvalues are exactly zero.

    Example: actspec data --data digits --plot-prefix digits --json digits.json
    """
    from ..activations.registry import activation as resolve
    from ..data.diagnostics import data_diagnostics, structural_zeros
    from ..plots.data import plot_data_diagnostics

    if plot_prefix is not None:
        base = str(plot_prefix)
        distances_png = distances_png or Path(base + "_distances.png")
        singular_png = singular_png or Path(base + "_singular.png")
    outputs_ok(
        (distances_png, "--distances-png"),
        (singular_png, "--singular-png"),
        (json_path, "--json"),
    )
    acts = activation or ["relu", "elu", "tanh", "swish"]
    for a in acts:  # bad activations fail before any work
        resolve(a)
    ds = opts.load()
    t0 = time.perf_counter()
    diag = data_diagnostics(ds.X, tol=rank_tol, chunk=chunk, bins=bins, svd_method=svd_method)
    elapsed = time.perf_counter() - t0
    singular: dict[str, dict[str, Any]] = {}
    for a in acts:
        z, why = structural_zeros(ds.X, a)
        singular[a.strip()] = {"zero_eigenvalues": z, "reason": why}
    diag["structural_zeros"] = singular

    table = Table(
        title=f"Data diagnostics — {ds.name}: n={ds.n}, dim={ds.dim}, "
        f"preprocess={ds.info.get('preprocess', 'none')}",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("property", justify="left", no_wrap=True)
    table.add_column("value", justify="right")
    e = diag["dims_for_energy"]
    rows = [
        ("points n × dimension", f"{diag['n']} × {diag['dim']}"),
        ("row norms (min … max)", f"{_g(diag['row_norm_min'])} … {_g(diag['row_norm_max'])}"),
        ("span dimension d0 (numerical rank)", str(diag["span_dim"])),
        ("  rank tolerance", f"{diag['rank_tol']:.3g}  ({diag['rank_tol_rule']})"),
        ("  dims for 90% / 99% / 99.9% energy", f"{e['0.9']} / {e['0.99']} / {e['0.999']}"),
        ("min pairwise distance", _g(diag["min_distance"])
         + (f"  {tuple(diag['min_distance_pair'])}" if diag["min_distance_pair"] else "")),
        ("δ = min ‖(I − x̂ᵢx̂ᵢᵀ) xⱼ‖ (Assumption 2)", _g(diag["delta"])
         + (f"  {tuple(diag['delta_pair'])}" if diag["delta_pair"] else "")),
        ("mean / max pairwise distance",
         f"{_g(diag['mean_distance'])} / {_g(diag['max_distance'])}"),
        ("duplicate pairs", _pairs(diag, "duplicate")),
        ("parallel pairs", _pairs(diag, "parallel")),
        ("antiparallel pairs", _pairs(diag, "antiparallel")),
        ("zero rows", str(diag["zero_norm_rows"])),
        ("time", f"{elapsed:.2f} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    for w in diag["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    for a, info in singular.items():
        z = info["zero_eigenvalues"]
        if z:
            console.print(f"{a}: G∞ is exactly singular: {z} zero eigenvalue{'s' if z > 1 else ''} "
                          f"({info['reason']})")
        else:
            console.print(f"{a}: no structural zero eigenvalue of G∞")

    if distances_png is not None or singular_png is not None:
        plot_data_diagnostics(diag, distances_png, singular_png, title=ds.name)
        for p in (distances_png, singular_png):
            if p is not None:
                console.print(f"wrote {p}")
    if json_path is not None:
        settings = {
            "activations": acts,
            "data": opts.data,
            "n": opts.n,
            "dim": opts.dim,
            "span_dim": opts.span_dim,
            "noise": opts.noise,
            "seed": opts.seed,
            "normalize_inputs": opts.normalize_inputs,
            "preprocess": opts.preprocess,
            "rank_tol": rank_tol,
            "svd_method": svd_method,
            "bins": bins,
            "chunk": chunk,
        }
        write_json(
            json_path,
            {
                "settings": settings,
                "data": {"n": ds.n, "dim": ds.dim, **ds.info},
                "diagnostics": diag,
                "elapsed_s": elapsed,
                "meta": run_metadata(),
            },
            timings=timings,
        )
        console.print(f"wrote {json_path}")
