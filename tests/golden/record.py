"""Record (or check) the golden outputs of ``cases.py`` into ``expected/<name>.json``.

    python tests/golden/record.py                 # record every case
    python tests/golden/record.py --check         # compare with expected/, exit 1 on a difference
    python tests/golden/record.py --only NAME ... # just these cases

Each case runs in a subprocess (``sys.executable -m actspec ...``) in its own fresh temporary
working directory, so it runs whichever ``actspec`` that interpreter imports. The expected files
were recorded from the baseline commit 95a09e7:

    git worktree add /tmp/golden-base 95a09e7
    PYTHONPATH=/tmp/golden-base/src python tests/golden/record.py

What is pinned per case: every JSON output with every key named ``meta`` removed at any depth
(run metadata: versions, git revision), the contents of ``.npy`` outputs (exact float64 values),
and the sorted list of files the case leaves in its working directory. Floats are written by
``json`` as their shortest round-trip repr: nothing is rounded.

Stripped besides ``meta`` (only where a case says so in ``cases.py``), because they are wall-clock
values or the checkout's git revision, which differ on every run and every commit:
  * ``reproduce``: each part's ``seconds`` (its run time, always recorded);
  * ``sweep``: the summary's ``seconds``, ``startup_seconds``, ``tasks_per_minute``;
  * ``analyze --precision high``: ``spectrum.seconds`` (the extended-precision solver's times,
    written although analyze has no ``--timings``: a baseline bug);
  * ``reproduce``'s cache file names: their hash covers the source text of each part's function
    (any edit of a part, even a move, invalidates its cache by design), shown as ``<key>``;
  * ``results`` rows: ``seconds``, ``started``, ``finished`` (task times), ``worker`` (host:pid of
    the Dask worker) and ``git_revision`` (a column outside ``meta``).
Everything else was checked to be deterministic by recording twice (``--check`` right after
recording) and by running the in-process test twice.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
ALWAYS_STRIP = frozenset({"meta"})


def load_cases() -> Any:
    """The ``cases`` module, loaded by path (``tests`` is not a package)."""
    name = "actspec_golden_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "cases.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def strip(obj: Any, keys: frozenset[str]) -> Any:
    """``obj`` without the keys in ``keys`` (and ``meta``), at any depth."""
    drop = ALWAYS_STRIP | keys
    if isinstance(obj, dict):
        return {k: strip(v, keys) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [strip(v, keys) for v in obj]
    return obj


# reproduce names its cache entries DIR/cache/<part>-<key>.json, where the key hashes the part's
# settings AND the source text of the part's function (so any edit of a part, even moving it to
# another module, recomputes it instead of loading a stale result): the key is replaced by <key>
_CACHE_NAME = re.compile(r"(^|/)cache/([A-Za-z0-9_.-]+?)-[0-9a-f]{16}\.json$")


def _files(workdir: Path) -> list[str]:
    names = (p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())
    return sorted(_CACHE_NAME.sub(r"\1cache/\2-<key>.json", n) for n in names)


def _array(path: Path) -> dict[str, Any]:
    import numpy as np

    a = np.load(path, allow_pickle=False)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tolist()}


def collect(case: Any, workdir: Path) -> dict[str, Any]:
    """What a finished CLI case left in ``workdir``, in the form stored in ``expected/``."""
    outputs: dict[str, Any] = {}
    for rel in case.outputs:
        p = workdir / rel
        if not p.is_file():
            outputs[rel] = None  # a missing output is a difference, not a crash of the checker
        elif rel.endswith(".npy"):
            outputs[rel] = _array(p)
        else:
            outputs[rel] = strip(json.loads(p.read_text(encoding="utf-8")), case.strip)
    return {"files": _files(workdir), "outputs": outputs}


def canonical(obj: Any) -> str:
    """The byte form compared and stored: sorted keys, strict JSON."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def expected_path(name: str) -> Path:
    return EXPECTED / f"{name}.json"


