"""Progress display for long computations (rich, on stderr, only when useful)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .common import err_console

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
