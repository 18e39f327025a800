"""Sweeps: cartesian grids of task parameters, executed on Dask distributed, kept in a DuckDB store.

A *task kind* is a small function ``params -> dict`` (scalars become columns of the results
table, arrays are stored alongside) registered with its parameters::

    @register_task("spectrum", params=[Param("activation", "str", "relu"), ...],
                   metrics=("lambda_min", "condition_number"))
    def spectrum_task(p: dict) -> dict:
        ...
        return {"lambda_min": 0.01, "eigenvalues": np.array([...])}

A sweep is a list of :class:`Task` (command + full parameter dict + key); the key is a hash of
the command and the parameters that differ from their defaults, so a re-run skips every task
already stored (resume after Ctrl-C, a crash or a lost worker) and adding a new parameter with a
default to a kind does not invalidate stored results.

Config file (TOML)::

    [sweep]                       # optional
    name = "conditioning"         # label stored in every row
    db = "conditioning.duckdb"    # default: next to the config, same stem
    retries = 2                   # re-submissions of a task whose worker died
    workers = 2                   # local cluster size (ignored with a scheduler)
    threads_per_worker = 1
    scheduler = "tcp://host:8786" # optional: an existing Dask scheduler

    [[grid]]                      # one or more; the sweep is their union
    command = "spectrum"
    data = "circle"               # a scalar: fixed for every task of this grid
    activation = ["relu", "elu", "tanh", "swish"]   # a list: one axis of the grid
    n = [10, 20, 40, 80, 160]
    seed = { range = [0, 10] }    # range(0, 10); also { range = [a, b, step] }
    width = ["inf", 1000]         # also { geom = [start, stop, count] } (geometric)

Python use::

    from actspec.sweep import load_config, run_sweep
    cfg = load_config("sweep.toml")
    summary = run_sweep(cfg.tasks, cfg.db, workers=2)
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import json
import logging
import os
import socket
import time
import traceback as _tb
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from ..experiments import params as P
from ..experiments.cluster import close_client, local_cluster, start_client
from ..experiments.params import Param, as_int
from .store import CORE_COLUMNS, Record, ResultStore

__all__ = [
    "Param",
    "TaskKind",
    "Task",
    "SweepConfig",
    "SweepState",
    "SweepSummary",
    "TASK_KINDS",
    "register_task",
    "make_task",
    "expand_grid",
    "load_config",
    "config_from_dict",
    "plan",
    "run_sweep",
    "local_cluster",
    "execute_task",
    "split_result",
]

log = logging.getLogger(__name__)

# ============================================================================ task kinds


@dataclass(frozen=True)
class TaskKind:
    """A registered task kind: ``func(params) -> dict`` plus its parameters."""

    name: str
    func: Callable[[dict[str, Any]], Mapping[str, Any]]
    params: dict[str, Param]
    metrics: tuple[str, ...] = ()
    doc: str = ""
    hidden: bool = False
    check: Callable[[dict[str, Any]], None] | None = None


TASK_KINDS: dict[str, TaskKind] = {}


def register_task(
    name: str,
    params: Sequence[Param],
    *,
    metrics: Sequence[str] = (),
    doc: str = "",
    hidden: bool = False,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Callable[[dict[str, Any]], Mapping[str, Any]]], Callable[..., Any]]:
    """Decorator registering ``func(params) -> dict of scalars (+ arrays)`` as a task kind.

    ``metrics``: the result columns ``actspec results`` shows by default. ``check(params)`` runs
    in the submitting process before any task starts (cheap validation, raise ActspecError).
    The function must be importable by the workers (module level in an installed module)."""

    def deco(func: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Callable[..., Any]:
        TASK_KINDS[name] = TaskKind(
            name=name,
            func=func,
            params={p.name: p for p in params},
            metrics=tuple(metrics),
            doc=doc or (func.__doc__ or "").strip().split("\n")[0],
            hidden=hidden,
            check=check,
        )
        return func

    return deco


def get_kind(command: str) -> TaskKind:
    kind = TASK_KINDS.get(str(command).strip())
    if kind is None:
        known = [k for k, v in TASK_KINDS.items() if not v.hidden]
        hint = difflib.get_close_matches(str(command), known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ActspecError(
            f"unknown sweep command {command!r}{extra}; available: {', '.join(known)}"
        )
    return kind


# ============================================================================ tasks


@dataclass(frozen=True)
class Task:
    """One unit of work: a command and its full (normalised) parameters."""

    command: str
    params: dict[str, Any]
    key: str

    def label(self, names: Iterable[str] | None = None) -> str:
        keys = list(names) if names is not None else list(self.params)
        parts = [f"{k}={self.params[k]}" for k in keys if k in self.params]
        return f"{self.command} " + " ".join(parts)


def task_key(command: str, params: Mapping[str, Any]) -> str:
    """Hash of the command and the parameters that differ from their defaults (20 hex digits)."""
    kind = get_kind(command)
    significant = {
        k: v
        for k, v in params.items()
        if k in kind.params and (kind.params[k].required or v != kind.params[k].default)
    }
    text = json.dumps({"command": command, "params": significant}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _resolve_name(kind: TaskKind, name: str, where: str) -> str:
    key = str(name).strip().replace("-", "_")
    if key in kind.params:
        return key
    if key.endswith("s") and key[:-1] in kind.params:  # plural alias: activations, widths, seeds
        return key[:-1]
    hint = difflib.get_close_matches(key, list(kind.params), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ActspecError(
        f"unknown parameter {name!r} for command {kind.name!r}{extra}{where}; "
        f"valid: {', '.join(kind.params)}"
    )


def make_task(command: str, params: Mapping[str, Any], where: str = "") -> Task:
    """A :class:`Task` from raw values: names checked, values coerced, defaults filled in."""
    kind = get_kind(command)
    full: dict[str, Any] = {}
    for name, value in params.items():
        key = _resolve_name(kind, name, where)
        full[key] = kind.params[key].coerce(value, where.strip(" ;,") or "")
    for name, p in kind.params.items():
        if name not in full:
            if p.required:
                raise ActspecError(
                    f"command {command!r} needs parameter {name!r}{where}; add it to the grid"
                )
            full[name] = p.default
    ordered = {name: full[name] for name in kind.params}
    return Task(command=kind.name, params=ordered, key=task_key(kind.name, ordered))


def _axis_values(name: str, value: Any, where: str) -> list[Any]:
    """A TOML value as a list of grid values: lists are axes, tables give ranges, scalars one."""
    if isinstance(value, list):
        if not value:
            raise ActspecError(
                f"parameter {name!r} has an empty list{where}; give at least one value"
            )
        return list(value)
    if isinstance(value, dict):
        if set(value) == {"range"}:
            r = value["range"]
            if (not isinstance(r, list) or not 2 <= len(r) <= 3
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in r)):
                raise ActspecError(
                    f"parameter {name!r}: range must be [start, stop] or [start, stop, step] "
                    f"integers{where}"
                )
            if len(r) == 3 and r[2] == 0:
                raise ActspecError(f"parameter {name!r}: range step must not be 0{where}")
            vals = list(range(*r))
            if not vals:
                raise ActspecError(f"parameter {name!r}: range {r} is empty{where}")
            return vals
        if set(value) == {"geom"}:
            g = value["geom"]
            ok = (isinstance(g, list) and len(g) == 3
                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in g))
            if not ok or g[0] <= 0 or g[1] <= 0 or int(g[2]) != g[2] or g[2] < 1:
                raise ActspecError(
                    f"parameter {name!r}: geom must be [start, stop, count] with positive "
                    f"start and stop{where}"
                )
            geo = np.geomspace(g[0], g[1], int(g[2]))
            if all(isinstance(x, int) for x in g[:2]):
                return list(dict.fromkeys(int(round(v)) for v in geo))
            return [float(v) for v in geo]
        raise ActspecError(
            f"parameter {name!r}: a table value must be {{range = [a, b]}} or "
            f"{{geom = [a, b, count]}}{where}"
        )
    return [value]


def expand_grid(command: str, grid: Mapping[str, Any], where: str = "") -> list[Task]:
    """The cartesian product of one grid: lists (and range/geom tables) are axes, scalars fixed."""
    kind = get_kind(command)
    names: list[str] = []
    axes: list[list[Any]] = []
    seen: dict[str, str] = {}
    for raw, value in grid.items():
        name = _resolve_name(kind, raw, where)
        if name in seen:
            raise ActspecError(f"parameter {name!r} is given twice ({seen[name]!r} and {raw!r}){where}")
        seen[name] = raw
        vals = _axis_values(name, value, where)
        p = kind.params[name]
        names.append(name)
        axes.append(list(dict.fromkeys(p.coerce(v, where.strip(" ;,")) for v in vals)))
    tasks = [make_task(kind.name, dict(zip(names, combo, strict=True)), where)
             for combo in itertools.product(*axes)]
    if kind.check is not None:
        for t in tasks:
            kind.check(t.params)
    return tasks


# ============================================================================ config


@dataclass
class SweepConfig:
    """A parsed sweep: its tasks and how to run them."""

    tasks: list[Task]
    db: Path
    name: str | None = None
    retries: int = 2
    workers: int = 2
    threads_per_worker: int = 1
    scheduler: str | None = None
    source: Path | None = None
    grids: list[dict[str, Any]] = field(default_factory=list)


_SWEEP_KEYS = ("name", "db", "retries", "workers", "threads_per_worker", "scheduler")


def _nonneg_int(value: Any, name: str, minimum: int = 0) -> int:
    bad = ActspecError(f"[sweep] {name} must be an integer >= {minimum}, got {value!r}")
    v = as_int(value, bad)
    if v < minimum:
        raise bad
    return v


def config_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] = ".",
    default_db: str | os.PathLike[str] = "sweep.duckdb",
    default_name: str | None = None,
    overrides: Mapping[str, Sequence[Any]] | None = None,
) -> SweepConfig:
    """A :class:`SweepConfig` from the parsed TOML (see the module docstring for the format).

    ``overrides``: parameter -> values replacing that parameter in every grid whose command has
    it (``actspec sweep --param``)."""
    unknown = [k for k in data if k not in ("sweep", "grid")]
    if unknown:
        raise ActspecError(
            f"unknown top-level key(s) {', '.join(map(repr, unknown))} in the sweep config; "
            "use a [sweep] table for settings and [[grid]] tables for parameters"
        )
    settings = data.get("sweep", {})
    if not isinstance(settings, dict):
        raise ActspecError("'sweep' must be a table: [sweep] with name, db, retries, workers")
    bad = [k for k in settings if k.replace("-", "_") not in _SWEEP_KEYS]
    if bad:
        raise ActspecError(
            f"unknown [sweep] setting(s) {', '.join(map(repr, bad))}; valid: {', '.join(_SWEEP_KEYS)}"
        )
    settings = {k.replace("-", "_"): v for k, v in settings.items()}
    grids = data.get("grid")
    if grids is None:
        raise ActspecError(
            "the sweep config has no [[grid]] table; add one with command = \"spectrum\" and "
            "the parameters to sweep"
        )
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(grids, list) or not grids or not all(isinstance(g, dict) for g in grids):
        raise ActspecError("'grid' must be one or more [[grid]] tables")
    base = Path(base_dir)
    db = settings.get("db", default_db)
    if not isinstance(db, str) or not db.strip():
        raise ActspecError(f"[sweep] db must be a file name, got {db!r}")
    db_path = Path(db).expanduser()
    if not db_path.is_absolute():
        db_path = base / db_path
    name = settings.get("name", default_name)
    if name is not None and not isinstance(name, str):
        raise ActspecError(f"[sweep] name must be a string, got {name!r}")
    scheduler = settings.get("scheduler")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ActspecError(f"[sweep] scheduler must be an address like 'tcp://host:8786', got {scheduler!r}")

    overrides = dict(overrides or {})
    used: set[str] = set()
    tasks: list[Task] = []
    plain_grids: list[dict[str, Any]] = []
    for i, g in enumerate(grids, 1):
        where = f" in [[grid]] #{i}" if len(grids) > 1 else " in [[grid]]"
        g = dict(g)
        command = g.pop("command", None)
        if not isinstance(command, str):
            raise ActspecError(
                f"[[grid]] #{i} needs command = \"spectrum\" (one of "
                f"{', '.join(k for k, v in TASK_KINDS.items() if not v.hidden)})"
            )
        kind = get_kind(command)
        for oname, ovals in overrides.items():
            try:
                key = _resolve_name(kind, oname, "")
            except ActspecError:
                continue
            used.add(oname)
            for k in list(g):
                if k.replace("-", "_") == key or (k.endswith("s") and k[:-1] == key):
                    del g[k]
            g[key] = list(ovals)
        tasks.extend(expand_grid(command, g, where))
        plain_grids.append({"command": command, **g})
    unused = [k for k in overrides if k not in used]
    if unused:
        raise ActspecError(
            f"--param {unused[0]!r} is not a parameter of any command in this sweep"
        )
    if not tasks:
        raise ActspecError("the sweep grid is empty; give at least one value for every parameter")
    return SweepConfig(
        tasks=tasks,
        db=db_path,
        name=name,
        retries=_nonneg_int(settings.get("retries", 2), "retries"),
        workers=_nonneg_int(settings.get("workers", 2), "workers", 1),
        threads_per_worker=_nonneg_int(settings.get("threads_per_worker", 1), "threads_per_worker", 1),
        scheduler=scheduler,
        grids=plain_grids,
    )


def load_config(
    path: str | os.PathLike[str], *, overrides: Mapping[str, Sequence[Any]] | None = None
) -> SweepConfig:
    """Read a sweep TOML file (the database defaults to the same name with ``.duckdb``)."""
    import tomllib

    p = Path(path).expanduser()
    if not p.exists():
        raise ActspecError(f"sweep config {str(p)!r} not found; check the path")
    if p.is_dir():
        raise ActspecError(f"sweep config {str(p)!r} is a directory; give a .toml file")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ActspecError(f"{str(p)!r} is not valid TOML: {exc}; fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ActspecError(f"cannot read sweep config {str(p)!r}: {exc}") from None
    cfg = config_from_dict(
        data, base_dir=p.parent, default_db=p.with_suffix(".duckdb").name, default_name=p.stem,
        overrides=overrides,
    )
    cfg.source = p
    return cfg


# ============================================================================ results of a task


def split_result(out: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split a task's result dict into scalar columns and arrays.

    Scalars (numbers, strings, bools, None) are columns; numeric arrays and lists are arrays;
    lists of strings are joined with '; '; nested dicts are flattened as ``outer_inner``; other
    values (lists of dicts) are dropped."""
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for k, v in out.items():
        name = f"{prefix}{k}"
        if v is None or isinstance(v, (bool, int, float, str, np.generic)):
            scalars[name] = v.item() if isinstance(v, np.generic) else v
        elif isinstance(v, np.ndarray):
            if v.dtype.kind in "biuf":
                arrays[name] = np.asarray(v, dtype=np.float64)
            elif v.ndim == 0:
                scalars[name] = v.item()
        elif isinstance(v, Mapping):
            s, a = split_result(v, prefix=f"{name}_")
            scalars.update(s)
            arrays.update(a)
        elif isinstance(v, (list, tuple)):
            if all(isinstance(x, str) for x in v):
                scalars[name] = "; ".join(v)
            elif all(x is None or (isinstance(x, (int, float, np.number)) and not isinstance(x, bool))
                     for x in v):
                arrays[name] = np.array([np.nan if x is None else float(x) for x in v])
            elif all(isinstance(x, (list, tuple, np.ndarray)) for x in v):
                try:
                    arrays[name] = np.asarray(v, dtype=np.float64)
                except (TypeError, ValueError):
                    pass
    return scalars, arrays


