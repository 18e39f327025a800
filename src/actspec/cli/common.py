"""Helpers shared by the commands: the data options as one value, output files, console, Ctrl-C."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from ..core.errors import Interrupted
from ..core.io import check_distinct_paths, check_output_dir, check_writable, output_group
from ..core.validate import check_scheduler_address, check_width
from ..experiments.data import DataSpec
from .options import DATA_OPTIONS, DATA_PANEL, OUTPUT_PANEL, JsonOpt, PlotOpt, TimingsOpt

console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False)

__all__ = [
    "DATA_PANEL", "OUTPUT_PANEL", "DEFAULT_DATA", "DataOptions", "JsonOpt", "PlotOpt", "TimingsOpt",
    "console", "err_console", "data_options", "outputs_ok", "guard_outputs", "OUTPUT_PARAMS",
    "INPUT_PARAMS", "GROUPED_OUTPUTS", "parse_width", "is_tty",
    "interruptible", "interrupt_message", "NOTHING_KEPT",
]

#: the data options every data-taking command shares (--data, --n, ..., --preprocess), one value
DataOptions = DataSpec
DEFAULT_DATA = DataSpec()


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the shared data options; they reach it as one ``opts: DataOptions``.

    Typer has no option groups: this rewrites the command's signature (``opts`` replaced by
    the nine options, listed in the help's Data panel), so each command declares them once.
    Put it under ``@app.command(...)``.
    """
    sig = inspect.signature(fn, eval_str=True)
    if "opts" not in sig.parameters:
        raise TypeError(f"{fn.__name__} needs an 'opts: DataOptions' parameter")
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(DEFAULT_DATA, name),
                          annotation=ann)
        for name, ann in DATA_OPTIONS.items()
    ]
    kept = [p for p in sig.parameters.values() if p.name != "opts"]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        opts = DataSpec(**{name: kwargs.pop(name) for name in DATA_OPTIONS})
        return fn(opts=opts, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*kept, *extra])  # type: ignore[attr-defined]
    return wrapper


def outputs_ok(*paths: tuple[Path | None, str]) -> None:
    """Check every output path is writable before any work starts (``what`` is the flag, e.g.
    ``"--json"``). Two outputs naming one file are refused earlier, for every command, by
    :func:`guard_outputs`."""
    for p, what in paths:
        check_writable(p, what)


#: parameters (the commands' Python names) naming files a command writes ...
OUTPUT_PARAMS = ("json_path", "plot", "angle_plot", "out", "checkpoint", "parquet", "csv",
                 "save_vectors", "vectors")
#: ... and files it reads (an output must not overwrite one of them)
INPUT_PARAMS = ("data", "labels", "model", "config", "db")
#: outputs renamed into place together when the command succeeds (not a checkpoint, gram's G or
#: a sweep's store: each of those must be durable on its own, whatever happens next)
GROUPED_OUTPUTS = ("json_path", "plot", "angle_plot", "parquet", "csv", "save_vectors", "vectors")


#: output directories and the directories a command keeps inside them (reproduce: its caches)
OUTPUT_DIRS = {"out": ("cache", "cache/units")}


@contextmanager
def guard_outputs(kwargs: Mapping[str, object]) -> Iterator[None]:
    """Around a command called with ``kwargs`` (its parameters by name): refuse, before any work,
    two outputs naming the same file or an output naming an input file
    (:func:`~actspec.core.io.check_distinct_paths`: one line, exit 2, the flags named), an output
    directory holding a file where the command keeps a directory (``--out DIR`` with a file
    ``DIR/cache``), and a ``--scheduler`` that is not an address; then
    write the grouped outputs as one group (:func:`~actspec.core.io.output_group`): all are
    renamed into place when the command succeeds, none when it fails."""
    outputs = {n: kwargs[n] for n in OUTPUT_PARAMS if kwargs.get(n) is not None}
    inputs = {n: kwargs[n] for n in INPUT_PARAMS if kwargs.get(n) is not None}
    check_distinct_paths(outputs, inputs)
    for name, subdirs in OUTPUT_DIRS.items():
        value = kwargs.get(name)
        if isinstance(value, (str, Path)) and Path(value).expanduser().is_dir():
            check_output_dir(value, "--" + name, subdirs=subdirs)
    if kwargs.get("scheduler"):  # an address that cannot work: refused before anything starts
        check_scheduler_address(kwargs["scheduler"])
    with output_group(outputs[n] for n in GROUPED_OUTPUTS if n in outputs):
        yield


def parse_width(text: str) -> int | None:
    """``--width``: None for 'inf', else the number of neurons (:func:`check_width`)."""
    return check_width(text)


def is_tty() -> bool:
    return sys.stderr.isatty()


NOTHING_KEPT = "no output file was written or left half-written; run the same command again"


def interrupt_message(exc: BaseException, kept: str | Callable[[], str] = NOTHING_KEPT) -> str:
    """The one-line message for Ctrl-C: a KeyboardInterrupt that carries its own message (e.g. a
    checkpointed computation's "checkpoint saved to ...") wins; else ``kept``."""
    own = str(exc).strip()
    if own:
        return own if own.lower().startswith("interrupted") else f"interrupted; {own}"
    text = kept() if callable(kept) else kept
    return f"interrupted; {text}"


@contextmanager
def interruptible(kept: str | Callable[[], str] = NOTHING_KEPT) -> Iterator[None]:
    """Turn Ctrl-C inside the block into :class:`Interrupted` with a message saying what was
    kept (``kept`` may be a callable evaluated at interrupt time) and how to resume."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt as exc:
        raise Interrupted(interrupt_message(exc, kept)) from None
