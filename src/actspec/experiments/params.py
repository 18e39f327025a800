"""The parameters the experiments share, declared once: name, type, default, choices and help.

The command line builds its flags from these declarations (``actspec.cli.options``: ``--width``,
``--dtype``, ``--device``, ``--train``, ``--init``, ``--normalize``, ``--precision`` and the data
options) and the sweep its task parameters (``actspec.sweep.runner``), so a name, a default or a
help text is written in one place. A command that needs another default or a narrower choice
says so with :meth:`Param.but` (``TRAIN.but(choices=("hidden", "both"))``).

:meth:`Param.coerce` validates one value given as text or as a TOML value (the sweep's grids);
its errors name the parameter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ActspecError

__all__ = [
    "Param",
    "as_int",
    "DATA",
    "N",
    "DIM",
    "SPAN_DIM",
    "NOISE",
    "SEED",
    "DATA_SEED",
    "DATA_DIR",
    "NORMALIZE_INPUTS",
    "PREPROCESS",
    "LABELS",
    "DATA_PARAMS",
    "ACTIVATION",
    "WIDTH",
    "TRAIN",
    "INIT",
    "NORMALIZE",
    "DTYPE",
    "DEVICE",
    "PRECISION",
    "DIGITS",
    "report_card_precision",
    "MAX_SEED",
    "MAX_BINS",
    "MAX_NOISE",
    "LIMITS",
]

TYPES = ("str", "int", "float", "bool", "width")
_SQL = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "width": "DOUBLE"}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Param:
    """One parameter.

    ``type``: ``str``, ``int``, ``float``, ``bool`` or ``width`` (``"inf"`` or a positive int;
    stored as DOUBLE with inf). ``default`` None means optional (absent); ``required`` params
    have no default. ``aliases``: other spellings of a choice, ((alias, choice), ...)."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: int | None = None  # smallest allowed value of an int parameter
    maximum: float | None = None  # largest allowed value of an int or float parameter
    aliases: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Param type must be one of {TYPES}")

    def but(self, **changes: Any) -> Param:
        """The same parameter with some fields changed (another default, help or choices)."""
        return dataclasses.replace(self, **changes)

    @property
    def sql_type(self) -> str:
        return _SQL[self.type]

    def coerce(self, value: Any, where: str = "") -> Any:
        """Validate and normalise one value (TOML value or command-line text)."""
        at = f" ({where})" if where else ""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                             and self.type != "str"):
            if self.required:
                raise ActspecError(f"parameter {self.name!r} needs a value{at}")
            return None
        t = self.type
        bad = ActspecError(
            f"parameter {self.name!r} must be {_describe_type(t)}, got {value!r}{at}"
        )
        if t == "str":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise bad
            out: Any = str(value).strip()
            if not out:
                raise bad
            out = dict(self.aliases).get(out, out)
        elif t == "bool":
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                out = value.strip().lower() in _TRUE
            else:
                raise bad
        elif t == "int":
            out = as_int(value, bad)
            if self.minimum is not None and out < self.minimum:
                raise ActspecError(
                    f"parameter {self.name!r} must be an integer >= {self.minimum}, got {value!r}{at}"
                )
            if self.maximum is not None and out > self.maximum:
                raise ActspecError(
                    f"parameter {self.name!r} must be an integer <= {int(self.maximum)}, got "
                    f"{value!r}{at}"
                )
        elif t == "float":
            if isinstance(value, bool):
                raise bad
            try:
                out = float(value)
            except (TypeError, ValueError):
                raise bad from None
            if self.maximum is not None and not abs(out) <= self.maximum:
                raise ActspecError(
                    f"parameter {self.name!r} must be a finite number of size <= "
                    f"{self.maximum:g}, got {value!r}{at}"
                )
        else:  # width
            if isinstance(value, str) and value.strip().lower() in ("inf", "infinite", "infinity"):
                out = "inf"
            elif isinstance(value, float) and math.isinf(value) and value > 0:
                out = "inf"
            else:
                out = as_int(value, bad)
                if out < 1:
                    raise bad
        if self.choices and out not in self.choices:
            raise ActspecError(
                f"parameter {self.name!r} must be one of {', '.join(map(str, self.choices))}, "
                f"got {value!r}{at}"
            )
        return out

    def column(self, value: Any) -> Any:
        """The value as stored in its results column."""
        if self.type == "width" and value == "inf":
            return math.inf
        return value


def _describe_type(t: str) -> str:
    return {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "width": "'inf' or a positive integer",
    }[t]


def as_int(value: Any, bad: Exception) -> int:
    """``value`` as an int (whole floats and numeric text accepted), else raise ``bad``."""
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise bad from None
    if not math.isfinite(f) or not f.is_integer():
        raise bad
    return int(f)


# ============================================================================ the data