# ============================================================================ worker side

_WORKER_READY = False


def _worker_setup() -> None:
    global _WORKER_READY
    if _WORKER_READY:
        return
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001 - torch missing or already configured
        pass
    _WORKER_READY = True


@functools.lru_cache(maxsize=1)
def _worker_meta() -> dict[str, Any]:
    from ..core.io import run_metadata

    try:
        return run_metadata()
    except Exception:  # noqa: BLE001
        from ..core.version import __version__

        return {"actspec": __version__}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def execute_task(command: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one task (on a worker). Never raises: a failing task returns status 'error'."""
    _worker_setup()
    started = _now()
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "status": "ok",
        "results": {},
        "arrays": {},
        "error": None,
        "traceback": None,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "meta": _worker_meta(),
    }
    try:
        kind = get_kind(command)
        result = kind.func(dict(params))
        if not isinstance(result, Mapping):
            raise TypeError(f"task {command!r} returned {type(result).__name__}, not a dict")
        out["results"], out["arrays"] = split_result(result)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded, never raised
        out["status"] = "error"
        msg = " ".join(str(exc).split())
        out["error"] = msg if isinstance(exc, ActspecError) else f"{type(exc).__name__}: {msg}"
        out["traceback"] = _tb.format_exc()[-8000:]
    out["seconds"] = time.perf_counter() - t0
    out["started"] = started
    out["finished"] = _now()
    return out


def make_record(task: Task, out: Mapping[str, Any], *, attempts: int = 1,
                sweep: str | None = None) -> Record:
    """The store row of a finished task from :func:`execute_task`'s output."""
    kind = get_kind(task.command)
    results = dict(out.get("results") or {})
    columns: dict[str, Any] = {}
    roles: dict[str, str] = {}
    types: dict[str, str] = {}
    for name, p in kind.params.items():
        value = p.column(task.params.get(name))
        if value is None and results.get(name) is not None:
            value = results[name]  # e.g. n=None: the data set's default n that was used
        columns[name] = value
        roles[name] = "param"
        types[name] = p.sql_type
    for name, value in results.items():
        if name in kind.params:
            continue
        col = f"{task.command}_{name}" if name in CORE_COLUMNS else name
        columns[col] = value
        roles[col] = "result"
    return Record(
        key=task.key,
        command=task.command,
        status=str(out.get("status", "error")),
        params=dict(task.params),
        columns=columns,
        roles=roles,
        types=types,
        arrays=dict(out.get("arrays") or {}),
        error=out.get("error"),
        traceback=out.get("traceback"),
        sweep=sweep,
        attempts=attempts,
        seconds=out.get("seconds"),
        started=out.get("started"),
        finished=out.get("finished"),
        worker=out.get("worker"),
        meta=dict(out.get("meta") or {}),
    )


# ============================================================================ running


@dataclass
class SweepState:
    """Live counters of a running sweep (passed to ``on_progress``)."""

    total: int  # unique tasks in the grid
    skipped: int  # already stored (ok, or failed without retry_failed)
    to_run: int  # submitted this time
    done: int = 0  # finished ok this time
    failed: int = 0  # finished with an error or a lost worker this time
    running: int = 0  # submitted and not finished (at most the cluster's threads)
    retried: int = 0  # re-submissions after a lost worker
    written: int = 0  # rows committed to the store this time
    remaining: int = 0  # left for a later run (max_tasks)
    started: float = field(default_factory=time.monotonic)
    cluster_ready: float | None = None  # when the cluster was started/connected
    ended: float | None = None  # when the last result came in


    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


@dataclass
class SweepSummary:
    """What a sweep did (``actspec sweep --json``)."""

    db: str
    total: int
    skipped: int
    run: int
    ok: int
    failed: int
    retried: int
    written: int
    remaining: int
    seconds: float  # from the start to the last result (cluster start-up included)
    startup_seconds: float | None = None  # starting/connecting the cluster
    interrupted: bool = False
    scheduler: str | None = None
    workers: int | None = None

    @property
    def tasks_per_minute(self) -> float | None:
        return 60.0 * self.run / self.seconds if self.run and self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "total": self.total,
            "skipped": self.skipped,
            "run": self.run,
            "ok": self.ok,
            "failed": self.failed,
            "retried": self.retried,
            "written": self.written,
            "remaining": self.remaining,
            "seconds": self.seconds,
            "startup_seconds": self.startup_seconds,
            "tasks_per_minute": self.tasks_per_minute,
            "interrupted": self.interrupted,
            "scheduler": self.scheduler,
            "workers": self.workers,
        }


