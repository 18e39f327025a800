"""Querying a sweep's results database: filters, group-by aggregates, sorting, plot series and
exports, built as parameterised SQL on the store (``actspec results`` renders what this returns).

Python use::

    from actspec.sweep.query import query_results
    res = query_results("sweep.duckdb", filters=["activation=relu,tanh", "n>=40"],
                        group_by=["activation"], metrics=["lambda_min"], agg="geomean")
    res.names, res.rows          # the table
    res.json_rows()              # every column of the selected rows, JSON-ready
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.validate import ParameterError
from .store import ResultStore, open_store, quote

__all__ = [
    "AGGS",
    "STATUSES",
    "ResultsQuery",
    "PlotSeries",
    "SqlResult",
    "query_results",
    "run_sql",
    "split_names",
    "is_numeric",
    "json_row",
]

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
STATUSES = ("ok", "error", "lost", "failed", "all")
NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "FLOAT", "HUGEINT", "SMALLINT", "TINYINT", "DECIMAL",
           "UBIGINT", "UINTEGER")
_FILTER = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(==|=|!=|<>|<=|>=|<|>|~)\s*(.*?)\s*$")
_HIDDEN = ("traceback", "meta", "params")  # never listed as candidate columns


def split_names(values: Iterable[str] | None) -> list[str]:
    """Comma-separated and/or repeated names as one list (``["a,b", "c"]`` -> a, b, c)."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def is_numeric(sql_type: str) -> bool:
    return sql_type.upper().split("(")[0] in NUMERIC


