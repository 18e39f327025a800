"""The built-in task kinds of a sweep: spectrum, depth, analyze, train (and the hidden ``_probe``
that tests the machinery). Each is ``params -> dict`` over the same parameter declarations as the
command of the same name (:mod:`actspec.experiments.params`); the experiments are imported only
when a task runs (fast start)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from ..experiments import params as P
from ..experiments.params import Param
from .grid import register_task

__all__ = ["DATA_PARAMS", "load_task_data"]

# ============================================================================ built-in kinds

#: the data parameters of a task: the commands' data options plus the data-only seed
DATA_PARAMS = (*P.DATA_PARAMS[:6], P.DATA_SEED, *P.DATA_PARAMS[6:])


def load_task_data(p: Mapping[str, Any], labels: str = "auto") -> Any:
    """The data set of a task's data parameters (the commands' :class:`DataSpec`, with
    ``data_seed`` for the data when given)."""
    from ..experiments.data import DataSpec

    seed = p["seed"] if p.get("data_seed") is None else p["data_seed"]
    spec = DataSpec(**{q.name: p.get(q.name, q.default) for q in P.DATA_PARAMS if q.name != "seed"},
                    seed=seed)
    return spec.load(labels=labels)


def _data_columns(ds: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"n": ds.n, "dim": ds.dim}
    if ds.info.get("span_dim") is not None:
        out["span_dim"] = ds.info["span_dim"]
    return out


def _check_activation(p: Mapping[str, Any]) -> None:
    from ..activations.registry import activation

    activation(p["activation"])  # raises ActspecError for unknown names


@functools.lru_cache(maxsize=256)
def _activation_ok(spec: str) -> bool:
    _check_activation({"activation": spec})
    return True


def _check_spectrum(p: Mapping[str, Any]) -> None:
    _activation_ok(p["activation"])


@register_task(
    "spectrum",
    params=(
        P.ACTIVATION,
        P.WIDTH,
        *DATA_PARAMS,
        P.TRAIN,
        P.INIT,
        P.NORMALIZE,
        P.DTYPE,
        P.DEVICE,
    ),
    metrics=("lambda_min", "lambda_max", "condition_number"),
    doc="G-matrix spectrum of one activation at one width (actspec spectrum)",
    check=_check_spectrum,
)
def spectrum_task(p: dict[str, Any]) -> dict[str, Any]:
    """Spectrum of G for one (activation, width) on one data set: ``run_spectrum``'s row."""
    from ..experiments.spectrum import run_spectrum

    ds = load_task_data(p)
    width = None if p["width"] == "inf" else int(p["width"])
    [row] = run_spectrum(
        ds.X, [p["activation"]], [width], train=p["train"], init=p["init"],
        normalize=p["normalize"], seed=p["seed"], dtype=p["dtype"], device=p["device"],
    )
    out = {k: v for k, v in row.items() if k not in ("activation", "width", "name")}
    out["act_name"] = row["name"]
    out.update(_data_columns(ds))
    return out


