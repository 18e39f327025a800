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
``actspec_store``  schema version, creation time and ``rows``: the number of rows of ``results``
             as of the last committed batch (the store's own index, checked on open).

Reading: every connection that reads is opened read-only, with DuckDB's external access
(files, network, ATTACH, COPY) and extension auto-loading/installing disabled and the
configuration locked, so no query can read or write anything but this file. Before a store is
used (``actspec results``, and ``actspec sweep`` before it runs a task) :meth:`ResultStore.verify`
reads every block of every table (DuckDB checks each block's checksum as it reads it) and
compares the row count with the ``rows`` index: a damaged file is refused with its path.

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
    "READ_CONFIG",
    "WRITE_CONFIG",
    "open_store",
]

#: DuckDB settings of every reading connection: no file or network access beyond the database
#: itself (no COPY, ATTACH, read_csv ...), no extension downloads, settings locked.
READ_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}
#: DuckDB settings of the writer (the sweep's own statements only): no extension downloads.
WRITE_CONFIG: dict[str, Any] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}
TABLES = ("actspec_store", "columns", "results", "arrays")
#: the most rows one query may return (they are held in memory): a sweep stores at most
#: MAX_TASKS rows, so only a query that multiplies rows (a join, range()) gets near it
MAX_ROWS = 2_000_000

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


def is_corruption(exc: BaseException) -> bool:
    """Whether a DuckDB error says the file is damaged (a block checksum, a corrupt header, a
    truncated file)."""
    text = str(exc).lower()
    return "corrupt" in text or "checksum" in text or "could not read enough bytes" in text


def _reason(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit]


