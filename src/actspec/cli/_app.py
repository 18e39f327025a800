"""The Typer application object shared by the command modules, and its root options
(``actspec --version``, ``actspec --no-cache COMMAND ...``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

app = typer.Typer(
    name="actspec",
    help=(
        "How the activation function shapes training: G-matrix (NTK) spectra of two-layer "
        "networks at infinite and finite width, Hermite expansions, and the theory's checks.\n\n"
        "Start with:  actspec spectrum --plot spectrum.png\n\n"
        "One vocabulary in every command: -a/--activation, -m/--width (the number of neurons m, "
        "as in the papers), --precision double|high, --device (default cpu).\n\n"
        "Environment: ACTSPEC_CACHE_DIR is the directory of the on-disk cache of kernel tables; "
        "ACTSPEC_NO_CACHE=1 (or --no-cache) neither reads nor writes that cache (the tables of the "
        "built-in activations ship with actspec and are always used); "
        "ACTSPEC_MAX_SECONDS is the time budget a command may plan (default 6 hours); "
        "ACTSPEC_TABLE_SECONDS is how long building the kernel table of one user activation may "
        "take before it is refused (default 600; 0: no limit); "
        "ACTSPEC_DEBUG=1 shows tracebacks of internal errors."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from ..core.version import __version__

        typer.echo(f"actspec {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Neither read nor write the on-disk cache of kernel tables "
                     "(same as ACTSPEC_NO_CACHE=1; ACTSPEC_CACHE_DIR says where the cache "
                     "lives). The built-ins' tables ship with actspec and stay in use."),
    ] = False,
) -> None:
    """Root options, before the command: actspec [--version] [--no-cache] COMMAND ..."""
    if no_cache:
        os.environ["ACTSPEC_NO_CACHE"] = "1"
