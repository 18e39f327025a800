"""Benchmark of actspec.gram against this machine's matmul peak (issue 3, "Benchmarks").

    python benchmarks/bench_gram.py [--quick] [--json out.json] [--budget 180]

Measures, on random unit-norm rows X (n x d, d = 3072):

* the machine: float32 / float64 torch matmul GFLOP/s (square 4096 matmuls, best of a few),
  measured at the start and again at the end (the peak is the best of all of them);
* infinite width: the time of X X^T itself (numpy, float64: the first step of every G∞) and
  of G∞ = gram(X, act) for every built-in activation, with the ratio to the X X^T time
  (target <= 3x); the theta-tables are built before timing (their one-off build time is listed);
* finite width: gram(X, "relu", width=m) for m in {1e3, 1e4, 1e5} in float32 and float64,
  with achieved GFLOP/s counting 2 n m d (X W^T) + 2 n^2 m (D D^T) flops and the fraction of
  the matching matmul peak (target >= 60 %); combinations estimated to take longer than
  ``--budget`` seconds are skipped (listed as skipped). ``mode=seed`` draws W, a from the seed
  (the per-block float32 streams, drawn in parallel, are part of the time), ``mode=weights``
  passes pre-drawn weights (``bench_finite.py`` measures the peak right before every call and
  repeats: use it for the % of peak on a shared machine);
* ``--checkpoint``: each finite-width seed run again with ``checkpoint=PATH`` saved every
  quarter of its plain run time (``mode=checkpoint``): saves, seconds spent saving, file size,
  overhead relative to the plain run, peak memory;
* peak memory of each measurement: the process's peak resident set (VmHWM, reset before
  each measurement through /proc/self/clear_refs; ru_maxrss when that is unavailable), and
  the part above the resident set just before the call.

Nothing here is part of the test suite. Results vary with the load of the machine: the load
average is recorded with every row.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _proc import reset_peak, status_kib  # benchmarks/_proc.py (scripts run from benchmarks/)

import actspec
from actspec.core import inits as _inits
from actspec.core.inits import WEIGHT_BLOCK, init_scheme, sample_block, sample_weights
from actspec.finite.checkpoint import Checkpoint

ACTIVATIONS = [
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "softplus",
    "tanh",
    "sigmoid",
    "erf",
    "quadratic",
    "cubic",
    "linear",
]
D = 3072
GIB = 2.0**30
WEIGHTS_SCHEME = getattr(_inits, "WEIGHTS_SCHEME", "blocked-randn64-v1")  # older checkouts: v1


# ---------------------------------------------------------------------------------------------
# memory and machine
# ---------------------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of the process during a ``with`` block (bytes)."""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.reset = reset_peak()
        rss = status_kib("VmRSS")
        self.before = (rss or 0) * 1024
        return self

    def __exit__(self, *exc: Any) -> None:
        hwm = status_kib("VmHWM") if self.reset else None
        if hwm is None:  # lifetime maximum: an upper bound for this block
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak = hwm * 1024
        self.above = max(0, self.peak - self.before)


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _cpu_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals), idle


def busy_cores(interval: float = 0.5) -> float:
    """Cores kept busy by other processes while this one sleeps for ``interval`` seconds."""
    a = _cpu_ticks()
    time.sleep(interval)
    b = _cpu_ticks()
    if a is None or b is None or b[0] == a[0]:
        return float("nan")
    ncpu = os.cpu_count() or 1
    return ncpu * (1.0 - (b[1] - a[1]) / (b[0] - a[0]))


WAIT_QUIET = 0.0  # seconds to wait for a quiet machine before each measurement (--wait-quiet)
QUIET_CORES = 0.3