class ResultStore:
    """A results database file (DuckDB). Cheap to create: nothing is opened until used."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.lock_timeout = float(lock_timeout)
        self._verified: int | None = None

    # ---------------------------------------------------------------- connections
    def corrupt(self, exc: BaseException) -> ActspecError:
        """The error for a damaged file: its path and DuckDB's reason, on one line."""
        return ActspecError(
            f"results database {str(self.path)!r} is corrupt ({_reason(exc)}); restore it from "
            "a backup or run the sweep again into a new --db"
        )

    def db_error(self, exc: BaseException) -> ActspecError:
        """A DuckDB error while reading or writing the file, as one line naming the path."""
        if is_corruption(exc):
            return self.corrupt(exc)
        return ActspecError(f"cannot use results database {str(self.path)!r}: {_reason(exc)}")

    def check_file(self) -> None:
        """An existing file must be a DuckDB database: refuse anything else (a SQLite file would
        make DuckDB look for an extension) before DuckDB opens it."""
        p = str(self.path)
        if self.path.is_dir():
            raise ActspecError(f"results database {p!r} is a directory; give the .duckdb file")
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise ActspecError(f"cannot read results database {p!r}: {exc.strerror}") from None
        if not head:
            raise ActspecError(
                f"results database {p!r} is an empty file (0 bytes), not a DuckDB database; "
                "delete it or give another file"
            )
        if head.startswith(b"SQLite format 3"):
            raise ActspecError(
                f"{p!r} is a SQLite database, not a DuckDB results database; give the .duckdb "
                "file that 'actspec sweep' wrote"
            )
        if head[8:12] != b"DUCK":
            raise ActspecError(
                f"{p!r} is not a DuckDB database (no DuckDB header); give the .duckdb file that "
                "'actspec sweep' wrote"
            )

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Any]:
        """A DuckDB connection to the file, waiting while another process holds its lock.

        Read-only connections get :data:`READ_CONFIG` (no external access, no extensions,
        settings locked), the writer :data:`WRITE_CONFIG`. DuckDB errors inside the block become
        one-line :class:`ActspecError` naming the file (a checksum error: "is corrupt")."""
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
        if self.path.exists():
            self.check_file()
        config = dict(READ_CONFIG if read_only else WRITE_CONFIG)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only, config=config)
                break
            except duckdb.Error as exc:
                if _is_lock_error(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 1.5, 0.5)
                    continue
                if _is_lock_error(exc):
                    raise ActspecError(
                        f"results database {str(self.path)!r} is locked by another process "
                        f"({_reason(exc, 160)}); wait for it to finish"
                    ) from None
                if is_corruption(exc):
                    raise self.corrupt(exc) from None
                raise ActspecError(
                    f"cannot open results database {str(self.path)!r}: "
                    f"{_reason(exc)}; is it a DuckDB file written by actspec sweep?"
                ) from None
        try:
            yield con
        except duckdb.Error as exc:
            raise self.db_error(exc) from None
        finally:
            con.close()

    def verify(self) -> int:
        """Check the whole file; returns the number of result rows.

        Reads every row of every table (so DuckDB verifies the checksum of every block in use)
        and compares the row count with the store's own index (``rows`` in ``actspec_store``,
        written with every batch) and with the number of distinct task keys. A damaged or
        inconsistent file raises :class:`ActspecError` naming it. Done once per object."""
        if self._verified is not None:
            return self._verified
        p = str(self.path)
        with self.connect(read_only=True) as con:
            if not con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]:
                return 0  # a new, empty DuckDB file: nothing to check (a sweep may fill it)
            self._check_actspec_db(con)
            counts = {}
            for table in TABLES:
                counts[table] = con.execute(
                    f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchone()[0]
            nres = int(counts["results"])
            nkeys = int(con.execute("SELECT count(DISTINCT key) FROM results").fetchone()[0])
            rec = con.execute("SELECT value FROM actspec_store WHERE name = 'rows'").fetchall()
        if nkeys != nres:
            raise ActspecError(
                f"results database {p!r} is inconsistent: {nres} rows but {nkeys} distinct task "
                "keys (a key is stored once); restore it from a backup or run the sweep again "
                "into a new --db"
            )
        if rec:
            try:
                recorded = int(rec[-1][0])
            except (TypeError, ValueError):
                raise ActspecError(
                    f"results database {p!r} is corrupt: its row index holds {rec[-1][0]!r}, not a "
                    "count; restore it from a backup or run the sweep again into a new --db"
                ) from None
            if recorded != nres:
                raise ActspecError(
                    f"results database {p!r} is inconsistent: {nres} rows in its results table but "
                    f"{recorded} recorded by the sweep that wrote it (rows lost or added outside "
                    "actspec); restore it from a backup or run the sweep again into a new --db"
                )
        self._verified = nres
        return nres

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
        names, _, rows = self.query_typed(sql, params)
        return names, rows

    def query_typed(self, sql: str, params: Sequence[Any] | None = None
                    ) -> tuple[list[str], list[str], list[tuple]]:
        """Run a read-only query (on a connection with :data:`READ_CONFIG`): (column names, their
        DuckDB types, rows)."""
        import duckdb

        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            try:
                cur = con.execute(sql, list(params or []))
                names = [d[0] for d in cur.description] if cur.description else []
                types = [str(d[1]) for d in cur.description] if cur.description else []
                rows = []
                while cur.description:
                    chunk = cur.fetchmany(50_000)
                    if not chunk:
                        break
                    rows.extend(chunk)
                    if len(rows) > MAX_ROWS:
                        raise ActspecError(
                            f"the query returns more than {MAX_ROWS} rows; add a LIMIT, a "
                            "filter or an aggregate"
                        )
            except duckdb.PermissionException as exc:
                raise ActspecError(
                    f"query refused: {_reason(exc, 160)}; queries on a results database read "
                    "only its tables (results, arrays, columns): no files, network, ATTACH, "
                    "COPY or extensions"
                ) from None
            except duckdb.Error as exc:
                if is_corruption(exc):
                    raise self.corrupt(exc) from None
                raise ActspecError(f"query failed: {_reason(exc, 300)}") from None
        return names, types, rows

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        """The arrays stored with one task (name -> ndarray)."""
        with self.connect(read_only=True) as con:
            self._check_actspec_db(con)
            rows = con.execute("SELECT name, shape, data FROM arrays WHERE key = ?", [key]).fetchall()
        return {name: np.asarray(data, dtype=np.float64).reshape(shape) for name, shape, data in rows}

    def export(self, sql: str, path: str | os.PathLike[str], params: Sequence[Any] | None = None,
               *, fmt: str = "parquet") -> int:
        """Write the rows of ``sql`` to a Parquet or CSV file; returns the row count.

        The query runs on the read-only, locked connection like any other; its rows are then
        written by a separate in-memory DuckDB (DuckDB's COPY) that sees only those rows, never
        the query, so no query text ever runs where files can be written."""
        fmt = fmt.lower()
        if fmt not in ("parquet", "csv"):
            raise ActspecError(f"export format must be parquet or csv (got {fmt!r})")
        names, types, rows = self.query_typed(sql, params)
        write_rows(names, types, rows, path, fmt=fmt)
        return len(rows)

    def export_parquet(self, sql: str, path: str | os.PathLike[str],
                       params: Sequence[Any] | None = None) -> int:
        """Write the rows of ``sql`` to a Parquet file; returns the row count."""
        return self.export(sql, path, params, fmt="parquet")

    def export_csv(self, sql: str, path: str | os.PathLike[str],
                   params: Sequence[Any] | None = None) -> int:
        """Write the rows of ``sql`` to a CSV file (with a header line); returns the row count."""
        return self.export(sql, path, params, fmt="csv")

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
        # the store's own index, checked by verify(): same transaction as the rows
        con.execute("DELETE FROM actspec_store WHERE name = 'rows'")
        con.execute("INSERT INTO actspec_store SELECT 'rows', CAST(count(*) AS VARCHAR) FROM results")
        return len(todo)


def _jsonable(obj: Any) -> Any:
    from ..core.io import to_jsonable

    return to_jsonable(obj)


def _unique_names(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for i, n in enumerate(names):
        name = str(n) or f"column{i + 1}"
        base, k = name, 1
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name)
        out.append(name)
    return out


def write_rows(names: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
               path: str | os.PathLike[str], *, fmt: str = "parquet") -> None:
    """Write rows (with their DuckDB column types) to a Parquet or CSV file, atomically, through
    an in-memory DuckDB that holds only these rows."""
    import duckdb

    from ..core.io import atomic_path

    cols = _unique_names(names)
    out = Path(path)
    mem = duckdb.connect(":memory:", config=dict(WRITE_CONFIG))
    try:
        try:
            mem.execute("CREATE TABLE export (" + ", ".join(
                f"{quote(c)} {t}" for c, t in zip(cols, types, strict=True)) + ")")
        except duckdb.Error:  # a type DuckDB cannot declare by name: keep the values as text
            mem.execute("CREATE TABLE export (" + ", ".join(f"{quote(c)} VARCHAR" for c in cols) + ")")
            rows = [[None if v is None else str(v) for v in r] for r in rows]
        ncol = max(1, len(cols))
        per = max(1, 4000 // ncol)  # rows per INSERT (DuckDB binds every value as a parameter)
        one = "(" + ", ".join("?" for _ in cols) + ")"
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            mem.execute(f"INSERT INTO export VALUES {', '.join(one for _ in chunk)}",
                        [v for r in chunk for v in r])
        opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        with atomic_path(out, spool=True) as tmp:
            tmp.unlink(missing_ok=True)
            mem.execute(f"COPY export TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({opts})")
    except duckdb.Error as exc:
        raise ActspecError(f"cannot write {fmt} file {str(out)!r}: {_reason(exc, 300)}") from None
    finally:
        mem.close()


def open_store(path: str | os.PathLike[str], *, verify: bool = True) -> ResultStore:
    """A :class:`ResultStore` for an existing database file (clear error when missing), checked
    with :meth:`ResultStore.verify` unless ``verify`` is False."""
    store = ResultStore(path)
    if not store.path.exists():
        raise ActspecError(
            f"results database {str(store.path)!r} does not exist; run 'actspec sweep' first or "
            "check the path"
        )
    if store.path.is_dir():
        raise ActspecError(f"results database {str(store.path)!r} is a directory; give the .duckdb file")
    if verify:
        store.verify()
    return store
