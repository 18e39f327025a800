"""The results database of ``actspec sweep``: one DuckDB file, one row per task.

Layout (DuckDB, queryable with plain SQL; ``actspec results DB --sql ...``):

``results``  one row per task, keyed by ``key`` (a hash of the task's command and parameters):
             ``key, command, status, error, sweep, attempts, seconds, started, finished, worker,
             params (JSON), arrays (names), actspec_version, git_revision, meta (JSON), traceback``
             followed by one column per task parameter (``activation``, ``n``, ``width``, ``seed``
             ...) and one per scalar result (``lambda_min``, ``condition_number`` ...), added as
             new commands and results appear. ``status`` is ``ok``, ``error`` (the task raised:
             the message is in ``error``, the traceback in ``traceback``) or ``lost`` (its worker
             died more often than the retry limit allows). ``width = inf`` is stored as the DOUBLE
             ``inf`` (``WHERE width = 'inf'`` works).
``arrays``   large arrays stored alongside, referenced by (key, name): ``key, name, shape, data``
             (``data`` a flat DOUBLE[] in C order); ``results.arrays`` lists a row's array names.
``columns``  which columns are parameters and which are results, per command.
``actspec_store``  schema version and creation time.

Writing: a single writer (the process that runs the sweep) appends finished tasks in batches,
each batch one transaction (rows and their arrays together), so an interrupted or killed sweep
leaves every committed row intact and never half a row. The file is opened only for the
duration of a batch, so ``actspec results`` can read it while a sweep runs. A key is never
stored twice: a batch replaces the previous row of a key only when that row had failed.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ActspecError

__all__ = [
    "Record",
    "ResultStore",
    "CORE_COLUMNS",
    "STATUSES",
    "open_store",
]

SCHEMA_VERSION = "1"
STATUSES = ("ok", "error", "lost")

# name -> DuckDB type, in table order
CORE_COLUMNS: dict[str, str] = {
    "key": "VARCHAR",
    "command": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "sweep": "VARCHAR",
    "attempts": "INTEGER",
    "seconds": "DOUBLE",
    "started": "TIMESTAMP",
    "finished": "TIMESTAMP",
    "worker": "VARCHAR",
    "params": "VARCHAR",
    "arrays": "VARCHAR[]",
    "actspec_version": "VARCHAR",
    "git_revision": "VARCHAR",
    "meta": "VARCHAR",
    "traceback": "VARCHAR",
}

_RANK = {"BOOLEAN": 0, "BIGINT": 1, "DOUBLE": 2, "VARCHAR": 3}


@dataclass
class Record:
    """One finished task, as written to the store."""

    key: str
    command: str
    status: str
    params: dict[str, Any]
    columns: dict[str, Any] = field(default_factory=dict)  # parameter + result columns
    roles: dict[str, str] = field(default_factory=dict)  # column -> "param" | "result"
    types: dict[str, str] = field(default_factory=dict)  # column -> declared DuckDB type
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    sweep: str | None = None
    attempts: int = 1
    seconds: float | None = None
    started: datetime | None = None
    finished: datetime | None = None
    worker: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_type(value: Any) -> str | None:
    """DuckDB column type for a Python scalar (None: no information)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "BOOLEAN"
    if isinstance(value, (int, np.integer)):
        return "BIGINT"
    if isinstance(value, (float, np.floating)):
        return "DOUBLE"
    return "VARCHAR"


