"""Sweep grids: task kinds (a function ``params -> dict`` and its parameters), tasks (a command with
its full parameters and a key), cartesian grids and sweep config files (see
:mod:`actspec.sweep.runner` for the format)."""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from ..core.validate import ParameterError
from ..experiments.params import Param, as_int

__all__ = [
    "Param",
    "TaskKind",
    "Task",
    "SweepConfig",
    "TASK_KINDS",
    "register_task",
    "get_kind",
    "task_key",
    "make_task",
    "expand_grid",
    "config_from_dict",
    "load_config",
    "parse_axis",
    "build_config",
    "varying_params",
    "describe_kinds",
    "MAX_TASKS",
    "is_code_activation",
]

#: the most tasks one sweep may have: its task list is built in memory (about 2 kB a task) and
#: checked against the store; a larger grid is refused before anything is built, with the way to
#: split it into several sweeps writing into the same database (stored tasks are skipped)
MAX_TASKS = 100_000


def _split_hint(name: str | None) -> str:
    axis = f" over parts of {name!r}" if name else ""
    return (f"split it into several sweeps{axis} writing into the same --db (tasks already "
            "stored are skipped, so the parts add up), or make an axis coarser")


def is_code_activation(value: Any) -> bool:
    """Whether an activation value is ``module:function``: using it imports that Python module
    (runs its code) in the submitting process and on every worker. Built-in names with a
    parameter (``elu:1.0``, ``leaky_relu:0.2``) and expressions are not code."""
    if not isinstance(value, str):
        return False
    from ..activations.builtins import ALIASES, BUILTIN_NAMES

    mod, sep, fn = value.strip().partition(":")
    if not (sep and fn.isidentifier() and mod and all(part.isidentifier() for part in mod.split("."))):
        return False
    return mod.lower() not in BUILTIN_NAMES and mod.lower() not in ALIASES


def _refuse_code(name: str, values: Any, where: str) -> None:
    if "activation" not in name or isinstance(values, range):
        return
    for v in values:
        if is_code_activation(v):
            raise ParameterError(
                f"activation {v!r}{where} is a module:function: it would import and run that "
                "Python module in this process and on every worker, which {-no_code} refuses; "
                "use a built-in name or an expression such as 'x*sigmoid(x)', or drop {-no_code} "
                "if you trust the code"
            )

# ============================================================================ task kinds


@dataclass(frozen=True)
class TaskKind:
    """A registered task kind: ``func(params) -> dict`` plus its parameters."""

    name: str
    func: Callable[[dict[str, Any]], Mapping[str, Any]]
    params: dict[str, Param]
    metrics: tuple[str, ...] = ()
    doc: str = ""
    hidden: bool = False
    check: Callable[[dict[str, Any]], None] | None = None


TASK_KINDS: dict[str, TaskKind] = {}