def unique_tasks(tasks: Iterable[Task]) -> list[Task]:
    """Tasks with duplicate keys removed (first kept, order preserved)."""
    seen: dict[str, Task] = {}
    for t in tasks:
        seen.setdefault(t.key, t)
    return list(seen.values())


def plan(tasks: Iterable[Task], store: ResultStore, *, retry_failed: bool = False
         ) -> tuple[list[Task], dict[str, int]]:
    """(tasks to run, counts of stored statuses among the grid's tasks).

    Stored ``ok`` and ``error`` tasks are skipped (``retry_failed`` re-runs errors); ``lost``
    tasks (their worker died too often) are always re-run."""
    uniq = unique_tasks(tasks)
    stored = store.statuses()
    counts = {"ok": 0, "error": 0, "lost": 0, "new": 0}
    todo = []
    for t in uniq:
        st = stored.get(t.key)
        counts[st if st in counts else "new"] += 1
        if st == "ok" or (st == "error" and not retry_failed):
            continue
        todo.append(t)
    return todo, counts


def _nthreads(client: Any, fallback: int) -> int:
    """Worker threads now connected to the scheduler (0 while all workers are restarting)."""
    try:
        return int(sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001
        return fallback


def _heal(cluster: Any, workers: int) -> None:
    """Bring a local cluster back to ``workers`` workers: the cluster gives up on a worker that
    died and did not come back quickly (distributed.deploy.lost-worker-timeout), e.g. one
    killed again and again by crashing tasks."""
    try:
        if len(cluster.workers) < workers:
            cluster.scale(workers)
    except Exception:  # noqa: BLE001 - best effort; the no-worker timeout catches the rest
        pass


def _lost_message(exc: BaseException | None, attempts: int) -> str:
    name = type(exc).__name__ if exc is not None else "CancelledError"
    if name == "KilledWorker":
        return (f"worker died while running this task ({attempts} attempt(s): crashed, killed "
                "or out of memory)")
    text = " ".join(str(exc).split())[:300] if exc is not None else "cancelled by the scheduler"
    return f"could not run on the cluster after {attempts} attempt(s): {name}: {text}"


def run_sweep(
    tasks: Iterable[Task],
    db: str | os.PathLike[str] | ResultStore,
    *,
    scheduler: str | None = None,
    client: Any = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    processes: bool = True,
    retries: int = 2,
    max_tasks: int | None = None,
    retry_failed: bool = False,
    name: str | None = None,
    flush_interval: float = 1.0,
    no_worker_timeout: float = 120.0,
    on_start: Callable[[SweepState], None] | None = None,
    on_progress: Callable[[SweepState], None] | None = None,
    on_record: Callable[[Record, Task], None] | None = None,
) -> SweepSummary:
    """Run every task not yet in the store on Dask, writing each result as it finishes.

    ``client``: an existing ``distributed.Client`` (else ``scheduler`` address, else a local
    cluster of ``workers`` processes x ``threads_per_worker``). ``retries``: re-submissions of a
    task whose worker died (after that the row is stored with status ``lost``; a task that raises
    is stored with status ``error`` at once). ``max_tasks``: run at most this many tasks now.
    The calling process is the only writer: results are committed in batches (at most every
    ``flush_interval`` seconds) and on exit, including Ctrl-C (KeyboardInterrupt is re-raised
    after the finished results are stored and the cluster is shut down). A local cluster that
    loses workers is scaled back up; one left without any worker for ``no_worker_timeout``
    seconds stops the sweep with an error (finished results kept)."""
    store = db if isinstance(db, ResultStore) else ResultStore(db)
    if retries < 0:
        raise ActspecError(f"retries must be >= 0 (got {retries})")
    if max_tasks is not None and max_tasks < 0:
        raise ActspecError(f"max_tasks must be >= 0 (got {max_tasks})")
    store.init()
    uniq = unique_tasks(tasks)
    todo, counts = plan(uniq, store, retry_failed=retry_failed)
    remaining = 0
    if max_tasks is not None and len(todo) > max_tasks:
        remaining = len(todo) - max_tasks
        todo = todo[:max_tasks]
    state = SweepState(total=len(uniq), skipped=len(uniq) - len(todo) - remaining,
                       to_run=len(todo), remaining=remaining)

    def summary(interrupted: bool = False, nworkers: int | None = None) -> SweepSummary:
        return SweepSummary(
            db=str(store.path), total=state.total, skipped=state.skipped,
            run=state.finished, ok=state.done, failed=state.failed, retried=state.retried,
            written=state.written, remaining=state.remaining + (state.to_run - state.finished),
            seconds=state.elapsed, interrupted=interrupted,
            startup_seconds=(None if state.cluster_ready is None
                             else state.cluster_ready - state.started),
            scheduler=scheduler, workers=nworkers,
        )

    if on_start is not None:
        on_start(state)
    if not todo:
        return summary()

    own_client = client is None
    cluster = None
    if own_client:
        client, cluster = start_client(scheduler, workers, threads_per_worker, processes)
    try:
        nworkers: int | None = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001
        nworkers = None
    state.cluster_ready = time.monotonic()
    from distributed import wait

    buffer: list[Record] = []
    last_flush = time.monotonic()

    def flush(force: bool = False) -> None:
        nonlocal last_flush
        if buffer and (force or time.monotonic() - last_flush >= flush_interval):
            state.written += store.write(buffer)
            buffer.clear()
            last_flush = time.monotonic()

    queue = deque(todo)
    attempts: dict[str, int] = {}
    inflight: dict[Any, Task] = {}
    nthreads = _nthreads(client, workers * threads_per_worker)
    last_threads_check = time.monotonic()
    no_workers_since: float | None = None
    interrupted = False

    def submit(task: Task) -> None:
        attempts[task.key] = attempts.get(task.key, 0) + 1
        fut = client.submit(
            execute_task, task.command, task.params,
            key=f"actspec-{task.command}-{task.key}-{attempts[task.key]}",
            pure=False, retries=retries,
        )
        inflight[fut] = task

    def finish(rec: Record, task: Task) -> None:
        if rec.status == "ok":
            state.done += 1
        else:
            state.failed += 1
        buffer.append(rec)
        if on_record is not None:
            on_record(rec, task)

    try:
        last_report = 0.0
        while queue or inflight:
            # one task per worker thread: nothing waits in a worker's queue, so a dying worker
            # takes only the task it was running down with it (and the retry count is fair)
            if last_threads_check == 0.0:
                nthreads = _nthreads(client, nthreads)
                last_threads_check = time.monotonic()
            while queue and len(inflight) < max(1, nthreads):
                submit(queue.popleft())
            try:
                batch = list(wait(list(inflight), timeout=0.25, return_when="FIRST_COMPLETED").done)
            except TimeoutError:
                batch = []
            for fut in batch:
                task = inflight.pop(fut)
                out = None
                exc: BaseException | None = None
                if fut.status == "finished":
                    try:
                        out = fut.result(timeout=120)
                    except Exception as e:  # noqa: BLE001 - result lost with its worker
                        exc = e
                elif fut.status == "error":
                    exc = fut.exception()
                fut.release()
                if out is None:
                    log.info("task %s (attempt %d) did not finish: %r", task.key,
                             attempts[task.key], exc)
                if out is not None:
                    finish(make_record(task, out, attempts=attempts[task.key], sweep=name), task)
                elif attempts[task.key] <= retries:
                    state.retried += 1
                    queue.appendleft(task)
                    last_threads_check = 0.0  # a worker may be gone: count the threads again
                else:
                    rec = make_record(
                        task,
                        {"status": "lost", "error": _lost_message(exc, attempts[task.key])},
                        attempts=attempts[task.key],
                        sweep=name,
                    )
                    finish(rec, task)
            state.running = min(len(inflight), nthreads)
            flush()
            now = time.monotonic()
            if on_progress is not None and (batch or now - last_report > 0.2):
                on_progress(state)
                last_report = now
            if now - last_threads_check > 2.0:
                nthreads = _nthreads(client, nthreads)
                last_threads_check = now
                if cluster is not None:
                    _heal(cluster, workers)
                if nthreads > 0:
                    no_workers_since = None
                elif no_workers_since is None:
                    no_workers_since = now
                elif cluster is not None and now - no_workers_since > no_worker_timeout:
                    raise ActspecError(
                        f"the local Dask cluster has had no workers for {no_worker_timeout:.0f} s "
                        "(they keep dying: out of memory?); finished results are stored, run "
                        "again to continue (fewer --workers, or --retries 0 to record the "
                        "crashing tasks as lost)"
                    )
        state.running = 0
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        state.ended = time.monotonic()
        if inflight:
            try:
                client.cancel(list(inflight))
            except Exception:  # noqa: BLE001
                pass
        state.running = 0
        try:
            flush(force=True)
        finally:
            if own_client:
                close_client(client, cluster)
        if on_progress is not None and not interrupted:
            on_progress(state)
    return summary(interrupted, nworkers=nworkers)


# ============================================================================ built-in kinds

#: the data parameters of a task: the commands' data options plus the data-only seed
DATA_PARAMS = (*P.DATA_PARAMS[:6], P.DATA_SEED, *P.DATA_PARAMS[6:])


def load_task_data(p: Mapping[str, Any], labels: str = "auto") -> Any:
    """The data set of a task's data parameters (the commands' :class:`DataSpec`, with
    ``data_seed`` for the data when given)."""
    from ..experiments.data import DataSpec

    seed = p["seed"] if p.get("data_seed") is None else p["data_seed"]
    spec = DataSpec(**{q.name: p.get(q.name, q.default) for q in P.DATA_PARAMS if q.name != "seed"},
                    seed=seed)
    return spec.load(labels=labels)


def _data_columns(ds: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"n": ds.n, "dim": ds.dim}
    if ds.info.get("span_dim") is not None:
        out["span_dim"] = ds.info["span_dim"]
    return out


def _check_activation(p: Mapping[str, Any]) -> None:
    from ..activations.registry import activation

    activation(p["activation"])  # raises ActspecError for unknown names


@functools.lru_cache(maxsize=256)
def _activation_ok(spec: str) -> bool:
    _check_activation({"activation": spec})
    return True


def _check_spectrum(p: Mapping[str, Any]) -> None:
    _activation_ok(p["activation"])


@register_task(
    "spectrum",
    params=(
        P.ACTIVATION,
        P.WIDTH,
        *DATA_PARAMS,
        P.TRAIN,
        P.INIT,
        P.NORMALIZE,
        P.DTYPE,
        P.DEVICE,
    ),
    metrics=("lambda_min", "lambda_max", "condition_number"),
    doc="G-matrix spectrum of one activation at one width (actspec spectrum)",
    check=_check_spectrum,
)
def spectrum_task(p: dict[str, Any]) -> dict[str, Any]:
    """Spectrum of G for one (activation, width) on one data set: ``run_spectrum``'s row."""
    from ..experiments.spectrum import run_spectrum

    ds = load_task_data(p)
    width = None if p["width"] == "inf" else int(p["width"])
    [row] = run_spectrum(
        ds.X, [p["activation"]], [width], train=p["train"], init=p["init"],
        normalize=p["normalize"], seed=p["seed"], dtype=p["dtype"], device=p["device"],
    )
    out = {k: v for k, v in row.items() if k not in ("activation", "width", "name")}
    out["act_name"] = row["name"]
    out.update(_data_columns(ds))
    return out


@register_task(
    "_probe",
    params=(
        Param("value", "float", 0.0),
        Param("sleep", "float", 0.0),
        Param("fail", "bool", False),
        Param("crash", "bool", False),
        Param("crash_once", "str", None),
        Param("seed", "int", 0),
    ),
    metrics=("square",),
    doc="diagnostics of the sweep machinery (sleep, fail, crash the worker)",
    hidden=True,
)
def probe_task(p: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``sleep`` s; raises when ``fail``; kills its worker when ``crash`` (or the first
    time for a ``crash_once`` marker path); returns value² and a small array."""
    if p["sleep"]:
        time.sleep(p["sleep"])
    if p["fail"]:
        raise ValueError(f"probe failure requested (value={p['value']})")
    marker = p.get("crash_once")
    if p["crash"] or (marker and not os.path.exists(marker)):
        if marker:
            Path(marker).write_text("crashed once\n")
        os._exit(17)
    v = float(p["value"])
    return {"square": v * v, "pid": os.getpid(), "series": np.arange(3.0) * v}


# ---------------------------------------------------------------------------- the other kinds
# Registered at import; their modules are imported only when a task runs (fast start).


def _register_kinds() -> None:
    _register_train()
    _register_depth()
    _register_analyze()


def _num(v: Any) -> Any:
    """Numbers written as strings (extended-precision results) as floats."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _register_depth() -> None:
    from ..experiments.depth import SPECTRUM_MODES as modes
    from ..kernels.deep import KERNELS as kernels

    @register_task(
        "depth",
        params=(
            P.ACTIVATION,
            Param("depth", "int", 1, "number of hidden layers L", minimum=1),
            P.WIDTH.but(help="'inf' for the exact infinite-width kernels, or the width m of a random "
                        "network (empirical kernels at initialisation)."),
            Param("kernel", "str", "ntk", "ntk, penultimate or nngp", choices=kernels),
            Param("scaling", "str", "cphi", "sigma_w^2: cphi, he, raw or a number"),
            Param("bias", "float", 0.0, "bias standard deviation"),
            Param("spectrum_mode", "str", "auto", "auto, full or extremes", choices=modes),
            Param("angle_bins", "int", 24, "bins of the gradient-angle curve", minimum=1),
            *DATA_PARAMS,
            P.DTYPE,
            P.DEVICE,
        ),
        metrics=("condition_number", "lambda_min", "lambda_max"),
        doc="spectrum of the depth-L kernel and gradient angles (actspec depth)",
        check=_check_spectrum,
    )
    def depth_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p)
        if p["depth"] < 1:
            raise ActspecError(f"depth must be >= 1 (got {p['depth']})")
        scaling: str | float = _num(p["scaling"])
        from ..experiments.depth import depth_study

        [rec] = depth_study(
            ds.X, [p["activation"]], [p["depth"]],
            width=None if p["width"] == "inf" else int(p["width"]),
            kernel=p["kernel"], scaling=scaling, bias=p["bias"], seed=p["seed"],
            spectrum_mode=p["spectrum_mode"], angle_bins=p["angle_bins"], dtype=p["dtype"],
            device=p["device"],
        )
        out = {k: v for k, v in rec.items()
               if k not in ("activation", "depth", "width", "kernel", "scaling", "bias")}
        out["act_name"] = rec["activation"]
        out["scaling_value"] = rec.get("scaling") if not isinstance(rec.get("scaling"), str) else None
        out.update(_data_columns(ds))
        return out


def _register_analyze() -> None:

    @register_task(
        "analyze",
        params=(
            P.ACTIVATION,
            P.PRECISION,
            P.DIGITS,
            Param("degree", "int", 1000, "Hermite degree", minimum=1),
            Param("threshold", "float", 1e-12, "relative threshold for tiny eigenvalues"),
            P.NORMALIZE,
            *DATA_PARAMS,
        ),
        metrics=("lambda_min", "condition_number", "decay_model"),
        doc="report card: kink class, Hermite decay, spectrum, theorem checks (actspec analyze)",
        check=_check_spectrum,
    )
    def analyze_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p)
        from ..experiments.theory import report_card

        card = report_card(
            p["activation"], ds, precision=P.report_card_precision(p["precision"]),
            digits=p["digits"], degree=p["degree"],
            threshold=p["threshold"], normalize=p["normalize"],
        )
        kinks = card.get("kinks") or {}
        herm = card.get("hermite") or {}
        decay = herm.get("decay") or {}
        data = card.get("data") or {}
        spec = card.get("spectrum") or {}
        spec64 = card.get("spectrum_float64") or {}
        out: dict[str, Any] = {
            "act_name": (card.get("activation") or {}).get("name"),
            "kink_class": kinks.get("kink_class"),
            "kink_order": kinks.get("kink_order"),
            "polynomial_degree": kinks.get("polynomial_degree"),
            "E_dphi_squared": herm.get("E_dphi_squared"),
            "decay_model": decay.get("model"),
            "decay_summary": decay.get("summary"),
            "decay_parity": decay.get("parity"),
            "decay_power_exponent": decay.get("power_exponent"),
            "decay_predicted_exponent": decay.get("predicted_exponent"),
            "decay_stretched_rate": decay.get("stretched_rate"),
            "decay_stretched_kappa": decay.get("stretched_kappa"),
            "delta": data.get("delta"),
            "min_distance": data.get("min_distance"),
            "antipodal_pairs": data.get("antipodal_pairs"),
            "verdict": card.get("verdict"),
        }
        for key in ("lambda_min", "lambda_max", "condition_number", "condition_number_is_lower_bound",
                    "trace", "effective_rank", "resolution", "n_below_threshold", "precision"):
            if key in spec:
                out[key if key != "precision" else "spectrum_precision"] = _num(spec[key])
        for chk in card.get("checks") or []:
            if isinstance(chk, dict) and chk.get("check"):
                out[f"check_{str(chk['check']).replace(' ', '_')}"] = chk.get("holds")
        ev = spec.get("eigenvalues")
        if ev is None or (len(ev) and isinstance(ev[0], str)):
            ev = spec64.get("eigenvalues") if ev is None else [float(v) for v in ev]
        if ev is not None:
            out["eigenvalues"] = np.asarray(ev, dtype=np.float64)
        if herm.get("coefficients") is not None:
            out["hermite_coefficients"] = np.asarray(herm["coefficients"], dtype=np.float64)
        out.update(_data_columns(ds))
        return out