def differences(expected: Any, actual: Any, path: str = "$", limit: int = 8) -> list[str]:
    """The first ``limit`` differing places of two JSON values, as readable lines."""
    out: list[str] = []

    def short(v: Any) -> str:
        s = json.dumps(v, sort_keys=True, ensure_ascii=False)
        return s if len(s) <= 160 else s[:157] + "..."

    def walk(e: Any, a: Any, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(e, dict) and isinstance(a, dict):
            for k in sorted(set(e) | set(a)):
                if k not in a:
                    out.append(f"{p}.{k}: missing now (expected {short(e[k])})")
                elif k not in e:
                    out.append(f"{p}.{k}: new key (now {short(a[k])})")
                else:
                    walk(e[k], a[k], f"{p}.{k}")
                if len(out) >= limit:
                    return
        elif isinstance(e, list) and isinstance(a, list):
            if len(e) != len(a):
                out.append(f"{p}: length {len(e)} expected, {len(a)} now")
            for i, (x, y) in enumerate(zip(e, a, strict=False)):
                walk(x, y, f"{p}[{i}]")
                if len(out) >= limit:
                    return
        elif type(e) is not type(a) or e != a:
            out.append(f"{p}: expected {short(e)}, now {short(a)}")

    walk(expected, actual, path)
    return out


def report(name: str, expected_text: str, actual_text: str) -> str:
    """A failure message: the first differing keys, then the head of a unified diff."""
    lines = [f"golden case {name!r} differs from {expected_path(name)}:"]
    lines += ["  " + d for d in differences(json.loads(expected_text), json.loads(actual_text))]
    diff = list(difflib.unified_diff(expected_text.splitlines(), actual_text.splitlines(),
                                     "expected", "now", n=2, lineterm=""))
    lines += ["unified diff (head):", *diff[:40]]
    return "\n".join(lines)


# ---- running the cases in subprocesses ---------------------------------------------------------


def run_cli_case(case: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="actspec-golden-") as tmp:
        work = Path(tmp)
        for argv in case.steps:
            proc = subprocess.run([sys.executable, "-m", "actspec", *argv], cwd=work,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{case.name}: 'actspec {' '.join(argv)}' exited with status "
                                 f"{proc.returncode}:\n{proc.stderr}")
        return collect(case, work)


def run_api_case(case: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="actspec-golden-") as tmp:
        dest = Path(tmp) / "api.json"
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--api", case.name,
                               "--to", str(dest)], cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{case.name}: API case failed:\n{proc.stderr}")
        return json.loads(dest.read_text(encoding="utf-8"))


def api_result(case: Any) -> dict[str, Any]:
    """An API case's value, normalised like a JSON file (strict JSON round trip)."""
    return json.loads(json.dumps(case.fn(), allow_nan=False))


# ---- running the cases in forked children of a pristine process (fast; used by the test) --------
#
# Running the cases one after another in one process does NOT give the subprocess bytes: actspec
# keeps process-wide caches (dual-kernel tables, Hermite coefficients, ...) and a value computed
# from a cache that an earlier case filled can differ in the last bits (measured: up to 3e-7
# relative in reproduce's deep-tanh λ_min, 1 ulp in analyze and train). So every step runs in a
# child forked from a "forkserver" process that has imported actspec.cli and computed nothing:
# the same state as a fresh ``python -m actspec``, without paying the ~2 s import every time.


