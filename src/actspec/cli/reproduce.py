"""``actspec reproduce``: regenerate the papers' evidence as figures plus a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ..experiments import params as P
from ._app import app
from .common import console, err_console, interruptible
from .options import option

DataDirOpt = Annotated[str | None, option(P.DATA_DIR)]
ReproduceSeedOpt = Annotated[int, option(P.SEED, help="Seed for data, weights and labels.")]
ReproduceDeviceOpt = Annotated[str, option(
    P.DEVICE, help="Where the finite-width networks run: cpu, cuda, cuda:N or auto (the full fig1 "
    "training at m = 10^6 takes hours on 2 CPU cores, minutes on a GPU).")]


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


@app.command("reproduce")
def reproduce_cmd(
    name: Annotated[
        str,
        typer.Argument(
            help="fig1, fig2, theorems, liu-hui, all, or a single part (e.g. fig1-spectra)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (figures, cache, report).")
    ] = Path("actspec-out"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller widths and sizes (minutes, not hours).")
    ] = False,
    data: Annotated[
        str, typer.Option("--data", help="Real data for fig2: digits (bundled) or cifar10.")
    ] = "digits",
    data_dir: DataDirOpt = None,
    seed: ReproduceSeedOpt = P.SEED.default,
    force: Annotated[bool, typer.Option("--force", help="Recompute parts even when cached.")] = False,
    device: ReproduceDeviceOpt = P.DEVICE.default,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Leave out a part (repeatable), e.g. --skip fig1-training."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Processes for the training units of fig1 and fig2 (one activation and seed "
            "each); each gets cores/N threads.",
        ),
    ] = 1,
) -> None:
    """Reproduce the activation paper's figures/theorems and the Liu & Hui claims.

    Example: actspec reproduce all --quick --out out/   (then open out/report.html)

    Every claim is marked holds / does not hold / inconclusive with the measured numbers.
    Finished parts are cached in OUT/cache: an interrupted run resumes where it stopped.
    """
    from ..experiments.reproduce.framework import (
        check_reproduction_inputs,
        expected_seconds,
        part_names,
        run_reproduction,
    )

    skipped = list(skip or [])
    names = part_names(name, skipped)
    check_reproduction_inputs(
        out, seed=seed, data=data, data_dir=data_dir, device=device, workers=workers
    )
    est = expected_seconds(name, quick, skipped, data)
    err_console.print(
        f"reproduce {name}: {len(names)} parts, expected ≈ {_duration(est)} "
        f"({'quick' if quick else 'full'}) on 2 cores; cached parts are skipped"
    )

    finished: list[str] = []
    current: list[str] = []

    def on_part(pname: str, state: str, k: int, total: int) -> None:
        if state == "start":
            current[:] = [pname]
            err_console.print(f"[{k + 1}/{total}] {pname} …")
        elif state == "cached":
            finished.append(pname)
            err_console.print(f"[{k + 1}/{total}] {pname}: cached")
        elif state == "done":
            err_console.print(f"[{k + 1}/{total}] {pname}: done")
            finished.append(pname)

    queued: list[str] = []

    def on_unit(key: str, state: str) -> None:
        if state == "queued":  # --workers: the units run in parallel; report each as it ends
            if not queued:
                err_console.print(f"      training units running in {workers} processes …")
            queued.append(key)
            return
        if state == "done" and key in queued:
            queued.remove(key)
            err_console.print(f"      {key}: done ({len(queued)} left)")
        elif state != "done":
            err_console.print(f"      {key}: {'cached' if state == 'cached' else 'running …'}")

    def kept() -> str:
        where = f" during {current[0]}" if current and current[0] not in finished else ""
        return (
            f"stopped{where}; {len(finished)} of {len(names)} part(s) are finished and cached in "
            f"{out / 'cache'}; run the same command to resume"
        )

    with interruptible(kept):
        report = run_reproduction(
            name, out, quick=quick, seed=seed, data=data, data_dir=data_dir, force=force,
            device=device, skip=skipped, workers=workers, on_part=on_part, on_unit=on_unit,
        )
    table = Table(title=f"actspec reproduce {name}", box=box.SIMPLE_HEAD)
    for col in ("part", "claim", "status"):
        table.add_column(col)
    colors = {"holds": "green", "does not hold": "red", "inconclusive": "yellow"}
    for c in report["claims"]:
        table.add_row(c["part"], c["claim"], f"[{colors[c['status']]}]{c['status']}[/]")
    console.print(table)
    s = report["summary"]
    console.print(
        f"{s['holds']} hold, {s['does not hold']} do not hold, {s['inconclusive']} inconclusive; "
        f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'report.html'}"
    )