def register_task(
    name: str,
    params: Sequence[Param],
    *,
    metrics: Sequence[str] = (),
    doc: str = "",
    hidden: bool = False,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Callable[[dict[str, Any]], Mapping[str, Any]]], Callable[..., Any]]:
    """Decorator registering ``func(params) -> dict of scalars (+ arrays)`` as a task kind.

    ``metrics``: the result columns ``actspec results`` shows by default. ``check(params)`` runs
    in the submitting process before any task starts (cheap validation, raise ActspecError).
    The function must be importable by the workers (module level in an installed module)."""

    def deco(func: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Callable[..., Any]:
        TASK_KINDS[name] = TaskKind(
            name=name,
            func=func,
            params={p.name: p for p in params},
            metrics=tuple(metrics),
            doc=doc or (func.__doc__ or "").strip().split("\n")[0],
            hidden=hidden,
            check=check,
        )
        return func

    return deco


def get_kind(command: str) -> TaskKind:
    kind = TASK_KINDS.get(str(command).strip())
    if kind is None:
        known = [k for k, v in TASK_KINDS.items() if not v.hidden]
        hint = difflib.get_close_matches(str(command), known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ActspecError(
            f"unknown sweep command {command!r}{extra}; available: {', '.join(known)}"
        )
    return kind


# ============================================================================ tasks


@dataclass(frozen=True)
class Task:
    """One unit of work: a command and its full (normalised) parameters."""

    command: str
    params: dict[str, Any]
    key: str

    def label(self, names: Iterable[str] | None = None) -> str:
        keys = list(names) if names is not None else list(self.params)
        parts = [f"{k}={self.params[k]}" for k in keys if k in self.params]
        return f"{self.command} " + " ".join(parts)


def task_key(command: str, params: Mapping[str, Any]) -> str:
    """Hash of the command and the parameters that differ from their defaults (20 hex digits)."""
    kind = get_kind(command)
    significant = {
        k: v
        for k, v in params.items()
        if k in kind.params and (kind.params[k].required or v != kind.params[k].default)
    }
    text = json.dumps({"command": command, "params": significant}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _resolve_name(kind: TaskKind, name: str, where: str) -> str:
    key = str(name).strip().replace("-", "_")
    if key in kind.params:
        return key
    if key.endswith("s") and key[:-1] in kind.params:  # plural alias: activations, widths, seeds
        return key[:-1]
    hint = difflib.get_close_matches(key, list(kind.params), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ActspecError(
        f"unknown parameter {name!r} for command {kind.name!r}{extra}{where}; "
        f"valid: {', '.join(kind.params)}"
    )


def make_task(command: str, params: Mapping[str, Any], where: str = "") -> Task:
    """A :class:`Task` from raw values: names checked, values coerced, defaults filled in."""
    kind = get_kind(command)
    full: dict[str, Any] = {}
    for name, value in params.items():
        key = _resolve_name(kind, name, where)
        full[key] = kind.params[key].coerce(value, where.strip(" ;,") or "")
    for name, p in kind.params.items():
        if name not in full:
            if p.required:
                raise ActspecError(
                    f"command {command!r} needs parameter {name!r}{where}; add it to the grid"
                )
            full[name] = p.default
    ordered = {name: full[name] for name in kind.params}
    return Task(command=kind.name, params=ordered, key=task_key(kind.name, ordered))


def _axis_values(name: str, value: Any, where: str) -> Sequence[Any]:
    """A TOML value as a list of grid values: lists are axes, tables give ranges, scalars one."""
    if isinstance(value, list):
        if not value:
            raise ActspecError(
                f"parameter {name!r} has an empty list{where}; give at least one value"
            )
        return list(value)
    if isinstance(value, dict):
        if set(value) == {"range"}:
            r = value["range"]
            if (not isinstance(r, list) or not 2 <= len(r) <= 3
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in r)):
                raise ActspecError(
                    f"parameter {name!r}: range must be [start, stop] or [start, stop, step] "
                    f"integers{where}"
                )
            if len(r) == 3 and r[2] == 0:
                raise ActspecError(f"parameter {name!r}: range step must not be 0{where}")
            vals = range(*r)  # lazy: its length is known without building it
            if not vals:
                raise ActspecError(f"parameter {name!r}: range {r} is empty{where}")
            return vals
        if set(value) == {"geom"}:
            g = value["geom"]
            ok = (isinstance(g, list) and len(g) == 3
                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in g))
            if not ok or g[0] <= 0 or g[1] <= 0 or int(g[2]) != g[2] or g[2] < 1:
                raise ActspecError(
                    f"parameter {name!r}: geom must be [start, stop, count] with positive "
                    f"start and stop{where}"
                )
            if g[2] > MAX_TASKS:
                raise ActspecError(
                    f"parameter {name!r}: geom asks for {int(g[2])} values{where}, more than the "
                    f"{MAX_TASKS} tasks one sweep may have; {_split_hint(name)}"
                )
            geo = np.geomspace(g[0], g[1], int(g[2]))
            if all(isinstance(x, int) for x in g[:2]):
                return list(dict.fromkeys(int(round(v)) for v in geo))
            return [float(v) for v in geo]
        raise ActspecError(
            f"parameter {name!r}: a table value must be {{range = [a, b]}} or "
            f"{{geom = [a, b, count]}}{where}"
        )
    return [value]


def expand_grid(command: str, grid: Mapping[str, Any], where: str = "", *,
                max_tasks: int | None = None, allow_code: bool = True) -> list[Task]:
    """The cartesian product of one grid: lists (and range/geom tables) are axes, scalars fixed.

    The number of tasks is counted from the axes' lengths before any task is built: more than
    ``max_tasks`` (default :data:`MAX_TASKS`) is refused with the count and how to split the
    sweep. ``allow_code=False`` refuses ``module:function`` activations (they import and run a
    Python module) before anything is imported."""
    kind = get_kind(command)
    limit = MAX_TASKS if max_tasks is None else max_tasks
    names: list[str] = []
    raw_axes: list[Sequence[Any]] = []
    seen: dict[str, str] = {}
    for raw, value in grid.items():
        name = _resolve_name(kind, raw, where)
        if name in seen:
            raise ActspecError(f"parameter {name!r} is given twice ({seen[name]!r} and {raw!r}){where}")
        seen[name] = raw
        vals = _axis_values(name, value, where)
        if not allow_code:
            _refuse_code(name, vals, where)
        names.append(name)
        raw_axes.append(vals)
    count = math.prod(len(v) for v in raw_axes)
    if count > limit:
        sizes = " x ".join(f"{n}: {len(v)}" for n, v in zip(names, raw_axes, strict=True)
                           if len(v) > 1)
        largest = max(zip(names, raw_axes, strict=True), key=lambda nv: len(nv[1]))[0] if names else None
        extra = "" if limit == MAX_TASKS else f" ({MAX_TASKS - limit} in the grids before it)"
        raise ActspecError(
            f"the grid{where} has {count} tasks ({sizes}), more than the {MAX_TASKS} one sweep "
            f"may have{extra}; {_split_hint(largest)}"
        )
    axes: list[list[Any]] = []
    for name, vals in zip(names, raw_axes, strict=True):
        p = kind.params[name]
        axes.append(list(dict.fromkeys(p.coerce(v, where.strip(" ;,")) for v in vals)))
    tasks = [make_task(kind.name, dict(zip(names, combo, strict=True)), where)
             for combo in itertools.product(*axes)]
    if kind.check is not None:
        for t in tasks:
            kind.check(t.params)
    return tasks


# ============================================================================ config


@dataclass
class SweepConfig:
    """A parsed sweep: its tasks and how to run them."""

    tasks: list[Task]
    db: Path
    name: str | None = None
    retries: int = 2
    workers: int = 2
    threads_per_worker: int = 1
    scheduler: str | None = None
    source: Path | None = None
    grids: list[dict[str, Any]] = field(default_factory=list)


_SWEEP_KEYS = ("name", "db", "retries", "workers", "threads_per_worker", "scheduler")


def _nonneg_int(value: Any, name: str, minimum: int = 0) -> int:
    bad = ActspecError(f"[sweep] {name} must be an integer >= {minimum}, got {value!r}")
    v = as_int(value, bad)
    if v < minimum:
        raise bad
    return v


def config_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] = ".",
    default_db: str | os.PathLike[str] = "sweep.duckdb",
    default_name: str | None = None,
    overrides: Mapping[str, Sequence[Any]] | None = None,
    allow_code: bool = True,
) -> SweepConfig:
    """A :class:`SweepConfig` from the parsed TOML (see the module docstring for the format).

    ``overrides``: parameter -> values replacing that parameter in every grid whose command has
    it (``actspec sweep --param``). ``allow_code=False`` refuses ``module:function``
    activations (``actspec sweep --no-code``). At most :data:`MAX_TASKS` tasks in all."""
    unknown = [k for k in data if k not in ("sweep", "grid")]
    if unknown:
        raise ActspecError(
            f"unknown top-level key(s) {', '.join(map(repr, unknown))} in the sweep config; "
            "use a [sweep] table for settings and [[grid]] tables for parameters"
        )
    settings = data.get("sweep", {})
    if not isinstance(settings, dict):
        raise ActspecError("'sweep' must be a table: [sweep] with name, db, retries, workers")
    bad = [k for k in settings if k.replace("-", "_") not in _SWEEP_KEYS]
    if bad:
        raise ActspecError(
            f"unknown [sweep] setting(s) {', '.join(map(repr, bad))}; valid: {', '.join(_SWEEP_KEYS)}"
        )
    settings = {k.replace("-", "_"): v for k, v in settings.items()}
    grids = data.get("grid")
    if grids is None:
        raise ActspecError(
            "the sweep config has no [[grid]] table; add one with command = \"spectrum\" and "
            "the parameters to sweep"
        )
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(grids, list) or not grids or not all(isinstance(g, dict) for g in grids):
        raise ActspecError("'grid' must be one or more [[grid]] tables")
    base = Path(base_dir)
    db = settings.get("db", default_db)
    if not isinstance(db, str) or not db.strip():
        raise ActspecError(f"[sweep] db must be a file name, got {db!r}")
    db_path = Path(db).expanduser()
    if not db_path.is_absolute():
        db_path = base / db_path
    name = settings.get("name", default_name)
    if name is not None and not isinstance(name, str):
        raise ActspecError(f"[sweep] name must be a string, got {name!r}")
    scheduler = settings.get("scheduler")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ActspecError(f"[sweep] scheduler must be an address like 'tcp://host:8786', got {scheduler!r}")

    overrides = dict(overrides or {})
    used: set[str] = set()
    tasks: list[Task] = []
    plain_grids: list[dict[str, Any]] = []
    for i, g in enumerate(grids, 1):
        where = f" in [[grid]] #{i}" if len(grids) > 1 else " in [[grid]]"
        g = dict(g)
        command = g.pop("command", None)
        if not isinstance(command, str):
            raise ActspecError(
                f"[[grid]] #{i} needs command = \"spectrum\" (one of "
                f"{', '.join(k for k, v in TASK_KINDS.items() if not v.hidden)})"
            )
        kind = get_kind(command)
        for oname, ovals in overrides.items():
            try:
                key = _resolve_name(kind, oname, "")
            except ActspecError:
                continue
            used.add(oname)
            for k in list(g):
                if k.replace("-", "_") == key or (k.endswith("s") and k[:-1] == key):
                    del g[k]
            g[key] = list(ovals)
        tasks.extend(expand_grid(command, g, where, max_tasks=MAX_TASKS - len(tasks),
                                 allow_code=allow_code))
        plain_grids.append({"command": command, **g})
    unused = [k for k in overrides if k not in used]
    if unused:
        raise ActspecError(
            f"--param {unused[0]!r} is not a parameter of any command in this sweep"
        )
    if not tasks:
        raise ActspecError("the sweep grid is empty; give at least one value for every parameter")
    return SweepConfig(
        tasks=tasks,
        db=db_path,
        name=name,
        retries=_nonneg_int(settings.get("retries", 2), "retries"),
        workers=_nonneg_int(settings.get("workers", 2), "workers", 1),
        threads_per_worker=_nonneg_int(settings.get("threads_per_worker", 1), "threads_per_worker", 1),
        scheduler=scheduler,
        grids=plain_grids,
    )


