"""``actspec results DB``: tables, aggregates, plots and exports from a sweep's results database."""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..core.errors import ActspecError
from ..core.io import check_writable, write_json
from ._app import app
from .common import JsonOpt, PlotOpt, console

AGGS = {
    "mean": "avg({})",
    "median": "median({})",
    "min": "min({})",
    "max": "max({})",
    "std": "stddev_samp({})",
    "sum": "sum({})",
    "count": "count({})",
    "geomean": "exp(avg(ln(CASE WHEN {0} > 0 THEN {0} END)))",
}
NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "FLOAT", "HUGEINT", "SMALLINT", "TINYINT", "DECIMAL",
           "UBIGINT", "UINTEGER")
SHOW_ROWS = 60
_FILTER = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(==|=|!=|<>|<=|>=|<|>|~)\s*(.*?)\s*$")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _is_numeric(sql_type: str) -> bool:
    return sql_type.upper().split("(")[0] in NUMERIC


def _check_column(name: str, types: dict[str, str], what: str) -> str:
    if name in types:
        return name
    hint = difflib.get_close_matches(name, list(types), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    shown = [c for c in types if c not in ("traceback", "meta", "params")]
    raise ActspecError(
        f"{what}: unknown column {name!r}{extra}; columns: {', '.join(shown)}"
    )


def _typed(value: str, sql_type: str, col: str) -> Any:
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        v = v[1:-1]
    t = sql_type.upper()
    if t == "BOOLEAN":
        low = v.lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise ActspecError(f"--filter {col}: {value!r} is not true/false")
    if _is_numeric(t):
        try:
            return float(v)
        except ValueError:
            raise ActspecError(
                f"--filter {col}: {value!r} is not a number (column {col} is numeric)"
            ) from None
    return v


def _filter_sql(text: str, types: dict[str, str]) -> tuple[str, list[Any]]:
    """'col=value' / 'col=v1,v2' / 'col!=v' / 'col<v' ... / 'col~pattern' -> SQL and parameters."""
    m = _FILTER.match(text)
    if not m:
        raise ActspecError(
            f"--filter {text!r} must look like COLUMN=VALUE (also !=, <, <=, >, >=, ~ for a "
            "pattern; COLUMN=A,B for several values); use --where for any SQL condition"
        )
    col, op, value = m.group(1), m.group(2), m.group(3)
    _check_column(col, types, "--filter")
    t = types[col]
    if op == "~":
        pat = value.replace("*", "%")
        if "%" not in pat:
            pat = f"%{pat}%"
        return f"CAST({q(col)} AS VARCHAR) ILIKE ?", [pat]
    if op in ("=", "==", "!=", "<>") and "," in value and not value.strip().startswith(("'", '"')):
        vals = [_typed(v, t, col) for v in value.split(",") if v.strip()]
        neg = "NOT " if op in ("!=", "<>") else ""
        return f"{q(col)} {neg}IN ({', '.join('?' for _ in vals)})", vals
    if value.strip().lower() in ("null", "none") and op in ("=", "==", "!=", "<>"):
        return f"{q(col)} IS {'NOT ' if op in ('!=', '<>') else ''}NULL", []
    sql_op = {"==": "=", "<>": "!="}.get(op, op)
    return f"{q(col)} {sql_op} ?", [_typed(value, t, col)]


def _jsonrow(names: list[str], row: tuple) -> dict[str, Any]:
    import datetime as _dt
    import json

    out: dict[str, Any] = {}
    for n, v in zip(names, row, strict=True):
        if isinstance(v, (_dt.datetime, _dt.date)):
            v = v.isoformat()
        elif n in ("params", "meta") and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[n] = v
    return out


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


def _plot(path: Path, series: dict[Any, list[tuple[float, float, float, float, int]]], *,
          x: str, y: str, by: str | None, agg: str, logx: bool | None, logy: bool | None,
          dropped: int) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from ..core.io import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.5))
    allx = [p[0] for pts in series.values() for p in pts]
    ally = [v for pts in series.values() for p in pts for v in (p[1], p[2], p[3])
            if v is not None and math.isfinite(v)]
    if logx is None:
        logx = bool(allx) and min(allx) > 0 and max(allx) / min(allx) >= 8
    if logy is None:
        logy = bool(ally) and min(ally) > 0 and max(ally) / min(ally) >= 50
    if logy and ally and min(ally) <= 0:
        logy = False
    for label, pts in series.items():
        pts = sorted(pts)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        line, = ax.plot(xs, ys, marker="o", ms=4, label=str(label) if by else None)
        if any(p[4] > 1 for p in pts):
            ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15,
                            color=line.get_color(), lw=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} ({agg}; band: min-max over runs)")
    title = f"{y} vs {x}" + (f" per {by}" if by else "")
    if dropped:
        title += f" ({dropped} point(s) at non-finite {x} left out)"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if by:
        ax.legend(fontsize=8, title=by)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)


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
    from ..sweep.store import open_store

    store = open_store(db)
    check_writable(plot, "--plot")
    check_writable(json_path, "--json")
    check_writable(parquet, "--parquet")
    types = store.columns()

    if sql is not None:
        text = sql.strip().rstrip(";")
        names, rows = store.query(text)
        if limit is not None:
            rows = rows[:limit]
        _print_table("", names, rows, shown=None if limit is not None else SHOW_ROWS)
        if parquet is not None:
            n = store.export_parquet(text, parquet)
            console.print(f"wrote {parquet} ({n} rows)")
        if json_path is not None:
            write_json(json_path, {"db": str(db), "sql": text, "columns": names,
                                   "rows": [_jsonrow(names, r) for r in rows]})
            console.print(f"wrote {json_path}")
        return

    # ------------------------------------------------------------------ the selected rows
    conds: list[str] = []
    args: list[Any] = []
    st = status.strip().lower()
    if st not in ("ok", "error", "lost", "failed", "all"):
        raise ActspecError(f"--status must be ok, error, lost, failed or all (got {status!r})")
    if st == "failed":
        conds.append("status != 'ok'")
    elif st != "all":
        conds.append("status = ?")
        args.append(st)
    if command is not None:
        conds.append("command = ?")
        args.append(command.strip())
    for f in filter_ or []:
        c, a = _filter_sql(f, types)
        conds.append(c)
        args.extend(a)
    if where:
        conds.append(f"({where})")
    base = "SELECT * FROM results" + (f" WHERE {' AND '.join(conds)}" if conds else "")
    total_rows = store.query(f"SELECT count(*) FROM ({base})", args)[1][0][0]
    n_failed = 0
    if st == "ok":
        fail_sql = base.replace("status = ?", "status != 'ok'", 1)
        n_failed = store.query(f"SELECT count(*) FROM ({fail_sql})", args[1:] if args else [])[1][0][0]

    # which commands, parameters and metrics are involved
    cmds = [r[0] for r in store.query(f"SELECT DISTINCT command FROM ({base}) ORDER BY 1", args)[1]]
    roles = store.roles()
    params = [name for cmd, name, role in roles if role == "param" and cmd in cmds]
    params = list(dict.fromkeys(p for p in params if p in types))
    results_cols = list(dict.fromkeys(name for cmd, name, role in roles
                                      if role == "result" and cmd in cmds and name in types))

    def default_metrics() -> list[str]:
        from ..sweep.runner import TASK_KINDS

        ms: list[str] = []
        for cmd in cmds:
            kind = TASK_KINDS.get(cmd)
            if kind is not None:
                ms.extend(m for m in kind.metrics if m in types)
        if not ms:
            ms = [c for c in results_cols if _is_numeric(types[c])][:4]
        return list(dict.fromkeys(ms))

    metrics = _split(metric) or default_metrics()
    for m in metrics:
        _check_column(m, types, "--metric")
    groups = _split(group_by)
    for g in groups:
        _check_column(g, types, "--group-by")
    if agg not in AGGS:
        raise ActspecError(f"--agg must be one of {', '.join(AGGS)} (got {agg!r})")

    order_terms: list[tuple[str, bool]] = []
    for s in _split(sort):
        desc = s.startswith("-") or s.lower().endswith(":desc")
        name = s.lstrip("-").split(":")[0]
        if name.lower().endswith(" desc"):
            name, desc = name[:-5].strip(), True
        order_terms.append((name, desc))

    if groups:
        out_names = [*groups, "runs"]
        sel = [q(g) for g in groups] + ["count(*) AS runs"]
        agg_names = {}
        for m in metrics:
            alias = f"{agg}({m})"
            agg_names[m] = alias
            sel.append(f"{AGGS[agg].format(q(m))} AS {q(alias)}")
            out_names.append(alias)
        order = []
        for name, desc in order_terms:
            col = agg_names.get(name, name)
            if col not in out_names:
                raise ActspecError(f"--sort {name!r}: not a column of the grouped table "
                                   f"({', '.join(out_names)})")
            order.append(f"{q(col)}{' DESC' if desc else ''}")
        order = order or [q(g) for g in groups]
        query = (f"SELECT {', '.join(sel)} FROM ({base}) GROUP BY {', '.join(q(g) for g in groups)} "
                 f"ORDER BY {', '.join(order)}")
    else:
        if columns:
            shown = _split([columns])
            for c in shown:
                _check_column(c, types, "--columns")
        else:
            varying: list[str] = []
            if params and total_rows:
                counts = store.query(
                    "SELECT " + ", ".join(f"count(DISTINCT {q(p)})" for p in params)
                    + f" FROM ({base})", args)[1][0]
                varying = [p for p, c in zip(params, counts, strict=True) if c > 1]
            shown = []
            if len(cmds) > 1:
                shown.append("command")
            shown += varying or ([params[0]] if params else [])
            if st != "ok":
                shown += ["status", "error"]
            else:
                shown += metrics
            shown.append("seconds")
            shown = list(dict.fromkeys(shown))
        order = []
        for name, desc in order_terms:
            _check_column(name, types, "--sort")
            order.append(f"{q(name)}{' DESC' if desc else ''}")
        if not order:
            order = [q(c) for c in shown if c in params] or ["finished"]
        out_names = shown
        query = f"SELECT {', '.join(q(c) for c in shown)} FROM ({base}) ORDER BY {', '.join(order)}"
    if limit is not None:
        query += f" LIMIT {int(limit)}"

    names, rows = store.query(query, args)
    title = f"{db.name}: {total_rows} {'' if st == 'all' else st + ' '}row(s)"
    if groups:
        title += f", {len(rows)} group(s), {agg} over the other parameters"
    if plot is None and parquet is None:  # with --plot/--parquet the file is the output
        _print_table(title, names, rows, shown=None if limit is not None else SHOW_ROWS)
    if n_failed:
        console.print(f"{n_failed} failed task(s) not shown (--status failed lists them with "
                      "their errors)")

    # ------------------------------------------------------------------ plot
    if plot is not None:
        _check_column(x, types, "--x")
        _check_column(y, types, "--y")
        for col, what in ((x, "--x"), (y, "--y")):
            if not _is_numeric(types[col]):
                raise ActspecError(f"{what} {col!r} is not a numeric column; pick one such as n, "
                                   "width, seed, lambda_min, condition_number")
        if by is None and "activation" in types:
            by_col: str | None = "activation"
        else:
            by_col = by
        if by_col is not None:
            _check_column(by_col, types, "--by")
        byx = q(by_col) if by_col else "NULL"
        fin = f"isfinite(CAST({q(x)} AS DOUBLE))"
        pq = (f"SELECT {byx}, CAST({q(x)} AS DOUBLE), {AGGS[agg].format(q(y))}, min({q(y)}), "
              f"max({q(y)}), count({q(y)}) FROM ({base}) WHERE {q(x)} IS NOT NULL AND "
              f"{q(y)} IS NOT NULL AND {fin} GROUP BY 1, 2 ORDER BY 1, 2")
        _, prow = store.query(pq, args)
        dropped = store.query(f"SELECT count(*) FROM ({base}) WHERE {q(x)} IS NOT NULL AND NOT {fin}",
                              args)[1][0][0]
        if not prow:
            raise ActspecError(f"nothing to plot: no rows with finite {x} and {y}; check the "
                               "filters and --x/--y")
        series: dict[Any, list[tuple[float, float, float, float, int]]] = {}
        for b, xv, yv, lo, hi, cnt in prow:
            series.setdefault(b, []).append((float(xv), float(yv), float(lo), float(hi), int(cnt)))
        _plot(plot, series, x=x, y=y, by=by_col, agg=agg, logx=logx, logy=logy, dropped=dropped)
        console.print(f"wrote {plot}")

    # ------------------------------------------------------------------ exports
    def with_array_columns(sel_sql: str, key_in: bool) -> str:
        names_ = [r[0] for r in store.query("SELECT DISTINCT name FROM arrays ORDER BY 1")[1]]
        if not names_ or not key_in:
            return sel_sql
        joins = " ".join(
            f"LEFT JOIN (SELECT key AS k{i}, data AS {q(nm if nm not in types else nm + '_array')} "
            f"FROM arrays WHERE name = '{nm.replace(chr(39), chr(39) * 2)}') a{i} ON a{i}.k{i} = r.key"
            for i, nm in enumerate(names_)
        )
        drop = ", ".join(f"k{i}" for i in range(len(names_)))
        return f"SELECT * EXCLUDE ({drop}) FROM ({sel_sql}) r {joins}"

    if parquet is not None:
        export_sql = query if groups else base
        if with_arrays and not groups:
            export_sql = with_array_columns(base, True)
        n = store.export_parquet(export_sql, parquet, args)
        console.print(f"wrote {parquet} ({n} rows)")
    if json_path is not None:
        out_rows = [_jsonrow(names, r) for r in rows]
        if not groups and rows:
            # every column of the selected rows (the table shows only the informative ones)
            jq = f"SELECT * FROM ({base})"
            if with_arrays:
                jq = with_array_columns(jq, True)
            jq = f"SELECT * FROM ({jq}) ORDER BY {', '.join(order)}"
            if limit is not None:
                jq += f" LIMIT {int(limit)}"
            jn, jr = store.query(jq, args)
            out_rows = [_jsonrow(jn, r) for r in jr]
        write_json(json_path, {
            "db": str(db),
            "query": query,
            "parameters": args,
            "total_rows": total_rows,
            "columns": names,
            "rows": out_rows,
        })
        console.print(f"wrote {json_path}")
