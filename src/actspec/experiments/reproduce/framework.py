"""Reproductions of the activation paper's experiments and theorems, and the Liu & Hui claims.

A reproduction is a list of *parts*; each part computes numbers, writes figures into the output
directory, and states claims as rows ``{claim, setting, predicted, measured, status}`` with
status ``"holds"``, ``"does not hold"`` or ``"inconclusive"``. Finished parts are cached in
``DIR/cache/`` (keyed by the part's settings), so an interrupted or repeated run recomputes
nothing that is done. ``DIR/report.json`` holds every number, ``DIR/report.md`` and the
self-contained ``DIR/report.html`` show the claims with the figures.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import ActspecError
from ...core.io import atomic_path, check_output_dir, run_metadata, to_jsonable, write_json

__all__ = ["PARTS", "REPRODUCTIONS", "Context", "run_reproduction", "claim", "register"]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


def claim(
    text: str, setting: str, predicted: Any, measured: Any, status: str | bool | None
) -> dict[str, Any]:
    """One claim row; ``status`` True/False/None map to holds / does not hold / inconclusive."""
    if isinstance(status, bool) or status is None:
        status = {True: HOLDS, False: FAILS, None: INCONCLUSIVE}[status]
    return {"claim": text, "setting": setting, "predicted": predicted, "measured": measured, "status": status}


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
    _fresh: set[Path] = field(default_factory=set)  # unit files written by prefetch in this run
    units_computed: int = 0  # units of the running part computed in this run (counters, reset
    units_cached: int = 0  # per part by run_reproduction) and loaded from the cache

    def fig(self, name: str) -> Path:
        return self.out / name

    def _unit_path(self, key: str, args: tuple[Any, ...] = ()) -> Path:
        name = f"{key}-{_digest(args)}" if args else key
        return self.out / "cache" / "units" / (self.part_name or self.part_key) / f"{name}.json"

    def _store_unit(self, key: str, args: tuple[Any, ...], result: dict[str, Any]) -> None:
        path = self._unit_path(key, args)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)  # atomic: an interrupted unit leaves nothing behind
        if self.on_unit:
            self.on_unit(key, "done")

    def prefetch(self, jobs: Sequence[tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...]]]) -> None:
        """Compute the uncached units among ``jobs`` = ``(key, fn, args)`` in parallel.

        With ``workers`` > 1 the missing units run in that many spawned processes, each with
        ``cores // workers`` torch threads (one-thread processes beat one two-thread process on
        the memory-bound training steps), and each is cached as it finishes; the part's later
        ``unit(key, ...)`` calls then load them. ``fn`` must be a module-level function (it is
        pickled). With one worker this does nothing and ``unit`` computes the units in order.
        Workers ignore Ctrl-C; the main process stops them and keeps the finished units.
        """
        todo = [
            j for j in jobs
            if self._unit_path(j[0], j[2]) not in self._fresh
            and (self.force or not self._unit_path(j[0], j[2]).exists())
        ]
        if self.workers <= 1 or len(todo) < 2:
            return
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // self.workers)
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
        self, key: str, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """``fn(*args)`` computed once, cached in ``cache/units/<part>/``.

        Long parts (the training runs) are split into units (one activation and seed each),
        so an interrupted part resumes from its last finished unit. The file name is ``key``
        plus a digest of ``args`` (arrays by content), so a unit is reused exactly when its
        inputs are the same, even if the part's other code (claims, plots) changed. Fresh and
        cached results are both returned after a JSON round trip, so they are identical.
        """
        path = self._unit_path(key, args)
        if path in self._fresh:  # just computed by prefetch (also under --force)
            return dict(json.loads(path.read_text()))
        if path.exists() and not self.force:
            self.units_cached += 1
            if self.on_unit:
                self.on_unit(key, "cached")
            return dict(json.loads(path.read_text()))
        if self.on_unit:
            self.on_unit(key, "start")
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


def _cache_file(ctx: Context, part: Part) -> Path:
    key = hashlib.sha256(json.dumps(part.settings(ctx), sort_keys=True).encode()).hexdigest()[:16]
    return ctx.out / "cache" / f"{part.name}-{key}.json"


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
) -> dict[str, Any]:
    """Run (or load from cache) every part of ``name``; write report.json/.md/.html into ``out``.

    ``on_part(part_name, state, index, total)`` is called with state "start", "cached" or "done";
    ``on_unit(key, state)`` likewise for the cached units inside long parts. ``device`` runs the
    finite-width networks on ``cpu``, ``cuda`` or ``auto``; ``skip`` leaves parts out.
    ``workers`` processes compute the training units in parallel (see ``Context.prefetch``).
    """
    names = part_names(name, skip)
    out_dir = check_reproduction_inputs(
        out, seed=seed, data=data, data_dir=data_dir, device=device, workers=workers
    )
    (out_dir / "cache").mkdir(parents=True, exist_ok=True)
    ctx = Context(out_dir, quick=quick, seed=seed, data=data, data_dir=data_dir, device=device,
                  force=force, on_unit=on_unit, workers=workers)
    parts: dict[str, Any] = {}
    for k, pname in enumerate(names):
        part = PARTS[pname]
        cache = _cache_file(ctx, part)
        ctx.part_key, ctx.part_name = cache.stem, part.name
        if cache.exists() and not force:
            parts[pname] = json.loads(cache.read_text())
            if on_part:
                on_part(pname, "cached", k, len(names))
            continue
        if on_part:
            on_part(pname, "start", k, len(names))
        t0 = time.perf_counter()
        ctx.units_computed = ctx.units_cached = 0
        result = part.fn(ctx)
        result = {"title": part.title, "seconds": round(time.perf_counter() - t0, 2), **result}
        if ctx.units_computed or ctx.units_cached:  # the seconds cover only the computed units
            result["units"] = {"computed": ctx.units_computed, "cached": ctx.units_cached}
        write_json(cache, result)  # atomic: an interrupted part leaves no cache entry
        parts[pname] = json.loads(json.dumps(to_jsonable(result)))
        if on_part:
            on_part(pname, "done", k, len(names))
    claims = [dict(c, part=p) for p, r in parts.items() for c in r.get("claims", [])]
    summary = {s: sum(c["status"] == s for c in claims) for s in (HOLDS, FAILS, INCONCLUSIVE)}
    report = {
        "reproduction": name,
        "settings": {"quick": quick, "seed": seed, "data": data, "device": device,
                     "skipped": [p for p in part_names(name) if p not in names]},
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
        "| part | claim | setting | predicted | measured | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        lines.append(
            f"| {c['part']} | {c['claim']} | {c['setting']} | {_fmt(c['predicted'])} | "
            f"{_fmt(c['measured'])} | **{c['status']}** |"
        )
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
        f"<td>{e(c['setting'])}</td><td>{e(_fmt(c['predicted']))}</td><td>{e(_fmt(c['measured']))}</td>"
        f"<td><b>{e(c['status'])}</b></td></tr>"
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
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;font-size:13px}tr.holds td:last-child{color:#070}"
        "tr.does-not-hold td:last-child{color:#a00}tr.inconclusive td:last-child{color:#a70}"
        "img{max-width:100%}"
    )
    cols = ("part", "claim", "setting", "predicted", "measured", "status")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>actspec: {title}</title>"
        f"<style>{style}</style></head><body><h1>actspec reproduction: {title}</h1>"
        f"<p>{s[HOLDS]} claims hold, {s[FAILS]} do not hold, {s[INCONCLUSIVE]} inconclusive.</p>"
        f"<table>{head}{rows}</table>{''.join(sections)}</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(doc)