def load_config(
    path: str | os.PathLike[str], *, overrides: Mapping[str, Sequence[Any]] | None = None,
    allow_code: bool = True,
) -> SweepConfig:
    """Read a sweep TOML file (the database defaults to the same name with ``.duckdb``)."""
    import tomllib

    p = Path(path).expanduser()
    if not p.exists():
        raise ActspecError(f"sweep config {str(p)!r} not found; check the path")
    if p.is_dir():
        raise ActspecError(f"sweep config {str(p)!r} is a directory; give a .toml file")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ActspecError(f"{str(p)!r} is not valid TOML: {exc}; fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ActspecError(f"cannot read sweep config {str(p)!r}: {exc}") from None
    cfg = config_from_dict(
        data, base_dir=p.parent, default_db=p.with_suffix(".duckdb").name, default_name=p.stem,
        overrides=overrides, allow_code=allow_code,
    )
    cfg.source = p
    return cfg


# ============================================================================ building a sweep


def parse_axis(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2`` (or ``NAME=A..B`` for an integer range) -> (name, values as text)."""
    if "=" not in text:
        raise ParameterError(
            f"{{-param}} {text!r} must look like NAME=VALUE or NAME=V1,V2,... (e.g. -p n=10,20,40)"
        )
    key, _, rest = text.partition("=")
    key = key.strip()
    if not key:
        raise ParameterError(f"{{-param}} {text!r} has no parameter name before '='")
    pieces: list[str | range] = []
    for v in (v.strip() for v in rest.split(",")):
        if ".." in v:
            a, _, b = v.partition("..")
            try:
                lo, hi = int(a), int(b)
            except ValueError:
                raise ParameterError(f"{{-param}} {key}: range {v!r} must be two integers A..B") from None
            if hi < lo:
                raise ParameterError(f"{{-param}} {key}: range {v!r} is empty")
            pieces.append(range(lo, hi + 1))
        elif v:
            pieces.append(v)
    count = sum(len(x) if isinstance(x, range) else 1 for x in pieces)  # before building any
    if count > MAX_TASKS:
        raise ParameterError(
            f"{{-param}} {text.strip()!r} gives {count} values, more than the {MAX_TASKS} tasks "
            f"one sweep may have; {_split_hint(key)}"
        )
    out: list[str] = []
    for x in pieces:
        if isinstance(x, range):
            out.extend(str(i) for i in x)
        else:
            out.append(x)
    if not out:
        raise ParameterError(f"{{-param}} {key} has no values; give NAME=V1,V2,...")
    return key, out


def build_config(
    config: str | os.PathLike[str] | None = None,
    command: str | None = None,
    params: Iterable[str] = (),
    *,
    db: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    retries: int | None = None,
    allow_code: bool = True,
) -> SweepConfig:
    """A sweep from a ``config`` file, or from one ``command``, with ``params`` axes
    (``NAME=V1,V2``, :func:`parse_axis`: with a config they replace that parameter in every
    grid); the other keywords, when given, override the file's settings. ``allow_code=False``
    refuses ``module:function`` activations (``--no-code``)."""
    overrides: dict[str, list[str]] = {}
    for text in params:
        key, vals = parse_axis(text)
        if key in overrides:
            raise ParameterError(f"{{-param}} {key} is given twice; list all values once: {key}=A,B,C")
        overrides[key] = vals
    if config is not None and command is not None:
        raise ParameterError("give either a {-config} file or {-command} (with {-param}), not both")
    if config is not None:
        cfg = load_config(config, overrides=overrides, allow_code=allow_code)
    elif command is not None:
        cfg = config_from_dict({"grid": [{"command": command, **overrides}]},
                               default_db="sweep.duckdb", default_name=command,
                               allow_code=allow_code)
    else:
        raise ParameterError("give a sweep {-config} file (TOML), or {-command} NAME with {-param} "
                             "NAME=V1,V2 (the sweepable commands: actspec sweep --list)")
    if db is not None:
        cfg.db = Path(db)
    cfg.scheduler = scheduler or cfg.scheduler
    cfg.workers = workers or cfg.workers
    cfg.threads_per_worker = threads_per_worker or cfg.threads_per_worker
    if retries is not None:
        cfg.retries = retries
    return cfg


def varying_params(tasks: Iterable[Task]) -> dict[str, list[str]]:
    """command -> the parameter names whose values differ among its tasks."""
    by_cmd: dict[str, list[Task]] = {}
    for t in tasks:
        by_cmd.setdefault(t.command, []).append(t)
    return {cmd: [k for k in ts[0].params if len({repr(t.params[k]) for t in ts}) > 1]
            for cmd, ts in by_cmd.items()}


def describe_kinds() -> dict[str, Any]:
    """The sweepable commands (hidden ones left out): doc, parameters and default metrics."""
    return {
        k.name: {
            "doc": k.doc,
            "parameters": {p.name: {"type": p.type, "required": p.required, "default": p.default,
                                    "help": p.help} for p in k.params.values()},
            "metrics": list(k.metrics),
        }
        for k in TASK_KINDS.values() if not k.hidden
    }
