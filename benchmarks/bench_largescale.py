"""Benchmark: extreme eigenvalues of G∞ beyond dense limits (issue 9, items 2-3).

One command:

    python benchmarks/bench_largescale.py [--sizes 10000,20000,50000] [--acts relu,tanh]
        [--dim 64] [--k 6] [--tol 5e-3] [--maxiter 200] [--dense-max 0] [--dask-n 0]
        [--json /tmp/bench_largescale.json]

Every configuration runs in a fresh subprocess, so its peak memory (VmHWM from /proc/self/status)
is its own. Reported per row: method, seconds, passes over G (one pass = every block of the upper
triangle multiplied once), kernel passes (block evaluations / blocks), λ_min and λ_max with their
residual error bars (absolute, and the worst relative one of the k: max error / value), peak memory,
and the estimate made before the run (``iterative_plan``: seconds, GiB); where dense fits
(n <= --dense-max) also the dense eigvalsh time
and |iterative − dense| for λ_min and λ_max. One local-Dask run (2 worker processes) at --dask-n.
The load average is recorded: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any


def _peak_gib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _data(n: int, d: int, seed: int = 0) -> Any:
    import numpy as np

    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this (fresh) process."""
    import numpy as np

    import actspec
    from actspec.spectra.iterative import extreme_eigenvalues

    X = _data(cfg["n"], cfg["dim"])
    out: dict[str, Any] = {**cfg}
    if cfg["kind"] == "dense":
        t0 = time.perf_counter()
        ev = actspec.eigenvalues(actspec.gram(X, cfg["act"]))
        out.update(seconds=time.perf_counter() - t0, lambda_min=float(ev[-1]), lambda_max=float(ev[0]),
                   method="dense")
    else:
        client = cluster = None
        if cfg["kind"] == "dask":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=cfg["workers"], threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        from actspec.spectra.iterative import _entry_seconds, iterative_plan

        act = actspec.activation(cfg["act"])
        t0 = time.perf_counter()
        plan = iterative_plan(cfg["n"], cfg["dim"], cfg["k"], maxiter=cfg["maxiter"],
                              cache_bytes=cfg.get("cache_bytes"),
                              workers=cfg.get("workers", 1) if cfg["kind"] == "dask" else 1,
                              entry_seconds=_entry_seconds(X, act, "hidden", "dzps"))
        out["estimate"] = {"seconds": plan["seconds"], "gib": plan["bytes"] / 2**30,
                           "pass_seconds": plan["pass_seconds"],
                           "sketch_seconds": plan["sketch_seconds"],
                           "exact_seconds": plan["exact_seconds"], "passes": plan["passes"],
                           "made_in_seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        r = extreme_eigenvalues(X, cfg["act"], k=cfg["k"], method="iterative", maxiter=cfg["maxiter"],
                                tol=cfg["tol"], cache_bytes=cfg.get("cache_bytes"), client=client,
                                budget_checked=True,
                                log=lambda m: print(f"  [{cfg['act']} n={cfg['n']}] {m}", file=sys.stderr,
                                                    flush=True))
        out.update(seconds=time.perf_counter() - t0, method=r["method"], passes=r["passes"],
                   kernel_passes=r["kernel_passes"], cache_dtype=r["cache_dtype"],
                   lambda_min=r["smallest"][0], lambda_min_error=r["smallest_error"][0],
                   lambda_max=r["largest"][0], lambda_max_error=r["largest_error"][0],
                   trace=r["trace"], converged=r["converged"], sketch=r.get("sketch"),
                   block=r.get("block_size"),
                   rel_err_min=max(r["smallest_error"]) / r["smallest"][0],
                   rel_err_max=max(r["largest_error"]) / r["largest"][0])
        if client is not None:
            client.close()
            cluster.close()
    out["peak_gib"] = _peak_gib()  # for Dask: this process only (workers are separate)
    out["loadavg"] = os.getloadavg()
    del np
    return out