@register_task(
    "_probe",
    params=(
        Param("value", "float", 0.0),
        Param("sleep", "float", 0.0),
        Param("fail", "bool", False),
        Param("crash", "bool", False),
        Param("crash_once", "str", None),
        Param("seed", "int", 0),
    ),
    metrics=("square",),
    doc="diagnostics of the sweep machinery (sleep, fail, crash the worker)",
    hidden=True,
)
def probe_task(p: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``sleep`` s; raises when ``fail``; kills its worker when ``crash`` (or the first
    time for a ``crash_once`` marker path); returns value² and a small array."""
    if p["sleep"]:
        time.sleep(p["sleep"])
    if p["fail"]:
        raise ValueError(f"probe failure requested (value={p['value']})")
    marker = p.get("crash_once")
    if p["crash"] or (marker and not os.path.exists(marker)):
        if marker:
            Path(marker).write_text("crashed once\n")
        os._exit(17)
    v = float(p["value"])
    return {"square": v * v, "pid": os.getpid(), "series": np.arange(3.0) * v}


# ---------------------------------------------------------------------------- the other kinds
# Registered at import; their modules are imported only when a task runs (fast start).


def _register_kinds() -> None:
    _register_train()
    _register_depth()
    _register_analyze()


def _num(v: Any) -> Any:
    """Numbers written as strings (extended-precision results) as floats."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _register_depth() -> None:
    from ..experiments.depth import SPECTRUM_MODES as modes
    from ..kernels.deep import KERNELS as kernels

    @register_task(
        "depth",
        params=(
            P.ACTIVATION,
            Param("depth", "int", 1, "number of hidden layers L", minimum=1),
            P.WIDTH.but(help="'inf' for the exact infinite-width kernels, or the width m of a random "
                        "network (empirical kernels at initialisation)."),
            Param("kernel", "str", "ntk", "ntk, penultimate or nngp", choices=kernels),
            Param("scaling", "str", "cphi", "sigma_w^2: cphi, he, raw or a number"),
            Param("bias", "float", 0.0, "bias standard deviation"),
            Param("spectrum_mode", "str", "auto", "auto, full or extremes", choices=modes),
            Param("angle_bins", "int", 24, "bins of the gradient-angle curve", minimum=1),
            *DATA_PARAMS,
            P.DTYPE,
            P.DEVICE,
        ),
        metrics=("condition_number", "lambda_min", "lambda_max"),
        doc="spectrum of the depth-L kernel and gradient angles (actspec depth)",
        check=_check_spectrum,
    )
    def depth_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p)
        if p["depth"] < 1:
            raise ActspecError(f"depth must be >= 1 (got {p['depth']})")
        scaling: str | float = _num(p["scaling"])
        from ..experiments.depth import depth_study

        [rec] = depth_study(
            ds.X, [p["activation"]], [p["depth"]],
            width=None if p["width"] == "inf" else int(p["width"]),
            kernel=p["kernel"], scaling=scaling, bias=p["bias"], seed=p["seed"],
            spectrum_mode=p["spectrum_mode"], angle_bins=p["angle_bins"], dtype=p["dtype"],
            device=p["device"],
        )
        out = {k: v for k, v in rec.items()
               if k not in ("activation", "depth", "width", "kernel", "scaling", "bias")}
        out["act_name"] = rec["activation"]
        out["scaling_value"] = rec.get("scaling") if not isinstance(rec.get("scaling"), str) else None
        out.update(_data_columns(ds))
        return out


