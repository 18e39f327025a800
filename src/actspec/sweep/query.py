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
    "where_sql",
    "check_select",
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
#: the values an aggregate actually uses (geomean skips values <= 0)
COUNTED = {"geomean": "count(CASE WHEN {0} > 0 THEN {0} END)"}
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


def _typed(value: str, sql_type: str, col: str, param: str = "filter") -> Any:
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
        raise ParameterError(f"{{-{param}}} {col}: {value!r} is not true/false")
    if is_numeric(t):
        if "INT" in t and re.fullmatch(r"[+-]?\d+", v):
            return int(v)  # exact: seeds beyond 2**53 compare right
        try:
            return float(v)
        except ValueError:
            raise ParameterError(
                f"{{-{param}}} {col}: {value!r} is not a number (column {col} is numeric)"
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


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])
    | (?P<str>'(?:[^']|'')*')
    | (?P<dstr>"(?:[^"]|"")*")
    | (?P<op><=|>=|<>|!=|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_]\w*)
    )""", re.VERBOSE)
_WHERE_HELP = ("{-where} takes conditions COLUMN OP VALUE (=, !=, <, <=, >, >=; also COLUMN IN "
               "(A, B), COLUMN [NOT] LIKE 'pat%', COLUMN BETWEEN A AND B, COLUMN IS [NOT] NULL) "
               "joined by AND, OR, NOT and parentheses, e.g. \"n >= 40 AND seed < 3\"; values "
               "are numbers, 'text', true, false, null or another column; for anything else use "
               "{-sql} (one read-only SELECT)")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()[:30]
            raise ParameterError(f"{{-where}} {text!r}: cannot read {bad!r}; {_WHERE_HELP}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _WhereParser:
    """Recursive descent over the --where grammar; builds SQL with every value as a parameter
    and every column checked and quoted."""

    def __init__(self, text: str, types: dict[str, str]) -> None:
        self.text = text
        self.types = types
        self.toks = _tokens(text)
        self.i = 0
        self.args: list[Any] = []

    def fail(self, what: str) -> ParameterError:
        at = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
        return ParameterError(f"{{-where}} {self.text!r}: {what} at {at!r}; {_WHERE_HELP}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def word(self, *words: str) -> bool:
        t = self.peek()
        if t is not None and t[0] == "word" and t[1].upper() in words:
            self.i += 1
            return True
        return False

    def punct(self, ch: str) -> bool:
        t = self.peek()
        if t is not None and t[0] == "punct" and t[1] == ch:
            self.i += 1
            return True
        return False

    def parse(self) -> str:
        if not self.toks:
            raise ParameterError(f"{{-where}} is empty; {_WHERE_HELP}")
        sql = self.expr()
        if self.i != len(self.toks):
            raise self.fail("unexpected text")
        return sql

    def expr(self) -> str:
        parts = [self.term()]
        while self.word("OR"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def term(self) -> str:
        parts = [self.factor()]
        while self.word("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def factor(self) -> str:
        if self.word("NOT"):
            return f"(NOT {self.factor()})"
        if self.punct("("):
            inner = self.expr()
            if not self.punct(")"):
                raise self.fail("expected ')'")
            return f"({inner})"
        return self.condition()

    def column(self) -> str:
        t = self.peek()
        if t is None or t[0] not in ("word", "dstr") or t[1].upper() in _KEYWORDS:
            raise self.fail("expected a column name")
        self.i += 1
        name = t[1][1:-1].replace('""', '"') if t[0] == "dstr" else t[1]
        check_column(name, self.types, "where")
        return name

    def value(self, col: str) -> str:
        t = self.peek()
        if t is None:
            raise self.fail("expected a value")
        kind, text = t
        self.i += 1
        if kind == "word":
            up = text.upper()
            if up == "NULL":
                self.args.append(None)
                return "?"
            if up in ("TRUE", "FALSE"):
                self.args.append(up == "TRUE")
                return "?"
            if up in ("INF", "INFINITY", "NAN") and is_numeric(self.types[col]):
                self.args.append(float(text))
                return "?"
            if text in self.types:  # another column
                return quote(text)
            self.i -= 1
            raise self.fail(f"{text!r} is not a column nor a value (quote text: '{text}')")
        if kind == "num":
            self.args.append(_typed(text, self.types[col], col, "where"))
            return "?"
        if kind in ("str", "dstr"):
            raw = text[1:-1].replace(text[0] * 2, text[0])
            t_ = self.types[col].upper()
            self.args.append(_typed(raw, t_, col, "where") if (is_numeric(t_) or t_ == "BOOLEAN")
                             else raw)
            return "?"
        self.i -= 1
        raise self.fail("expected a value")

    def condition(self) -> str:
        col = self.column()
        c = quote(col)
        if self.word("IS"):
            neg = self.word("NOT")
            if not self.word("NULL"):
                raise self.fail("expected NULL after IS")
            return f"{c} IS {'NOT ' if neg else ''}NULL"
        neg = self.word("NOT")
        if self.word("IN"):
            if not self.punct("("):
                raise self.fail("expected '(' after IN")
            vals = [self.value(col)]
            while self.punct(","):
                vals.append(self.value(col))
            if not self.punct(")"):
                raise self.fail("expected ')'")
            return f"{c} {'NOT ' if neg else ''}IN ({', '.join(vals)})"
        if self.word("LIKE", "ILIKE"):
            op = self.toks[self.i - 1][1].upper()
            t = self.peek()
            if t is None or t[0] not in ("str", "dstr"):
                raise self.fail(f"expected a quoted pattern after {op}")
            self.i += 1
            self.args.append(t[1][1:-1].replace(t[1][0] * 2, t[1][0]))
            return f"CAST({c} AS VARCHAR) {'NOT ' if neg else ''}{op} ?"
        if self.word("BETWEEN"):
            lo = self.value(col)
            if not self.word("AND"):
                raise self.fail("expected AND in BETWEEN")
            hi = self.value(col)
            return f"{c} {'NOT ' if neg else ''}BETWEEN {lo} AND {hi}"
        if neg:
            raise self.fail("expected IN, LIKE or BETWEEN after NOT")
        t = self.peek()
        if t is None or t[0] != "op":
            raise self.fail("expected a comparison (=, !=, <, <=, >, >=)")
        self.i += 1
        op = {"==": "=", "<>": "!="}.get(t[1], t[1])
        return f"{c} {op} {self.value(col)}"


_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "TRUE",
                       "FALSE", "SELECT", "UNION", "FROM"})


def where_sql(text: str, types: dict[str, str]) -> tuple[str, list[Any]]:
    """A ``--where`` condition as SQL and its parameters.

    Only conditions on columns of the results table are accepted (``COLUMN OP VALUE``, ``IN``,
    ``LIKE``, ``BETWEEN``, ``IS [NOT] NULL``, joined by ``AND``/``OR``/``NOT`` and parentheses);
    every value is bound as a parameter, so no SQL text of the user reaches the query (no
    functions, subqueries, ``UNION``, file readers). Anything else is refused naming ``where``."""
    p = _WhereParser(text, types)
    sql = p.parse()
    return sql, p.args


def check_select(sql: str) -> str:
    """``sql`` when it is exactly one read-only query (SELECT, also WITH/FROM/SUMMARIZE/EXPLAIN
    forms); COPY, ATTACH, INSTALL/LOAD, SET, PRAGMA, EXPORT, CREATE/INSERT/UPDATE/DELETE and
    several statements are refused naming ``sql``. (The query then runs on a connection without
    file or network access: read_csv, read_parquet, glob ... fail there.)"""
    import duckdb

    text = sql.strip().rstrip(";").strip()
    if not text:
        raise ParameterError("{-sql} is empty; give one SELECT query, e.g. \"SELECT * FROM results\"")
    try:
        stmts = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise ParameterError(f"{{-sql}} query failed: {' '.join(str(exc).split())[:200]}") from None
    if len(stmts) != 1:
        raise ParameterError(f"{{-sql}} takes one query, got {len(stmts)} statements; run them one "
                             "at a time")
    kind = stmts[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        name = str(kind).rsplit(".", 1)[-1]
        raise ParameterError(
            f"{{-sql}} runs read-only SELECT queries only; a {name} statement is refused (COPY, "
            "ATTACH, INSTALL/LOAD, SET, PRAGMA, EXPORT, CREATE, INSERT, UPDATE, DELETE are); "
            "to save rows use --csv, --parquet or --json"
        )
    return text


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
    dropped: int  # rows at a non-finite x (other than the reference rows), left out
    #: rows at x = +inf (for x = width also a null width: the infinite-width rows), per group:
    #: (agg y, min y, max y, count), drawn as horizontal reference lines
    reference: dict[Any, tuple[float, float, float, int]] = field(default_factory=dict)


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
    #: grouped: metric -> (runs with a value the aggregate uses, selected runs), for the metrics
    #: some runs lack (null: e.g. epochs_to_target of a run that never reached the target); the
    #: table then has a column counted(metric) per group next to runs
    missing: dict[str, tuple[int, int]] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """Lines saying which aggregates are over fewer values than runs."""
        what = "a positive value" if self.agg == "geomean" else "a value"
        return [f"{self.agg}({m}) is over the {c} of {n} run(s) with {what} ({n - c} without); "
                f"counted({m}) gives the number per group"
                for m, (c, n) in self.missing.items()]

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
        return self.export(path, with_arrays, fmt="parquet")

    def export_csv(self, path: str | os.PathLike[str], with_arrays: bool = False) -> int:
        """Write the selected rows (every column; grouped: the table) to CSV; row count."""
        return self.export(path, with_arrays, fmt="csv")

    def export(self, path: str | os.PathLike[str], with_arrays: bool = False, *,
               fmt: str = "parquet") -> int:
        sql = self.query if self.groups else self.base
        if with_arrays and not self.groups:
            sql = self._with_array_columns(self.base)
        return self.store.export(sql, path, self.args, fmt=fmt)

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
        # the reference rows: x = +inf; for width also a null width of a command that has one
        ref = f"CAST({q(x)} AS DOUBLE) = CAST('inf' AS DOUBLE)"
        ref_args: list[Any] = []
        if x == "width":
            with_width = sorted({cmd for cmd, name, role in self.store.roles()
                                 if name == "width" and role == "param"})
            if with_width:
                ref = (f"({ref} OR ({q(x)} IS NULL AND command IN "
                       f"({', '.join('?' for _ in with_width)})))")
                ref_args = list(with_width)
        rq = (f"SELECT {byx}, {AGGS[self.agg].format(q(y))}, min({q(y)}), max({q(y)}), "
              f"count({q(y)}) FROM ({self.base}) WHERE {ref} AND {q(y)} IS NOT NULL "
              "GROUP BY 1 ORDER BY 1")
        _, rrow = self.store.query(rq, [*self.args, *ref_args])
        dropped = self.store.query(
            f"SELECT count(*) FROM ({self.base}) WHERE {q(x)} IS NOT NULL AND NOT {fin} "
            f"AND NOT ({ref})", [*self.args, *ref_args]
        )[1][0][0]
        reference = {b: (float(yv), float(lo), float(hi), int(cnt))
                     for b, yv, lo, hi, cnt in rrow if yv is not None}
        if not prow and not reference:
            raise ParameterError(f"nothing to plot: no rows with finite {x} and {y}; check the "
                                 "filters and {-x}/{-y}")
        series: dict[Any, list[tuple[float, float, float, float, int]]] = {}
        for b, xv, yv, lo, hi, cnt in prow:
            series.setdefault(b, []).append((float(xv), float(yv), float(lo), float(hi), int(cnt)))
        return PlotSeries(x, y, by_col, self.agg, series, dropped, reference)


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
    if where is not None:
        wsql, wargs = where_sql(where, types)
        conds.append(f"({wsql})")
        args.extend(wargs)
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
    missing: dict[str, tuple[int, int]] = {}
    if groups:
        # how many values each aggregate is over, where that is not every run of the group
        counted_sql = {m: COUNTED.get(agg, "count({})").format(q(m)) for m in metric_list}
        if metric_list and total and agg != "count":
            got = store.query("SELECT " + ", ".join(counted_sql[m] for m in metric_list)
                              + f" FROM ({base})", args)[1][0]
            missing = {m: (int(c), int(total)) for m, c in zip(metric_list, got, strict=True)
                       if int(c) < total}
        names = [*groups, "runs"]
        sel = [q(g) for g in groups] + ["count(*) AS runs"]
        agg_names = {}
        for m in metric_list:
            alias = f"{agg}({m})"
            agg_names[m] = alias
            sel.append(f"{AGGS[agg].format(q(m))} AS {q(alias)}")
            names.append(alias)
            if m in missing:
                calias = f"counted({m})"
                agg_names[calias] = calias
                sel.append(f"{counted_sql[m]} AS {q(calias)}")
                names.append(calias)
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
                       metrics=metric_list, agg=agg, query=query, order=order, limit=limit,
                       missing=missing)
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

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        return self.store.export_csv(self.sql, path)


def run_sql(db: str | os.PathLike[str] | ResultStore, sql: str, limit: int | None = None
            ) -> SqlResult:
    """Run one read-only SQL query (tables ``results``, ``arrays``, ``columns``); at most
    ``limit`` rows.

    Only a SELECT (or EXPLAIN) is accepted (:func:`check_select`), and it runs on a read-only
    connection without file or network access and with its settings locked: COPY, ATTACH,
    INSTALL/LOAD, SET and file-reading functions (read_csv, read_parquet, glob ...) are refused."""
    text = check_select(sql)
    store = db if isinstance(db, ResultStore) else open_store(db)
    names, rows = store.query(text)
    if limit is not None:
        rows = rows[:limit]
    return SqlResult(store, text, names, rows)
