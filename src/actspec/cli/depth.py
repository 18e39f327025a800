"""``actspec depth``: NTK / penultimate-G spectrum and gradient angles against network depth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ..core.io import run_metadata, write_json
from ..core.validate import check_choice
from ..experiments import params as P
from ._app import app
from .common import (
    DEFAULT_DATA,
    OUTPUT_PANEL,
    DataOptions,
    JsonOpt,
    PlotOpt,
    console,
    data_options,
    outputs_ok,
    parse_width,
)
from .options import DeviceOpt, DtypeOpt, option

DEFAULT_ACTIVATIONS = ["relu", "linear", "tanh"]
DepthWidthOpt = Annotated[str, option(P.WIDTH, "-m", help="'inf' for the exact infinite-width kernels, "
                                      "or the width m of a random network (empirical kernels at "
                                      "initialisation).")]


def _fmt(x: float | None, lower: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    s = f"{x:.4g}"
    return f"≥{s}" if lower else s


@app.command("depth")
@data_options
def depth_cmd(
    activation: Annotated[
        list[str] | None,
        typer.Option(
            "--activation",
            "-a",
            help="Activation (repeat for several); default: relu linear tanh.",
        ),
    ] = None,
    depth: Annotated[
        str,
        typer.Option(
            "--depth",
            "-L",
            help="Depths (hidden layers): a range 1..8, a list 1,2,4,8, or a maximum 8 (= 1..8).",
        ),
    ] = "1..8",
    opts: DataOptions = DEFAULT_DATA,
    width: DepthWidthOpt = P.WIDTH.default,
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel",
            help="ntk: Θ^L, all layers trained; penultimate: the paper's G (only the last "
            "hidden layer trained); nngp: Σ^L.",
        ),
    ] = "ntk",
    scaling: Annotated[
        str,
        typer.Option(
            "--scaling",
            help="σ_w²: cphi (1/E φ(z)², the paper's; = He for ReLU), he (PyTorch Kaiming "
            "gain²), raw (1), or a number.",
        ),
    ] = "cphi",
    bias: Annotated[float, typer.Option("--bias", help="Bias standard deviation β (0: no bias).")] = 0.0,
    spectrum_mode: Annotated[
        str,
        typer.Option(
            "--spectrum",
            help="auto (all eigenvalues up to n=2500), full, or extremes (λ_min, λ_max only).",
        ),
    ] = "auto",
    dtype: DtypeOpt = P.DTYPE.default,
    device: DeviceOpt = P.DEVICE.default,
    plot: PlotOpt = None,
    angle_plot: Annotated[
        Path | None,
        typer.Option(
            "--angle-plot",
            help="Write a PNG of gradient angle against input angle.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    json_path: JsonOpt = None,
) -> None:
    """Kernel spectrum against depth (λ_min, λ_max, condition number) and gradient angles.

    Example: actspec depth -a relu -a linear -a tanh --depth 1..8 --data cone --plot d.png

    The deep net: h¹ = W¹x + βb¹, x^l = σ_w φ(h^l)/√m, h^{l+1} = W^{l+1}x^l + βb^{l+1},
    f = a·x^L + βb (SCIENCE §5). --data cone gives n points in a narrow cone (spread --noise,
    defaults n=50, dim=100): the Liu & Hui setting of similar inputs. A linear net's NTK condition
    number equals that of XXᵀ at every depth (infinite when n > rank X, e.g. circle data).
    """
    from ..experiments.depth import SPECTRUM_MODES, depth_study, depth_summary, parse_depths
    from ..kernels.deep import KERNELS

    outputs_ok((plot, "--plot"), (angle_plot, "--angle-plot"), (json_path, "--json"))
    acts = activation or list(DEFAULT_ACTIVATIONS)
    depths = parse_depths(depth)
    m = parse_width(width)
    check_choice(kernel, KERNELS, "kernel")
    check_choice(spectrum_mode, SPECTRUM_MODES, "spectrum_mode")
    try:
        scale_arg: str | float = float(scaling)
    except ValueError:
        scale_arg = scaling
    ds = opts.load()
    results = depth_study(
        ds.X,
        acts,
        depths,
        width=m,
        kernel=kernel,  # type: ignore[arg-type]
        scaling=scale_arg,
        bias=bias,
        seed=opts.seed,
        spectrum_mode=spectrum_mode,
        dtype=dtype,
        device=device,
    )
    summary = depth_summary(results)

    wlabel = "inf" if m is None else str(m)
    table = Table(
        title=f"{kernel} spectrum by depth — {ds.name}: n={ds.n}, dim={ds.dim}, width={wlabel}, "
        f"scaling={scaling}, bias={bias:g}",
        box=box.SIMPLE_HEAD,
    )
    for col in ("activation", "depth", "λ_min", "λ_max", "cond", "closest pair: ∠x → ∠∇f (deg)"):
        table.add_column(col, justify="left" if col == "activation" else "right", no_wrap=True)
    for r in results:
        lam_min = (
            f"<{r['resolution']:.1e}"
            if r["lambda_min"] is not None and r["lambda_min"] < r["resolution"]
            else _fmt(r["lambda_min"])
        )
        ang = r["angles"]
        pair = (
            f"{math.degrees(ang['min_input_angle']):.2f} → {math.degrees(ang['gradient_angle_at_min']):.2f}"
            if "min_input_angle" in ang
            else "-"
        )
        table.add_row(
            r["activation"],
            str(r["depth"]),
            lam_min,
            _fmt(r["lambda_max"]),
            _fmt(r["condition_number"], r["condition_number_is_lower_bound"]),
            pair,
        )
    console.print(table)
    for name, s in summary.items():
        conds, lb = s["condition_number"], s["condition_number_is_lower_bound"]
        lines = [
            f"{name}: cond {_fmt(conds[0], lb[0])} at depth {s['depths'][0]} → "
            f"{_fmt(conds[-1], lb[-1])} at depth {s['depths'][-1]}"
        ]
        if len(conds) > 1:
            if s["constant_in_depth"]:
                lines.append("the same at every depth")
            elif s["decreases_with_depth"]:
                lines.append("falls at every step")
            elif not any(lb):
                lines.append("not monotonically falling")
        if "below_linear" in s:
            bl = s["below_linear"]
            if all(b is True for b in bl):
                lines.append("below the linear net's at every depth")
            elif any(b is False for b in bl):
                lines.append(
                    "NOT below the linear net's at depths "
                    + ",".join(str(d) for d, b in zip(s["depths"], bl, strict=True) if b is False)
                )
            else:
                lines.append("comparison with the linear net limited by the resolution")
        console.print("; ".join(lines))
    if any(r["condition_number_is_lower_bound"] for r in results):
        console.print(
            "[yellow]note:[/] some eigenvalues are below the resolution (the larger of the "
            "eigensolver's n·eps·λ_max and, at infinite width, the recursion's error bar "
            "n·kernel_error); their condition numbers are lower bounds (≥)."
        )
    title = f"{ds.name} (n={ds.n}), width {wlabel}, {kernel}, scaling {scaling}"
    if plot is not None:
        from ..plots.depth import plot_depth_spectrum

        plot_depth_spectrum(results, plot, title=f"Spectrum against depth: {title}")
        console.print(f"wrote {plot}")
    if angle_plot is not None:
        from ..plots.depth import plot_gradient_angles

        plot_gradient_angles(results, angle_plot, title=f"Gradient angles: {title}")
        console.print(f"wrote {angle_plot}")
    if json_path is not None:
        settings = {
            "activations": acts,
            "depths": depths,
            "width": wlabel if m is None else m,
            "kernel": kernel,
            "scaling": scaling,
            "bias": bias,
            "seed": opts.seed,
            "spectrum": spectrum_mode,
            "dtype": dtype,
            "device": device,
            "data": opts.data,
        }
        write_json(
            json_path,
            {
                "settings": settings,
                "data": {"n": ds.n, "dim": ds.dim, "name": ds.name, **ds.info},
                "results": results,
                "summary": summary,
                "meta": run_metadata(),
            },
        )
        console.print(f"wrote {json_path}")
