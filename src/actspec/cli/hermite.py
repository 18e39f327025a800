"""``actspec hermite``: Hermite coefficients of an activation (or of its derivative)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from ..core.errors import ActspecError
from ..core.io import run_metadata, write_json
from ._app import app
from .common import JsonOpt, PlotOpt, console, outputs_ok


@app.command("hermite")
def hermite_cmd(
    name: Annotated[str, typer.Argument(help="Activation name, e.g. relu, tanh, elu:1.0.")],
    degree: Annotated[
        int, typer.Option("--degree", "-k", help="Highest degree K (coefficients c_0..c_K).")
    ] = 30,
    of: Annotated[
        str,
        typer.Option("--of", help="derivative: phi' (what G∞ uses); activation: phi itself (H∞)."),
    ] = "derivative",
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Other activations to overlay in the plot."),
    ] = None,
    rows: Annotated[
        int,
        typer.Option("--rows", min=0, help="Table rows to print (all nonzero up to this many)."),
    ] = 20,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Coefficients c_a = E[phi'(z) h_a(z)] in the orthonormal Hermite basis h_a = He_a/sqrt(a!).

    G∞ = Σ_a c_a² (XXᵀ)^{⊙(a+1)}: slow decay of c_a² (kinks, J_r: c_a² ~ a^{-(2r+1)/2})
    keeps every eigenvalue of G large; fast decay (tanh, swish: exp(-Θ(√a))) makes many tiny.

    Example: actspec hermite relu --degree 200 --plot relu-hermite.png --json relu.json
    """
    from ..experiments.spectrum import run_hermite
    from ..kernels.hermite import MAX_DEGREE, check_degree

    if degree < 0:
        raise ActspecError(f"--degree must be between 0 and {MAX_DEGREE} (got {degree})")
    check_degree(degree)  # refuses above the cap with the time and memory estimate
    if of not in ("derivative", "activation"):
        raise ActspecError(f"--of must be 'derivative' or 'activation' (got {of!r})")
    outputs_ok((plot, "--plot"), (json_path, "--json"))
    res = run_hermite(name, degree, of)
    others = [run_hermite(o, degree, of) for o in (compare or [])]
    c = np.asarray(res["coefficients"])
    what = "phi'" if of == "derivative" else "phi"
    table = Table(
        title=f"Hermite coefficients of {what} for {res['activation']} ({res['kink_class']})"
    )
    table.add_column("a", justify="right")
    table.add_column("c_a", justify="right")
    table.add_column("c_a²", justify="right")
    table.add_column("Σ_{b≤a} c_b²", justify="right")
    cum = np.cumsum(c * c)
    shown = 0
    for a in range(c.size):
        if abs(c[a]) < 1e-15 and a > 0:
            continue
        table.add_row(str(a), f"{c[a]: .6e}", f"{c[a] ** 2:.3e}", f"{cum[a]:.10f}")
        shown += 1
        if shown >= rows:
            break
    console.print(table)
    console.print(
        f"Σ c_a² up to degree {degree} = {res['sum_of_squares']:.12g} (→ E {what}(z)² as K → ∞)"
    )
    if plot is not None:
        from ..plots.spectra import plot_hermite

        series = {res["activation"]: c}
        series.update({o["activation"]: np.asarray(o["coefficients"]) for o in others})
        plot_hermite(series, plot, title=f"Hermite coefficients of {what}")
        console.print(f"wrote {plot}")
    if json_path is not None:
        out = dict(res)
        if others:
            out["compare"] = others
        out["meta"] = run_metadata()
        write_json(json_path, out)
        console.print(f"wrote {json_path}")
