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

import functools
import inspect
from copy import copy
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

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
    "SHORT_FLAGS",
    "unify_vocabulary",
    "short_flag_hint",
    "legacy_short_flags",
    "check_limits",
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
    commands = getattr(command, "commands", {})
    name_of_sub = next((a for a in args if a in commands), None)  # after root options
    sub = commands.get(name_of_sub) if name_of_sub else None
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


# ---- one vocabulary across commands ------------------------------------------------------------
#: short flags that mean one thing in every command: -m is the width m (as in the papers), -a the
#: activation. A command whose own option used one of them for something else gets the short
#: flag named here instead (the long flag is unchanged); ``-m`` there says what to use.
SHORT_FLAGS = {"-a": "--activation", "-m": "--width"}
_MOVED_SHORT = {"--metric": "-M"}
#: commands that take the activation as a positional argument (kept): ``-a`` works there too
_POSITIONAL_ACTIVATION = ("name", "activation")


def _decls(info: Any) -> list[str]:
    """The flags of a typer OptionInfo declared in ``Annotated`` (first flag kept in default)."""
    first = [info.default] if isinstance(info.default, str) and info.default.startswith("-") else []
    return [*first, *(info.param_decls or ())]


def _split(annotation: Any) -> tuple[Any, Any]:
    """(the Python type, the typer Option/Argument info) of an ``Annotated`` parameter."""
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        for e in extra:
            if isinstance(e, (typer.models.OptionInfo, typer.models.ArgumentInfo)):
                return base, e
    return annotation, None


def _reserved_short(param: inspect.Parameter) -> inspect.Parameter:
    """``param`` without a reserved short flag it uses for another long flag."""
    base, info = _split(param.annotation)
    if not isinstance(info, typer.models.OptionInfo):
        return param
    decls = _decls(info)
    longs = [d for d in decls if d.startswith("--")]
    if not longs:
        return param
    new = []
    for d in decls:
        if d in SHORT_FLAGS and SHORT_FLAGS[d] not in longs:
            moved = _MOVED_SHORT.get(longs[0])
            if moved:
                new.append(moved)
            continue
        new.append(d)
    if new == decls:
        return param
    info = copy(info)
    info.default, info.param_decls = ..., tuple(new)  # all flags in param_decls
    return param.replace(annotation=Annotated[base, info])


def unify_vocabulary(fn: Any) -> Any:
    """The command ``fn`` with the shared vocabulary: a reserved short flag (:data:`SHORT_FLAGS`)
    used for another option is given another one; an activation taken as a positional argument
    (``actspec hermite relu``) may also be given as ``-a/--activation`` (both: they must agree)."""
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, TypeError):  # pragma: no cover - unresolvable annotations: leave it
        return fn
    params = [_reserved_short(p) for p in sig.parameters.values()]
    has_activation_opt = any(
        "--activation" in _decls(info)
        for _, info in (_split(p.annotation) for p in params)
        if isinstance(info, typer.models.OptionInfo)
    )
    positional = None
    if not has_activation_opt:
        for k, p in enumerate(params):
            base, info = _split(p.annotation)
            if isinstance(info, typer.models.ArgumentInfo) and p.name in _POSITIONAL_ACTIVATION:
                positional = p.name
                info = copy(info)
                info.help = (info.help or "") + " (or give it as -a/--activation)"
                params[k] = p.replace(annotation=Annotated[base | None, info], default=None)
                break
    if positional is None and params == list(sig.parameters.values()):
        return fn
    if positional is not None:
        flag_help = P.ACTIVATION.help + " Same as the positional argument."
        extra = inspect.Parameter(
            "activation_flag_", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[str | None, typer.Option("--activation", "-a", help=flag_help)],
        )
        # keyword-only after every positional-or-keyword parameter
        params = [*params, extra]
        params = sorted(params, key=lambda p: p.kind == inspect.Parameter.KEYWORD_ONLY)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if positional is not None:
            given = kwargs.pop("activation_flag_", None)
            value = kwargs.get(positional)
            if given is not None and value is not None and given != value:
                raise ActspecError(
                    f"the activation is given twice ({value!r} and -a {given!r}); give it once"
                )
            if given is None and value is None:
                raise ActspecError(
                    "missing the activation: give it as an argument or with -a, e.g. 'relu' or "
                    "-a relu (see --help)"
                )
            kwargs[positional] = value if value is not None else given
        return fn(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


def short_flag_hint(message: str, command: Any, args: list[str]) -> str | None:
    """For "No such option: -m" in a command without --width: say what -m means and what the
    command uses instead (``results --metric`` is ``-M``)."""
    for short, long in SHORT_FLAGS.items():
        if not message.rstrip(".").endswith(f"No such option: {short}"):
            continue
        commands = getattr(command, "commands", {})
        name = next((a for a in args if a in commands), None)
        sub = commands.get(name) if name else None
        if sub is None:
            return None
        here = [
            o for p in getattr(sub, "params", ())
            for o in p.opts if o in [k for k, v in _MOVED_SHORT.items() if v]
        ]
        instead = "; here use " + " or ".join(
            f"{o} ({_MOVED_SHORT[o]})" for o in here) if here else ""
        return (f"{short} means {long} in every actspec command, and 'actspec {name}' has no "
                f"{long}{instead} (see 'actspec {name} --help')")
    return None


def legacy_short_flags(args: list[str], command: Any) -> list[str]:
    """``args`` with a short flag a command used before the shared vocabulary, spelled the new
    way (``results -m lambda_min`` -> ``results -M lambda_min``), with a one-line note on stderr.
    Only in a command that has no option of that short flag's shared meaning (results has no
    --width), so the old spelling keeps working where it cannot be misread."""
    import sys

    commands = getattr(command, "commands", {})
    pos = next((k for k, a in enumerate(args) if a in commands), None)
    if pos is None:
        return args
    sub = commands[args[pos]]
    params = getattr(sub, "params", ())
    opts = {o: p for p in params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
    moved = {}
    for short in SHORT_FLAGS:
        if short in opts:
            continue
        for p in params:
            for o in p.opts:
                if o.startswith("--") and _MOVED_SHORT.get(o) in p.opts:
                    moved[short] = (_MOVED_SHORT[o], o)
    if not moved:
        return args
    out = list(args[: pos + 1])
    takes_value = False
    for a in args[pos + 1:]:
        if takes_value or a == "--":
            takes_value = False
            out.append(a)
            continue
        new = a
        for short, (repl, long) in moved.items():
            if a == short or (a.startswith(short) and not a.startswith("--")):
                new = repl + a[len(short):]
                print(f"note: {short} is {long}'s old short flag here, now {repl}; {short} means "
                      f"{SHORT_FLAGS[short]} in every actspec command", file=sys.stderr)
        p = opts.get(new) if new.startswith("-") else None  # "--opt=value", "-Mvalue": no
        takes_value = (p is not None and not getattr(p, "is_flag", False)
                       and not getattr(p, "count", False))
        out.append(new)
    return out


def check_limits(kwargs: dict[str, Any]) -> None:
    """The validation gate's declared limits (:data:`actspec.experiments.params.LIMITS`: seeds,
    --bins, --noise) on a command's parameters, whichever command declares them: one line,
    exit 2, before any work."""
    from ..core.validate import check_range

    for name, (lo, hi, why) in P.LIMITS.items():
        value = kwargs.get(name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                check_range(v, name, lo, hi, why)
