"""Benchmark of one full-batch GD epoch of the DZPS network (actspec.training.TwoLayerNet).

    python benchmarks/bench_train.py [--quick] [--json out.json] [--epochs 10]

For each size (n, d, m) and activation it times ``TwoLayerNet.step`` exactly as ``train`` runs
it for full-batch GD (pre-activations kept between steps when they fit in 1 GiB, output layer
fixed) and reports seconds per epoch, the achieved GFLOP/s of the three matmuls of an epoch
(X W^T after the step, the gradient (R x X)^T phi'(U), phi(U) a: 6 n m d + 2 n m flops) next to
this machine's float32 matmul peak, and the element rate n m / s of the elementwise passes,
which are what bound an epoch at small d. Each configuration runs with

* ``chunk = auto``: actspec's cache-sized chunks (an (n, k) block of ~1 MiB, k >= 1024),
* ``chunk = 256MiB``: the chunks actspec used before (the temporaries of one chunk in 256 MiB),

and with all of the process's torch threads and with one thread (what each process of
``actspec reproduce --workers N`` gets on an N-core machine). The paper's Figure 1 sizes are
n = 10 and 50, d = 10, m = 10^6; ``--quick`` uses m = 10^5.

Nothing here is part of the test suite. On a shared machine the numbers vary with the load;
the 1-minute load average is recorded with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch
from bench_gram import machine_info, matmul_peak
from rich.console import Console
from rich.table import Table

from actspec.activations.registry import activation
from actspec.experiments.training import TwoLayerNet

console = Console(stderr=True)


def legacy_chunk(n: int, d: int, itemsize: int, m: int) -> int:
    """The chunk rule before the cache-sized one: temporaries of a chunk within 256 MiB."""
    k = (256 * 2**20) // max(1, (6 * n + 3 * d + 4) * itemsize)
    return int(max(256, min(m, k)))


def time_epochs(
    n: int, d: int, m: int, act: str, chunk: int | None, threads: int, epochs: int
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    g = np.random.default_rng(0)
    X = g.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = g.choice([-1.0, 1.0], size=(n, 1))
    net = TwoLayerNet.initialize(d, m, act=activation(act), seed=0, dtype=torch.float32,
                                 chunk=chunk, batch_rows=n)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    Yt = torch.as_tensor(y, dtype=torch.float32)
    keep = n * m * 4 <= 1 << 30  # as train() with its default cache_bytes
    with torch.no_grad():
        f, Us = net.forward(Xt, keep=keep)
        f, Us = net.step(Xt, f - Yt, 1e-3, 0.0, Us=Us, recompute=True, keep=keep)  # warm-up
        t0 = time.perf_counter()
        for _ in range(epochs):
            assert f is not None
            f, Us = net.step(Xt, f - Yt, 1e-3, 0.0, Us=Us, recompute=True, keep=keep)
        sec = (time.perf_counter() - t0) / epochs
    flops = 6.0 * n * m * d + 2.0 * n * m
    return {
        "n": n, "d": d, "m": m, "activation": act, "chunk": net.chunk, "threads": threads,
        "seconds_per_epoch": sec, "gflops": flops / sec / 1e9, "elements_per_s": n * m / sec,
        "load1": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="m = 10^5 instead of 10^6")
    ap.add_argument("--epochs", type=int, default=10, help="timed epochs per row (after 1 warm-up)")
    ap.add_argument("--activations", default="relu,tanh,swish,elu")
    ap.add_argument("--json", help="write every row here")
    a = ap.parse_args(argv)
    m = 100_000 if a.quick else 1_000_000
    all_threads = torch.get_num_threads()
    peak = matmul_peak(torch.float32)
    console.print(f"float32 matmul peak: {peak:.1f} GFLOP/s ({all_threads} threads)")
    rows = []
    sizes = [(10, 10), (50, 10)]
    for n, d in sizes:
        for act in a.activations.split(","):
            for label, chunk in (("auto", None), ("256MiB", legacy_chunk(n, d, 4, m))):
                for threads in sorted({all_threads, 1}, reverse=True):
                    r = time_epochs(n, d, m, act, chunk, threads, a.epochs)
                    r["chunk_rule"] = label
                    rows.append(r)
                    console.print(f"n={n} {act} chunk={label}({r['chunk']}) threads={threads}: "
                                  f"{r['seconds_per_epoch']:.4f} s/epoch")
    torch.set_num_threads(all_threads)
    table = Table(title=f"GD epoch, DZPS net, float32, m = {m:,} (matmul peak {peak:.0f} GFLOP/s)")
    for col in ("n", "d", "act", "chunk", "threads", "s/epoch", "GFLOP/s", "% peak", "Melem/s", "load"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["n"]), str(r["d"]), r["activation"], f"{r['chunk_rule']} ({r['chunk']})",
                      str(r["threads"]), f"{r['seconds_per_epoch']:.4f}", f"{r['gflops']:.1f}",
                      f"{100 * r['gflops'] / peak:.1f}", f"{r['elements_per_s'] / 1e6:.0f}",
                      f"{r['load1']:.1f}")
    Console(width=150).print(table)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": machine_info(), "matmul_peak_f32": peak, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
