"""G∞ of every built-in against one X Xᵀ (issue 20 item 2), optionally against an older actspec.

    python benchmarks/bench_ginf.py [--n 4000 8000] [--d 3072] [--train hidden] [--repeats 2]
                                    [--baseline-src /path/to/old/src] [--json /tmp/bench_ginf.json]

On random unit-norm rows X (n x d, float64) it times, best of ``--repeats`` after a warm-up:

* ``XXt``: numpy's ``X @ X.T`` (OpenBLAS dsyrk plus numpy's copy of the triangle), timed right
  before every activation, and the activation's ratio is to that adjacent measurement (the
  machine is shared: adjacent measurements see the same load);
* ``syrk``: scipy's ``dsyrk`` (the triangle only) and ``GEMM``: a full ``X @ Y.T`` with Y a copy of
  X (no symmetry used), at the start and the end of each n;
* ``gram(X, act, train=...)`` for all built-ins, in a persistent worker process (so that each
  measurement has its own peak RSS: VmHWM, reset through /proc/self/clear_refs), and with
  ``--baseline-src`` the same in a second worker that imports actspec from that source tree,
  timed right after (before/after in the same conditions).

Each row records the 1-minute load average. Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _proc import reset_peak, status_kib  # benchmarks/_proc.py (scripts run from benchmarks/)

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "tanh", "sigmoid",
               "erf", "linear", "quadratic", "cubic", "abs")
WORKER_FLAG = "--_ginf-worker"
GIB = 2.0**30


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def best_of(fn: Any, repeats: int, cpu: list[float] | None = None) -> float:
    """Best wall time of ``repeats`` calls; with ``cpu`` (a list), append the process CPU time
    (all threads) of that best call: on a shared machine CPU seconds move much less with the
    load than wall seconds."""
    best, best_cpu = math.inf, math.nan
    for _ in range(repeats):
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t0
        if t < best:
            best, best_cpu = t, time.process_time() - c0
        del out
    if cpu is not None:
        cpu.append(best_cpu)
    return best


def worker() -> None:
    """Persistent worker: reads 'X_PATH' once, then one JSON job a line, answers a JSON line."""
    import actspec

    X = None
    for line in sys.stdin:
        job = json.loads(line)
        if "X" in job:
            X = np.load(job["X"])
            print(json.dumps({"ok": True, "actspec": actspec.__file__}), flush=True)
            continue
        assert X is not None
        act, train, repeats = job["act"], job["train"], job["repeats"]
        t0 = time.perf_counter()
        actspec.gram(X, act, train=train)  # warm-up: tables, thread pools
        first = time.perf_counter() - t0
        gc.collect()
        reset = reset_peak()
        rss0 = (status_kib("VmRSS") or 0) * 1024
        cpu: list[float] = []
        t = best_of(lambda X=X, act=act, train=train: actspec.gram(X, act, train=train), repeats,
                    cpu)
        hwm = (status_kib("VmHWM") or 0) * 1024 if reset else float("nan")
        print(json.dumps({"s": t, "cpu_s": cpu[0], "first_s": first, "peak_rss_gib": hwm / GIB,
                          "above_gib": (hwm - rss0) / GIB}), flush=True)


class Worker:
    def __init__(self, src: str | None, X_path: str) -> None:
        env = dict(os.environ)
        if src:
            env["PYTHONPATH"] = str(Path(src).resolve())
        self.proc = subprocess.Popen([sys.executable, __file__, WORKER_FLAG], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.ask({"X": X_path})

    def ask(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker died")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_n(n: int, args: argparse.Namespace, tmp: str, result: dict[str, Any]) -> None:
    from scipy.linalg.blas import dsyrk

    X = np.random.default_rng(args.seed).standard_normal((n, args.d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = X.copy()
    X_path = str(Path(tmp, "X.npy"))
    np.save(X_path, X)
    workers = {"this": Worker(None, X_path)}
    if args.baseline_src:
        workers["baseline"] = Worker(args.baseline_src, X_path)

    def context(when: str) -> dict[str, Any]:
        ctx = {"n": n, "when": when, "load1": _load1(),
               "xxt_s": best_of(lambda: X @ X.T, 2),
               "syrk_s": best_of(lambda: dsyrk(1.0, X.T, trans=1, lower=1), 2),
               "gemm_s": best_of(lambda: X @ Y.T, 2)}
        print(f"n={n} {when}: X@X.T {ctx['xxt_s']:.3f} s, dsyrk {ctx['syrk_s']:.3f} s, "
              f"GEMM X@Y.T {ctx['gemm_s']:.3f} s (load {ctx['load1']:.2f})", flush=True)
        return ctx

    ctx0 = context("start")
    result["context"].append(ctx0)
    for act in args.acts:
        cpu: list[float] = []
        xxt = best_of(lambda: X @ X.T, 2, cpu)
        row: dict[str, Any] = {"n": n, "act": act, "train": args.train, "xxt_s": xxt,
                               "xxt_cpu_s": cpu[0], "load1": _load1()}
        for name, w in workers.items():
            r = w.ask({"act": act, "train": args.train, "repeats": args.repeats})
            row[name] = r
            row[f"{name}_over_xxt"] = r["s"] / xxt
            row[f"{name}_cpu_over_xxt"] = r["cpu_s"] / cpu[0]
        row["load1_after"] = _load1()
        result["rows"].append(row)
        msg = " ".join(f"{k} {row[k]['s']:.3f} s ({row[k + '_over_xxt']:.2f}x, "
                       f"{row[k]['peak_rss_gib']:.2f} GiB)" for k in workers)
        print(f"n={n} {act:<10} X@X.T {xxt:.3f} s | {msg} | load {row['load1']:.2f}", flush=True)
    ctx1 = context("end")
    result["context"].append(ctx1)
    syrk = min(ctx0["syrk_s"], ctx1["syrk_s"])
    gemm = min(ctx0["gemm_s"], ctx1["gemm_s"])
    for row in result["rows"]:
        if row["n"] == n:
            for k in workers:
                row[f"{k}_over_syrk"] = row[k]["s"] / syrk
                row[f"{k}_over_gemm"] = row[k]["s"] / gemm
    for w in workers.values():
        w.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[4000, 8000])
    p.add_argument("--d", type=int, default=3072)
    p.add_argument("--train", default="hidden", choices=["hidden", "both", "output"])
    p.add_argument("--acts", nargs="+", default=list(ACTIVATIONS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--baseline-src", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    result: dict[str, Any] = {"args": vars(args), "rows": [], "context": []}
    tmp = tempfile.mkdtemp(prefix="bench_ginf_")
    try:
        for n in args.n:
            run_n(n, args, tmp, result)
    finally:
        for f in Path(tmp).glob("*"):
            f.unlink()
        os.rmdir(tmp)

    keys = ["this"] + (["baseline"] if args.baseline_src else [])
    print(f"\nG∞ ({args.train}) / adjacent X@X.T (wall, and CPU seconds), / best dsyrk, / best full "
          "GEMM; peak RSS")
    head = f"{'act':<10} {'n':>6} " + " ".join(
        f"{k + ' s':>12} {'/XXt':>5} {'cpu':>5} {'/syrk':>5} {'/GEMM':>5} {'GiB':>5}" for k in keys) + " load"
    print(head)
    for row in result["rows"]:
        cells = " ".join(f"{row[k]['s']:>12.3f} {row[k + '_over_xxt']:>5.2f} "
                         f"{row[k + '_cpu_over_xxt']:>5.2f} {row[k + '_over_syrk']:>5.2f} "
                         f"{row[k + '_over_gemm']:>5.2f} {row[k]['peak_rss_gib']:>5.2f}" for k in keys)
        print(f"{row['act']:<10} {row['n']:>6} {cells} {max(row['load1'], row['load1_after']):.1f}")
    for k in keys:
        for n in args.n:
            worst = max(r[f"{k}_over_xxt"] for r in result["rows"] if r["n"] == n)
            worst_cpu = max(r[f"{k}_cpu_over_xxt"] for r in result["rows"] if r["n"] == n)
            print(f"{k}: worst G∞/XXt at n={n}: {worst:.2f} wall, {worst_cpu:.2f} CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == WORKER_FLAG:
        worker()
    else:
        sys.exit(main())