def _promote(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a in _RANK and b in _RANK:
        return a if _RANK[a] >= _RANK[b] else b
    return "VARCHAR"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


class ResultStore:
    """A results database file (DuckDB). Cheap to create: nothing is opened until used."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.lock_timeout = float(lock_timeout)

    # ---------------------------------------------------------------- connections
    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Any]:
        """A DuckDB connection to the file, waiting while another process holds its lock."""
        import duckdb

        if read_only and not self.path.exists():
            raise ActspecError(
                f"results database {str(self.path)!r} does not exist; run 'actspec sweep' first "
                "or check the path"
            )
        if not read_only:
            parent = self.path.parent if str(self.path.parent) else Path(".")
            if not parent.is_dir():
                raise ActspecError(
                    f"cannot create results database {str(self.path)!r}: directory "
                    f"{str(parent)!r} does not exist; create it first"
                )
            if self.path.is_dir():
                raise ActspecError(f"results database {str(self.path)!r} is a directory; give a file")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if _is_lock_error(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 1.5, 0.5)
                    continue
                if _is_lock_error(exc):
                    raise ActspecError(
                        f"results database {str(self.path)!r} is locked by another process "
                        f"({' '.join(str(exc).split())[:160]}); wait for it to finish"
                    ) from None
                raise ActspecError(
                    f"cannot open results database {str(self.path)!r}: "
                    f"{' '.join(str(exc).split())[:200]}; is it a DuckDB file written by actspec sweep?"
                ) from None
        try:
            yield con
        finally:
            con.close()

    # ---------------------------------------------------------------- schema
    def init(self) -> None:
        """Create the tables when the file is new (idempotent)."""
        with self.connect() as con:
            self._ensure_schema(con)

    def _ensure_schema(self, con: Any) -> None:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        if tables and "actspec_store" not in tables:
            raise ActspecError(
                f"{str(self.path)!r} is a DuckDB database of something else (tables: "
                f"{', '.join(sorted(tables)[:5])}); give a new file name with --db"
            )
        cols = ", ".join(f"{quote(k)} {t}" for k, t in CORE_COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
        con.execute(
            "CREATE TABLE IF NOT EXISTS arrays (key VARCHAR, name VARCHAR, shape BIGINT[], "
            "data DOUBLE[])"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS columns (command VARCHAR, name VARCHAR, role VARCHAR)"
        )
        con.execute("CREATE TABLE IF NOT EXISTS actspec_store (name VARCHAR, value VARCHAR)")
        if not con.execute("SELECT count(*) FROM actspec_store").fetchone()[0]:
            con.execute(
                "INSERT INTO actspec_store VALUES ('schema', ?), ('created', ?)",
                [SCHEMA_VERSION, datetime.now().isoformat(timespec="seconds")],
            )

    @staticmethod
    def _column_types(con: Any, table: str = "results") -> dict[str, str]:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def _check_actspec_db(self, con: Any) -> None:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "results" not in tables or "actspec_store" not in tables:
            raise ActspecError(
                f"{str(self.path)!r} is a DuckDB file but not an actspec results database "
                "(no 'results' table); give the file that 'actspec sweep' wrote"
            )

    # ---------------------------------------------------------------- reading
    def statuses(self) -> dict[str, str]:
        """key -> status of every stored task ({} when the file does not exist yet)."""
        if not self.path.exists():
            return {}
        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            return dict(con.execute("SELECT key, status FROM results").fetchall())

    def columns(self) -> dict[str, str]:
        """Column name -> DuckDB type of the results table."""
        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            return self._column_types(con)

    def roles(self) -> list[tuple[str, str, str]]:
        """(command, column, role) for every parameter/result column."""
        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            return [tuple(r) for r in con.execute("SELECT command, name, role FROM columns").fetchall()]

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run a read-only query: (column names, rows)."""
        import duckdb

        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            try:
                cur = con.execute(sql, list(params or []))
                names = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
            except duckdb.Error as exc:
                raise ActspecError(f"query failed: {' '.join(str(exc).split())[:300]}") from None
        return names, rows

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        """The arrays stored with one task (name -> ndarray)."""
        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            rows = con.execute("SELECT name, shape, data FROM arrays WHERE key = ?", [key]).fetchall()
        return {name: np.asarray(data, dtype=np.float64).reshape(shape) for name, shape, data in rows}

    def export_parquet(self, sql: str, path: str | os.PathLike[str],
                       params: Sequence[Any] | None = None) -> int:
        """Write the rows of ``sql`` to a Parquet file (DuckDB's COPY); returns the row count."""
        import duckdb

        from ..core.io import atomic_path

        out = Path(path)
        with self.connect(read_only=True) as con, atomic_path(out, spool=True) as tmp:
            self._check_actspec_db(con)
            try:
                n = con.execute(f"SELECT count(*) FROM ({sql})", list(params or [])).fetchone()[0]
                tmp.unlink(missing_ok=True)
                con.execute(
                    f"COPY ({sql}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)",
                    list(params or []),
                )
            except duckdb.Error as exc:
                raise ActspecError(f"parquet export failed: {' '.join(str(exc).split())[:300]}") from None
        return int(n)

    # ---------------------------------------------------------------- writing
    def write(self, records: Iterable[Record]) -> int:
        """Append finished tasks in one transaction; returns the number of rows written.

        A key already stored with status ``ok`` is kept (the new record is dropped); a failed
        (``error``/``lost``) row is replaced by the new record."""
        recs = list(records)
        if not recs:
            return 0
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                self._ensure_schema(con)
                n = self._write(con, recs)
                con.execute("COMMIT")
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the connection may already be gone
                    pass
                raise
        return n

    def _write(self, con: Any, recs: list[Record]) -> int:
        # keep one record per key (an ok one if any)
        by_key: dict[str, Record] = {}
        for r in recs:
            old = by_key.get(r.key)
            if old is None or (old.status != "ok" and r.status == "ok"):
                by_key[r.key] = r
        keys = list(by_key)
        existing = dict(
            con.execute(
                "SELECT key, status FROM results WHERE list_contains(?, key)", [keys]
            ).fetchall()
        )
        todo = [r for k, r in by_key.items() if existing.get(k) != "ok"]
        if not todo:
            return 0
        replace = [r.key for r in todo if r.key in existing]
        if replace:
            con.execute("DELETE FROM results WHERE list_contains(?, key)", [replace])
            con.execute("DELETE FROM arrays WHERE list_contains(?, key)", [replace])

        # columns: add new ones, widen types where needed
        types = self._column_types(con)
        wanted: dict[str, str | None] = {}
        for r in todo:
            for name, value in r.columns.items():
                t = _promote(r.types.get(name), sql_type(value))
                wanted[name] = _promote(wanted.get(name), t)
        for name, wanted_t in wanted.items():
            t = wanted_t or "DOUBLE"
            if name not in types:
                con.execute(f"ALTER TABLE results ADD COLUMN {quote(name)} {t}")
                types[name] = t
            elif name not in CORE_COLUMNS:
                have = types[name]
                new = _promote(have, t) or have
                if new != have:
                    con.execute(f"ALTER TABLE results ALTER COLUMN {quote(name)} TYPE {new}")
                    types[name] = new
        known = {tuple(row) for row in con.execute("SELECT command, name, role FROM columns").fetchall()}
        new_roles = []
        for r in todo:
            for name, role in r.roles.items():
                tag = (r.command, name, role)
                if tag not in known:
                    known.add(tag)
                    new_roles.append(list(tag))
        if new_roles:
            con.executemany("INSERT INTO columns VALUES (?, ?, ?)", new_roles)

        # rows, grouped by their column sets
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        array_rows: list[list[Any]] = []
        for r in todo:
            core = {
                "key": r.key,
                "command": r.command,
                "status": r.status,
                "error": r.error,
                "sweep": r.sweep,
                "attempts": int(r.attempts),
                "seconds": r.seconds,
                "started": r.started,
                "finished": r.finished,
                "worker": r.worker,
                "params": json.dumps(_jsonable(r.params), sort_keys=True),
                "arrays": sorted(r.arrays),
                "actspec_version": r.meta.get("actspec"),
                "git_revision": r.meta.get("git_revision"),
                "meta": json.dumps(_jsonable(r.meta), sort_keys=True),
                "traceback": r.traceback,
            }
            cols = {**core, **{k: _plain(v) for k, v in r.columns.items() if k not in core}}
            names = tuple(cols)
            groups.setdefault(names, []).append([cols[c] for c in names])
            for name, arr in r.arrays.items():
                a = np.asarray(arr, dtype=np.float64)
                array_rows.append([r.key, name, list(a.shape), a.ravel().tolist()])
        for names, rows in groups.items():
            placeholders = ", ".join("?" for _ in names)
            con.executemany(
                f"INSERT INTO results ({', '.join(quote(c) for c in names)}) VALUES ({placeholders})",
                rows,
            )
        if array_rows:
            con.executemany("INSERT INTO arrays VALUES (?, ?, ?, ?)", array_rows)
        return len(todo)


def _jsonable(obj: Any) -> Any:
    from ..core.io import to_jsonable

    return to_jsonable(obj)


def open_store(path: str | os.PathLike[str]) -> ResultStore:
    """A :class:`ResultStore` for an existing database file (clear error when missing)."""
    store = ResultStore(path)
    if not store.path.exists():
        raise ActspecError(
            f"results database {str(store.path)!r} does not exist; run 'actspec sweep' first or "
            "check the path"
        )
    if store.path.is_dir():
        raise ActspecError(f"results database {str(store.path)!r} is a directory; give the .duckdb file")
    return store
