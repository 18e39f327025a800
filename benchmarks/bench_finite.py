"""Finite-width G as a fraction of the matching matmul peak, measured in the same run (issue 20).

    python benchmarks/bench_finite.py [--n 1000 4000 10000] [--m 10000] [--dtypes float32 float64]
        [--repeats 3] [--weights] [--json out.json]

For each n, dtype and repeat: the torch matmul peak of that dtype (square 4096 GEMMs, best of
``--peak-repeats``, same threads) is measured right before the timed call
``actspec.gram(X, "relu", width=m, seed=0, dtype=dtype)`` on random unit-norm rows (d = 3072),
and the row reports achieved GFLOP/s (counting 2 n m d + 2 n² m flops) over that peak. On a
shared machine the absolute rates move with the load; the ratio of two back-to-back
measurements moves much less, and the repeats show by how much (median and best are printed).
``--weights`` adds rows with pre-drawn weights (``weights=(W, a)``): the compute pipeline alone.
Peak memory: the process's peak resident set during the call (VmHWM, reset before it).

Only the public API is used (``actspec.gram``, ``actspec.sample_weights``), so the same script
times an older checkout: ``PYTHONPATH=/path/to/old/src python benchmarks/bench_finite.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gram import GIB, PeakMemory, busy_cores, finite_flops, machine_info, unit_rows  # noqa: E402

import actspec  # noqa: E402

D = 3072


def matmul_peak(dtype: torch.dtype, size: int, repeats: int) -> float:
    """Best GFLOP/s of a square torch matmul of ``dtype`` (after one warm-up)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g, dtype=dtype)
    b = torch.randn(size, size, generator=g, dtype=dtype)
    c = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def one_row(
    X: np.ndarray, m: int, dtype: str, mode: str, weights: Any, args: argparse.Namespace
) -> dict[str, Any]:
    n = X.shape[0]
    busy = busy_cores(0.3)
    peak = matmul_peak(getattr(torch, dtype), args.peak_size, args.peak_repeats)
    kw: dict[str, Any] = {"width": m, "seed": 0} if mode == "seed" else {"weights": weights}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        G = actspec.gram(X, "relu", dtype=dtype, **kw)
        t = time.perf_counter() - t0
    del G
    gf = finite_flops(n, m, D) / t / 1e9
    return {
        "n": n, "m": m, "dtype": dtype, "mode": mode, "seconds": t, "gflops": gf,
        "peak_gflops": peak, "fraction_of_peak": gf / peak, "peak_rss_gib": mem.peak / GIB,
        "above_gib": mem.above / GIB, "others_busy": busy, "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="*", default=[1000, 4000, 10000])
    ap.add_argument("--m", type=int, default=10_000)
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-size", type=int, default=4096)
    ap.add_argument("--peak-repeats", type=int, default=2)
    ap.add_argument("--weights", action="store_true", help="also time pre-drawn weights")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from actspec.core import inits

    scheme = getattr(inits, "WEIGHTS_SCHEME", "blocked-randn64-v1")
    info = machine_info()
    log(f"actspec from {Path(actspec.__file__).parent}, weights scheme {scheme}, "
        f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    Xall = unit_rows(max(args.n), D, seed=0)
    rows: list[dict[str, Any]] = []
    actspec.gram(Xall[:64], "relu", width=256)  # warm-up (imports, thread pools)
    for n in args.n:
        X = np.ascontiguousarray(Xall[:n])
        for dtype in args.dtypes:
            modes = ["seed"] + (["weights"] if args.weights else [])
            weights = None
            if args.weights:
                W, a, _ = actspec.sample_weights(D, args.m, seed=0)
                weights = (W, a)
            for rep in range(args.repeats):
                for mode in modes:
                    r = one_row(X, args.m, dtype, mode, weights, args) | {"repeat": rep}
                    rows.append(r)
                    log(f"  n={n} m={args.m} {dtype} {mode}: {r['seconds']:.2f}s "
                        f"{r['gflops']:.1f} GFLOP/s, "
                        f"peak {r['peak_gflops']:.1f} -> {100 * r['fraction_of_peak']:.0f}%, "
                        f"RSS {r['peak_rss_gib']:.2f} GiB, others {r['others_busy']:.1f}, "
                        f"load {r['load']:.1f}")
            del weights
    summary = []
    print(f"weights scheme {scheme}; fraction of the matmul peak measured right before each call "
          f"(d = {D}, m = {args.m}); median [min, max] over {args.repeats} repeats")
    print("| n | dtype | mode | seconds (median) | GFLOP/s | peak GFLOP/s | % of peak | peak RSS GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.n:
        for dtype in args.dtypes:
            for mode in ("seed", "weights"):
                sel = [r for r in rows if r["n"] == n and r["dtype"] == dtype and r["mode"] == mode]
                if not sel:
                    continue
                fr = [100 * r["fraction_of_peak"] for r in sel]
                s = {
                    "n": n, "dtype": dtype, "mode": mode,
                    "seconds": statistics.median(r["seconds"] for r in sel),
                    "gflops": statistics.median(r["gflops"] for r in sel),
                    "peak_gflops": statistics.median(r["peak_gflops"] for r in sel),
                    "percent_median": statistics.median(fr), "percent_min": min(fr), "percent_max": max(fr),
                    "peak_rss_gib": max(r["peak_rss_gib"] for r in sel),
                }
                summary.append(s)
                print(f"| {n} | {dtype} | {mode} | {s['seconds']:.2f} | {s['gflops']:.1f} | "
                      f"{s['peak_gflops']:.1f} | {s['percent_median']:.0f} [{s['percent_min']:.0f}, "
                      f"{s['percent_max']:.0f}] | {s['peak_rss_gib']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "weights_scheme": scheme, "args": vars(args), "rows": rows,
                       "summary": summary}, fh, indent=2)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
