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

An activation given as ``module:function`` imports that Python module (runs its code) in the
submitting process and on every worker: code execution by design. ``allow_code=False``
(``actspec sweep --no-code``) refuses such a config before anything is imported. A sweep has at
most :data:`~actspec.sweep.grid.MAX_TASKS` tasks, counted from the axes before any is built;
split a larger one into parts writing into the same database (stored tasks are skipped).

Python use::

    from actspec.sweep.runner import load_config, run_sweep
    cfg = load_config("sweep.toml")
    summary = run_sweep(cfg.tasks, cfg.db, workers=2)
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import traceback as _tb
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from ..experiments.cluster import close_client, local_cluster, start_client
from . import tasks
from .grid import (
    TASK_KINDS,
    Param,
    SweepConfig,
    Task,
    TaskKind,
    config_from_dict,
    expand_grid,
    get_kind,
    load_config,
    make_task,
    register_task,
)
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
    "start_client",
    "close_client",
    "execute_task",
    "split_result",
    "tasks",
    "usable_cores",
]

log = logging.getLogger(__name__)

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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


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
    tasks (their worker died too often) are always re-run. An existing store is verified first
    (:meth:`ResultStore.verify`): a damaged file is refused before any task runs."""
    uniq = unique_tasks(tasks)
    if store.path.exists():
        store.verify()
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
    cluster of ``workers`` processes x ``threads_per_worker``; ``workers`` is capped at
    :func:`usable_cores`, with a warning). ``retries``: re-submissions of a
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
    if client is None and scheduler is None and workers > usable_cores():
        import warnings

        warnings.warn(f"{workers} workers asked for, but this machine gives this process "
                      f"{usable_cores()} core(s): using {usable_cores()}", stacklevel=2)
        workers = usable_cores()
    if store.path.exists():
        store.verify()  # a damaged store is refused before any task runs
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