DATA = Param("data", "str", "circle", "Data source: circle, sphere, subspace, smoothed, digits, "
             "cifar10, cone (points in a narrow cone, spread --noise), or a path to .npy/.npz/.csv.")
N = Param("n", "int", None, "Number of points (default depends on the source).", minimum=1)
DIM = Param("dim", "int", None, "Ambient dimension of synthetic data (circle: 10, i.e. S^9).",
            minimum=1)
SPAN_DIM = Param("span_dim", "int", None, "Dimension d0 of the span (subspace/smoothed data).",
                 minimum=1)
#: seeds are 63-bit (they are stored as BIGINT in sweeps and read back as int64)
MAX_SEED = 2**63 - 1
#: histogram bins of ``actspec data`` (a figure and a JSON list; more cannot be told apart)
MAX_BINS = 10_000
#: noise scale of smoothed/cone data: rows are renormalised, so beyond this the points are pure
#: Gaussian directions (and at ~1e154 their squared norms overflow)
MAX_NOISE = 1e6

NOISE = Param("noise", "float", 0.1, "Gaussian noise scale within the span (smoothed data).",
              maximum=MAX_NOISE)
SEED = Param("seed", "int", 0, "Seed for the data and the network weights.", minimum=0,
             maximum=MAX_SEED)
DATA_SEED = Param("data_seed", "int", None, "Seed of the data only (default: seed).", minimum=0,
                  maximum=MAX_SEED)
DATA_DIR = Param("data_dir", "str", None, "Directory with CIFAR-10 python batches (cifar10 source).")
NORMALIZE_INPUTS = Param("normalize_inputs", "bool", True,
                         "Scale every row to unit norm (the theory's Assumption 1).")
PREPROCESS = Param(
    "preprocess", "str", None,
    "'paper': the activation paper's lift (scale to norm <= 1/sqrt2, pad to 1/sqrt2, append the "
    "constant 1/sqrt2); 'center' or 'standardize' the columns; chain steps with '+', e.g. "
    "center+paper.",
)
LABELS = Param("labels", "str", "auto", "auto (random ±1 for synthetic data, classes for real "
               "data), random, none, or a .npy/.csv file of labels.")

#: the data options of every data-taking command, in the order of their flags
DATA_PARAMS = (DATA, N, DIM, SPAN_DIM, NOISE, SEED, DATA_DIR, NORMALIZE_INPUTS, PREPROCESS)

# ============================================================================ the network

ACTIVATION = Param("activation", "str", "relu", "Activation: relu, leaky_relu:0.2, elu:1.0, selu, "
                   "gelu, swish/silu, softplus, tanh, sigmoid, erf, linear, quadratic, cubic, an "
                   "expression in x such as 'x*sigmoid(x)', or module:function.")

WIDTH = Param("width", "width", "inf", "'inf' for the exact infinite-width G∞, or the number of "
              "neurons m for G at a random initialisation drawn with --seed.")
TRAIN = Param("train", "str", "hidden", "hidden: G (only W trained); both: G + H; output: H.",
              choices=("hidden", "both", "output"))
INIT = Param("init", "str", "dzps", "dzps (default), fanin or fanout.")
NORMALIZE = Param("normalize", "bool", False,
                  "Scale phi so that E phi(z)^2 = 1 (the paper's c_phi).")
DTYPE = Param("dtype", "str", "float64", "Finite-width arithmetic: float64 or float32.",
              choices=("float64", "float32"))
DEVICE = Param("device", "str", "cpu", "cpu, cuda, cuda:N, mps, or auto (CUDA when present).")

# ============================================================================ the arithmetic

PRECISION = Param(
    "precision", "str", "double",
    "double (float64) or high: G∞ entries and eigenvalues in extended precision (--digits), "
    "relative accuracy for eigenvalues far below float64's n·eps·λ_max. Infinite width, "
    "unit-norm rows; n up to ~600. float64 is read as double.",
    choices=("double", "high"), aliases=(("float64", "double"),),
)
DIGITS = Param("digits", "int", 50, "Decimal digits for --precision high.")


def report_card_precision(precision: str) -> str:
    """``precision`` in the spelling :func:`actspec.experiments.theory.report_card` takes
    (``"float64"`` for ``"double"``; its JSON records that spelling)."""
    return "float64" if precision == "double" else precision


#: limits the validation gate applies to a command parameter of that name, wherever it is
#: declared: name -> (smallest, largest, why the largest)
LIMITS: dict[str, tuple[float, float, str]] = {
    "seed": (0, MAX_SEED, "seeds are 63-bit integers, the size the results store keeps"),
    "data_seed": (0, MAX_SEED, "seeds are 63-bit integers, the size the results store keeps"),
    "bins": (1, MAX_BINS, "more histogram bins cannot be told apart"),
    "noise": (0.0, MAX_NOISE, "rows are renormalised, so larger noise is pure Gaussian "
              "directions: use --data sphere"),
}
