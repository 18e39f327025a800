"""Every option that several commands share, declared once (pip's ``cmdoptions``).

The names, types, defaults and help texts come from :mod:`actspec.experiments.params`, the same
declarations the sweep's task parameters are made of. :func:`option` turns one into a typer
option (``Annotated[type, typer.Option(...)]``); a command that says something more specific
passes its own ``help`` or panel, never a second declaration. ``--device`` is resolved and
``--precision`` normalised by the one validation gate as the command line is parsed; a library
error that names a parameter (:class:`~actspec.core.validate.ParameterError`) is shown with the
command's flag for it (:func:`cli_message`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import ActspecError
from ..core.validate import ParameterError
from ..experiments import params as P
from ..experiments.params import Param

__all__ = [
    "DATA_PANEL",
    "OUTPUT_PANEL",
    "option",
    "annotated",
    "flag",
    "flag_of",
    "cli_message",
    "DATA_OPTIONS",
    "ActivationOpt",
    "ActivationsOpt",
    "WidthOpt",
    "WidthsOpt",
    "TrainOpt",
    "InitOpt",
    "NormalizeOpt",
    "DtypeOpt",
    "DeviceOpt",
    "PrecisionOpt",
    "DigitsOpt",
    "LabelsOpt",
    "JsonOpt",
    "PlotOpt",
    "TimingsOpt",
]

DATA_PANEL = "Data"
OUTPUT_PANEL = "Output"

_PY_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "width": str}


def flag(p: Param) -> str:
    """The long flag of a parameter: span_dim -> --span-dim."""
    return "--" + p.name.replace("_", "-")


def flag_of(command: Any, args: list[str], name: str) -> str:
    """The command line's flag for the library parameter ``name`` (the subcommand's option whose
    Python name is ``name``, e.g. spectrum_mode -> --spectrum; an argument in capitals), else
    ``--name-with-dashes``."""
    sub = getattr(command, "commands", {}).get(args[0]) if args else None
    for p in getattr(sub, "params", ()):
        if p.name in (name, name + "_"):
            longs = [o for o in p.opts if o.startswith("--")]
            return longs[0] if longs else str(p.name).upper()  # an argument: CONFIG
    return "--" + name.replace("_", "-")


def cli_message(exc: ActspecError, command: Any, args: list[str]) -> str:
    """The one-line message of a library error, with the parameters it names as flags."""
    if isinstance(exc, ParameterError):
        return exc.render(lambda name: flag_of(command, args, name))
    return str(exc)


def _check_device(value: str | None) -> str | None:
    """Refuse a device this machine does not have (one line, exit 2) before any work."""
    if value is not None:
        from ..core.devices import resolve_device

        resolve_device(value)
    return value


def _check_precision(value: str | None) -> str | None:
    from ..core.validate import check_precision

    return None if value is None else check_precision(value)


_CALLBACKS = {"device": _check_device, "precision": _check_precision}


def option(p: Param, *aliases: str, help: str | None = None, panel: str | None = None) -> Any:
    """The typer option of ``p`` (``Annotated[type, option(p)]``): ``--name`` (a bool that
    defaults to true also gets ``--no-name``), plus ``aliases`` such as ``-m``."""
    decl = flag(p)
    if p.type == "bool" and p.default is True:
        decl = f"{decl}/--no-{decl[2:]}"
    kwargs: dict[str, Any] = {"help": p.help if help is None else help}
    if panel is not None:
        kwargs["rich_help_panel"] = panel
    if p.name in _CALLBACKS:
        kwargs["callback"] = _CALLBACKS[p.name]
    return typer.Option(decl, *aliases, **kwargs)


def annotated(p: Param, **kwargs: Any) -> Any:
    """``Annotated[python type, option(p)]`` built at run time (for generated signatures)."""
    py = _PY_TYPES[p.type]
    if p.default is None and p.type != "bool":
        py = py | None
    return Annotated[py, option(p, **kwargs)]


# ---- the data options (same flags in every data-taking command) -------------------------------
#: parameter name -> annotation, in the order of the flags (``actspec.cli.common.data_options``)
DATA_OPTIONS: dict[str, Any] = {p.name: annotated(p, panel=DATA_PANEL) for p in P.DATA_PARAMS}
LabelsOpt = Annotated[str, option(P.LABELS, panel=DATA_PANEL)]

# ---- the network and the arithmetic ------------------------------------------------------------
ActivationOpt = Annotated[str, option(P.ACTIVATION, "-a")]
ActivationsOpt = Annotated[
    list[str] | None,
    option(P.ACTIVATION, "-a", help="Activation (repeat for several): "
           + P.ACTIVATION.help.split(": ", 1)[1] + " Default: relu elu tanh swish."),
]
WidthOpt = Annotated[str, option(P.WIDTH, "-m")]
WidthsOpt = Annotated[
    list[str] | None,
    option(P.WIDTH, "-m", help="'inf' for the exact infinite-width G∞, or the number of neurons m "
           "for G at a random initialisation (repeat to compare, e.g. --width inf --width 10000)."),
]
TrainOpt = Annotated[str, option(P.TRAIN)]
InitOpt = Annotated[str, option(P.INIT)]
NormalizeOpt = Annotated[bool, option(P.NORMALIZE)]
DtypeOpt = Annotated[str, option(P.DTYPE)]
DeviceOpt = Annotated[str, option(P.DEVICE)]
PrecisionOpt = Annotated[str, option(P.PRECISION)]
DigitsOpt = Annotated[int, option(P.DIGITS)]

# ---- outputs -----------------------------------------------------------------------------------
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