def _child(job: dict[str, Any]) -> None:
    """Runs in the forked child: one CLI step or one API case, output to job's log file."""
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if job["kind"] == "cli":
        from actspec.cli import run

        code = run(job["argv"])
    else:
        case = next(c for c in load_cases().API_CASES if c.name == job["name"])
        Path(job["to"]).write_text(canonical(api_result(case)), encoding="utf-8")
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class ForkRunner:
    """Runs the cases in fresh children of one forkserver that preloaded ``actspec.cli``."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["actspec.cli"])

    def _start(self, job: dict[str, Any], cwd: Path) -> None:
        import runpy

        # runpy by reference: the child needs no import path to this file (tests/ is no package)
        proc = self.ctx.Process(target=runpy.run_path, args=(str(Path(__file__).resolve()),),
                                kwargs={"init_globals": {"GOLDEN_JOB": job}, "run_name": "__golden_child__"})
        old = os.getcwd()
        os.chdir(cwd)  # the child starts in the parent's working directory
        try:
            proc.start()
        finally:
            os.chdir(old)
        proc.join()
        if proc.exitcode != 0:
            log = Path(job["log"])
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(no output)"
            what = f"actspec {' '.join(job['argv'])}" if job["kind"] == "cli" else job["name"]
            raise RuntimeError(f"{what} exited with status {proc.exitcode}:\n{text[-4000:]}")

    def cli(self, case: Any, work: Path, logs: Path) -> dict[str, Any]:
        for i, argv in enumerate(case.steps):
            self._start({"kind": "cli", "argv": list(argv), "log": str(logs / f"step{i}.log")}, work)
        return collect(case, work)

    def api(self, case: Any, logs: Path) -> dict[str, Any]:
        dest = logs / "api.json"
        self._start({"kind": "api", "name": case.name, "to": str(dest), "log": str(logs / "api.log")}, logs)
        return json.loads(dest.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with expected/ instead of writing")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases")
    ap.add_argument("--fork", action="store_true",
                    help="run the steps in children forked from one process that imported actspec "
                         "(what the test does; faster) instead of one fresh interpreter per step")
    ap.add_argument("--api", help=argparse.SUPPRESS)  # internal: run one API case here
    ap.add_argument("--to", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cases = load_cases()

    if args.api:
        case = next(c for c in cases.API_CASES if c.name == args.api)
        Path(args.to).write_text(canonical(api_result(case)), encoding="utf-8")
        return 0

    import actspec  # only to say which code is recorded

    print(f"actspec from {Path(actspec.__file__).parent}", file=sys.stderr)
    if args.fork:
        runner = ForkRunner()

        def run_cli(case: Any) -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="actspec-golden-") as tmp:
                (Path(tmp) / "work").mkdir()
                return runner.cli(case, Path(tmp) / "work", Path(tmp))

        def run_api(case: Any) -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="actspec-golden-") as tmp:
                return runner.api(case, Path(tmp))
    else:
        run_cli, run_api = run_cli_case, run_api_case
    todo = [(c, run_cli) for c in cases.CASES] + [(c, run_api) for c in cases.API_CASES]
    if args.only:
        unknown = set(args.only) - {c.name for c, _ in todo}
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
        todo = [(c, f) for c, f in todo if c.name in args.only]
    EXPECTED.mkdir(exist_ok=True)
    failed = 0
    t_all = time.perf_counter()
    for case, fn in todo:
        t0 = time.perf_counter()
        text = canonical(fn(case))
        dt = time.perf_counter() - t0
        path = expected_path(case.name)
        if args.check:
            old = path.read_text(encoding="utf-8") if path.exists() else None
            if old == text:
                print(f"ok       {case.name} ({dt:.1f} s)", file=sys.stderr)
            else:
                failed += 1
                msg = report(case.name, old, text) if old is not None else f"{path} does not exist"
                print(f"DIFFERS  {case.name}\n{msg}", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"recorded {case.name} ({dt:.1f} s)", file=sys.stderr)
    print(f"{len(todo)} case(s) in {time.perf_counter() - t_all:.1f} s"
          + (f"; {failed} differ" if args.check else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "__golden_child__":  # ForkRunner's child (runpy.run_path with GOLDEN_JOB)
    _child(GOLDEN_JOB)  # type: ignore[name-defined]  # noqa: F821
