"""Reproductions of the activation paper's experiments and theorems, and the Liu & Hui claims.

A reproduction is a list of *parts*; each part computes numbers, writes figures into the output
directory, and states claims as rows ``{claim, tests, setting, predicted, measured, status,
reason}`` with status ``"holds"``, ``"does not hold"`` or ``"inconclusive"``; ``tests`` says what
the row checks (a theorem, a figure's ordering, or an identity that only checks the code) and
``reason`` explains every row that does not hold or is inconclusive. Finished parts are cached in
``DIR/cache/`` (keyed by the part's settings), so an interrupted or repeated run recomputes
nothing that is done. Every cache file carries the key of its inputs and is validated before it
is used (schema, key, figures): a file that is empty, truncated, binary, from another part or
another setting is recomputed with a warning, never trusted. ``DIR/report.json`` holds every
number, ``DIR/report.md`` and the self-contained ``DIR/report.html`` show the claims with the
figures.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import ActspecError
from ...core.io import atomic_path, check_output_dir, run_metadata, to_jsonable, write_json

__all__ = ["PARTS", "REPRODUCTIONS", "Context", "run_reproduction", "claim", "register"]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
STATUSES = (HOLDS, FAILS, INCONCLUSIVE)
NO_REASON = "(no explanation recorded for this outcome)"
CACHE_FORMAT = 2  # part and unit cache files carry {"_cache": {format, part, key, ...}}


def claim(
    text: str, setting: str, predicted: Any, measured: Any, status: str | bool | None,
    *, tests: str = "", reason: str | None = None,
) -> dict[str, Any]:
    """One claim row; ``status`` True/False/None map to holds / does not hold / inconclusive.

    ``tests``: what the row checks (e.g. "Thm 4.5", "an identity of the code: ..."); ``reason``:
    why a row does not hold or is inconclusive (kept only for those rows; the report shows it).
    """
    if isinstance(status, bool) or status is None:
        status = {True: HOLDS, False: FAILS, None: INCONCLUSIVE}[status]
    if status not in STATUSES:
        raise ValueError(f"claim status must be one of {STATUSES} (got {status!r})")
    return {
        "claim": text, "tests": tests, "setting": setting, "predicted": predicted,
        "measured": measured, "status": status,
        "reason": None if status == HOLDS else (reason or NO_REASON),
    }


def _warn(msg: str) -> None:
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), or (None, what is wrong) for a file that is not readable JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if not raw.strip():
        return None, "is empty"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "is not text (binary content)"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"is not valid JSON (truncated or corrupt: {exc})"


def _check_claims(claims: Any) -> str | None:
    if not isinstance(claims, list) or not claims:
        return "has no claims"
    for c in claims:
        if not isinstance(c, dict) or not {"claim", "setting", "predicted", "measured", "status"} <= set(c):
            return "has a claim row without its fields"
        if c["status"] not in STATUSES or not isinstance(c["claim"], str):
            return f"has a claim row with an unknown status {c.get('status')!r}"
    return None


@dataclass
class Context:
    out: Path
    quick: bool = True
    seed: int = 0
    data: str = "digits"
    data_dir: str | None = None
    device: str = "cpu"
    force: bool = False  # recompute cached units too
    part_key: str = ""  # cache key of the running part (set by run_reproduction)
    part_name: str = ""  # name of the running part: units are cached in cache/units/<part_name>/
    on_unit: Callable[[str, str], None] | None = None  # on_unit(key, "start" | "cached" | "done")
    workers: int = 1  # processes that compute prefetched units
    on_warning: Callable[[str], None] | None = None  # a cache file that cannot be trusted, ...
    _fresh: set[Path] = field(default_factory=set)  # unit files written by prefetch in this run
    units_computed: int = 0  # units of the running part computed in this run (counters, reset
    units_cached: int = 0  # per part by run_reproduction) and loaded from the cache

    def fig(self, name: str) -> Path:
        return self.out / name

    def _unit_path(self, key: str, args: tuple[Any, ...] = ()) -> Path:
        name = f"{key}-{_digest(args)}" if args else key
        return self.out / "cache" / "units" / (self.part_name or self.part_key) / f"{name}.json"

    def warn(self, msg: str) -> None:
        (self.on_warning or _warn)(msg)

    def _unit_stamp(self, key: str, args: tuple[Any, ...]) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "part": self.part_name or self.part_key, "unit": key,
                "inputs": _digest(args) if args else ""}

    def _store_unit(self, key: str, args: tuple[Any, ...], result: dict[str, Any]) -> None:
        path = self._unit_path(key, args)
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: an interrupted unit leaves nothing behind; the stamp names the unit's inputs
        write_json(path, {"_cache": self._unit_stamp(key, args), "result": result})
        if self.on_unit:
            self.on_unit(key, "done")

    def _load_unit(
        self, key: str, args: tuple[Any, ...], check: Callable[[dict[str, Any]], str | None] | None,
        *, warn: bool = True, problem: list[str] | None = None,
    ) -> dict[str, Any] | None:
        """The cached result of a unit, or None (with a warning) when its file cannot be trusted:
        unreadable, not JSON, another unit's or another input's stamp, or failing ``check``."""
        path = self._unit_path(key, args)
        if not path.exists():
            return None
        data, why = _read_json(path)
        if why is None:
            stamp = data.get("_cache") if isinstance(data, dict) else None
            result = data.get("result") if isinstance(data, dict) else None
            if not isinstance(stamp, dict) or not isinstance(result, dict):
                why = "is not a unit cache file (no stamp or no result)"
            elif stamp != self._unit_stamp(key, args):
                why = (f"belongs to another unit or other inputs (stamp {stamp.get('part')}/"
                       f"{stamp.get('unit')}/{stamp.get('inputs')})")
            elif check is not None:
                why = check(result)
        if why is None and isinstance(result, dict):
            return dict(result)
        why = why or "is not a unit cache file"
        if problem is not None:
            problem.append(why)
        if warn:
            self.warn(f"cache file {path} {why}; recomputing it")
        return None

    def prefetch(
        self, jobs: Sequence[tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]],
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        """Compute the uncached units among ``jobs`` = ``(key, fn, args)`` in parallel.

        With ``workers`` > 1 the missing units run in that many spawned processes, each with
        ``cores // workers`` torch threads (one-thread processes beat one two-thread process on
        the memory-bound training steps), and each is cached as it finishes; the part's later
        ``unit(key, ...)`` calls then load them. ``fn`` must be a module-level function (it is
        pickled). With one worker this does nothing and ``unit`` computes the units in order.
        Workers ignore Ctrl-C; the main process stops them and keeps the finished units.
        A unit computes the same numbers in a worker as in order: its torch thread count is
        fixed (:data:`UNIT_THREADS`) whatever ``workers`` is, so float reductions split alike.
        """
        if self.workers <= 1:
            return
        todo, problems = [], []
        for j in jobs:
            if self._unit_path(j[0], j[2]) in self._fresh:
                continue
            if not self.force:
                found: list[str] = []
                if self._load_unit(j[0], j[2], check, warn=False, problem=found) is not None:
                    continue
                problems += [f"cache file {self._unit_path(j[0], j[2])} {p}; recomputing it"
                             for p in found]
            todo.append(j)
        if len(todo) < 2:
            return  # unit() computes it (and warns about a bad cache file itself)
        for msg in problems:
            self.warn(msg)
        import multiprocessing

        threads = UNIT_THREADS
        pool = multiprocessing.get_context("spawn").Pool(
            min(self.workers, len(todo)), initializer=_worker_init, initargs=(threads,)
        )
        try:
            if self.on_unit:
                for key, _, _ in todo:
                    self.on_unit(key, "queued")
            args_of = {key: args for key, _, args in todo}
            for key, result in pool.imap_unordered(_run_job, todo):
                self._store_unit(key, args_of[key], result)
                self.units_computed += 1
                self._fresh.add(self._unit_path(key, args_of[key]))
        finally:
            pool.terminate()
            pool.join()

    def unit(
        self, key: str, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...] = (),
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        """``fn(*args)`` computed once, cached in ``cache/units/<part>/``.

        Long parts (the training runs) are split into units (one activation and seed each),
        so an interrupted part resumes from its last finished unit. The file name is ``key``
        plus a digest of ``args`` (arrays by content), so a unit is reused exactly when its
        inputs are the same, even if the part's other code (claims, plots) changed. Fresh and
        cached results are both returned after a JSON round trip, so they are identical. A cached
        file is used only if it passes :meth:`_load_unit` (its stamp and ``check``); otherwise
        it is recomputed with a warning. The unit runs with :data:`UNIT_THREADS` torch threads,
        as it would in a ``--workers`` process.
        """
        path = self._unit_path(key, args)
        if path in self._fresh:  # just computed by prefetch (also under --force)
            fresh = self._load_unit(key, args, None)
            if fresh is not None:
                return fresh
        if not self.force:
            cached = self._load_unit(key, args, check)
            if cached is not None:
                self.units_cached += 1
                if self.on_unit:
                    self.on_unit(key, "cached")
                return cached
        if self.on_unit:
            self.on_unit(key, "start")
        with _torch_threads(UNIT_THREADS):
            result = fn(*args)
        self._store_unit(key, args, result)
        self.units_computed += 1
        return dict(json.loads(json.dumps(to_jsonable(result))))


def _digest(args: tuple[Any, ...]) -> str:
    """Short content hash of unit arguments (arrays by dtype, shape and bytes)."""
    import numpy as np

    h = hashlib.sha256()
    for a in args:
        if isinstance(a, np.ndarray):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(json.dumps(to_jsonable(a), sort_keys=True, default=repr).encode())
        h.update(b"|")
    return h.hexdigest()[:12]


#: torch threads of every cached unit, in order or in a --workers process: the same split of
#: float reductions, so ``--workers 1`` and ``--workers N`` give identical numbers
UNIT_THREADS = 1


class _torch_threads:
    """Run a block with ``n`` torch threads (restored afterwards)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.old: int | None = None

    def __enter__(self) -> None:
        import torch

        self.old = torch.get_num_threads()
        if self.old != self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self.old is not None and torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


