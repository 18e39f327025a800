"""``actspec model``: the empirical NTK of your own PyTorch model, for each activation swapped in."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.errors import ActspecError
from ..core.io import run_metadata, write_json
from ..experiments import params as P
from ._app import app
from .common import (
    DATA_PANEL,
    DEFAULT_DATA,
    DataOptions,
    JsonOpt,
    PlotOpt,
    TimingsOpt,
    console,
    data_options,
    err_console,
    outputs_ok,
)
from .options import option

DEFAULT_ACTIVATIONS = ["original", "relu", "tanh", "gelu"]
MODEL_PANEL = "Model"
TRAIN_PANEL = "Training"


def load_factory(spec: str) -> tuple[Any, str]:
    """``path/to/file.py:function`` or ``package.module:function`` -> (callable, label).

    Without ``:function`` the function ``build_model`` is used. Loading a file executes it."""
    text = str(spec).strip()
    if not text:
        raise ActspecError("give the model as path/to/file.py:build_model")
    where, sep, name = text.rpartition(":")
    if not sep or "/" in name or name.endswith(".py"):
        where, name = text, "build_model"
    if not name.isidentifier():
        raise ActspecError(f"bad model spec {spec!r}: the part after ':' must be a function name")
    path = Path(where).expanduser()
    if where.endswith(".py") or path.exists() or "/" in where:
        if not path.is_file():
            raise ActspecError(f"model file {where!r} does not exist (give path/to/file.py:build_model)")
        key = "actspec_user_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        mspec = importlib.util.spec_from_file_location(key, path)
        if mspec is None or mspec.loader is None:
            raise ActspecError(f"cannot load {where!r} as a Python file")
        module = importlib.util.module_from_spec(mspec)
        sys.modules[key] = module  # dataclasses and pickling look the module up by name
        added = str(path.resolve().parent)
        sys.path.insert(0, added)  # the file may import its neighbours
        try:
            mspec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file failing on import
            sys.modules.pop(key, None)
            raise ActspecError(
                f"loading {where!r} raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            ) from None
        finally:
            if added in sys.path:
                sys.path.remove(added)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ActspecError(
                f"cannot import module {where!r} ({exc}); give path/to/file.py:build_model") from None
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        have = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                      and getattr(v, "__module__", None) == module.__name__)
        hint = f"; it defines {', '.join(have[:8])}" if have else ""
        raise ActspecError(f"{where!r} has no function {name!r}{hint}")
    return fn, f"{path.name if path.is_file() else where}:{name}"


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None or not str(text).strip():
        return None
    try:
        shape = tuple(int(t) for t in str(text).replace("x", ",").split(",") if t.strip())
    except ValueError:
        raise ActspecError(
            f"--input-shape must be integers separated by commas, e.g. 3,32,32 (got {text!r})") from None
    if not shape or any(s < 1 for s in shape):
        raise ActspecError(f"--input-shape must be positive integers, e.g. 3,32,32 (got {text!r})")
    return shape


def _parse_outputs(text: str) -> str | int:
    t = str(text).strip().lower()
    if t.isdigit():
        return int(t)
    if t not in ("trace", "sum", "blocks"):
        raise ActspecError(f"--outputs must be trace, sum, blocks or an output index (got {text!r})")
    return t


def _parse_lr(text: str) -> float | str:
    t = str(text).strip().lower()
    if t == "auto":
        return "auto"
    try:
        v = float(t)
    except ValueError:
        raise ActspecError(f"--lr must be 'auto' (0.5/λ_max) or a positive number (got {text!r})") from None
    if not (math.isfinite(v) and v > 0):
        raise ActspecError(f"--lr must be 'auto' (0.5/λ_max) or a positive number (got {text!r})")
    return v


def _pm(s: dict[str, Any] | None, spec: str = ".3g", lower: bool = False) -> str:
    if not s:
        return "—"
    mark = "≥" if lower else ""
    if s["count"] > 1:
        return f"{mark}{format(s['mean'], spec)}±{format(s['std'], '.1g')}"
    return f"{mark}{format(s['mean'], spec)}"


def _caption(rows: list[dict[str, Any]], steps: int) -> str:
    closest = rows[0]["summary"]["closest_input_angle_deg"] if rows else None
    text = "mean±std over seeds; ∠∇f: angle (degrees) between the gradients ∇f of the closest input pair"
    if closest:
        text += f" (inputs {closest['mean']:.2f}° apart)"
    if steps:
        text += "; L: loss after the steps, measured and predicted by the eNTK (— : diverged)"
    return text


@app.command("model")
@data_options
def model_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="path/to/file.py:build_model (or package.module:function). The file is EXECUTED "
            "as Python code: only load files you trust.",
            show_default=False,
        ),
    ],
    activation: Annotated[
        list[str] | None,
        typer.Option("--activation", "-a", help="Activation swapped into every activation module "
                     "and functional call (repeat); 'original' keeps the model's own. A built-in name, "
                     "an expression such as 'x*sigmoid(x)', or module:function. Default: original relu "
                     "tanh gelu.", rich_help_panel=MODEL_PANEL),
    ] = None,
    opts: DataOptions = DEFAULT_DATA,
    labels: Annotated[
        str,
        typer.Option("--labels", help="Training targets: auto, random, none, or a .npy/.csv label file "
                     "(a seeded ±1 target when they do not match the model's outputs).",
                     rich_help_panel=DATA_PANEL),
    ] = "auto",
    input_shape: Annotated[
        str | None,
        typer.Option("--input-shape", help="Reshape each data row to this shape for the model, e.g. "
                     "3,32,32 for CIFAR-shaped CNNs (the product must equal --dim).",
                     rich_help_panel=MODEL_PANEL),
    ] = None,
    seeds: Annotated[
        int, typer.Option("--seeds", "--repeats", "-K", help="Number of weight seeds (seed, seed+1, "
                          "...): mean ± spread (--repeats, as in train).", rich_help_panel=MODEL_PANEL),
    ] = 3,
    params: Annotated[
        list[str] | None,
        typer.Option("--params", help="Parameters (or modules) the kernel differentiates, as named by "
                     "model.named_parameters() (repeat); default all.", rich_help_panel=MODEL_PANEL),
    ] = None,
    outputs: Annotated[
        str, typer.Option("--outputs", help="Several outputs: trace (Σ_c J_c J_cᵀ), sum (kernel of Σ_c f_c), "
                          "blocks (the nC x nC kernel) or an output index.", rich_help_panel=MODEL_PANEL),
    ] = "trace",
    train_steps: Annotated[
        int, typer.Option("--train-steps", "-T", help="Also train each variant this many steps (MSE, "
                          "½Σ‖f − y‖²) and compare with the loss the eNTK predicts.",
                          rich_help_panel=TRAIN_PANEL),
    ] = 0,
    lr: Annotated[
        str, typer.Option("--lr", help="Step size: auto (0.5/λ_max of each variant's eNTK) or a number.",
                          rich_help_panel=TRAIN_PANEL),
    ] = "auto",
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "-B", help="SGD with this batch size (default: full-batch "
                                 "GD).", rich_help_panel=TRAIN_PANEL),
    ] = None,
    log_every: Annotated[
        int | None, typer.Option("--log-every", help="Record the loss every k steps (default steps/100).",
                                 rich_help_panel=TRAIN_PANEL),
    ] = None,
    dtype: Annotated[str, option(P.DTYPE, help="float64 or float32 (kernels accumulate in float64).",
                                 panel=MODEL_PANEL)] = P.DTYPE.default,
    device: Annotated[str, option(P.DEVICE, panel=MODEL_PANEL)] = P.DEVICE.default,
    memory: Annotated[
        float | None, typer.Option("--memory", help="MiB for entk's working arrays (default: a power "
                                   "of two up to half the available memory, at most 8 GiB).",
                                   rich_help_panel=MODEL_PANEL),
    ] = None,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """eNTK spectrum at initialisation of YOUR model, for each activation swapped in, and (with
    --train-steps) whether it ranks the activations the way training does.

    Example: actspec model examples/models/mlp.py:build_model --data sphere --dim 32 --n 200
    -a relu -a tanh -a gelu --seeds 5 --train-steps 200 --json m.json --plot m.png

    The file is executed (it is Python code: load only files you trust). Its function is called,
    after torch.manual_seed(seed), with the keywords it accepts among seed, in_features (length of
    a data row) and input_shape (the --input-shape tuple, or (dim,)), and must return an
    nn.Module mapping a batch (n, *input_shape) to outputs (n,) or (n, C). Batch norm and dropout
    are put in eval mode. Reported per activation (mean ± spread over seeds): λ_min, λ_max,
    condition number, effective rank of the eNTK Θ, and the angle between the gradients ∇f(x_i),
    ∇f(x_j) of the closest input pairs (Liu & Hui), cos = Θ_ij/√(Θ_ii Θ_jj).
    """
    outputs_ok((plot, "--plot"), (json_path, "--json"))
    if seeds < 1:
        raise ActspecError(f"--seeds must be >= 1 (got {seeds})")
    if train_steps < 0:
        raise ActspecError(f"--train-steps must be >= 0 (got {train_steps})")
    if batch_size is not None and batch_size < 1:
        raise ActspecError(f"--batch-size must be >= 1 (got {batch_size})")
    if memory is not None and not (math.isfinite(memory) and memory >= 1):
        raise ActspecError(f"--memory must be at least 1 MiB (got {memory})")
    shape = parse_shape(input_shape)
    out_mode = _parse_outputs(outputs)
    lr_value = _parse_lr(lr)
    acts = activation or list(DEFAULT_ACTIVATIONS)
    from ..activations import activation as make_activation

    for a in acts:  # every activation checked before any work
        if a.strip().lower() != "original":
            make_activation(a)
    factory, label = load_factory(model)
    ds = opts.load(labels=labels)
    from ..experiments.model import model_study

    seed_list = [opts.seed + k for k in range(seeds)]

    def show(msg: str) -> None:
        err_console.print(f"[yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)

    shown: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model_study(
            factory, ds.X, ds.y if train_steps else None, acts, seeds=seed_list, input_shape=shape,
            params=params or None, outputs=out_mode, dtype=dtype, device=device,
            memory=None if memory is None else int(memory * 2**20), train_steps=train_steps,
            lr=lr_value, batch_size=batch_size, log_every=log_every, data_seed=opts.seed, label=label,
        )
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in shown:
            shown.add(text)
            show(text)
    rows = out["results"]
    info = out["model"]
    table = Table(
        title=(f"eNTK at initialisation — {label} ({info['class']}, {info['parameters']:,} parameters, "
               f"{info['outputs']} output(s)) on {ds.name}: n={ds.n}, input {tuple(out['input_shape'])}, "
               f"{len(seed_list)} seed(s)"),
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
        caption=_caption(rows, train_steps),
    )
    cols = ["activation", "class", "λ_min", "λ_max", "cond", "eff.rank", "∠∇f"]
    if train_steps:
        cols += [f"L({train_steps})", "L pred"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("activation", "class") else "right", no_wrap=True)
    for r in rows:
        s = r["summary"]
        ang = _pm(s["closest_gradient_angle_deg"], ".3g")
        cells = [r["activation"], r["kink_class"] or "—", _pm(s["lambda_min"]), _pm(s["lambda_max"]),
                 _pm(s["condition_number"], lower=r["condition_number_is_lower_bound"]),
                 _pm(s["effective_rank"]), ang]
        if train_steps:
            cells += [_pm(s["final_loss"]), _pm(s["final_predicted_loss"])]
        table.add_row(*cells)
    console.print(table)
    rk = out["ranking"]
    if rk.get("by_condition_number"):
        console.print("condition number (small trains fast): " + " < ".join(rk["by_condition_number"]))
    if rk.get("by_final_loss"):
        console.print(f"measured loss after {train_steps} steps: " + " < ".join(rk["by_final_loss"]))
        console.print("predicted by the eNTK:              " + " < ".join(rk["by_predicted_loss"]))
        agree = rk.get("condition_number_ranks_like_training")
        console.print(f"the condition number ranks the activations the way training does: "
                      f"{'yes' if agree else 'no'}; the eNTK's predicted loss does: "
                      f"{'yes' if rk.get('prediction_ranks_like_training') else 'no'}")
    if any(r["condition_number_is_lower_bound"] for r in rows):
        console.print("[yellow]note:[/] some λ_min are below float64 resolution (n·eps·λ_max): those "
                      "condition numbers are lower bounds (≥).")
    if plot is not None:
        from ..plots.model import plot_model

        plot_model(rows, plot, title=f"{label} on {ds.name} (n={ds.n})", steps=train_steps)
        console.print(f"wrote {plot}")
    if json_path is not None:
        settings = {
            "model": model, "activations": acts, "seeds": seed_list, "input_shape": out["input_shape"],
            "params": params, "outputs": out_mode, "train_steps": train_steps, "lr": lr_value,
            "batch_size": batch_size, "log_every": log_every, "dtype": dtype, "device": device,
            "memory_mib": memory, "data": opts.data, "seed": opts.seed, "labels": labels,
        }
        write_json(json_path, {
            "settings": settings,
            "data": {"n": ds.n, "dim": ds.dim, "name": ds.name, **ds.info},
            "model": info, "targets": out["targets"], "results": rows, "ranking": rk,
            "warnings": sorted(shown), "meta": run_metadata(),
        }, timings=timings)
        console.print(f"wrote {json_path}")