def _run(cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_worker", json.dumps(cfg)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "error": f"timed out after {timeout:.0f} s"}
    sys.stderr.write(p.stderr[-4000:])
    if p.returncode != 0:
        last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"rc {p.returncode}"
        return {**cfg, "error": last}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _fmt(v: Any, spec: str = ".4g") -> str:
    return "—" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,20000,50000")
    ap.add_argument("--acts", default="relu,tanh")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--maxiter", type=int, default=200)
    ap.add_argument("--tol", type=float, default=5e-3, help="relative residual wanted (issue 20: 0.5 %%)")
    ap.add_argument("--dense-max", type=int, default=0, help="also time dense eigvalsh up to this n")
    ap.add_argument("--dask-n", type=int, default=0, help="Dask run (2 workers) at this n, 0: skip")
    ap.add_argument("--cache-gib", type=float, default=None, help="block cache budget (default: auto)")
    ap.add_argument("--extra", default="", help="extra points as n:d pairs, e.g. 10000:3072")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", default="/tmp/bench_largescale.json")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._worker is not None:
        print(json.dumps(worker(json.loads(a._worker))))
        return
    cache = None if a.cache_gib is None else int(a.cache_gib * 2**30)
    base = {"k": a.k, "maxiter": a.maxiter, "tol": a.tol, "cache_bytes": cache}
    points = [(int(n), a.dim) for n in a.sizes.split(",") if n]
    points += [tuple(int(v) for v in p.split(":")) for p in a.extra.split(",") if p]  # type: ignore[misc]
    cfgs: list[dict[str, Any]] = []
    for n, d in points:
        for act in a.acts.split(","):
            cfgs.append({**base, "kind": "iterative", "n": n, "dim": d, "act": act})
            if n <= a.dense_max:
                cfgs.append({**base, "kind": "dense", "n": n, "dim": d, "act": act})
    if a.dask_n:
        cfgs.append({**base, "kind": "dask", "workers": 2, "n": a.dask_n, "dim": a.dim, "act": "relu"})
    rows = []
    t_all = time.perf_counter()
    for cfg in cfgs:
        what = f"{cfg['kind']} {cfg['act']} n={cfg['n']} d={cfg['dim']}"
        print(f"running {what} ...", file=sys.stderr, flush=True)
        rows.append(_run(cfg, a.timeout))
        with open(a.json, "w") as fh:  # after every row: partial results survive an interruption
            json.dump({"rows": rows, "loadavg_end": os.getloadavg(), "cpus": os.cpu_count()}, fh, indent=1)
    dense = {(r["n"], r["dim"], r["act"]): r for r in rows if r.get("kind") == "dense" and "error" not in r}
    hdr = (f"{'kind':9} {'act':5} {'n':>6} {'d':>5} {'sec':>8} {'est s':>7} {'est GiB':>7} {'passes':>6} "
           f"{'kpass':>5} {'cache':>7} {'λ_min ± err':>22} {'rel':>7} {'λ_max ± err':>22} {'rel':>7} "
           f"{'peakGiB':>7} {'dense s':>8} {'|Δλmin|':>8} {'|Δλmax|':>8} load")
    print(hdr)
    for r in rows:
        if "error" in r:
            print(f"{r['kind']:9} {r['act']:5} {r['n']:>6} {r['dim']:>5}  error: {r['error']}")
            continue
        ref = dense.get((r["n"], r["dim"], r["act"])) if r["kind"] != "dense" else None
        lmin = f"{r['lambda_min']:.6g}" + (f"±{r['lambda_min_error']:.1e}" if "lambda_min_error" in r else "")
        lmax = f"{r['lambda_max']:.6g}" + (f"±{r['lambda_max_error']:.1e}" if "lambda_max_error" in r else "")
        if ref is not None:
            r["dense_seconds"] = ref["seconds"]
            r["abs_diff_lambda_min"] = abs(r["lambda_min"] - ref["lambda_min"])
            r["abs_diff_lambda_max"] = abs(r["lambda_max"] - ref["lambda_max"])
        est = r.get("estimate") or {}
        print(f"{r['kind']:9} {r['act']:5} {r['n']:>6} {r['dim']:>5} {r['seconds']:>8.1f} "
              f"{_fmt(est.get('seconds'), '.0f'):>7} {_fmt(est.get('gib'), '.2f'):>7} "
              f"{_fmt(r.get('passes'), 'd'):>6} {_fmt(r.get('kernel_passes'), '.1f'):>5} "
              f"{str(r.get('cache_dtype') or '—'):>7} {lmin:>22} {_fmt(r.get('rel_err_min'), '.1e'):>7} "
              f"{lmax:>22} {_fmt(r.get('rel_err_max'), '.1e'):>7} {r['peak_gib']:>7.2f} "
              f"{_fmt(r.get('dense_seconds'), '.1f'):>8} {_fmt(r.get('abs_diff_lambda_min'), '.1e'):>8} "
              f"{_fmt(r.get('abs_diff_lambda_max'), '.1e'):>8} {r['loadavg'][0]:.1f}")
    with open(a.json, "w") as fh:
        json.dump({"rows": rows, "loadavg_end": os.getloadavg(), "cpus": os.cpu_count(),
                   "total_seconds": time.perf_counter() - t_all}, fh, indent=1)
    print(f"wrote {a.json} ({time.perf_counter() - t_all:.0f} s in all; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