def _worker_init(threads: int) -> None:
    """Start-up of a prefetch process: Ctrl-C is the main process's to handle."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def _run_job(job: tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    key, fn, args = job
    return key, fn(*args)


@dataclass
class Part:
    name: str
    title: str
    fn: Callable[[Context], dict[str, Any]]
    quick_seconds: float
    full_seconds: float
    full_seconds_by_data: dict[str, float] = field(default_factory=dict)  # e.g. {"cifar10": ...}

    def expected(self, quick: bool, data: str = "digits") -> float:
        return self.quick_seconds if quick else self.full_seconds_by_data.get(data, self.full_seconds)

    def settings(self, ctx: Context) -> dict[str, Any]:
        import inspect

        code = hashlib.sha256(inspect.getsource(self.fn).encode()).hexdigest()[:12]
        return {
            "part": self.name,
            "quick": ctx.quick,
            "seed": ctx.seed,
            "data": ctx.data,
            "data_dir": ctx.data_dir,
            "code": code,
        }


PARTS: dict[str, Part] = {}
REPRODUCTIONS: dict[str, list[str]] = {"fig1": [], "fig2": [], "theorems": [], "liu-hui": []}


def register(
    reproduction: str, name: str, title: str, quick_seconds: float, full_seconds: float,
    full_seconds_by_data: dict[str, float] | None = None,
) -> Callable[[Callable[[Context], dict[str, Any]]], Callable[[Context], dict[str, Any]]]:
    """Decorator adding a part to a reproduction (parts run in registration order).

    The expected times are for 2 CPU cores; ``full_seconds_by_data`` overrides ``full_seconds``
    for the real-data parts when ``--data`` is not the default digits.
    """

    def deco(fn: Callable[[Context], dict[str, Any]]) -> Callable[[Context], dict[str, Any]]:
        PARTS[name] = Part(name, title, fn, quick_seconds, full_seconds, dict(full_seconds_by_data or {}))
        REPRODUCTIONS.setdefault(reproduction, []).append(name)
        return fn

    return deco


def part_names(name: str, skip: Sequence[str] = ()) -> list[str]:
    """The parts of reproduction ``name`` (a reproduction, ``all``, or a single part's name),
    without those in ``skip``."""
    if name == "all":
        names = [p for r in REPRODUCTIONS.values() for p in r]
    elif name in REPRODUCTIONS:
        names = list(REPRODUCTIONS[name])
    elif name in PARTS:
        names = [name]
    else:
        raise ActspecError(
            f"unknown reproduction {name!r}; choose one of {', '.join([*REPRODUCTIONS, 'all'])} "
            f"or a single part ({', '.join(PARTS)})"
        )
    for s in skip:
        if s not in PARTS:
            raise ActspecError(f"unknown part {s!r} in --skip; parts are {', '.join(PARTS)}")
    names = [p for p in names if p not in set(skip)]
    if not names:
        raise ActspecError(f"--skip leaves no part of {name!r} to run; skip fewer parts")
    return names


def expected_seconds(name: str, quick: bool, skip: Sequence[str] = (), data: str = "digits") -> float:
    """Expected wall time of the parts on 2 CPU cores with one worker (measured runs; CIFAR-10
    from FLOP counts). ``--workers`` shortens the training parts on machines with more cores."""
    return sum(PARTS[p].expected(quick, data) for p in part_names(name, skip))


#: seconds of :func:`speed_probe` (best of 3) on the shared 2-core machine whose runs give the
#: parts' expected times, measured under its usual load (load average ~10)
REFERENCE_PROBE_SECONDS = 0.1


def speed_probe() -> float:
    """Seconds (best of 3) of a small piece of what the parts do: five float64 one-thread
    steps of a width-20000 tanh layer on 50 points (matmuls and elementwise passes). About
    0.3-0.5 s; a longer, representative probe is steadier on a loaded machine than a single
    matmul (a 512^3 product measured 7 to 196 GFLOP/s here within minutes)."""
    import torch

    with _torch_threads(1):
        g = torch.Generator().manual_seed(0)
        X = torch.randn(50, 10, dtype=torch.float64, generator=g)
        W = torch.randn(10, 20000, dtype=torch.float64, generator=g)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(5):
                P = torch.tanh(X @ W)
                (P * (1.0 - P * P)) @ W.T
            best = min(best, time.perf_counter() - t0)
    return best


def calibrated_seconds(
    name: str, quick: bool, skip: Sequence[str] = (), data: str = "digits", device: str = "cpu",
    *, probe: Callable[[], float] | None = None,
) -> tuple[float, str]:
    """(expected seconds on this machine, how the number was obtained).

    The parts' times were measured on the shared 2-core reference machine; ``probe()``
    (seconds of a fixed small workload, default :func:`speed_probe`) against
    :data:`REFERENCE_PROBE_SECONDS` scales them to this machine and its current load. Good to
    about 2x; where no probe applies (``--device cuda``) or it fails, the reference time is
    returned and called a guess.
    """
    base = expected_seconds(name, quick, skip, data)
    if str(device) != "cpu":
        return base, (f"a guess: times of the 2-core CPU reference machine; the networks run on "
                      f"{device}, which the estimate does not model")
    try:
        secs = float((probe or speed_probe)())
    except Exception as exc:  # noqa: BLE001  (a failed probe must not stop the run)
        return base, f"a guess: the speed probe failed ({type(exc).__name__}); reference-machine times"
    if not (secs > 0 and math.isfinite(secs)):
        return base, "a guess: the speed probe gave no time; reference-machine times"
    scale = secs / REFERENCE_PROBE_SECONDS
    return base * scale, (f"calibrated on this machine: a speed probe took {secs:.3g} s against "
                          f"{REFERENCE_PROBE_SECONDS:g} s on the 2-core reference machine "
                          f"(x{scale:.2g}); good to about 2x")


def _cache_key(ctx: Context, part: Part) -> str:
    return hashlib.sha256(json.dumps(part.settings(ctx), sort_keys=True).encode()).hexdigest()[:16]


def _cache_file(ctx: Context, part: Part) -> Path:
    return ctx.out / "cache" / f"{part.name}-{_cache_key(ctx, part)}.json"


def _part_stamp(ctx: Context, part: Part) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "part": part.name, "key": _cache_key(ctx, part),
            "settings": part.settings(ctx)}


def load_part_cache(ctx: Context, part: Part) -> tuple[dict[str, Any] | None, str | None]:
    """The cached result of ``part``, or (None, what is wrong with its file) (None, None: none).

    A cache file is trusted only when it is readable JSON, carries this part's stamp (name,
    the key of its settings and code, the settings themselves), has a title, a non-empty list
    of well-formed claim rows, and its figures exist in the output directory.
    """
    path = _cache_file(ctx, part)
    if not path.exists():
        return None, None
    data, problem = _read_json(path)
    if problem is not None:
        return None, problem
    if not isinstance(data, dict):
        return None, "is not a part cache (not a JSON object)"
    stamp = data.get("_cache")
    if not isinstance(stamp, dict):
        return None, "has no cache stamp (empty, from an older actspec, or not a part cache)"
    if stamp.get("part") != part.name:
        return None, f"belongs to part {stamp.get('part')!r}, not {part.name!r}"
    if stamp != _part_stamp(ctx, part):
        return None, "was computed with other settings or code (its key does not match)"
    if not isinstance(data.get("title"), str):
        return None, "has no title"
    problem = _check_claims(data.get("claims"))
    if problem is not None:
        return None, problem
    figures = data.get("figures", [])
    if not isinstance(figures, list) or not all(isinstance(f, str) for f in figures):
        return None, "has a malformed figure list"
    missing = [f for f in figures if not (ctx.out / f).is_file()]
    if missing:
        return None, f"lists figure {missing[0]} which is missing from {ctx.out}"
    return {k: v for k, v in data.items() if k != "_cache"}, None


def check_reproduction_inputs(
    out: str | Path, *, seed: int = 0, data: str = "digits", data_dir: str | None = None,
    device: str = "cpu", workers: int = 1,
) -> Path:
    """Validate the output directory, seed, data source, device and workers before any part starts."""
    from ...core.devices import check_device
    from ...data.datasets import check_source

    check_device(device)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ActspecError(
            f"--workers must be a positive integer (processes for the training units), got {workers!r}"
        )
    out_dir = check_output_dir(out, "--out")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ActspecError(f"--seed must be a non-negative integer, got {seed!r}")
    check_source(data, data_dir=data_dir)
    return out_dir


def run_reproduction(
    name: str,
    out: str | Path,
    *,
    quick: bool = True,
    seed: int = 0,
    data: str = "digits",
    data_dir: str | None = None,
    force: bool = False,
    device: str = "cpu",
    skip: Sequence[str] = (),
    workers: int = 1,
    on_part: Callable[[str, str, int, int], None] | None = None,
    on_unit: Callable[[str, str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or load from cache) every part of ``name``; write report.json/.md/.html into ``out``.

    ``on_part(part_name, state, index, total)`` is called with state "start", "cached" or "done";
    ``on_unit(key, state)`` likewise for the cached units inside long parts. ``device`` runs the
    finite-width networks on ``cpu``, ``cuda`` or ``auto``; ``skip`` leaves parts out.
    ``workers`` processes compute the training units in parallel (see ``Context.prefetch``);
    the numbers do not depend on ``workers``. ``on_warning(message)`` receives the cache files
    that cannot be trusted (they are recomputed); default: ``warnings.warn``.
    """
    names = part_names(name, skip)
    out_dir = check_reproduction_inputs(
        out, seed=seed, data=data, data_dir=data_dir, device=device, workers=workers
    )
    (out_dir / "cache").mkdir(parents=True, exist_ok=True)
    ctx = Context(out_dir, quick=quick, seed=seed, data=data, data_dir=data_dir, device=device,
                  force=force, on_unit=on_unit, workers=workers, on_warning=on_warning)
    parts: dict[str, Any] = {}
    for k, pname in enumerate(names):
        part = PARTS[pname]
        cache = _cache_file(ctx, part)
        ctx.part_key, ctx.part_name = cache.stem, part.name
        if not force:
            cached, problem = load_part_cache(ctx, part)
            if cached is not None:
                parts[pname] = cached
                if on_part:
                    on_part(pname, "cached", k, len(names))
                continue
            if problem is not None:
                ctx.warn(f"cache file {cache} {problem}; recomputing part {pname}")
        if on_part:
            on_part(pname, "start", k, len(names))
        t0 = time.perf_counter()
        ctx.units_computed = ctx.units_cached = 0
        result = part.fn(ctx)
        result = {"title": part.title, "seconds": round(time.perf_counter() - t0, 2), **result}
        if ctx.units_computed or ctx.units_cached:  # the seconds cover only the computed units
            result["units"] = {"computed": ctx.units_computed, "cached": ctx.units_cached}
        # atomic: an interrupted part leaves no cache entry; the stamp is the key of its inputs
        write_json(cache, {"_cache": _part_stamp(ctx, part), **result})
        parts[pname] = json.loads(json.dumps(to_jsonable(result)))
        if on_part:
            on_part(pname, "done", k, len(names))
    claims = []
    for p, r in parts.items():
        for c in r.get("claims", []):
            row = {"part": p, "tests": "", "reason": None, **c}
            if row["status"] != HOLDS and not row["reason"]:
                row["reason"] = NO_REASON
            claims.append(row)
    summary = {s: sum(c["status"] == s for c in claims) for s in (HOLDS, FAILS, INCONCLUSIVE)}
    report = {
        "reproduction": name,
        "settings": {"quick": quick, "seed": seed, "data": data, "device": device,
                     "workers": workers,
                     "skipped": [p for p in part_names(name) if p not in names]},
        "notes": [
            f"Training units run with {UNIT_THREADS} torch thread each, in order or in --workers "
            "processes, so the numbers do not depend on --workers.",
            "Values below their error bar (float64 resolution n·eps·λ_max unless a part says "
            "otherwise) are shown as '< bar' and no claim is judged on them.",
        ],
        "summary": summary,
        "claims": claims,
        "parts": parts,
        "meta": run_metadata(),
    }
    write_json(out_dir / "report.json", report)
    _write_markdown(out_dir / "report.md", report)
    _write_html(out_dir / "report.html", report)
    return report


