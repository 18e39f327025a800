"""Work pinned to Dask workers that survives losing a worker mid-pass (issue 20, item 4).

The matrix-free spectrum (:class:`actspec.spectra.iterative.DistributedGramOperator`) splits the
blocks of G∞ into one group per worker and pins each group to its worker (``workers=[w],
allow_other_workers=False``), whose local block cache then serves every later pass. A pinned
task cannot move by itself when its worker is lost:

* with ``distributed.scheduler.allowed-failures = 0`` (actspec's local clusters) it errs at once
  with ``KilledWorker``;
* with a scheduler's default (3) it is rescheduled, finds no allowed worker and waits forever in
  the ``no-worker`` state;
* the replacement a nanny (or an autoscaler) starts has a new address that nothing is pinned to.

:class:`PinnedGroups` keeps the group -> worker assignment across passes. :meth:`PinnedGroups.run`
submits one task per group and watches them; when a group's worker is gone (its task erred with
``KilledWorker`` or was cancelled, or the worker left the cluster while the task waited or ran),
the group is given to a live worker, preferring one that holds no group (the replacement), else
the least loaded, and submitted again; a replacement that joins later takes groups back from a
worker that holds several before the next pass. That worker has none of the group's blocks cached, so they
are recomputed; the pass returns the same numbers as if nothing had happened. Errors raised by the
task itself are not retried. ``distributed`` is imported only when a pass runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from typing import Any

from .errors import ActspecError

__all__ = ["PinnedGroups", "live_workers", "is_worker_loss"]


def live_workers(client: Any) -> list[str]:
    """Addresses of the workers the scheduler knows now (all of them), sorted."""
    try:
        info = client.scheduler_info(n_workers=-1)  # newer distributed: 5 workers by default
    except TypeError:  # older distributed: no n_workers, always all of them
        info = client.scheduler_info()
    return sorted(info["workers"])


def is_worker_loss(exc: BaseException | None) -> bool:
    """True for the errors a task gets when its worker dies or leaves (not the task's own)."""
    if exc is None:
        return False
    if isinstance(exc, CancelledError):
        return True
    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover - distributed is what raised it
        return False
    return isinstance(exc, KilledWorker)


class PinnedGroups:
    """``groups`` units of work, each pinned to one worker of ``client`` across passes.

    ``workers``: the initial assignment's workers (default: all live ones, sorted; group i goes
    to worker i mod count). ``retries``: how many times one group may lose its worker within
    one pass. ``wait_seconds``: how long a pass waits for a worker when none is left.
    ``log(msg)`` receives one line per reassignment. After each pass, ``lost`` lists the
    workers found gone and ``reassigned`` counts the groups moved (both cumulative).
    """

    def __init__(
        self,
        client: Any,
        groups: int,
        *,
        workers: Sequence[str] | None = None,
        retries: int = 3,
        wait_seconds: float = 60.0,
        poll_seconds: float = 0.2,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        start = list(workers) if workers else live_workers(client)
        if not start:
            raise ActspecError("the Dask cluster has no workers; start some or use a local cluster")
        self.assignment = [start[i % len(start)] for i in range(int(groups))]
        self.retries = int(retries)
        self.wait_seconds = float(wait_seconds)
        self.poll_seconds = float(poll_seconds)
        self.log = log or (lambda _msg: None)
        self.lost: list[str] = []
        self.reassigned = 0

    # ---- assignment -------------------------------------------------------------------------

    def _live(self) -> list[str]:
        live = live_workers(self.client)
        if live:
            return live
        try:  # a nanny may be starting a replacement right now
            self.client.wait_for_workers(1, timeout=self.wait_seconds)
        except Exception:  # noqa: BLE001 - TimeoutError and friends: reported below
            pass
        live = live_workers(self.client)
        if not live:
            raise ActspecError(
                f"the Dask cluster lost all its workers and none came back within "
                f"{self.wait_seconds:.0f} s; restart the workers (or the scheduler) and rerun"
            )
        return live

    def _move(self, group: int, live: list[str]) -> str:
        """Give ``group`` (whose worker is gone) to a live worker: an idle one, else the least loaded."""
        dead = self.assignment[group]
        if dead not in self.lost:
            self.lost.append(dead)
        load = {w: 0 for w in live}
        for i, w in enumerate(self.assignment):
            if i != group and w in load:
                load[w] += 1
        target = min(live, key=lambda w: (load[w], live.index(w)))
        self.assignment[group] = target
        self.reassigned += 1
        self.log(f"Dask worker {dead} lost: its blocks (group {group}) are recomputed on {target}")
        return target

    def rebalance(self) -> None:
        """Before a pass: move the groups of workers that are no longer in the cluster, and once
        a replacement has joined, give it groups from workers that hold several (a survivor
        that took over a lost worker's group), so that the passes run in parallel again."""
        live = self._live()
        for i, w in enumerate(self.assignment):
            if w not in live:
                self._move(i, live)
        if not any(w not in self.assignment for w in live):
            return  # no new worker: leave the caches where they are
        while True:
            load = {w: self.assignment.count(w) for w in live}
            busiest = max(live, key=lambda w: (load[w], w))
            emptiest = min(live, key=lambda w: (load[w], w))
            if load[busiest] - load[emptiest] < 2:
                break
            i = max(j for j, w in enumerate(self.assignment) if w == busiest)
            self.assignment[i] = emptiest
            self.reassigned += 1
            self.log(f"Dask worker {emptiest} takes block group {i} from {busiest} "
                     "(recomputed there)")

    # ---- one pass ---------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], args_of: Callable[[int], tuple[Any, ...]]) -> list[Any]:
        """``[fn(*args_of(i)) for each group i]``, each on its group's worker; lost workers'
        groups are re-run elsewhere (see the module docstring). ``args_of(i)`` is called again
        for a re-run, so it can hand out data that was lost with the worker anew."""
        from distributed import wait

        self.rebalance()
        n = len(self.assignment)
        attempts = [0] * n
        results: list[Any] = [None] * n

        def submit(i: int) -> Any:
            return self.client.submit(fn, *args_of(i), workers=[self.assignment[i]],
                                      allow_other_workers=False, pure=False)

        pending = {i: submit(i) for i in range(n)}
        while pending:
            try:
                wait(list(pending.values()), timeout=self.poll_seconds, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            live: list[str] | None = None
            for i, fut in list(pending.items()):
                if fut.status == "finished":
                    results[i] = fut.result()
                    del pending[i]
                    continue
                if fut.status in ("error", "cancelled", "lost"):
                    exc = fut.exception() if fut.status == "error" else CancelledError()
                    if not is_worker_loss(exc):
                        fut.result()  # the task's own error: raise it as it is
                else:  # still waiting or running: is its worker still there?
                    live = live if live is not None else live_workers(self.client)
                    if self.assignment[i] in live:
                        continue
                    fut.cancel()
                attempts[i] += 1
                if attempts[i] > self.retries:
                    raise ActspecError(
                        f"Dask tasks of block group {i} lost their worker {attempts[i]} times in one "
                        "pass; check the workers' memory and logs, or use fewer --workers"
                    )
                self._move(i, self._live())
                live = None
                pending[i] = submit(i)
        return results
