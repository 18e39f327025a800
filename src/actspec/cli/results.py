"""``actspec results DB``: tables, aggregates, plots and exports from a sweep's results database."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.io import check_writable, write_json
from ._app import app
from .common import JsonOpt, PlotOpt, console

SHOW_ROWS = 60


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return f"[{len(v)} values]"
    s = str(v)
    return s if len(s) <= 90 else s[:87] + "..."


def _print_table(title: str, names: list[str], rows: list[tuple], shown: int | None = None) -> None:
    if title:
        console.print(title, markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD)
    for i, name in enumerate(names):
        numeric = any(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows[:50])
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name != "error",
                         overflow="fold")
    limit = len(rows) if shown is None else shown
    for r in rows[:limit]:
        table.add_row(*(_fmt(v) for v in r))
    console.print(table)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more row(s) not shown (use --limit N, --json or "
                      "--parquet for all)")


@app.command("results")
def results_cmd(
    db: Annotated[Path, typer.Argument(help="Results database written by 'actspec sweep'.",
                                       show_default=False)],
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="Only rows of this command (spectrum ...).")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="COLUMN=VALUE (also !=, <, <=, >, >=; COLUMN=A,B for "
                     "several values; COLUMN~text for a pattern). Repeatable (all must hold)."),
    ] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="Any SQL condition, e.g. \"n >= 40 AND seed < 3\".")
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="ok (default), error, lost, failed (error or lost), all.")
    ] = "ok",
    group_by: Annotated[
        list[str] | None,
        typer.Option("--group-by", "-g", help="Aggregate over the other parameters, per these "
                     "columns (comma-separated or repeated)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Result columns to show (default: the command's "
                     "main ones, e.g. lambda_min, lambda_max, condition_number)."),
    ] = None,
    agg: Annotated[
        str, typer.Option("--agg", help="With --group-by: mean, median, min, max, std, sum, count, "
                          "geomean.")
    ] = "mean",
    columns: Annotated[
        str | None, typer.Option("--columns", help="Exactly these columns (comma-separated).")
    ] = None,
    sort: Annotated[
        list[str] | None,
        typer.Option("--sort", "-s", help="Sort by COLUMN (COLUMN:desc or -COLUMN for descending). "
                     "Repeatable."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N rows.")] = None,
    sql: Annotated[
        str | None,
        typer.Option("--sql", help="Run this SQL query (tables: results, arrays) instead; "
                     "read-only."),
    ] = None,
    plot: PlotOpt = None,
    x: Annotated[str, typer.Option("--x", help="--plot: x-axis column.", rich_help_panel="Plot")] = "n",
    y: Annotated[
        str, typer.Option("--y", help="--plot: y-axis column.", rich_help_panel="Plot")
    ] = "lambda_min",
    by: Annotated[
        str | None,
        typer.Option("--by", help="--plot: one line per value of this column (default activation "
                     "when present).", rich_help_panel="Plot"),
    ] = None,
    logx: Annotated[
        bool | None, typer.Option("--logx/--linx", help="--plot: x scale (default: automatic).",
                                  rich_help_panel="Plot", show_default=False)
    ] = None,
    logy: Annotated[
        bool | None, typer.Option("--logy/--liny", help="--plot: y scale (default: automatic).",
                                  rich_help_panel="Plot", show_default=False)
    ] = None,
    parquet: Annotated[
        Path | None,
        typer.Option("--parquet", help="Export the selected rows (every column) to a Parquet file.",
                     rich_help_panel="Output"),
    ] = None,
    with_arrays: Annotated[
        bool,
        typer.Option("--with-arrays", help="--parquet/--json: add the stored arrays (eigenvalues "
                     "...) as list columns.", rich_help_panel="Output"),
    ] = False,
    json_path: JsonOpt = None,
) -> None:
    """Show a sweep's results: a table (filters, group-by, sort), a plot, SQL, Parquet export.

    The table shows the parameters that vary among the selected rows and the command's main
    results; --json and --parquet hold every column. Tables for --sql: results (one row per
    task) and arrays (key, name, shape, data: eigenvalues ...).

    \b
    Examples:
      actspec results sweep.duckdb
      actspec results sweep.duckdb -g activation,n -m lambda_min --agg geomean
      actspec results sweep.duckdb -f activation=relu,tanh -f "n>=40" --sort -lambda_min
      actspec results sweep.duckdb --plot lmin.png --x n --y lambda_min --by activation
      actspec results depth.duckdb --plot cond.png --x depth --y condition_number
      actspec results sweep.duckdb --sql "SELECT activation, max(condition_number)
          FROM results GROUP BY 1"
      actspec results sweep.duckdb --status failed      (failed tasks and their errors)
      actspec results sweep.duckdb --parquet all.parquet --with-arrays
    """
    from ..sweep.query import query_results, run_sql
    from ..sweep.store import open_store

    store = open_store(db)
    check_writable(plot, "--plot")
    check_writable(json_path, "--json")
    check_writable(parquet, "--parquet")
    shown = None if limit is not None else SHOW_ROWS

    if sql is not None:
        res = run_sql(store, sql, limit)
        _print_table("", res.names, res.rows, shown=shown)
        if parquet is not None:
            console.print(f"wrote {parquet} ({res.export_parquet(parquet)} rows)")
        if json_path is not None:
            write_json(json_path, res.to_json(str(db)))
            console.print(f"wrote {json_path}")
        return

    sel = query_results(store, command=command, filters=filter_, where=where, status=status,
                        group_by=group_by, metrics=metric, agg=agg, columns=[columns] if columns else None,
                        sort=sort, limit=limit)
    if plot is None and parquet is None:  # with --plot/--parquet the file is the output
        _print_table(sel.title(db.name), sel.names, sel.rows, shown=shown)
    if sel.n_failed:
        console.print(f"{sel.n_failed} failed task(s) not shown (--status failed lists them with "
                      "their errors)")
    if plot is not None:
        from ..plots.results import plot_results

        ps = sel.plot_series(x, y, by)
        plot_results(plot, ps.series, x=x, y=y, by=ps.by, agg=agg, logx=logx, logy=logy,
                     dropped=ps.dropped)
        console.print(f"wrote {plot}")
    if parquet is not None:
        console.print(f"wrote {parquet} ({sel.export_parquet(parquet, with_arrays)} rows)")
    if json_path is not None:
        write_json(json_path, sel.to_json(str(db), with_arrays))
        console.print(f"wrote {json_path}")