# ---------------------------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _write_markdown(path: Path, report: dict[str, Any]) -> None:
    s = report["summary"]
    lines = [
        f"# actspec reproduction: {report['reproduction']}",
        "",
        f"Settings: {_fmt(report['settings'])}. actspec {report['meta']['actspec']}, "
        f"git {report['meta'].get('git_revision')}.",
        "",
        f"**{s[HOLDS]} claims hold, {s[FAILS]} do not hold, {s[INCONCLUSIVE]} inconclusive.**",
        "",
    ]
    lines += [f"- {note}" for note in report.get("notes", [])]
    lines += [
        "",
        "| part | claim | what it tests | setting | predicted | measured | status | why (if not holds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        cells = (c["part"], c["claim"], c.get("tests", ""), c["setting"], _fmt(c["predicted"]),
                 _fmt(c["measured"]), f"**{c['status']}**", c.get("reason") or "")
        lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    for pname, r in report["parts"].items():
        units = r.get("units")
        cached = units["cached"] if units else 0
        loaded = f"; {cached} training units loaded from the cache" if cached else ""
        lines += ["", f"## {r.get('title', pname)}", "", f"({r.get('seconds', 0)} s{loaded})", ""]
        for note in r.get("notes", []):
            lines.append(f"- {note}")
        for figure in r.get("figures", []):
            lines += ["", f"![{figure}]({figure})"]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _write_html(path: Path, report: dict[str, Any]) -> None:
    out_dir = path.parent
    e = html.escape
    rows = "".join(
        f"<tr class='{c['status'].replace(' ', '-')}'><td>{e(c['part'])}</td><td>{e(c['claim'])}</td>"
        f"<td>{e(c.get('tests', ''))}</td>"
        f"<td>{e(c['setting'])}</td><td>{e(_fmt(c['predicted']))}</td><td>{e(_fmt(c['measured']))}</td>"
        f"<td><b>{e(c['status'])}</b></td><td>{e(c.get('reason') or '')}</td></tr>"
        for c in report["claims"]
    )
    sections = []
    for pname, r in report["parts"].items():
        imgs = []
        for figure in r.get("figures", []):
            f = out_dir / figure
            if f.exists():
                b64 = base64.b64encode(f.read_bytes()).decode()
                cap = f"<figcaption>{e(figure)}</figcaption>"
                imgs.append(f"<figure><img src='data:image/png;base64,{b64}'>{cap}</figure>")
        notes = "".join(f"<li>{e(n)}</li>" for n in r.get("notes", []))
        sections.append(f"<h2>{e(r.get('title', pname))}</h2><ul>{notes}</ul>{''.join(imgs)}")
    s = report["summary"]
    title = e(report["reproduction"])
    style = (
        "body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;font-size:13px}tr.holds td:nth-child(7){color:#070}"
        "tr.does-not-hold td:nth-child(7){color:#a00}tr.inconclusive td:nth-child(7){color:#a70}"
        "img{max-width:100%}"
    )
    cols = ("part", "claim", "what it tests", "setting", "predicted", "measured", "status",
            "why (if not holds)")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    notes = "".join(f"<li>{e(n)}</li>" for n in report.get("notes", []))
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>actspec: {title}</title>"
        f"<style>{style}</style></head><body><h1>actspec reproduction: {title}</h1>"
        f"<p>{s[HOLDS]} claims hold, {s[FAILS]} do not hold, {s[INCONCLUSIVE]} inconclusive.</p>"
        f"<ul>{notes}</ul><table>{head}{rows}</table>{''.join(sections)}</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(doc)
