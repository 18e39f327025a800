"""The one validation gate: checks of user inputs (arrays, scalars, choices) whose errors name the
parameter; the CLI maps parameter names to its flags.

An error about a parameter is a :class:`ParameterError` whose message writes each parameter it
names as ``{-name}``: a library user reads ``width must be 'inf' or ...``, the command line reads
``--width must be 'inf' or ...`` (the CLI renders every placeholder as the command's own flag).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import ActspecError

__all__ = [
    "ParameterError",
    "PRECISIONS",
    "check_inputs",
    "check_choice",
    "check_int",
    "check_range",
    "check_scheduler_address",
    "check_precision",
    "check_width",
    "MAX_WIDTH",
]

_PLACEHOLDER = re.compile(r"\{-([A-Za-z_][A-Za-z0-9_]*)\}")

MAX_WIDTH = 1e8  # neurons: wider finite networks are refused (memory and time)
INF_WORDS = ("inf", "infinite", "infinity", "oo")
#: the spellings of ``precision``: ``double`` (float64 arithmetic) or ``high`` (extended);
#: ``float64`` is an accepted alias of ``double`` (older command lines)
PRECISIONS = ("double", "high")
PRECISION_ALIASES = {"float64": "double"}


class ParameterError(ActspecError):
    """Bad value of a named parameter.

    ``template`` names every parameter as ``{-name}``; ``str(error)`` shows the plain names (the
    library's keywords), :meth:`render` any other spelling (the CLI's ``--flag``)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.params = tuple(dict.fromkeys(_PLACEHOLDER.findall(template)))
        super().__init__(self.render(lambda name: name))

    @property
    def param(self) -> str | None:
        """The parameter the error is about (the first one it names)."""
        return self.params[0] if self.params else None

    def render(self, label: Callable[[str], str]) -> str:
        """The message with every ``{-name}`` replaced by ``label(name)``, on one line."""
        return " ".join(_PLACEHOLDER.sub(lambda m: label(m.group(1)), self.template).split())

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (workers, Dask)
        return (type(self), (self.template,))


def check_inputs(X: Any) -> np.ndarray:
    """Validate a data matrix: 2-D, non-empty, finite, float64."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ActspecError(
            "X must be a numeric (n, d) array; ragged or non-numeric rows cannot be used"
        ) from None
    if arr.ndim != 2:
        raise ActspecError(f"X must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ActspecError(f"X is empty (shape {arr.shape}); give at least one row and column")
    if not np.all(np.isfinite(arr)):
        raise ActspecError("X contains NaN or inf; remove or impute those rows first")
    return np.ascontiguousarray(arr)


def check_choice(value: Any, choices: Iterable[Any], param: str, *,
                 aliases: dict[str, Any] | None = None) -> Any:
    """``value`` when it is one of ``choices`` (or an alias of one: the choice it stands for)."""
    opts = tuple(choices)
    key = aliases.get(value, value) if aliases and isinstance(value, str) else value
    if key in opts:
        return key
    listed = (f"{opts[0]} or {opts[1]}" if len(opts) == 2
              else "one of " + ", ".join(map(str, opts)))
    raise ParameterError(f"{{-{param}}} must be {listed} (got {value!r})")


def check_int(value: Any, param: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An integer (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{{-{param}}} must be an integer (got {value!r})")
    v = int(value)
    if minimum is not None and maximum is not None and not minimum <= v <= maximum:
        raise ParameterError(f"{{-{param}}} must be between {minimum} and {maximum} (got {v})")
    if minimum is not None and v < minimum:
        raise ParameterError(f"{{-{param}}} must be >= {minimum} (got {v})")
    if maximum is not None and v > maximum:
        raise ParameterError(f"{{-{param}}} must be <= {maximum} (got {v})")
    return v


def check_range(value: Any, param: str, minimum: float, maximum: float, why: str = "") -> Any:
    """``value`` (a number: int, float, or numeric text) when ``minimum <= value <= maximum``,
    else a :class:`ParameterError` naming ``param`` (``why`` says why the largest value is the
    limit). NaN and infinities are refused."""
    import math

    try:
        v = float(value) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise ParameterError(f"{{-{param}}} must be a number (got {value!r})") from None
    if isinstance(value, bool) or (isinstance(v, float) and not math.isfinite(v)):
        raise ParameterError(f"{{-{param}}} must be a finite number (got {value!r})")
    if v < minimum:
        raise ParameterError(f"{{-{param}}} must be >= {minimum:g} (got {value!r})")
    if v > maximum:
        limit = f"{maximum:g}" if maximum < 1e15 else f"{int(maximum)} (2^{math.log2(maximum + 1):.0f} - 1)"
        tail = f": {why}" if why else ""
        raise ParameterError(f"{{-{param}}} must be <= {limit} (got {value!r}){tail}")
    return value


def check_scheduler_address(value: Any, param: str = "scheduler") -> str:
    """A Dask scheduler address ``tcp://HOST:PORT`` (also ``tls://``, ``ucx://``, ``inproc://``;
    a bare ``HOST:PORT`` is read as tcp), checked before anything is printed or created: the
    port must be 1..65535."""
    text = str(value).strip()
    proto, sep, rest = text.rpartition("://")
    if not sep:
        proto, rest = "tcp", text
    host, colon, port = rest.rpartition(":")
    ok = (proto in ("tcp", "tls", "ucx", "inproc", "ws", "wss") and bool(host) and colon == ":"
          and port.isdigit() and 0 < int(port) < 65536)
    if proto == "inproc" and rest:
        ok = True
    if not ok:
        raise ParameterError(
            f"{{-{param}}} must be a scheduler address like tcp://HOST:8786 (got {value!r}); "
            f"leave it out for a local cluster"
        )
    return text if sep else f"tcp://{text}"


def check_precision(value: Any, param: str = "precision") -> str:
    """``"double"`` or ``"high"`` (``"float64"`` is read as ``"double"``)."""
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text in PRECISIONS or text in PRECISION_ALIASES:
        return PRECISION_ALIASES.get(text, text)
    raise ParameterError(f"{{-{param}}} must be 'double' or 'high' (got {value!r})")


def check_width(value: Any, param: str = "width") -> int | None:
    """A network width: None for ``"inf"`` (infinite width), else a positive integer up to
    :data:`MAX_WIDTH` (``"1e5"`` and ``100000.0`` are read as 100000)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in INF_WORDS:
        return None
    bad = ParameterError(f"{{-{param}}} must be 'inf' or a positive integer (got {value!r})")
    if isinstance(value, bool):
        raise bad
    try:
        v = float(text)
    except ValueError:
        raise bad from None
    if not v.is_integer() or v < 1:
        raise bad
    if v > MAX_WIDTH:
        raise ParameterError(f"{{-{param}}} {value} is too large (max 1e8 neurons)")
    return int(v)
