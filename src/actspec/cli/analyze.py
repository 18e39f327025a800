"""``actspec analyze``: the report card of one activation on one data set."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.table import Table

from ..core.errors import ActspecError
from ..core.io import run_metadata, write_json
from ..experiments import params as P
from ..plots.report import plot_report_card
from ._app import app
from .common import DEFAULT_DATA, DataOptions, JsonOpt, PlotOpt, console, data_options, outputs_ok
from .options import NormalizeOpt, option

AnalyzePrecisionOpt = Annotated[str, option(P.PRECISION, help=(
    "double (float64), or high: eigenvalues of G∞ in extended precision (exact inner "
    "products, entries to 10^-digits, arbitrary-precision eigensolver), accurate in "
    "relative terms far below float64's n·eps·λ_max. Limits: n <= 600, unit-norm rows; "
    "n = 200 takes ~15-30 s with python-flint installed, ~1-2 min without (mpmath), "
    "n = 50 a few seconds (tanh is the slowest built-in: ~1600 Hermite terms at 50 "
    "digits). Activations with a kink and no closed form (elu, selu, kinked user "
    "functions) keep float64 entries (their eigenvalues are large anyway); relu, "
    "leaky_relu and polynomials use exact closed forms."))]
AnalyzeDigitsOpt = Annotated[int, option(P.DIGITS, help="--precision high: target digits of the "
                                                         "entries.")]


def _holds(v: bool | None) -> str:
    return "yes" if v is True else ("NO" if v is False else "n/a")


@app.command("analyze")
@data_options
def analyze_cmd(
    activation: Annotated[
        str,
        typer.Argument(
            help="A built-in name (relu, elu:1.0, swish...), a formula in x such as "
            "'x*sigmoid(x)' or 'max(x, 0.1*x)' (numbers, pi, e, + - * / **, exp log log1p "
            "expm1 sqrt abs sin cos tan tanh sinh cosh atan asinh sigmoid softplus erf erfc "
            "ncdf npdf relu max min), or module:function (a Python function on torch tensors).",
        ),
    ],
    opts: DataOptions = DEFAULT_DATA,
    precision: AnalyzePrecisionOpt = P.PRECISION.default,
    digits: AnalyzeDigitsOpt = P.DIGITS.default,
    degree: Annotated[
        int, typer.Option("--degree", help="Hermite degree for coefficients and decay fit.")
    ] = 1000,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Count eigenvalues below threshold·λ_max (Thm 4.4 row)."),
    ] = 1e-12,
    normalize: NormalizeOpt = P.NORMALIZE.default,
    rows: Annotated[int, typer.Option("--rows", min=0, help="Hermite coefficients to print.")] = 8,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Report card: kink class, Hermite decay, dual kernel, spectrum and the paper's theorems
    checked on the data, with a verdict.

    Example: actspec analyze swish --data subspace --n 200 --span-dim 3 --plot swish.png

    Every theorem of SCIENCE §4 that applies is shown as claim / predicted / measured / holds?
    (Thm 4.1/4.2 kinks, 4.3 polynomial rank, 4.4 tiny eigenvalues of smooth activations, 4.5
    trace, Lemma I.1 / Thm 4.7 Hermite lower bound, and the zeros forced by antipodal points).
    """
    from ..experiments.theory import report_card

    if not 1 <= degree <= 20000:
        raise ActspecError(f"--degree must be between 1 and 20000 (got {degree})")
    if not 0 < threshold < 1:
        raise ActspecError(f"--threshold must be in (0, 1) (got {threshold})")
    outputs_ok((plot, "--plot"), (json_path, "--json"))
    ds = opts.load()
    if precision == "high" and ds.n > 600:
        raise ActspecError(f"--precision high is limited to n <= 600 (got {ds.n}); lower --n")
    with console.status("analysing...") if console.is_terminal else _null():
        card = report_card(
            activation,
            ds,
            precision=P.report_card_precision(precision),
            digits=digits,
            degree=degree,
            threshold=threshold,
            normalize=normalize,
        )
    _print_card(card, rows)
    if plot is not None:
        plot_report_card(card, plot)
        console.print(f"wrote {plot}")
    if json_path is not None:
        out = dict(card)
        out["meta"] = run_metadata()
        write_json(json_path, out)
        console.print(f"wrote {json_path}")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def _print_card(card: dict[str, Any], rows: int) -> None:
    a = card["activation"]
    k = card["kinks"]
    h = card["hermite"]
    d = card["data"]
    s = card["spectrum"]
    console.print(f"[bold]{a['name']}[/]  —  {a['formula'] or a['source']}")
    kink_lines = []
    for kk in k["kinks"]:
        if kk["order"] is None:
            kink_lines.append(f"x = {kk['location']:.6g}: a derivative is unbounded")
        else:
            kink_lines.append(
                f"x = {kk['location']:.10g}: φ^({kk['order']}) jumps by {kk['jump']:+.6g}"
            )
    agree = k.get("agrees_with_declared")
    agree_s = "" if agree is None else (" (matches the declared class)" if agree else
                                         f" (declared: order {k['declared_order']})")
    console.print(f"kink class: [bold]{k['kink_class']}[/]{agree_s}"
                  + ("; " + "; ".join(kink_lines) if kink_lines else ""))
    for note in k.get("notes", []):
        console.print(f"  note: {note}")
    c = np.asarray(h["coefficients"], dtype=float)
    shown = [(i, v) for i, v in enumerate(c) if abs(v) > 1e-14][:rows]
    console.print(
        "Hermite c_a of φ': " + ", ".join(f"c_{i} = {v:.5g}" for i, v in shown)
        + f"; E φ'(z)² = {h['E_dphi_squared']:.6g}"
    )
    dec = h["decay"]
    fit = h["decay_summary"]
    extra = ""
    if dec.get("a_range"):
        extra = (f" [fit on {dec['subsequence']} {dec['a_range'][0]}..{dec['a_range'][1]}, "
                 f"{dec['n_points']} points, {dec['source']}; preferred model: {dec['model']}]")
    console.print(f"decay: {fit}{extra}")
    dk = card["dual_kernel"]
    console.print(
        f"dual kernel E[φ'(u)φ'(v)]: {dk['at_rho_0']:.5g} at ρ = 0, {dk['at_rho_1']:.5g} at ρ = 1"
    )
    console.print(
        f"data: {d['name']}, n = {d['n']}, dim = {d['dim']}, span d0 = {d['span_dim']}, "
        f"δ = {d['delta'] if d['delta'] is None else format(d['delta'], '.4g')}"
        + (f", {d['antipodal_pairs']} antipodal pairs" if d.get("antipodal_pairs") else "")
    )
    prec = s.get("precision", "float64")
    lmin = s["lambda_min"]
    lmin_s = f"{lmin:.4g}" if lmin > s["resolution"] else f"{lmin:.3g} (below resolution)"
    cond = s["condition_number"]
    cond_s = ("≥" if s["condition_number_is_lower_bound"] else "") + f"{cond:.4g}"
    console.print(
        f"spectrum ({prec}{', ' + s['entries'] if prec == 'high' else ''}): λ_max = "
        f"{s['lambda_max']:.5g}, λ_min = {lmin_s}, condition number {cond_s}, trace = "
        f"{s['trace']:.6g}, resolution {s['resolution']:.2g}, "
        f"{s['n_below_threshold']} of {d['n']} below {card['settings']['threshold']:g}·λ_max"
    )
    if prec == "high":
        sec = s["seconds"]
        console.print(
            f"  extended precision: {s['digits']} digits, {s['eigensolver']}, entries "
            f"{sec['entries']:.1f} s, eigenvalues {sec['eigenvalues']:.1f} s"
        )
    table = Table(box=box.SIMPLE_HEAD, show_lines=False, title="theorems on this data")
    for col in ("claim", "source", "predicted", "measured", "holds?"):
        table.add_column(col, overflow="fold")
    for r in card["checks"]:
        table.add_row(r["claim"], r["source"], r["predicted"], r["measured"], _holds(r["holds"]))
    console.print(table)
    console.print(f"[bold]verdict:[/] {card['verdict']}")


