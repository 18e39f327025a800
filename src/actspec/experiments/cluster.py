"""Dask clusters for the work that runs on several processes or machines (sweeps, the
matrix-free spectrum passes): a local cluster configured for crash reporting, or a connection to
a running scheduler.

A worker that dies is restarted by its nanny (local clusters); work pinned to it is moved by its
caller: the sweep re-submits tasks that got ``KilledWorker``, and passes over G∞ whose block
groups are pinned to workers go through :class:`actspec.core.cluster_tasks.PinnedGroups`, which
gives a lost worker's group to the replacement (or a survivor) and recomputes its blocks there."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.validate import ParameterError

__all__ = ["local_cluster", "start_client", "close_client", "cluster_client"]


def local_cluster(workers: int = 2, threads_per_worker: int = 1, *, processes: bool = True) -> Any:
    """The local Dask cluster of a sweep: ``workers`` processes x ``threads_per_worker`` threads.

    Configured so that a task whose worker dies is reported at once (``KilledWorker``; the sweep
    loop re-submits it and bounds the attempts itself). Sets ``distributed.deploy.
    lost-worker-timeout`` to 1 day in this process: otherwise the cluster closes the nanny of a
    worker that was not back within 15 s of dying, killing its restarted worker and the task on
    it (seen with tasks that crash workers repeatedly); the nanny restarts workers itself."""
    import dask
    from distributed import LocalCluster

    dask.config.set({"distributed.deploy.lost-worker-timeout": "1 day"})

    with dask.config.set({
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }), warnings.catch_warnings():
        # its HTTP server falls back on a free port when 8787 is taken: nothing to warn about
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )


def start_client(scheduler: str | None, workers: int, threads_per_worker: int,
                  processes: bool) -> tuple[Any, Any]:
    """(client, cluster): connected to ``scheduler``, else to a new local cluster (returned so
    that :func:`close_client` can shut it down; None for a remote scheduler)."""
    from distributed import Client

    if scheduler:
        try:
            return Client(scheduler, timeout="15s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ParameterError(
                f"cannot connect to the Dask scheduler at {scheduler!r} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:120]}); start one with 'dask scheduler' or leave "
                "out {-scheduler} for a local cluster"
            ) from None
    try:
        cluster = local_cluster(workers, threads_per_worker, processes=processes)
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(
            f"could not start a local Dask cluster ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:160]}); try fewer {{-workers}} or {{-scheduler}}"
        ) from None
    return Client(cluster), cluster


def close_client(client: Any, cluster: Any) -> None:
    """Close the client and its local cluster (best effort: nothing to recover on failure)."""
    try:
        client.close(timeout=10)
    except Exception:  # noqa: BLE001
        pass
    if cluster is not None:
        try:
            cluster.close(timeout=10)
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def cluster_client(scheduler: str | None, workers: int, threads_per_worker: int = 1,
                   processes: bool = True) -> Iterator[Any]:
    """A connected ``distributed.Client`` for the block (:func:`start_client`), closed after."""
    client, cluster = start_client(scheduler, workers, threads_per_worker, processes)
    try:
        yield client
    finally:
        close_client(client, cluster)