def _register_train() -> None:

    @register_task(
        "train",
        params=(
            P.ACTIVATION,
            P.WIDTH.but(type="int", default=None, required=True, minimum=1,
                        help="Number of hidden neurons m (e.g. 1e5)."),
            Param("lr", "float", None, "learning rate in the units of G", required=True),
            Param("epochs", "int", None, "epochs of gradient descent", required=True, minimum=1),
            *DATA_PARAMS,
            P.TRAIN.but(help="hidden: only W trained (DZPS); both: W and a.",
                        choices=("hidden", "both")),
            P.INIT,
            Param("loss", "str", "mse", "mse or ce", choices=("mse", "ce")),
            P.LABELS,
            Param("batch_size", "int", None, "SGD batch size (default full batch)", minimum=1),
            Param("repeats", "int", 1, "independent weight draws, averaged", minimum=1),
            Param("log_every", "int", None, "log every k-th epoch", minimum=1),
            Param("target_loss", "float", None, "loss for the epochs-to-target comparison"),
            P.NORMALIZE,
            P.DTYPE.but(default="float32", help="Training arithmetic: float32 or float64 (spectra "
                        "are always float64)."),
            P.DEVICE,
        ),
        metrics=("final_loss", "epochs_to_target", "predicted_epochs_to_target", "lambda_min"),
        doc="train the two-layer net and compare with the spectrum's prediction (actspec train)",
        check=_check_spectrum,
    )
    def train_task(p: dict[str, Any]) -> dict[str, Any]:
        ds = load_task_data(p, labels=p["labels"])
        from ..experiments.training import train

        res = train(
            ds.X, ds.y, [p["activation"]], width=p["width"], lr=p["lr"], epochs=p["epochs"],
            train=p["train"], init=p["init"], loss=p["loss"], batch_size=p["batch_size"],
            repeats=p["repeats"], seed=p["seed"], log_every=p["log_every"],
            target_loss=p["target_loss"], normalize=p["normalize"], dtype=p["dtype"],
            device=p["device"], on_warning=lambda msg: None,
        )
        if not res["results"]:
            raise RuntimeError("training returned no result")
        row = dict(res["results"][0])
        row.pop("runs", None)
        out = {k: v for k, v in row.items() if k not in ("activation", "name")}
        out["act_name"] = row.get("name")
        out["interrupted"] = bool(res.get("interrupted"))
        out["warnings"] = list(res.get("warnings") or [])
        out.update(_data_columns(ds))
        return out


_register_kinds()
