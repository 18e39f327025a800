"""Progress display for long computations and sweeps (rich, on stderr, only when useful)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .common import err_console, is_tty

Update = Callable[[str, int, int], None]


@contextmanager
def progress_bars(counter: str, *, enabled: bool = True, transient: bool = True
                  ) -> Iterator[Update | None]:
    """Yields ``update(label, done, total)`` driving one bar per label, its count shown with the
    rich format ``counter``; None when disabled or when stderr is not a terminal (a bar there
    would only add stray lines around messages)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(counter),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done, total=total)

        yield update


def neuron_progress(enabled: bool = True) -> AbstractContextManager[Update | None]:
    """Bars of neurons done (finite-width G), cleared when finished."""
    return progress_bars("{task.completed:,}/{task.total:,} neurons", enabled=enabled)


def epoch_progress(enabled: bool = True) -> AbstractContextManager[Update | None]:
    """Bars of epochs done (training), kept on screen."""
    return progress_bars("epoch {task.completed:,}/{task.total:,}", enabled=enabled, transient=False)


def fmt_seconds(s: float | None) -> str:
    """A duration for people: 42s, 3m05s, 2h07m ('?' when unknown)."""
    if s is None or s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class SweepProgress:
    """Live progress: a rich bar on a terminal, a status line every few seconds otherwise."""

    def __init__(self, title: str, varying: dict[str, list[str]], verbose: bool) -> None:
        self.title = title
        self.varying = varying
        self.verbose = verbose
        self.tty = is_tty()
        self.progress: Any = None
        self.task_id: Any = None
        self.last_line = 0.0
        self.failures: list[str] = []

    def __enter__(self) -> SweepProgress:
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[running]} running · {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err_console,
                transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start(self, state: Any) -> None:
        if state.to_run == 0:
            return
        if self.progress is not None:
            self.task_id = self.progress.add_task(
                self.title, total=state.to_run, running=0, failed=0
            )
        else:
            print(f"{self.title}: running {state.to_run} task(s)", file=sys.stderr, flush=True)
            self.last_line = time.monotonic()

    def update(self, state: Any) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.update(
                self.task_id, completed=state.finished, running=state.running, failed=state.failed
            )
        elif self.progress is None and state.to_run:
            now = time.monotonic()
            if now - self.last_line >= 10.0 and state.finished < state.to_run:
                rate = state.finished / state.elapsed if state.elapsed > 0 else 0.0
                eta = (state.to_run - state.finished) / rate if rate > 0 else None
                print(
                    f"{self.title}: {state.finished}/{state.to_run} done, {state.running} running, "
                    f"{state.failed} failed, elapsed {fmt_seconds(state.elapsed)}, "
                    f"ETA {fmt_seconds(eta)}",
                    file=sys.stderr,
                    flush=True,
                )
                self.last_line = now

    def record(self, rec: Any, task: Any) -> None:
        label = task.label(self.varying.get(task.command))
        if rec.status != "ok":
            line = f"FAILED {label}: {rec.error}"
            self.failures.append(line)
        elif self.verbose:
            line = f"ok {label} ({rec.seconds:.2f} s)"
        else:
            return
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)