def check_column(name: str, types: dict[str, str], param: str) -> str:
    """``name`` when it is a column of the results table, else an error naming ``param``."""
    if name in types:
        return name
    hint = difflib.get_close_matches(name, list(types), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    shown = [c for c in types if c not in _HIDDEN]
    raise ParameterError(f"{{-{param}}}: unknown column {name!r}{extra}; columns: {', '.join(shown)}")


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
        raise ParameterError(f"{{-filter}} {col}: {value!r} is not true/false")
    if is_numeric(t):
        try:
            return float(v)
        except ValueError:
            raise ParameterError(
                f"{{-filter}} {col}: {value!r} is not a number (column {col} is numeric)"
            ) from None
    return v


def filter_sql(text: str, types: dict[str, str]) -> tuple[str, list[Any]]:
    """'col=value' / 'col=v1,v2' / 'col!=v' / 'col<v' ... / 'col~pattern' -> SQL and parameters."""
    m = _FILTER.match(text)
    if not m:
        raise ParameterError(
            f"{{-filter}} {text!r} must look like COLUMN=VALUE (also !=, <, <=, >, >=, ~ for a "
            "pattern; COLUMN=A,B for several values); use {-where} for any SQL condition"
        )
    col, op, value = m.group(1), m.group(2), m.group(3)
    check_column(col, types, "filter")
    t = types[col]
    if op == "~":
        pat = value.replace("*", "%")
        if "%" not in pat:
            pat = f"%{pat}%"
        return f"CAST({quote(col)} AS VARCHAR) ILIKE ?", [pat]
    if op in ("=", "==", "!=", "<>") and "," in value and not value.strip().startswith(("'", '"')):
        vals = [_typed(v, t, col) for v in value.split(",") if v.strip()]
        neg = "NOT " if op in ("!=", "<>") else ""
        return f"{quote(col)} {neg}IN ({', '.join('?' for _ in vals)})", vals
    if value.strip().lower() in ("null", "none") and op in ("=", "==", "!=", "<>"):
        return f"{quote(col)} IS {'NOT ' if op in ('!=', '<>') else ''}NULL", []
    sql_op = {"==": "=", "<>": "!="}.get(op, op)
    return f"{quote(col)} {sql_op} ?", [_typed(value, t, col)]


def json_row(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """One result row as a JSON-ready dict (times as ISO text, params/meta parsed)."""
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


def _sort_terms(sort: Iterable[str] | None) -> list[tuple[str, bool]]:
    """'col', '-col', 'col:desc', 'col desc' -> (column, descending)."""
    terms = []
    for s in split_names(sort):
        desc = s.startswith("-") or s.lower().endswith(":desc")
        name = s.lstrip("-").split(":")[0]
        if name.lower().endswith(" desc"):
            name, desc = name[:-5].strip(), True
        terms.append((name, desc))
    return terms


@dataclass
class PlotSeries:
    """Points of ``y`` against ``x`` per value of ``by``: (x, agg y, min y, max y, count)."""

    x: str
    y: str
    by: str | None
    agg: str
    series: dict[Any, list[tuple[float, float, float, float, int]]]
    dropped: int  # rows at a non-finite x, left out


@dataclass
class ResultsQuery:
    """The selected rows of a results database and the table shown for them."""

    store: ResultStore
    types: dict[str, str]  # column -> SQL type
    status: str
    base: str  # SELECT * of the selected rows (parameterised by ``args``)
    args: list[Any]
    commands: list[str]  # the commands among the selected rows
    params: list[str]  # their parameter columns
    total_rows: int
    n_failed: int  # failed rows hidden by status "ok"
    groups: list[str]
    metrics: list[str]
    agg: str
    query: str  # the table's SQL
    order: list[str]
    limit: int | None
    names: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)

    def title(self, db_name: str) -> str:
        st = self.status
        text = f"{db_name}: {self.total_rows} {'' if st == 'all' else st + ' '}row(s)"
        if self.groups:
            text += f", {len(self.rows)} group(s), {self.agg} over the other parameters"
        return text

    def _with_array_columns(self, sel_sql: str) -> str:
        names_ = [r[0] for r in self.store.query("SELECT DISTINCT name FROM arrays ORDER BY 1")[1]]
        if not names_:
            return sel_sql
        joins = " ".join(
            f"LEFT JOIN (SELECT key AS k{i}, data AS "
            f"{quote(nm if nm not in self.types else nm + '_array')} "
            f"FROM arrays WHERE name = '{nm.replace(chr(39), chr(39) * 2)}') a{i} ON a{i}.k{i} = r.key"
            for i, nm in enumerate(names_)
        )
        drop = ", ".join(f"k{i}" for i in range(len(names_)))
        return f"SELECT * EXCLUDE ({drop}) FROM ({sel_sql}) r {joins}"

    def json_rows(self, with_arrays: bool = False) -> list[dict[str, Any]]:
        """The rows for a JSON export: grouped rows as shown, else every column of the selected
        rows (the table shows only the informative ones), in the table's order and limit."""
        if self.groups or not self.rows:
            return [json_row(self.names, r) for r in self.rows]
        jq = f"SELECT * FROM ({self.base})"
        if with_arrays:
            jq = self._with_array_columns(jq)
        jq = f"SELECT * FROM ({jq}) ORDER BY {', '.join(self.order)}"
        if self.limit is not None:
            jq += f" LIMIT {int(self.limit)}"
        jn, jr = self.store.query(jq, self.args)
        return [json_row(jn, r) for r in jr]

    def to_json(self, db: str, with_arrays: bool = False) -> dict[str, Any]:
        return {
            "db": db,
            "query": self.query,
            "parameters": self.args,
            "total_rows": self.total_rows,
            "columns": self.names,
            "rows": self.json_rows(with_arrays),
        }

    def export_parquet(self, path: str | os.PathLike[str], with_arrays: bool = False) -> int:
        """Write the selected rows (every column; grouped: the table) to Parquet; row count."""
        sql = self.query if self.groups else self.base
        if with_arrays and not self.groups:
            sql = self._with_array_columns(self.base)
        return self.store.export_parquet(sql, path, self.args)

    def plot_series(self, x: str, y: str, by: str | None = None) -> PlotSeries:
        """``y`` (aggregated with :attr:`agg`, plus min and max) against ``x`` per ``by`` (default
        activation when that column exists)."""
        types = self.types
        check_column(x, types, "x")
        check_column(y, types, "y")
        for col, param in ((x, "x"), (y, "y")):
            if not is_numeric(types[col]):
                raise ParameterError(
                    f"{{-{param}}} {col!r} is not a numeric column; pick one such as n, width, "
                    "seed, lambda_min, condition_number"
                )
        by_col = "activation" if by is None and "activation" in types else by
        if by_col is not None:
            check_column(by_col, types, "by")
        q = quote
        byx = q(by_col) if by_col else "NULL"
        fin = f"isfinite(CAST({q(x)} AS DOUBLE))"
        pq = (f"SELECT {byx}, CAST({q(x)} AS DOUBLE), {AGGS[self.agg].format(q(y))}, min({q(y)}), "
              f"max({q(y)}), count({q(y)}) FROM ({self.base}) WHERE {q(x)} IS NOT NULL AND "
              f"{q(y)} IS NOT NULL AND {fin} GROUP BY 1, 2 ORDER BY 1, 2")
        _, prow = self.store.query(pq, self.args)
        dropped = self.store.query(
            f"SELECT count(*) FROM ({self.base}) WHERE {q(x)} IS NOT NULL AND NOT {fin}", self.args
        )[1][0][0]
        if not prow:
            raise ParameterError(f"nothing to plot: no rows with finite {x} and {y}; check the "
                                 "filters and {-x}/{-y}")
        series: dict[Any, list[tuple[float, float, float, float, int]]] = {}
        for b, xv, yv, lo, hi, cnt in prow:
            series.setdefault(b, []).append((float(xv), float(yv), float(lo), float(hi), int(cnt)))
        return PlotSeries(x, y, by_col, self.agg, series, dropped)


def _select(store: ResultStore, types: dict[str, str], *, command: str | None,
            filters: Iterable[str] | None, where: str | None, status: str
            ) -> tuple[str, list[Any], int, int]:
    """(SQL of the selected rows, its parameters, their count, failed rows hidden by 'ok')."""
    conds: list[str] = []
    args: list[Any] = []
    if status == "failed":
        conds.append("status != 'ok'")
    elif status != "all":
        conds.append("status = ?")
        args.append(status)
    if command is not None:
        conds.append("command = ?")
        args.append(command.strip())
    for f in filters or []:
        c, a = filter_sql(f, types)
        conds.append(c)
        args.extend(a)
    if where:
        conds.append(f"({where})")
    base = "SELECT * FROM results" + (f" WHERE {' AND '.join(conds)}" if conds else "")
    total = store.query(f"SELECT count(*) FROM ({base})", args)[1][0][0]
    n_failed = 0
    if status == "ok":
        fail_sql = base.replace("status = ?", "status != 'ok'", 1)
        n_failed = store.query(f"SELECT count(*) FROM ({fail_sql})", args[1:] if args else [])[1][0][0]
    return base, args, total, n_failed


def _default_metrics(cmds: list[str], types: dict[str, str], results_cols: list[str]) -> list[str]:
    """The main result columns of the commands involved (their task kinds' metrics)."""
    from .runner import TASK_KINDS

    ms: list[str] = []
    for cmd in cmds:
        kind = TASK_KINDS.get(cmd)
        if kind is not None:
            ms.extend(m for m in kind.metrics if m in types)
    if not ms:
        ms = [c for c in results_cols if is_numeric(types[c])][:4]
    return list(dict.fromkeys(ms))


def _shown_columns(store: ResultStore, base: str, args: list[Any], *, cmds: list[str],
                   params: list[str], total: int, status: str, metrics: list[str]) -> list[str]:
    """The informative columns: the parameters that vary, then the metrics (or the errors)."""
    varying: list[str] = []
    if params and total:
        counts = store.query(
            "SELECT " + ", ".join(f"count(DISTINCT {quote(p)})" for p in params)
            + f" FROM ({base})", args)[1][0]
        varying = [p for p, c in zip(params, counts, strict=True) if c > 1]
    shown = []
    if len(cmds) > 1:
        shown.append("command")
    shown += varying or ([params[0]] if params else [])
    shown += ["status", "error"] if status != "ok" else metrics
    shown.append("seconds")
    return list(dict.fromkeys(shown))


def query_results(
    db: str | os.PathLike[str] | ResultStore,
    *,
    command: str | None = None,
    filters: Iterable[str] | None = None,
    where: str | None = None,
    status: str = "ok",
    group_by: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    agg: str = "mean",
    columns: Iterable[str] | None = None,
    sort: Iterable[str] | None = None,
    limit: int | None = None,
) -> ResultsQuery:
    """Select rows of a results database and build the table shown for them.

    ``filters``: ``COLUMN=VALUE`` (also ``!=, <, <=, >, >=``; ``COLUMN=A,B`` for several values;
    ``COLUMN~text`` for a pattern), all must hold; ``where``: any SQL condition. ``status``: ok,
    error, lost, failed (error or lost) or all. ``group_by``: aggregate ``metrics`` with ``agg``
    (:data:`AGGS`) per these columns; otherwise the table shows ``columns`` (default: the
    parameters that vary and the commands' main metrics). ``sort``: ``COLUMN``, ``-COLUMN`` or
    ``COLUMN:desc``. Names may be given comma-separated or as several strings."""
    store = db if isinstance(db, ResultStore) else open_store(db)
    types = store.columns()
    st = status.strip().lower()
    if st not in STATUSES:
        raise ParameterError(f"{{-status}} must be ok, error, lost, failed or all (got {status!r})")
    base, args, total, n_failed = _select(store, types, command=command, filters=filters,
                                          where=where, status=st)
    cmds = [r[0] for r in store.query(f"SELECT DISTINCT command FROM ({base}) ORDER BY 1", args)[1]]
    roles = store.roles()
    params = list(dict.fromkeys(name for cmd, name, role in roles
                                if role == "param" and cmd in cmds and name in types))
    results_cols = list(dict.fromkeys(name for cmd, name, role in roles
                                      if role == "result" and cmd in cmds and name in types))
    metric_list = split_names(metrics) or _default_metrics(cmds, types, results_cols)
    for m in metric_list:
        check_column(m, types, "metric")
    groups = split_names(group_by)
    for g in groups:
        check_column(g, types, "group_by")
    if agg not in AGGS:
        raise ParameterError(f"{{-agg}} must be one of {', '.join(AGGS)} (got {agg!r})")
    order_terms = _sort_terms(sort)
    q = quote
    if groups:
        names = [*groups, "runs"]
        sel = [q(g) for g in groups] + ["count(*) AS runs"]
        agg_names = {}
        for m in metric_list:
            alias = f"{agg}({m})"
            agg_names[m] = alias
            sel.append(f"{AGGS[agg].format(q(m))} AS {q(alias)}")
            names.append(alias)
        order = []
        for name, desc in order_terms:
            col = agg_names.get(name, name)
            if col not in names:
                raise ParameterError(f"{{-sort}} {name!r}: not a column of the grouped table "
                                     f"({', '.join(names)})")
            order.append(f"{q(col)}{' DESC' if desc else ''}")
        order = order or [q(g) for g in groups]
        query = (f"SELECT {', '.join(sel)} FROM ({base}) GROUP BY {', '.join(q(g) for g in groups)} "
                 f"ORDER BY {', '.join(order)}")
    else:
        if columns:
            shown = split_names(columns)
            for c in shown:
                check_column(c, types, "columns")
        else:
            shown = _shown_columns(store, base, args, cmds=cmds, params=params, total=total,
                                   status=st, metrics=metric_list)
        order = []
        for name, desc in order_terms:
            check_column(name, types, "sort")
            order.append(f"{q(name)}{' DESC' if desc else ''}")
        if not order:
            order = [q(c) for c in shown if c in params] or ["finished"]
        query = f"SELECT {', '.join(q(c) for c in shown)} FROM ({base}) ORDER BY {', '.join(order)}"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    res = ResultsQuery(store=store, types=types, status=st, base=base, args=args, commands=cmds,
                       params=params, total_rows=total, n_failed=n_failed, groups=groups,
                       metrics=metric_list, agg=agg, query=query, order=order, limit=limit)
    res.names, res.rows = store.query(query, args)
    return res


@dataclass
class SqlResult:
    """The rows of a free SQL query on a results database."""

    store: ResultStore
    sql: str
    names: list[str]
    rows: list[tuple]

    def to_json(self, db: str) -> dict[str, Any]:
        return {"db": db, "sql": self.sql, "columns": self.names,
                "rows": [json_row(self.names, r) for r in self.rows]}

    def export_parquet(self, path: str | os.PathLike[str]) -> int:
        return self.store.export_parquet(self.sql, path)


def run_sql(db: str | os.PathLike[str] | ResultStore, sql: str, limit: int | None = None
            ) -> SqlResult:
    """Run a read-only SQL query (tables ``results`` and ``arrays``); at most ``limit`` rows."""
    store = db if isinstance(db, ResultStore) else open_store(db)
    text = sql.strip().rstrip(";")
    names, rows = store.query(text)
    if limit is not None:
        rows = rows[:limit]
    return SqlResult(store, text, names, rows)