def _register_analyze() -> None:

    @register_task(
        "analyze",
        params=(
            P.ACTIVATION,
            P.PRECISION,
            P.DIGITS,
            Param("degree", "int", 1000, "Hermite degree", minimum=1),
            Param("threshold", "float", 1e-12, "relative threshold for tiny eigenvalues"),
            P.NORMALIZE,
            *DATA_PARAMS,
        ),
        metrics=("lambda_min", "condition_number", "decay_model"),
        doc="report card: kink class, Hermite decay, spectrum, theorem checks (actspec analyze)",
        check=_check_spectrum,
    )
    def analyze_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p)
        from ..experiments.theory import report_card

        card = report_card(
            p["activation"], ds, precision=P.report_card_precision(p["precision"]),
            digits=p["digits"], degree=p["degree"],
            threshold=p["threshold"], normalize=p["normalize"],
        )
        kinks = card.get("kinks") or {}
        herm = card.get("hermite") or {}
        decay = herm.get("decay") or {}
        data = card.get("data") or {}
        spec = card.get("spectrum") or {}
        spec64 = card.get("spectrum_float64") or {}
        out: dict[str, Any] = {
            "act_name": (card.get("activation") or {}).get("name"),
            "kink_class": kinks.get("kink_class"),
            "kink_order": kinks.get("kink_order"),
            "polynomial_degree": kinks.get("polynomial_degree"),
            "E_dphi_squared": herm.get("E_dphi_squared"),
            "decay_model": decay.get("model"),
            "decay_summary": decay.get("summary"),
            "decay_parity": decay.get("parity"),
            "decay_power_exponent": decay.get("power_exponent"),
            "decay_predicted_exponent": decay.get("predicted_exponent"),
            "decay_stretched_rate": decay.get("stretched_rate"),
            "decay_stretched_kappa": decay.get("stretched_kappa"),
            "delta": data.get("delta"),
            "min_distance": data.get("min_distance"),
            "antipodal_pairs": data.get("antipodal_pairs"),
            "verdict": card.get("verdict"),
        }
        for key in ("lambda_min", "lambda_max", "condition_number", "condition_number_is_lower_bound",
                    "trace", "effective_rank", "resolution", "n_below_threshold", "precision"):
            if key in spec:
                out[key if key != "precision" else "spectrum_precision"] = _num(spec[key])
        for chk in card.get("checks") or []:
            if isinstance(chk, dict) and chk.get("check"):
                out[f"check_{str(chk['check']).replace(' ', '_')}"] = chk.get("holds")
        ev = spec.get("eigenvalues")
        if ev is None or (len(ev) and isinstance(ev[0], str)):
            ev = spec64.get("eigenvalues") if ev is None else [float(v) for v in ev]
        if ev is not None:
            out["eigenvalues"] = np.asarray(ev, dtype=np.float64)
        if herm.get("coefficients") is not None:
            out["hermite_coefficients"] = np.asarray(herm["coefficients"], dtype=np.float64)
        out.update(_data_columns(ds))
        return out


def _register_train() -> None:

    @register_task(
        "train",
        params=(
            P.ACTIVATION,
            P.WIDTH.but(type="int", default=None, required=True, minimum=1,
                        help="Number of hidden neurons m (e.g. 1e5)."),
            Param("lr", "float", None, "learning rate in the units of G", required=True),
            Param("epochs", "int", None, "epochs of gradient descent", required=True, minimum=1),
            *DATA_PARAMS,
            P.TRAIN.but(help="hidden: only W trained (DZPS); both: W and a.",
                        choices=("hidden", "both")),
            P.INIT,
            Param("loss", "str", "mse", "mse or ce", choices=("mse", "ce")),
            P.LABELS,
            Param("batch_size", "int", None, "SGD batch size (default full batch)", minimum=1),
            Param("repeats", "int", 1, "independent weight draws, averaged", minimum=1),
            Param("log_every", "int", None, "log every k-th epoch", minimum=1),
            Param("target_loss", "float", None, "loss for the epochs-to-target comparison"),
            P.NORMALIZE,
            P.DTYPE.but(default="float32", help="Training arithmetic: float32 or float64 (spectra "
                        "are always float64)."),
            P.DEVICE,
        ),
        metrics=("final_loss", "epochs_to_target", "predicted_epochs_to_target", "lambda_min"),
        doc="train the two-layer net and compare with the spectrum's prediction (actspec train)",
        check=_check_spectrum,
    )
    def train_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p, labels=p["labels"])
        from ..experiments.training import train

        res = train(
            ds.X, ds.y, [p["activation"]], width=p["width"], lr=p["lr"], epochs=p["epochs"],
            train=p["train"], init=p["init"], loss=p["loss"], batch_size=p["batch_size"],
            repeats=p["repeats"], seed=p["seed"], log_every=p["log_every"],
            target_loss=p["target_loss"], normalize=p["normalize"], dtype=p["dtype"],
            device=p["device"], on_warning=lambda msg: None,
        )
        if not res["results"]:
            raise RuntimeError("training returned no result")
        row = dict(res["results"][0])
        row.pop("runs", None)
        out = {k: v for k, v in row.items() if k not in ("activation", "name")}
        out["act_name"] = row.get("name")
        out["interrupted"] = bool(res.get("interrupted"))
        out["warnings"] = list(res.get("warnings") or [])
        out.update(_data_columns(ds))
        return out


_register_kinds()
