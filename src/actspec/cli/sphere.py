"""``actspec sphere``: the Mercer spectrum of G∞ on the sphere, degree by degree, and its decay."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.errors import ActspecError
from ..core.io import run_metadata, write_json
from ..core.validate import ParameterError, check_int
from ..experiments import params as P
from ._app import app
from .common import JsonOpt, PlotOpt, TimingsOpt, console, outputs_ok
from .options import option

DEFAULT_ACTIVATIONS = ["relu", "tanh", "elu"]


def _parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:\.\.|-|:|,)\s*(\d+)\s*", text)
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise ActspecError(f"--fit-range must look like LO..HI with LO < HI, e.g. 20..400 (got {text!r})")
    return int(m.group(1)), int(m.group(2))


def _law_text(law: Any) -> str:
    if law.law == "power":
        return f"power ({law.parity})"
    if law.law == "stretched exponential":
        return f"exp(-{law.rate:.3g} k^{law.stretch:.2f})"
    if law.law == "finite":
        return f"finite (k ≤ {law.last_nonzero})"
    return "undetermined"


def _predicted_text(res: Any) -> str:
    law = res.decay
    if law.predicted_exponent is not None:
        return f"k^{law.predicted_exponent:g}"
    if res.kink_class == "smooth":
        return "faster than any power"
    return "—"


def _fitted_text(law: Any) -> str:
    if law.law == "power" and law.exponent is not None:
        return f"k^{law.exponent:.3f} ± {law.exponent_error:.1g}"
    if law.law == "stretched exponential" and law.local_exponent is not None:
        return f"local k^{law.local_exponent:.1f}"
    return "—"


@app.command("sphere")
def sphere_cmd(
    activation: Annotated[
        list[str] | None,
        typer.Option(
            "--activation",
            "-a",
            help="Activation (repeat for several): a built-in (relu, leaky_relu:0.2, elu, selu, "
            "gelu, swish, softplus, tanh, sigmoid, erf, linear, quadratic, cubic) or an "
            "expression such as 'x*sigmoid(x)'. Default: relu tanh elu.",
        ),
    ] = None,
    dim: Annotated[
        int, typer.Option("--dim", help="Input dimension d: data uniform on the sphere S^(d-1) ⊂ R^d.")
    ] = 3,
    degree: Annotated[
        int, typer.Option("--degree", "-k", help="Highest spherical-harmonic degree K (mu_0..mu_K).")
    ] = 100,
    train: Annotated[
        str, typer.Option("--train", help="hidden: G∞ (only W trained); both: G∞ + H∞; output: H∞.")
    ] = "hidden",
    depth: Annotated[
        int,
        typer.Option("--depth", help="Hidden layers L (> 1: the deep kernels; hidden = the "
                     "penultimate-layer G, both = the NTK, output = the NNGP kernel)."),
    ] = 1,
    init: Annotated[str, typer.Option("--init", help="dzps (default), fanin or fanout.")] = "dzps",
    normalize: Annotated[
        bool, typer.Option("--normalize", help="Scale phi so that E phi(z)^2 = 1 (the paper's c_phi).")
    ] = False,
    precision: Annotated[
        str,
        option(P.PRECISION, help="double (float64, fast; resolves mu_k down to ~1e-15 mu_0 by "
               "quadrature) or high (extended precision, digits chosen automatically)."),
    ] = P.PRECISION.default,
    digits: Annotated[
        int | None, typer.Option("--digits", help="With --precision high: fix the number of digits.")
    ] = None,
    fit_range: Annotated[
        str | None,
        typer.Option("--fit-range", help="Degrees of the decay fit, LO..HI (default: K/10..K)."),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option("--sample", help="Also: eigenvalues of G∞/n for n = SAMPLE uniform points on "
                     "the sphere, grouped by degree (dense, n <= 5000)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --sample points.")] = 0,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """Eigenvalues mu_k of G∞ for data uniform on the sphere (Funk-Hecke), and how fast they decay.

    Degree k has eigenvalue mu_k with multiplicity N(d, k). ReLU (kink class J_1) decays like
    k^-d, ELU (J_2) like k^(-d-2), smooth activations faster than any power: the table shows the
    fitted law next to the predicted exponent -d - 2r + 2 and the degrees that vanish.

    Example: actspec sphere -a relu -a tanh -a elu --dim 3 --degree 200 --plot mercer.png --json m.json
    """
    from ..activations import activation as make_activation
    from ..experiments.sphere import sample_spectrum
    from ..spectra.sphere import MAX_DIGITS, check_high, check_settings, sphere_spectrum, trace_identity

    names = list(activation or DEFAULT_ACTIVATIONS)
    d, K, tr, L, ini, prec = check_settings(dim, degree, train, depth, init, precision)
    if digits is not None:
        if prec != "high":
            raise ParameterError("{-digits} is only used with {-precision} high")
        check_int(digits, "digits", minimum=10, maximum=MAX_DIGITS)
    if sample is not None:
        check_int(sample, "sample", minimum=2, maximum=5000)
    if prec == "high":
        check_high(names, tr, L, ini)
    rng = _parse_range(fit_range)
    if rng is not None and rng[1] > K:
        raise ActspecError(f"--fit-range {fit_range} goes beyond --degree {K}")
    outputs_ok((plot, "--plot"), (json_path, "--json"))
    acts = [make_activation(n) for n in names]  # unknown names fail here, before any work

    results: list[dict[str, Any]] = []
    rows = []
    for a in acts:
        res = sphere_spectrum(a, d, K, train=tr, depth=L, init=ini, normalize=normalize,  # type: ignore[arg-type]
                                precision=prec, digits=digits, fit_range=rng)  # type: ignore[arg-type]
        out = res.to_dict()
        out["trace"] = trace_identity(res)
        if sample is not None:
            out["sample"] = sample_spectrum(a, d, sample, seed=seed, train=tr, depth=L,  # type: ignore[arg-type]
                                              init=ini, normalize=normalize, spectrum=res)
        results.append(out)
        rows.append(res)

    table = Table(title=f"Mercer spectrum on S^{d - 1} (d = {d}, degrees 0..{K}, train={tr}, "
                        f"depth {L}, {prec} precision)", box=box.SIMPLE_HEAD)
    for col, just in (("activation", "left"), ("class", "left"), ("decay law", "left"),
                      ("predicted", "right"), ("fitted", "right"), ("zero degrees", "left"),
                      ("resolved", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for res in rows:
        law = res.decay
        assert law is not None
        table.add_row(res.activation, res.kink_class, _law_text(law), _predicted_text(res),
                      _fitted_text(law), res.zero_pattern or "none",
                      f"{int(res.resolved.sum())}/{K + 1}")
    console.print(table)
    console.print("fitted: e in mu_k ~ k^e (log mu = c + e log k + f/k over the fit range, ± its "
                  "standard error; for a stretched exponential the local log-log slope at the end); "
                  "predicted: -d - 2r + 2 for class J_r (Bietti & Bach 2021); resolved: degrees "
                  "known to 1 % (--precision high resolves more).")
    for out in results:
        if out.get("sample"):
            smp = out["sample"]
            parts = [f"k={g['degree']}×{g['multiplicity']}: {100 * g['relative_error']:+.1f}%"
                     for g in smp["groups"][:6]]
            console.print(f"{out['activation']}: G∞/n on n={smp['n']} points vs mu_k: " + ", ".join(parts))
    if plot is not None:
        from ..plots.sphere import plot_mercer

        plot_mercer(results, plot)
        console.print(f"wrote {plot}")
    if json_path is not None:
        settings = {"activations": names, "dim": d, "degree": K, "train": tr, "depth": L, "init": ini,
                    "normalize": normalize, "precision": prec, "digits": digits,
                    "fit_range": list(rng) if rng else None, "sample": sample, "seed": seed}
        write_json(json_path, {"settings": settings, "results": results, "meta": run_metadata()},
                   timings=timings)
        console.print(f"wrote {json_path}")
