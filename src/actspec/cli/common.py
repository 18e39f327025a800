"""Options and helpers shared by the commands: data selection, output files, console."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..core.errors import ActspecError, Interrupted
from ..core.io import check_writable

console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False)

DATA_PANEL = "Data"
OUTPUT_PANEL = "Output"

# ---- data options (same flags in every command) ---------------------------------------------
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="Data source: circle, sphere, subspace, smoothed, digits, cifar10, or a path to "
        ".npy/.npz/.csv.",
        rich_help_panel=DATA_PANEL,
    ),
]
NOpt = Annotated[
    int | None,
    typer.Option(
        "--n", help="Number of points (default depends on the source).", rich_help_panel=DATA_PANEL
    ),
]
DimOpt = Annotated[
    int | None,
    typer.Option(
        "--dim",
        help="Ambient dimension of synthetic data (circle: 10, i.e. S^9).",
        rich_help_panel=DATA_PANEL,
    ),
]
SpanDimOpt = Annotated[
    int | None,
    typer.Option(
        "--span-dim",
        help="Dimension d0 of the span (subspace/smoothed data).",
        rich_help_panel=DATA_PANEL,
    ),
]
NoiseOpt = Annotated[
    float,
    typer.Option(
        "--noise",
        help="Gaussian noise scale within the span (smoothed data).",
        rich_help_panel=DATA_PANEL,
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed", help="Seed for the data and the network weights.", rich_help_panel=DATA_PANEL
    ),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Directory with CIFAR-10 python batches (cifar10 source).",
        rich_help_panel=DATA_PANEL,
    ),
]
NormalizeInputsOpt = Annotated[
    bool,
    typer.Option(
        "--normalize-inputs/--no-normalize-inputs",
        help="Scale every row to unit norm (the theory's Assumption 1).",
        rich_help_panel=DATA_PANEL,
    ),
]
PreprocessOpt = Annotated[
    str | None,
    typer.Option(
        "--preprocess",
        help="'paper': the activation paper's lift (scale to norm <= 1/sqrt2, pad to "
        "1/sqrt2, append the constant 1/sqrt2); 'center' or 'standardize' the columns; chain "
        "steps with '+', e.g. center+paper.",
        rich_help_panel=DATA_PANEL,
    ),
]
LabelsOpt = Annotated[
    str,
    typer.Option(
        "--labels",
        help="auto (random ±1 for synthetic data, classes for real data), random, none, or a "
        ".npy/.csv file of labels.",
        rich_help_panel=DATA_PANEL,
    ),
]
JsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Write the results as one JSON object to this file.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
TimingsOpt = Annotated[
    bool,
    typer.Option(
        "--timings",
        help="Also record wall-clock times (seconds, GFLOP/s) in the JSON. Off by default, so "
        "that the same command and seed give bit-identical JSON.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]

PlotOpt = Annotated[
    Path | None,
    typer.Option("--plot", help="Write a PNG figure to this file.", rich_help_panel=OUTPUT_PANEL),
]


@dataclass(frozen=True)
class DataOptions:
    """The data options every data-taking command shares (--data, --n, ..., --preprocess)."""

    data: str = "circle"
    n: int | None = None
    dim: int | None = None
    span_dim: int | None = None
    noise: float = 0.1
    seed: int = 0
    data_dir: str | None = None
    normalize_inputs: bool = True
    preprocess: str | None = None

    def load(self, labels: str = "auto") -> Any:
        """The selected data set (see :func:`actspec.datasets.load_data`)."""
        return load_dataset(self.data, self.n, self.dim, self.span_dim, self.noise, self.seed,
                            self.data_dir, self.normalize_inputs, self.preprocess, labels=labels)


DEFAULT_DATA = DataOptions()

_DATA_OPTION_TYPES: dict[str, Any] = {
    "data": DataOpt, "n": NOpt, "dim": DimOpt, "span_dim": SpanDimOpt, "noise": NoiseOpt,
    "seed": SeedOpt, "data_dir": DataDirOpt, "normalize_inputs": NormalizeInputsOpt,
    "preprocess": PreprocessOpt,
}


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the shared data options; they reach it as one ``opts: DataOptions``.

    Typer has no option groups: this rewrites the command's signature (``opts`` replaced by
    the nine options, listed in the help's Data panel), so each command declares them once.
    Put it under ``@app.command(...)``.
    """
    sig = inspect.signature(fn, eval_str=True)
    if "opts" not in sig.parameters:
        raise TypeError(f"{fn.__name__} needs an 'opts: DataOptions' parameter")
    defaults = DataOptions()
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
                          annotation=ann)
        for name, ann in _DATA_OPTION_TYPES.items()
    ]
    kept = [p for p in sig.parameters.values() if p.name != "opts"]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        opts = DataOptions(**{name: kwargs.pop(name) for name in _DATA_OPTION_TYPES})
        return fn(opts=opts, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*kept, *extra])  # type: ignore[attr-defined]
    return wrapper


def load_dataset(
    data: str,
    n: int | None,
    dim: int | None,
    span_dim: int | None,
    noise: float,
    seed: int,
    data_dir: str | None,
    normalize_inputs: bool,
    preprocess: str | None,
    labels: str = "auto",
) -> Any:
    """Load the data selected by the common options (see :func:`actspec.datasets.load_data`)."""
    from ..data.datasets import load_data

    return load_data(
        data,
        n=n,
        dim=dim,
        span_dim=span_dim,
        noise=noise,
        seed=seed,
        data_dir=data_dir,
        normalize=normalize_inputs,
        preprocess=preprocess,
        labels=labels,
    )


def outputs_ok(*paths: tuple[Path | None, str]) -> None:
    """Check every output path is writable before any work starts."""
    for p, what in paths:
        check_writable(p, what)


def parse_width(text: str) -> int | None:
    t = str(text).strip().lower()
    if t in ("inf", "infinite", "infinity", "oo"):
        return None
    try:
        v = float(t)
    except ValueError:
        raise ActspecError(f"--width must be 'inf' or a positive integer (got {text!r})") from None
    if not v.is_integer() or v < 1:
        raise ActspecError(f"--width must be 'inf' or a positive integer (got {text!r})")
    if v > 1e8:
        raise ActspecError(f"--width {text} is too large (max 1e8 neurons)")
    return int(v)


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
