"""A Dask worker lost mid-pass (issue 20, item 4): its pinned block group is recomputed on the
replacement worker (or a survivor) and the pass returns exactly the serial result.

In-process clusters (``processes=False``) keep this fast: a worker is "killed" by closing it
while its task is still running, without waiting for the task. Two scheduler settings: actspec's
local clusters (``allowed-failures = 0``: the task errs with KilledWorker at once) and the
scheduler default (the pinned task would wait forever for its worker, in ``no-worker``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import actspec  # noqa: E402
from actspec.core.cluster_tasks import PinnedGroups, is_worker_loss  # noqa: E402
from actspec.experiments.cluster import close_client, local_cluster  # noqa: E402
from actspec.spectra.iterative import infinite_block  # noqa: E402

N, D, GROUPS = 96, 5, 4
STARTED = threading.Event()  # the victim's task is running
RELEASE = threading.Event()  # let it finish (after its worker is gone)
VICTIM_GROUP = 1
_calls: list[tuple[int, str]] = []


def _rows(i: int) -> slice:
    size = N // GROUPS
    return slice(i * size, (i + 1) * size)


def _block_product(X: np.ndarray, V: np.ndarray, i: int, hold: bool) -> tuple[np.ndarray, str]:
    """Rows of G∞ @ V for group i (its G∞ rows evaluated afresh), and the worker that ran it."""
    where = distributed.get_worker().address
    _calls.append((i, where))
    if hold and i == VICTIM_GROUP and not STARTED.is_set():
        STARTED.set()
        RELEASE.wait(10)
    r = _rows(i)
    return infinite_block(X[r], X, "relu") @ V, where


def _data() -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(1).standard_normal((N, D))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    V = np.random.default_rng(2).standard_normal((N, 3))
    return X, V


def _kill_mid_pass(cluster: Any, client: Any, victim: str) -> threading.Thread:
    """Once the victim's task runs: start a replacement worker (as a nanny would; started first
    so that the test does not depend on which comes first), close the victim without waiting
    for its task, then let the orphaned task return (its result goes nowhere)."""

    def go() -> None:
        assert STARTED.wait(20)
        cluster.scale(len(cluster.worker_spec) + 1)
        client.wait_for_workers(len(cluster.worker_spec), timeout=10)
        worker = next(w for w in cluster.workers.values() if w.address == victim)
        cluster.sync(worker.close, executor_wait=False, timeout=10)
        RELEASE.set()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.filterwarnings("ignore:Port .* is already in use")
@pytest.mark.parametrize("allowed_failures", [0, 3])
def test_lost_worker_group_is_recomputed_on_the_replacement(allowed_failures: int) -> None:
    import dask

    X, V = _data()
    serial = np.vstack([infinite_block(X[_rows(i)], X, "relu") @ V for i in range(GROUPS)])
    np.testing.assert_allclose(serial, actspec.gram(X, "relu") @ V, rtol=0, atol=1e-13)
    STARTED.clear()
    RELEASE.clear()
    _calls.clear()
    t0 = time.monotonic()
    if allowed_failures == 0:  # actspec's local cluster: KilledWorker at once
        cluster = local_cluster(2, 1, processes=False)
    else:  # a scheduler with the default retries: the pinned task would wait forever
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                               dashboard_address=None, silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    try:
        lines: list[str] = []
        groups = PinnedGroups(client, GROUPS, log=lines.append)
        victim = groups.assignment[VICTIM_GROUP]
        Xf = client.scatter(X, broadcast=True)
        killer = _kill_mid_pass(cluster, client, victim)
        parts = groups.run(_block_product, lambda i: (Xf, V, i, True))
        killer.join(5)
        got = np.vstack([p for p, _ in parts])
        assert np.array_equal(got, serial)
        # the victim held groups 1 and 3 (1 was running, 3 waiting): both went to the
        # replacement (a worker with no group), the victim's running group ran twice
        orphans = [i for i in range(GROUPS) if i % 2 == VICTIM_GROUP % 2]
        survivor = parts[0][1]
        replacement = parts[VICTIM_GROUP][1]
        assert replacement not in (victim, survivor)
        assert [parts[i][1] for i in orphans] == [replacement] * len(orphans)
        assert [w for i, w in _calls if i == VICTIM_GROUP] == [victim, replacement]
        assert groups.lost == [victim] and groups.reassigned == len(orphans)
        assert len(lines) == len(orphans) and all(victim in ln and "recomputed" in ln for ln in lines)
        # the next pass runs on the new assignment, nothing lost, same numbers
        parts = groups.run(_block_product, lambda i: (Xf, V, i, False))
        assert np.array_equal(np.vstack([p for p, _ in parts]), serial)
        assert groups.reassigned == len(orphans) and victim not in groups.assignment
    finally:
        RELEASE.set()
        close_client(client, cluster)
    assert time.monotonic() - t0 < 30


def test_worker_lost_between_passes_and_task_errors() -> None:
    """A worker gone before a pass (no replacement): its groups move to the survivor; an error
    raised by the task itself is not retried."""
    X, V = _data()
    serial = np.vstack([infinite_block(X[_rows(i)], X, "relu") @ V for i in range(GROUPS)])
    cluster = local_cluster(2, 1, processes=False)
    client = distributed.Client(cluster)
    try:
        groups = PinnedGroups(client, GROUPS)
        first = groups.run(_block_product, lambda i: (X, V, i, False))
        assert np.array_equal(np.vstack([p for p, _ in first]), serial)
        gone = groups.assignment[0]
        worker = next(w for w in cluster.workers.values() if w.address == gone)
        cluster.sync(worker.close, timeout=10)
        deadline = time.monotonic() + 10
        while gone in client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        parts = groups.run(_block_product, lambda i: (X, V, i, False))
        assert np.array_equal(np.vstack([p for p, _ in parts]), serial)
        assert set(groups.assignment) == {w for _, w in parts} and gone not in groups.assignment
        assert len(set(groups.assignment)) == 1  # the survivor holds all four groups
        # a replacement joins later: the next pass spreads the groups over both again
        cluster.scale(len(cluster.worker_spec) + 1)
        client.wait_for_workers(2, timeout=10)
        parts = groups.run(_block_product, lambda i: (X, V, i, False))
        assert np.array_equal(np.vstack([p for p, _ in parts]), serial)
        assert sorted(groups.assignment.count(w) for w in set(groups.assignment)) == [2, 2]
        assert {w for _, w in parts} == set(groups.assignment)
        with pytest.raises(ValueError, match="mismatch"):
            groups.run(_block_product, lambda i: (X, V[:5], i, False))
    finally:
        close_client(client, cluster)


def test_is_worker_loss() -> None:
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker

    assert is_worker_loss(KilledWorker("k", None, 0))  # type: ignore[arg-type]
    assert is_worker_loss(CancelledError())
    assert not is_worker_loss(ValueError("x")) and not is_worker_loss(None)



def _product_in_process(X: np.ndarray, V: np.ndarray, i: int, pid_file: str | None) -> tuple[np.ndarray, int]:
    """Group i's rows of G∞ @ V in a worker process; the victim's first attempt writes its pid
    and waits to be killed."""
    import os

    if pid_file and i == VICTIM_GROUP and not os.path.exists(pid_file + ".killed"):
        with open(pid_file + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
        time.sleep(60)
    r = _rows(i)
    return infinite_block(X[r], X, "relu") @ V, os.getpid()


@pytest.mark.slow  # ~20 s on the loaded 2-core machine: two worker processes import actspec
@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_worker_process_killed_mid_pass(tmp_path: Any) -> None:
    """Two worker processes; the one running group 1 is SIGKILLed mid-task. Its groups run
    again elsewhere (the survivor, or the nanny's replacement once it is up) with the serial
    result; the nanny's replacement takes groups back before a later pass."""
    import os
    import signal

    X, V = _data()
    serial = np.vstack([infinite_block(X[_rows(i)], X, "relu") @ V for i in range(GROUPS)])
    pid_file = str(tmp_path / "victim.pid")
    cluster = local_cluster(2, 1, processes=True)
    client = distributed.Client(cluster)
    try:
        groups = PinnedGroups(client, GROUPS)
        victim = groups.assignment[VICTIM_GROUP]

        def kill() -> None:
            deadline = time.monotonic() + 60
            while not os.path.exists(pid_file) and time.monotonic() < deadline:
                time.sleep(0.02)
            open(pid_file + ".killed", "w").close()
            os.kill(int(open(pid_file).read()), signal.SIGKILL)

        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        parts = groups.run(_product_in_process, lambda i: (X, V, i, pid_file))
        killer.join(5)
        assert np.array_equal(np.vstack([p for p, _ in parts]), serial)
        dead_pid = int(open(pid_file).read())
        assert dead_pid not in {pid for _, pid in parts}
        assert groups.lost == [victim] and victim not in groups.assignment
        client.wait_for_workers(2, timeout=30)  # the nanny's replacement (a new address)
        parts = groups.run(_product_in_process, lambda i: (X, V, i, None))
        assert np.array_equal(np.vstack([p for p, _ in parts]), serial)
        assert len(set(groups.assignment)) == 2 and victim not in groups.assignment
    finally:
        close_client(client, cluster)


# ---- the real operator: DistributedGramOperator.matmat -------------------------------------------

import actspec.spectra.iterative as _it  # noqa: E402

_OP_VICTIM: list[str | None] = [None]
_OP_STARTED = threading.Event()
_OP_RELEASE = threading.Event()
_ORIG_PRODUCT = _it._worker_product


def _held_product(*args: Any, **kw: Any) -> Any:
    """The operator's worker task, held on the victim until its worker has been closed."""
    if distributed.get_worker().address == _OP_VICTIM[0] and not _OP_STARTED.is_set():
        _OP_STARTED.set()
        _OP_RELEASE.wait(10)
    return _ORIG_PRODUCT(*args, **kw)


@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_distributed_gram_operator_survives_a_lost_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    X, V = _data()
    serial = _it.GramOperator(X, "relu", block=24, threads=1).matmat(V)
    monkeypatch.setattr(_it, "_worker_product", _held_product)
    _OP_STARTED.clear()
    _OP_RELEASE.clear()
    cluster = local_cluster(2, 1, processes=False)  # allowed-failures 0: KilledWorker before
    client = distributed.Client(cluster)
    try:
        op = _it.DistributedGramOperator(X, "relu", block=24, client=client)
        _OP_VICTIM[0] = op.workers[1]
        _OP_STARTED.set()  # not the first pass (fills the caches): the second one
        first = op.matmat(V)
        _OP_STARTED.clear()
        killer = threading.Thread(target=lambda: (
            _OP_STARTED.wait(20), cluster.scale(3), client.wait_for_workers(3, timeout=10),
            cluster.sync(next(w for w in cluster.workers.values() if w.address == _OP_VICTIM[0]).close,
                         executor_wait=False, timeout=10),
            _OP_RELEASE.set()), daemon=True)
        killer.start()
        second = op.matmat(V)
        killer.join(5)
        np.testing.assert_allclose(first, serial, rtol=0, atol=1e-13)
        assert np.array_equal(second, first)
        assert op.matmat(V).tolist() == first.tolist()
    finally:
        _OP_RELEASE.set()
        close_client(client, cluster)