def wait_quiet() -> float:
    """Wait (at most WAIT_QUIET s) until other processes use < QUIET_CORES; their load then."""
    deadline = time.monotonic() + WAIT_QUIET
    busy = busy_cores(0.3)
    while busy > QUIET_CORES and time.monotonic() < deadline:
        busy = busy_cores(1.0)
    return busy


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "actspec": getattr(actspec, "__version__", "?"),
        "torch_threads": torch.get_num_threads(),
        "torch_blas": _torch_blas(),
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")
            if k in os.environ
        },
        "memory_gib": _mem_total_gib(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["numpy_blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except Exception:  # threadpoolctl is optional
        info["numpy_blas"] = "threadpoolctl not installed"
    return info


def _torch_blas() -> str:
    cfg = torch.__config__.show()
    for part in cfg.replace(",", "\n").splitlines():
        if "BLAS_INFO" in part:
            return part.split("=", 1)[1].strip()
    return "?"


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 4) -> float:
    """Best GFLOP/s of a square torch matmul."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g, dtype=dtype)
    b = torch.randn(size, size, generator=g, dtype=dtype)
    c = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=c)  # warm-up
    wait_quiet()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def relu_reference(X: np.ndarray) -> np.ndarray:
    """(pi - arccos rho)/(2 pi) * <x_i, x_j>, rho = <x_i, x_j>/(|x_i||x_j|) (closed form)."""
    gx = X @ X.T
    nrm = np.sqrt(np.diag(gx))
    rho = np.clip(gx / np.outer(nrm, nrm), -1.0, 1.0)
    return (math.pi - np.arccos(rho)) / (2 * math.pi) * gx


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        out = None
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


# ---------------------------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------------------------


def bench_infinite(X: np.ndarray, repeats: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    n = X.shape[0]
    rows: list[dict[str, Any]] = []
    busy = wait_quiet()
    with PeakMemory() as mem:
        t_xx, _ = best_time(lambda: X @ X.T, max(3, repeats))
    rows.append(
        {
            "n": n,
            "activation": "X X^T",
            "seconds": t_xx,
            "ratio": 1.0,
            "gflops": 2.0 * n * n * X.shape[1] / t_xx / 1e9,
            "peak_rss_gib": mem.peak / GIB,
            "above_gib": mem.above / GIB,
            "load": _loadavg(),
            "busy_before": busy,
        }
    )
    log(f"  n={n}: X X^T {t_xx:.3f}s")
    for name in ACTIVATIONS:
        t0 = time.perf_counter()
        actspec.gram(X[:8], name)  # builds (and caches) the theta-table where one is needed
        setup = time.perf_counter() - t0
        busy = wait_quiet()
        with PeakMemory() as mem:
            t, G = best_time(lambda name=name: actspec.gram(X, name), repeats)
        row = {
            "n": n,
            "activation": name,
            "seconds": t,
            "ratio": t / t_xx,
            "setup_seconds": setup,
            "peak_rss_gib": mem.peak / GIB,
            "above_gib": mem.above / GIB,
            "load": _loadavg(),
            "busy_before": busy,
        }
        if name == "relu":  # closed-form check (SCIENCE §3)
            ref = relu_reference(X)
            row["max_abs_error_vs_closed_form"] = float(np.max(np.abs(G - ref)))
            del ref
        del G
        rows.append(row)
        log(f"  n={n}: {name:<10} {t:.3f}s  ({t / t_xx:.2f}x X X^T)")
    return rows


def finite_flops(n: int, m: int, d: int) -> float:
    return 2.0 * n * m * d + 2.0 * n * n * m


def estimate_finite(n: int, m: int, d: int, peak: float, rng_per_neuron: float) -> float:
    """Seconds expected: upper-triangle GEMMs at 70 % of peak plus the (partly hidden) RNG."""
    blocks = max(1, min(12, n // 1024))
    work = 2.0 * n * m * d + n * n * m * (1 + 1 / blocks)
    return work / (0.7 * peak * 1e9) + 0.6 * rng_per_neuron * m


def _finite_row(
    n: int, m: int, d: int, dtype: str, mode: str, t: float, peak: float, mem: PeakMemory, busy: float
) -> dict[str, Any]:
    """The fields every finite-width row has: time, GFLOP/s, fraction of peak, memory, load."""
    gf = finite_flops(n, m, d) / t / 1e9
    return {
        "n": n,
        "m": m,
        "dtype": dtype,
        "mode": mode,
        "seconds": t,
        "gflops": gf,
        "peak_gflops": peak,
        "fraction_of_peak": gf / peak,
        "peak_rss_gib": mem.peak / GIB,
        "above_gib": mem.above / GIB,
        "load": _loadavg(),
        "busy_before": busy,
    }


def bench_finite(
    X: np.ndarray,
    m: int,
    dtype: str,
    peak: float,
    mode: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    n, d = X.shape
    kwargs: dict[str, Any] = {"width": m, "dtype": dtype}
    if mode == "weights":
        W, a, _ = sample_weights(d, m, seed=0)
        kwargs = {"weights": (W, a), "dtype": dtype}
    busy = wait_quiet()
    with PeakMemory() as mem:
        t, G = best_time(lambda: actspec.gram(X, "relu", **kwargs), 1)
    row = _finite_row(n, m, d, dtype, mode, t, peak, mem, busy)
    row["symmetric"] = bool(np.array_equal(G, G.T))
    del G
    gf = row["gflops"]
    log(f"  n={n} m={m} {dtype} ({mode}): {t:.2f}s {gf:.1f} GFLOP/s = {100 * gf / peak:.0f}% of peak")
    return row


def bench_checkpoint(
    X: np.ndarray,
    m: int,
    dtype: str,
    peak: float,
    plain: dict[str, Any],
    directory: str | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The run of ``plain`` again with checkpointing every quarter of its time: the overhead."""
    n, d = X.shape
    every = plain["seconds"] / 4
    with tempfile.TemporaryDirectory(dir=directory, prefix="actspec-bench-") as tmp:
        ckpt = Checkpoint(Path(tmp) / "bench.ckpt.npz", every=every)
        busy = wait_quiet()
        with PeakMemory() as mem:
            t, G = best_time(
                lambda: actspec.gram(X, "relu", width=m, dtype=dtype, checkpoint=ckpt), 1
            )
    row = _finite_row(n, m, d, dtype, "checkpoint", t, peak, mem, busy)
    row |= {
        "checkpoint_every": every,
        "saves": ckpt.saves,
        "save_seconds": ckpt.save_seconds,
        "checkpoint_gib": ckpt.bytes / GIB,
        "overhead": t / plain["seconds"] - 1.0,
    }
    del G
    log(
        f"  n={n} m={m} {dtype} (checkpoint every {every:.1f}s): {t:.2f}s, {ckpt.saves} saves "
        f"({ckpt.save_seconds:.2f}s, {ckpt.bytes / GIB:.2f} GiB each), "
        f"overhead {100 * row['overhead']:+.1f}%"
    )
    return row


def rng_seconds_per_neuron(d: int, neurons: int = 4096) -> float:
    """Wall seconds per neuron to draw seeded weights as gram does (float32, blocks in parallel)."""
    scheme = init_scheme("dzps")
    m = 2 * neurons
    sample_block(d, m, 0, neurons, scheme, 0, dtype=torch.float32)
    t0 = time.perf_counter()
    sample_block(d, m, neurons, m, scheme, 0, dtype=torch.float32)
    return (time.perf_counter() - t0) / neurons


def accuracy_checks(log: Callable[[str], None]) -> dict[str, Any]:
    """Small-n checks that the fast paths are still exact (not timed)."""
    X = unit_rows(600, 40, seed=1)
    W, a, _ = sample_weights(40, 3000, seed=2)
    act = actspec.activation("tanh")
    Dm = act.dphi(X @ W.T) * a
    direct = (Dm @ Dm.T) * (X @ X.T) / W.shape[0]
    G64 = actspec.gram(X, act, weights=(W, a))
    Gc = actspec.gram(X, act, width=3000, seed=2, chunk=700)
    Gs = actspec.gram(X, act, width=3000, seed=2)
    G32 = actspec.gram(X, act, width=3000, seed=2, dtype="float32")
    scale = float(np.max(np.abs(direct)))
    out = {
        "finite_weights_vs_numpy_eq2_rel": float(np.max(np.abs(G64 - direct)) / scale),
        "finite_chunk700_vs_auto_rel": float(np.max(np.abs(Gc - Gs)) / scale),
        "finite_float32_vs_float64_rel": float(np.max(np.abs(G32 - Gs)) / scale),
    }
    ref = relu_reference(X)
    out["relu_ginf_vs_closed_form_abs"] = float(np.max(np.abs(actspec.gram(X, "relu") - ref)))
    for k, v in out.items():
        log(f"  {k}: {v:.2e}")
    return out


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def print_tables(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency of actspec
        print(json.dumps(result, indent=2))
        return
    con = Console(width=None if sys.stdout.isatty() else 132)
    info = result["machine"]
    con.print(
        f"[bold]machine[/bold]: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; "
        f"torch {info['torch']} ({info['torch_blas']}, {info['torch_threads']} threads), "
        f"numpy {info['numpy']}; load avg {result['load_start']:.1f} -> {result['load_end']:.1f}"
    )
    pk = result["peak"]
    con.print(
        f"[bold]matmul peak[/bold] (4096^2, best of the runs at start/middle/end): "
        f"float32 {pk['float32']:.1f} GFLOP/s, float64 {pk['float64']:.1f} GFLOP/s  "
        f"(start {pk['start']['float32']:.0f}/{pk['start']['float64']:.0f}, "
        f"middle {pk['mid']['float32']:.0f}/{pk['mid']['float64']:.0f}, "
        f"end {pk['end']['float32']:.0f}/{pk['end']['float64']:.0f})"
    )

    t = Table(title="Infinite width G∞ = gram(X, act), d = 3072 (target: <= 3x the X X^T time)")
    for col in ("n", "kernel", "seconds", "x X X^T", "table build s", "peak RSS GiB", "+GiB", "others"):
        t.add_column(col, justify="right" if col != "kernel" else "left")
    for r in result["infinite"]:
        ok = r["ratio"] <= 3.0
        t.add_row(
            str(r["n"]),
            r["activation"],
            f"{r['seconds']:.3f}",
            ("" if r["activation"] == "X X^T" else ("[green]" if ok else "[red]"))
            + f"{r['ratio']:.2f}",
            f"{r.get('setup_seconds', 0.0):.2f}" if "setup_seconds" in r else "",
            f"{r['peak_rss_gib']:.2f}",
            f"{r['above_gib']:.2f}",
            f"{r['busy_before']:.1f}",
        )
    con.print(t)

    t = Table(
        title="Finite width G = gram(X, 'relu', width=m), d = 3072 "
        "(flops 2nmd + 2n²m; target >= 60 % of the matmul peak)"
    )
    for col in ("n", "m", "dtype", "mode", "seconds", "GFLOP/s", "% peak", "peak RSS GiB", "+GiB", "others"):
        t.add_column(col, justify="right")
    for r in result["finite"]:
        if r.get("skipped"):
            t.add_row(
                str(r["n"]), f"{r['m']:.0e}", r["dtype"], r["mode"],
                f"skipped (est. {r['estimated_seconds']:.0f}s)", "", "", "", "", "",
            )
            continue
        frac = r["fraction_of_peak"]
        t.add_row(
            str(r["n"]),
            f"{r['m']:.0e}",
            r["dtype"],
            r["mode"],
            f"{r['seconds']:.2f}",
            f"{r['gflops']:.1f}",
            ("[green]" if frac >= 0.6 else "[red]") + f"{100 * frac:.0f}",
            f"{r['peak_rss_gib']:.2f}",
            f"{r['above_gib']:.2f}",
            f"{r['busy_before']:.1f}",
        )
    con.print(t)
    ck_rows = [r for r in result["finite"] if r.get("mode") == "checkpoint"]
    if ck_rows:
        t = Table(title="Checkpoint overhead: the seed run again with checkpoint=PATH")
        for col in ("n", "m", "dtype", "every s", "saves", "save s", "file GiB", "seconds",
                    "overhead", "peak RSS GiB"):
            t.add_column(col, justify="right")
        for r in ck_rows:
            t.add_row(
                str(r["n"]), f"{r['m']:.0e}", r["dtype"], f"{r['checkpoint_every']:.1f}",
                str(r["saves"]), f"{r['save_seconds']:.2f}", f"{r['checkpoint_gib']:.2f}",
                f"{r['seconds']:.2f}", f"{100 * r['overhead']:+.1f}%", f"{r['peak_rss_gib']:.2f}",
            )
        con.print(t)
    con.print(
        "others: cores kept busy by other processes just before the measurement "
        "(0 = quiet machine); peak RSS: whole process; +GiB: above the RSS before the call"
    )
    con.print(
        f"RNG ({WEIGHTS_SCHEME}): drawing one neuron's weights (float32 torch.randn, blocks of "
        f"{WEIGHT_BLOCK} in parallel on {torch.get_num_threads()} threads) takes "
        f"{1e6 * result['rng_seconds_per_neuron']:.1f} µs "
        f"(= {result['rng_seconds_per_neuron'] * 1e5:.1f} s for m = 1e5)"
    )
    acc = result.get("accuracy", {})
    if acc:
        con.print("accuracy: " + ", ".join(f"{k} {v:.1e}" for k, v in acc.items()))


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="n = 1000 only, m <= 1e4")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    ap.add_argument(
        "--budget",
        type=float,
        default=180.0,
        help="skip finite-width runs estimated to take longer than this many seconds",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to this long for other processes to go idle",
    )
    ap.add_argument("--n", type=int, nargs="*", help="override the sizes n")
    ap.add_argument("--m", type=int, nargs="*", help="override the widths m")
    ap.add_argument("--activations", nargs="*", help="override the activation list")
    ap.add_argument("--skip-infinite", action="store_true")
    ap.add_argument("--skip-finite", action="store_true")
    ap.add_argument(
        "--dtypes", nargs="*", default=["float32", "float64"], help="finite-width dtypes to run"
    )
    ap.add_argument(
        "--checkpoint",
        action="store_true",
        help="after each finite-width seed run, time the same run with checkpoints every "
        "1/4 of its time (>= 2 saves at float64; float32 saves only at flushes, every 8192 neurons)",
    )
    ap.add_argument(
        "--checkpoint-dir", default=None, help="directory for the checkpoint files (default: temp)"
    )
    args = ap.parse_args(argv)

    ns = args.n or ([1000] if args.quick else [1000, 4000, 10000])
    ms = args.m or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    if args.activations:
        ACTIVATIONS[:] = args.activations
    global WAIT_QUIET
    WAIT_QUIET = args.wait_quiet

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result: dict[str, Any] = {
        "weights_scheme": WEIGHTS_SCHEME,
        "machine": machine_info(),
        "torch_parallel_info": torch.__config__.parallel_info(),
        "d": D,
        "load_start": _loadavg(),
        "args": vars(args),
    }
    log(f"machine: {result['machine']['cpu']}, load {result['load_start']:.1f}")
    log("matmul peak ...")
    start = {"float32": matmul_peak(torch.float32), "float64": matmul_peak(torch.float64)}
    log(f"  float32 {start['float32']:.1f}  float64 {start['float64']:.1f} GFLOP/s")
    result["accuracy"] = accuracy_checks(log)

    Xall = unit_rows(max(ns), D, seed=0)
    result["infinite"] = []
    if not args.skip_infinite:
        log("infinite width ...")
        for n in ns:
            X = np.ascontiguousarray(Xall[:n])
            reps = 3 if n <= 4000 else 2
            result["infinite"] += bench_infinite(X, reps, log)

    result["finite"] = []
    if not args.skip_finite:  # the start value may have been taken on a busy machine
        log("matmul peak before the finite-width runs ...")
        mid = {"float32": matmul_peak(torch.float32), "float64": matmul_peak(torch.float64)}
        log(f"  float32 {mid['float32']:.1f}  float64 {mid['float64']:.1f} GFLOP/s")
    else:
        mid = dict(start)
    best = {k: max(start[k], mid[k]) for k in start}
    rng_pn = rng_seconds_per_neuron(D)
    result["rng_seconds_per_neuron"] = rng_pn
    if not args.skip_finite:
        log("finite width ...")
        for n in ns:
            X = np.ascontiguousarray(Xall[:n])
            for m in ms:
                for dtype in args.dtypes:
                    modes = ["seed"]
                    if n == min(ns) and m <= 10000:
                        modes.append("weights")
                    for mode in modes:
                        est = estimate_finite(n, m, D, best[dtype], rng_pn if mode == "seed" else 0)
                        if est > args.budget:
                            result["finite"].append(
                                {"n": n, "m": m, "dtype": dtype, "mode": mode, "skipped": True,
                                 "estimated_seconds": est}
                            )
                            log(f"  n={n} m={m} {dtype} ({mode}): skipped, estimated {est:.0f}s")
                            continue
                        row = bench_finite(X, m, dtype, best[dtype], mode, log)
                        result["finite"].append(row)
                        if args.checkpoint and mode == "seed":
                            result["finite"].append(
                                bench_checkpoint(X, m, dtype, best[dtype], row, args.checkpoint_dir, log)
                            )

    log("matmul peak again ...")
    end = {"float32": matmul_peak(torch.float32), "float64": matmul_peak(torch.float64)}
    peak = {k: max(start[k], mid[k], end[k]) for k in start}
    result["peak"] = {**peak, "start": start, "mid": mid, "end": end}
    for r in result["finite"]:  # fractions against the best peak seen in this run
        if not r.get("skipped"):
            r["peak_gflops"] = peak[r["dtype"]]
            r["fraction_of_peak"] = r["gflops"] / peak[r["dtype"]]
    result["load_end"] = _loadavg()
    done = [r for r in result["finite"] if not r.get("skipped")]
    result["targets"] = {
        "ginf_max_ratio_to_xxt": max(
            (r["ratio"] for r in result["infinite"] if r["activation"] != "X X^T"), default=None
        ),
        "finite_min_fraction_of_peak": min((r["fraction_of_peak"] for r in done), default=None),
        "max_peak_rss_gib": max(
            (r["peak_rss_gib"] for r in result["infinite"] + done), default=None
        ),
    }
    print_tables(result)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
