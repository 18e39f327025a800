"""``actspec sweep``: a grid of task parameters on Dask distributed, results in a DuckDB file."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.errors import Interrupted
from ..core.io import check_writable, run_metadata, write_json
from ._app import app
from .common import JsonOpt, console, err_console
from .progress import SweepProgress

RUN_PANEL = "Cluster"


def _list_commands(json_path: Path | None = None) -> None:
    from ..sweep.grid import TASK_KINDS, describe_kinds

    if json_path is not None:
        check_writable(json_path, "--json")
        write_json(json_path, {"commands": describe_kinds(), "meta": run_metadata()})
    for kind in (k for k in TASK_KINDS.values() if not k.hidden):
        table = Table(title=f"{kind.name}: {kind.doc}", box=box.SIMPLE_HEAD, title_justify="left")
        for col in ("parameter", "type", "default", "meaning"):
            table.add_column(col, no_wrap=col != "meaning")
        for p in kind.params.values():
            default = "(required)" if p.required else ("-" if p.default is None else str(p.default))
            table.add_row(p.name, p.type, default, p.help)
        console.print(table)
        if kind.metrics:
            console.print(f"  default result columns: {', '.join(kind.metrics)}\n")


@contextmanager
def _sigterm_as_interrupt() -> Any:
    """SIGTERM (e.g. a batch system's kill) stops the sweep like Ctrl-C: results are kept."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@app.command("sweep")
def sweep_cmd(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Sweep file (TOML): a [sweep] table (name, db, retries, workers) and one or more "
            "[[grid]] tables (command = \"spectrum\", then parameters: a list is an axis, a scalar "
            "is fixed). See examples/sweep.toml.",
            show_default=False,
        ),
    ] = None,
    command: Annotated[
        str | None,
        typer.Option("--command", "-c", help="Without CONFIG: the command to sweep (spectrum, ...)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=V1,V2,... (A..B for an integer range): one axis of the grid (one value: "
            "fixed). With CONFIG it replaces that parameter in every grid. Repeatable.",
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Results database (DuckDB). Default: CONFIG with .duckdb, or "
                     "sweep.duckdb."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Address of an existing Dask scheduler "
                     "(tcp://HOST:PORT). Default: a local cluster.", rich_help_panel=RUN_PANEL),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Worker processes of the local cluster "
                     "(default 2).", rich_help_panel=RUN_PANEL),
    ] = None,
    threads_per_worker: Annotated[
        int | None,
        typer.Option("--threads-per-worker", min=1, help="Threads per local worker (default 1).",
                     rich_help_panel=RUN_PANEL),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--retries", min=0, help="Re-submissions of a task whose worker died "
                     "(default 2); a task that raises is recorded at once.", rich_help_panel=RUN_PANEL),
    ] = None,
    max_tasks: Annotated[
        int | None,
        typer.Option("--max-tasks", min=0, help="Run at most this many tasks now; the rest on a "
                     "later run.", rich_help_panel=RUN_PANEL),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Also re-run tasks stored with an error."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would run, run nothing.")
    ] = False,
    list_commands: Annotated[
        bool, typer.Option("--list", help="List the sweepable commands and their parameters.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print a line for every finished task.")
    ] = False,
    no_code: Annotated[
        bool,
        typer.Option("--no-code", help="Refuse a sweep whose activation is module:function "
                     "(it imports and runs that Python module here and on every worker): for "
                     "sweep files from others."),
    ] = False,
    json_path: JsonOpt = None,
) -> None:
    """Run a grid of task parameters on Dask; every finished task is a row of a DuckDB file.

    Tasks already in the database are skipped (keyed by a hash of their parameters), so an
    interrupted sweep (Ctrl-C, a crash, a lost worker) resumes where it stopped and a grown grid
    runs only its new points. A task that raises is recorded with its error (re-run them with
    --retry-failed); one whose worker dies is re-submitted up to --retries times, then recorded
    as lost (tried again by the next run). Commands: spectrum, train, depth, analyze (--list).

    An activation given as module:function (in the file or with -p) imports that Python module
    and runs its code in this process and on every worker: that is code execution by design.
    Use --no-code to refuse such sweeps (e.g. a sweep file someone else wrote). A grid is
    counted before it is built: more than 100000 tasks is refused (split the sweep into parts
    writing into the same --db). --workers is capped at this machine's cores. An existing
    database is checked (every block's checksum, its row count) before any task runs.

    \b
    Examples:
      actspec sweep examples/sweep.toml
      actspec results examples/sweep.duckdb -g activation,n --metric lambda_min
      actspec sweep -c spectrum -p activation=relu,tanh -p n=10,20,40 -p seed=0..4 --db s.duckdb
      actspec sweep -c depth -p activation=relu,tanh -p depth=1..8 -p data=cone --db d.duckdb
      actspec sweep sweep.toml --scheduler tcp://10.0.0.5:8786
    """
    from ..sweep.grid import build_config, varying_params
    from ..sweep.runner import plan, run_sweep, usable_cores
    from ..sweep.store import ResultStore

    if list_commands:
        _list_commands(json_path)
        return
    check_writable(json_path, "--json")
    cfg = build_config(config, command, param or [], db=db, scheduler=scheduler, workers=workers,
                       threads_per_worker=threads_per_worker, retries=retries,
                       allow_code=not no_code)
    check_writable(cfg.db, "--db")
    store = ResultStore(cfg.db)
    if store.path.exists():
        store.verify()  # a damaged database: one line, exit 2, before any task runs
    title = f"sweep {cfg.name}" if cfg.name else "sweep"
    if not dry_run and cfg.scheduler is None and cfg.workers > usable_cores():
        err_console.print(f"[yellow]warning:[/] {cfg.workers} workers asked for, but this "
                          f"machine gives this process {usable_cores()} core(s): using "
                          f"{usable_cores()}", highlight=False, soft_wrap=True)
        cfg.workers = usable_cores()

    if dry_run:
        todo, counts = plan(cfg.tasks, store, retry_failed=retry_failed)
        n_run = len(todo) if max_tasks is None else min(len(todo), max_tasks)
        total = sum(counts.values())
        console.print(
            f"{title}: {total} task(s) in the grid — {counts['ok']} stored ok, {counts['error']} "
            f"stored with an error{' (re-run)' if retry_failed else ''}, {counts['lost']} lost, "
            f"{counts['new']} new; would run {n_run} → {cfg.db}"
        )
        varying = varying_params(cfg.tasks)
        if verbose:
            for t in todo[:n_run]:
                console.print(f"  {t.key}  {t.label(varying.get(t.command))}", markup=False)
        if json_path is not None:
            write_json(json_path, {
                "dry_run": True,
                "db": str(cfg.db),
                "counts": counts,
                "would_run": n_run,
                "tasks": [{"key": t.key, "command": t.command, "params": t.params}
                          for t in todo[:n_run]],
            })
        return

    varying = varying_params(cfg.tasks)
    state: list[Any] = []

    def on_start(st: Any) -> None:
        state.append(st)
        display.start(st)

    try:
        with _sigterm_as_interrupt(), SweepProgress(title, varying, verbose) as display:
            summary = run_sweep(
                cfg.tasks,
                store,
                scheduler=cfg.scheduler,
                workers=cfg.workers,
                threads_per_worker=cfg.threads_per_worker,
                retries=cfg.retries,
                max_tasks=max_tasks,
                retry_failed=retry_failed,
                name=cfg.name,
                on_start=on_start,
                on_progress=display.update,
                on_record=display.record,
            )
    except KeyboardInterrupt:
        written = state[0].written if state else 0
        raise Interrupted(
            f"interrupted; {written} finished result(s) of this run are stored in "
            f"{cfg.db}; run the same command again to continue"
        ) from None
    parts = [f"{title}: {summary.total} task(s) in the grid, {summary.skipped} already stored"]
    if summary.run:
        rate = summary.tasks_per_minute
        parts.append(
            f"ran {summary.run}: {summary.ok} ok, {summary.failed} failed"
            + (f" ({summary.retried} re-submitted after a lost worker)" if summary.retried else "")
            + f" in {summary.seconds:.1f} s ({rate:.0f} tasks/min)"
        )
    else:
        parts.append("nothing to run")
    console.print("; ".join(parts))
    if summary.remaining:
        console.print(f"{summary.remaining} task(s) left for a later run: run the same command again")
    if summary.failed:
        console.print(
            f"{summary.failed} failed task(s) are stored with their error: "
            f"actspec results {cfg.db} --status error"
        )
    console.print(f"results: {cfg.db}  (actspec results {cfg.db})")
    if json_path is not None:
        write_json(json_path, {
            "settings": {
                "config": str(cfg.source) if cfg.source else None,
                "name": cfg.name,
                "db": str(cfg.db),
                "scheduler": cfg.scheduler,
                "workers": None if cfg.scheduler else cfg.workers,
                "threads_per_worker": cfg.threads_per_worker,
                "retries": cfg.retries,
                "max_tasks": max_tasks,
                "retry_failed": retry_failed,
                "grids": cfg.grids,
            },
            "summary": summary.to_dict(),
            "meta": run_metadata(),
        })
