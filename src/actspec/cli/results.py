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
        str | None,
        typer.Option("--where", help="Conditions on columns, e.g. \"n >= 40 AND (seed < 3 OR "
                     "activation IN ('relu', 'elu'))\": COLUMN OP VALUE (=, !=, <, <=, >, >=), IN "
                     "(...), [NOT] LIKE 'pat%', BETWEEN A AND B, IS [NOT] NULL, joined by AND, OR, "
                     "NOT and parentheses. Values are bound as parameters (no SQL functions or "
                     "subqueries: use --sql)."),
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
        typer.Option("--sql", help="Run this one SELECT query instead (tables: results, arrays, "
                     "columns). The database is opened read-only with file and network access "
                     "disabled: only SELECT (and EXPLAIN) runs; COPY, ATTACH, INSTALL/LOAD, SET, "
                     "PRAGMA, CREATE/INSERT/UPDATE/DELETE and file-reading functions (read_csv, "
                     "read_parquet, glob ...) are refused. Save its rows with --csv, --parquet "
                     "or --json."),
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
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Export the selected rows (every column; grouped: the table) "
                     "to a CSV file with a header line.", rich_help_panel="Output"),
    ] = None,
    with_arrays: Annotated[
        bool,
        typer.Option("--with-arrays", help="--parquet/--csv/--json: add the stored arrays "
                     "(eigenvalues ...) as list columns.", rich_help_panel="Output"),
    ] = False,
    json_path: JsonOpt = None,
) -> None:
    """Show a sweep's results: a table (filters, group-by, sort), a plot, SQL, CSV/Parquet export.

    The table shows the parameters that vary among the selected rows and the command's main
    results; --json, --csv and --parquet hold every column. With --group-by, an aggregate over
    fewer values than runs (a metric missing in some runs) gets a counted(METRIC) column. Tables
    for --sql: results (one row per task), arrays (key, name, shape, data: eigenvalues ...) and
    columns. The database is checked before use (every block's checksum, the row count) and
    opened read-only; --where and --sql cannot read or write other files. With --plot --x width
    the infinite-width rows are drawn as dashed reference lines ("∞ width").

    \b
    Examples:
      actspec results sweep.duckdb
      actspec results sweep.duckdb -g activation,n --metric lambda_min --agg geomean
      actspec results sweep.duckdb -f activation=relu,tanh -f "n>=40" --sort -lambda_min
      actspec results sweep.duckdb --plot lmin.png --x n --y lambda_min --by activation
      actspec results depth.duckdb --plot cond.png --x depth --y condition_number
      actspec results sweep.duckdb --sql "SELECT activation, max(condition_number)
          FROM results GROUP BY 1"
      actspec results sweep.duckdb --status failed      (failed tasks and their errors)
      actspec results sweep.duckdb --parquet all.parquet --with-arrays
      actspec results sweep.duckdb -g activation --csv by_activation.csv
    """
    from ..sweep.query import check_select, query_results, run_sql
    from ..sweep.store import open_store

    for path, what in ((plot, "--plot"), (json_path, "--json"), (parquet, "--parquet"),
                       (csv, "--csv")):
        check_writable(path, what)
    if sql is not None:
        check_select(sql)  # before the database is read
    store = open_store(db)
    shown = None if limit is not None else SHOW_ROWS

    if sql is not None:
        res = run_sql(store, sql, limit)
        _print_table("", res.names, res.rows, shown=shown)
        if parquet is not None:
            console.print(f"wrote {parquet} ({res.export_parquet(parquet)} rows)")
        if csv is not None:
            console.print(f"wrote {csv} ({res.export_csv(csv)} rows)")
        if json_path is not None:
            write_json(json_path, res.to_json(str(db)))
            console.print(f"wrote {json_path}")
        return

    sel = query_results(store, command=command, filters=filter_, where=where, status=status,
                        group_by=group_by, metrics=metric, agg=agg, columns=[columns] if columns else None,
                        sort=sort, limit=limit)
    if plot is None and parquet is None and csv is None:  # else the file is the output
        _print_table(sel.title(db.name), sel.names, sel.rows, shown=shown)
    for line in sel.notes():
        console.print(line, markup=False, highlight=False)
    if sel.n_failed:
        console.print(f"{sel.n_failed} failed task(s) not shown (--status failed lists them with "
                      "their errors)")
    if plot is not None:
        from ..plots.results import plot_results

        ps = sel.plot_series(x, y, by)
        plot_results(plot, ps.series, x=x, y=y, by=ps.by, agg=agg, logx=logx, logy=logy,
                     dropped=ps.dropped, reference=ps.reference)
        console.print(f"wrote {plot}")
    if parquet is not None:
        console.print(f"wrote {parquet} ({sel.export_parquet(parquet, with_arrays)} rows)")
    if csv is not None:
        console.print(f"wrote {csv} ({sel.export_csv(csv, with_arrays)} rows)")
    if json_path is not None:
        write_json(json_path, sel.to_json(str(db), with_arrays))
        console.print(f"wrote {json_path}")
