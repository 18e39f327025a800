"""The Typer application object shared by the command modules."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="actspec",
    help=(
        "How the activation function shapes training: G-matrix (NTK) spectra of two-layer "
        "networks at infinite and finite width, Hermite expansions, and the theory's checks.\n\n"
        "Start with:  actspec spectrum --plot spectrum.png"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
