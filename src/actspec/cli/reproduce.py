"""``actspec reproduce``: regenerate the papers' evidence as figures plus a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..experiments import params as P
from ._app import app
from .common import console, err_console, interruptible, outputs_ok
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
            "each). Every unit runs one torch thread, in order or in a process, so the numbers "
            "do not depend on --workers; use as many workers as cores.",
        ),
    ] = 1,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Also write the machine-readable report (report.json's content) to this "
        "file.")] = None,
) -> None:
    """Reproduce the activation paper's figures/theorems and the Liu & Hui claims.

    Example: actspec reproduce all --quick --out out/   (then open out/report.html)

    Every claim is marked holds / does not hold / inconclusive with the measured numbers.
    Finished parts are cached in OUT/cache: an interrupted run resumes where it stopped.
    """
    from ..core.io import write_json
    from ..experiments.reproduce.framework import (
        calibrated_seconds,
        check_reproduction_inputs,
        part_names,
        run_reproduction,
    )

    skipped = list(skip or [])
    names = part_names(name, skipped)
    outputs_ok((json_path, "--json"))
    check_reproduction_inputs(
        out, seed=seed, data=data, data_dir=data_dir, device=device, workers=workers
    )
    est, how = calibrated_seconds(name, quick, skipped, data, device)
    err_console.print(
        f"reproduce {name}: {len(names)} parts, expected ≈ {_duration(est)} "
        f"({'quick' if quick else 'full'}, one worker; {how}); cached parts are skipped",
        highlight=False, soft_wrap=True,
    )

    def on_warning(msg: str) -> None:
        err_console.print(f"[yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)

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
            on_warning=on_warning,
        )
    table = Table(title=f"actspec reproduce {name}", box=box.SIMPLE_HEAD, show_lines=True)
    for col in ("part", "claim", "setting", "status", "why"):
        table.add_column(col, overflow="fold")
    colors = {"holds": "green", "does not hold": "red", "inconclusive": "yellow"}
    for c in report["claims"]:
        table.add_row(Text(c["part"]), Text(c["claim"]), Text(c["setting"]),
                      Text(c["status"], style=colors[c["status"]]), Text(c.get("reason") or ""))
    console.print(table)
    s = report["summary"]
    written = [out / "report.json", out / "report.md", out / "report.html"]
    if json_path is not None:
        write_json(json_path, report)
        written.append(json_path)
    console.print(
        f"{s['holds']} hold, {s['does not hold']} do not hold, {s['inconclusive']} inconclusive; "
        f"wrote {', '.join(str(p) for p in written)}"
    )
