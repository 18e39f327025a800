"""``actspec train``: train the two-layer net and compare with the loss the spectrum predicts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.errors import ActspecError, Interrupted
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
    interruptible,
    is_tty,
    outputs_ok,
    parse_width,
)
from .options import option
from .progress import epoch_progress

DEFAULT_ACTIVATIONS = ["relu", "elu", "tanh", "swish"]
TRAIN_PANEL = "Training"

TrainActivationsOpt = Annotated[list[str] | None, option(
    P.ACTIVATION, "-a", help="Activation (repeat for several; all share data, labels and weight "
    "seeds). Default: relu elu tanh swish.")]
TrainLabelsOpt = Annotated[str, option(
    P.LABELS, panel=DATA_PANEL, help="auto (random ±1 for synthetic data, the classes of real "
    "data), random, or a .npy/.csv label file.")]
TrainWidthOpt = Annotated[str, option(P.WIDTH, "-m", help="Number of hidden neurons m (e.g. 1e5).",
                                      panel=TRAIN_PANEL)]
TrainTrainOpt = Annotated[str, option(P.TRAIN, help="hidden: only W trained (DZPS); both: W and a.",
                                      panel=TRAIN_PANEL)]
TrainInitOpt = Annotated[str, option(P.INIT, panel=TRAIN_PANEL)]
TrainNormalizeOpt = Annotated[bool, option(P.NORMALIZE, panel=TRAIN_PANEL)]
TrainDeviceOpt = Annotated[str, option(P.DEVICE, panel=TRAIN_PANEL)]
TrainDtypeOpt = Annotated[str, option(P.DTYPE, help="Training arithmetic: float32 or float64 (spectra "
                                      "are always float64).", panel=TRAIN_PANEL)]


def _refuse_if_all_diverged(results: list[dict[str, Any]], lr: float, interrupted: bool) -> None:
    """One error line (exit 2) when every activation's loss overflowed to inf/NaN (a learning
    rate far beyond 2/λ_max, e.g. --lr 1e308): the table would show nothing. A divergence that
    is caught while the loss is still finite (> 10^6 L(0)) is a result, shown in the table."""
    if interrupted or not results or any(
        r.get("status") != "diverged" or r.get("loss_at_divergence") is not None for r in results
    ):
        return
    parts = []
    for r in results:
        step = r.get("diverged_at_epoch")
        parts.append(f"{r['activation']}: the loss became inf or NaN at step {step}")
    limits = [float(r["lr_limit"]) for r in results if r.get("lr_limit")]
    hint = (f"GD is stable below --lr 2/λ_max = {min(limits):.4g} of the kernel at "
            f"initialisation: use a smaller --lr, e.g. --lr {0.5 * min(limits):.3g}"
            if limits else "use a smaller --lr")
    raise ActspecError(f"training diverged (--lr {lr:g}): {'; '.join(parts)}; {hint}")


def _g(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    return format(float(x), spec)


@app.command("train")
@data_options
def train_cmd(
    activation: TrainActivationsOpt = None,
    opts: DataOptions = DEFAULT_DATA,
    labels: TrainLabelsOpt = P.LABELS.default,
    width: TrainWidthOpt = "10000",
    lr: Annotated[
        float,
        typer.Option(
            "--lr",
            help="Learning rate η in the units of the G-matrix (u ← u − η G ∇L; for --init "
            "fanin/fanout the per-layer steps are rescaled as in the paper, appendix D.1). "
            "GD diverges above 2/λ_max.",
            rich_help_panel=TRAIN_PANEL,
        ),
    ] = 0.01,
    epochs: Annotated[
        int, typer.Option("--epochs", "-T", help="Number of epochs.", rich_help_panel=TRAIN_PANEL)
    ] = 1000,
    train: TrainTrainOpt = P.TRAIN.default,
    init: TrainInitOpt = P.INIT.default,
    loss: Annotated[
        str,
        typer.Option("--loss", help="mse: 1/2 Σ (y − f)²; ce: softmax cross-entropy over the classes.",
                     rich_help_panel=TRAIN_PANEL),
    ] = "mse",
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "-B", rich_help_panel=TRAIN_PANEL,
                     help="Mini-batch SGD with this batch size (default: full-batch GD)."),
    ] = None,
    repeats: Annotated[
        int,
        typer.Option("--repeats", "-K", help="Average over K weight seeds (seed, seed+1, ...); "
                     "the plot shows the min–max band.", rich_help_panel=TRAIN_PANEL),
    ] = 1,
    log_every: Annotated[
        int | None,
        typer.Option("--log-every", help="Log (and recompute G(t) for the drift) every k epochs "
                     "(default: epochs/100).", rich_help_panel=TRAIN_PANEL),
    ] = None,
    target_loss: Annotated[
        float | None,
        typer.Option("--target-loss", help="Loss for the epochs-to-target comparison (default: "
                     "1% of the loss of the zero predictor).", rich_help_panel=TRAIN_PANEL),
    ] = None,
    normalize: TrainNormalizeOpt = P.NORMALIZE.default,
    infinite: Annotated[
        bool,
        typer.Option("--infinite/--no-infinite", help="Also predict from the infinite-width G∞.",
                     rich_help_panel=TRAIN_PANEL),
    ] = True,
    dtype: TrainDtypeOpt = "float32",
    device: TrainDeviceOpt = P.DEVICE.default,
    plot: PlotOpt = None,
    json_path: JsonOpt = None,
    timings: TimingsOpt = False,
) -> None:
    """Train the two-layer net for each activation; put the measured loss next to the loss the
    spectrum of G at initialisation predicts, ½‖(I − ηG)^t (y − u(0))‖².

    Example: actspec train -a relu -a tanh --data circle --n 10 --preprocess paper
    --width 100000 --lr 0.1 --epochs 500 --plot train.png --json train.json

    gram_drift = ‖G(t) − G(0)‖_F/‖G(0)‖_F tells when the prediction can hold (small for wide
    nets; large for narrow nets, large η, cross-entropy). Ctrl-C stops early and keeps the epochs
    done so far in the JSON and the figure.
    """
    from ..experiments.training import train as run_train

    outputs_ok((plot, "--plot"), (json_path, "--json"))
    m = parse_width(width)
    if m is None:
        raise ActspecError("training needs a finite --width (number of neurons), e.g. --width 10000")
    acts = activation or list(DEFAULT_ACTIVATIONS)
    loss_key = str(loss).strip().lower()
    ds = opts.load(labels=labels)

    pending: list[str] = []  # warnings are printed after training (a refusal stays one line)

    def on_warning(msg: str) -> None:
        if msg not in pending:
            pending.append(msg)

    def flush_warnings() -> None:
        for msg in pending:
            err_console.print(f"[yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)
        pending.clear()

    try:
        with interruptible(), epoch_progress(is_tty()) as prog:
            out = run_train(
                ds.X, ds.y, acts, width=m, lr=lr, epochs=epochs, train=str(train).strip().lower(),
                init=init, loss=loss_key, batch_size=batch_size, repeats=repeats, seed=opts.seed,
                log_every=log_every, target_loss=target_loss, normalize=normalize, dtype=dtype,
                device=device, infinite=infinite, on_progress=prog, on_warning=on_warning,
            )
    except Interrupted:
        flush_warnings()
        raise
    settings = out["settings"]
    results = out["results"]
    target = settings["target_loss"]
    _refuse_if_all_diverged(results, lr, out["interrupted"])
    flush_warnings()

    table = Table(
        title=(
            f"Training — {ds.name}: n={ds.n}, dim={ds.dim}, m={m:,}, η={lr:g}, "
            f"{settings['loss']}, train={settings['train']}, init={settings['init']}"
            + (f", batch {settings['batch_size']}" if settings["batch_size"] else ", full batch")
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=(
            f"λ of G(0); L(T) measured and predicted from G(0) at the last epoch; T→tgt: epochs "
            f"to loss ≤ {target:.3g}, measured and predicted; drift = ||G(T)−G(0)||/||G(0)||"
        ),
    )
    cols = ("activation", "status", "λmin", "λmax", "L(0)", "L(T)", "pred", "T→tgt", "pred",
            "ratio", "drift", "ΔW/W", "s/ep")
    for c in cols:
        table.add_column(c, justify="left" if c in ("activation", "status") else "right", no_wrap=True)
    for r in results:
        table.add_row(
            r["activation"],
            r["status"],
            _g(r.get("lambda_min"), ".2g"),
            _g(r.get("lambda_max"), ".3g"),
            _g(r["loss"][0] if r["loss"] else None, ".3g"),
            _g(r["loss"][-1] if r["loss"] else None, ".3g"),
            _g(r["predicted_loss"][-1] if r["predicted_loss"] else None, ".3g"),
            _g(r.get("epochs_to_target"), ",.0f"),
            _g(r.get("predicted_epochs_to_target"), ",.0f"),
            _g(r.get("epochs_ratio"), ".3f"),
            _g(r["gram_drift"][-1] if r["gram_drift"] else None, ".1e"),
            _g(r["weight_movement_relative"][-1] if r.get("weight_movement_relative") else None, ".2g"),
            _g(r.get("seconds_per_epoch"), ".2g"),
        )
    console.print(table)
    if out["ordering"]:
        order = " < ".join(
            f"{r['activation']} ({_g(r['epochs_to_target'], ',.0f')})"
            for name in out["ordering"]
            for r in results
            if r["activation"] == name
        )
        console.print(f"epochs to reach loss ≤ {target:.3g}: {order}")
    unreached = [r["activation"] for r in results if r.get("epochs_to_target") is None]
    if unreached:
        console.print(f"not reaching loss ≤ {target:.3g} within {settings['epochs']} epochs: "
                      + ", ".join(unreached))

    if plot is not None and results:
        from ..plots.training import plot_training

        stopped = [r.get("interrupted_at_epoch") for r in results for r in r.get("runs", [])
                   if r.get("status") == "interrupted"]
        mark = (f" — INTERRUPTED at epoch {stopped[0]}" if stopped and stopped[0] is not None
                else (" — INTERRUPTED" if out["interrupted"] else ""))
        plot_training(
            results, plot, target_loss=target, loss=settings["loss"],
            title=f"{ds.name} n={ds.n}, m={m:,}, η={lr:g} ({settings['loss']}): "
            "measured (solid) vs predicted (dashed)" + mark,
        )
        console.print(f"wrote {plot}")
    if json_path is not None:
        settings = {
            **settings,
            "activations": acts,
            "data": opts.data,
            "seed": opts.seed,
            "labels": labels,
            "infinite": infinite,
        }
        write_json(
            json_path,
            {
                "settings": settings,
                "data": {"n": ds.n, "dim": ds.dim, **ds.info},
                "results": results,
                "ordering": out["ordering"],
                "interrupted": out["interrupted"],
                "warnings": out["warnings"],
                "meta": run_metadata(),
            },
            timings=timings,
        )
        console.print(f"wrote {json_path}")
    if out["interrupted"]:
        files = " and ".join(str(p) for p in (json_path, plot) if p is not None)
        kept = (
            f"the epochs finished so far are in the table and in {files} (marked "
            "\"interrupted\": true)"
            if files
            else "the epochs finished so far are in the table; no file was written"
        )
        raise Interrupted(
            f"interrupted; {kept}; training does not resume: run the same command again to "
            "train from the start"
        )
