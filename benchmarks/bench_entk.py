"""Benchmark of actspec.entk against a plain torch.func eNTK (issue 22, "Speed").

    python benchmarks/bench_entk.py [--quick] [--json out.json] [--threads N] [--device cpu|cuda]

The baseline is the way Liu & Hui / TE-NAS-style code and the functorch NTK tutorial compute the
empirical NTK: the per-sample Jacobian of the whole batch at once,
``J = vmap(jacrev(f_single), (None, 0))(params, X)``, then Θ = Σ_params J_p J_pᵀ (float64 here).
It holds the n x P Jacobian (P parameters), 8 n P bytes.

Measured, each in a fresh subprocess (its peak resident memory is the figure), on

* ``mlp1m``: an MLP 256 → 700 → 700 → 700 → 1, ReLU (1.16 M parameters), n = 500 and 2000;
* ``cnn``: the small CIFAR CNN of examples/models/cnn.py (24 k parameters, 10 outputs, trace
  NTK), inputs 3 x 32 x 32, n = 500 and 2000;
* ``mlp10m``: an MLP 1000 → 3000 → 2334 → 1 (10.0 M parameters), n = 2000: actspec only (the
  baseline's Jacobian would be 160 GB);

with the methods

* ``baseline``: the torch.func code above (skipped, and reported as out of memory, when its
  Jacobian alone exceeds 60 % of the available memory);
* ``jvp``: matrix-free NTK-vector products, Θ[:, B] = J (Jᵀ E_B) by one vmapped vjp (rows B)
  and one vmapped jvp over all n inputs per block of 32 rows (the functorch tutorial's
  ``ntk_vps`` variant, batched); mlp1m at n = 500 only (it costs ~4 n² P flops);
* ``jacobian``: actspec.entk(method="jacobian"): torch.func per-sample rows in chunks, J_g J_gᵀ
  over the upper triangle in float64 — the bounded-memory version of the baseline;
* ``explicit``: entk(method="explicit"): per-sample gradients of Linear/Conv layers from forward
  hooks and one backward pass (Σ_t δ_t a_tᵀ, one batched matmul), other parameters by torch.func;
* ``auto``: entk's default: each Linear/Conv layer as the cheaper of the factored term
  (δδᵀ) ⊙ (aaᵀ) and the explicit rows.

Columns: seconds (CPU seconds of the worker by default: on a busy shared machine wall-clock
time measures the other processes too; ``--wall`` for wall-clock); "GFLOP/s eq." = 2 n² C P /
seconds (C outputs), the rate of the full J Jᵀ product the result is equivalent to (methods that
skip flops exceed the machine's peak); "% peak" of that against the float64 matmul peak (square
2048 torch matmuls, best of 3, per CPU second like the rows, at start and end);
peak RSS of the subprocess; the largest |Θ − Θ_baseline| / max |Θ_baseline| (or against
``jacobian`` where the baseline did not run); the speedup over the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actspec.core.resources import available_memory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CASES = {
    "mlp1m": {"ns": (500, 2000), "quick_ns": (500,)},
    "cnn": {"ns": (500, 2000), "quick_ns": (500,)},
    "mlp10m": {"ns": (2000,), "quick_ns": (500,)},
}
METHODS = ("baseline", "jvp", "jacobian", "explicit", "auto")


# ---------------------------------------------------------------------------------------------
# the models and data (the same in every worker)
# ---------------------------------------------------------------------------------------------


def build(case: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    from torch import nn

    torch.manual_seed(0)
    if case == "mlp1m":
        net = nn.Sequential(nn.Linear(256, 700), nn.ReLU(), nn.Linear(700, 700), nn.ReLU(),
                            nn.Linear(700, 700), nn.ReLU(), nn.Linear(700, 1))
        return net, (256,)
    if case == "mlp10m":
        net = nn.Sequential(nn.Linear(1000, 3000), nn.ReLU(), nn.Linear(3000, 2334), nn.ReLU(),
                            nn.Linear(2334, 1))
        return net, (1000,)
    if case == "cnn":
        sys.path.insert(0, str(ROOT / "examples" / "models"))
        from cnn import build_model  # type: ignore[import-not-found]

        return build_model((3, 32, 32)), (3, 32, 32)
    raise SystemExit(f"unknown case {case}")


def data(shape: tuple[int, ...], n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, int(np.prod(shape)), generator=g, dtype=torch.float64)
    X /= X.norm(dim=1, keepdim=True)
    return X.reshape(n, *shape)


def parameters(case: str) -> tuple[int, int]:
    """(P, C): parameters and outputs (the trace NTK over C outputs is 2 n² C P flops as J Jᵀ)."""
    net, shape = build(case)
    with torch.no_grad():
        C = net(torch.zeros(1, *shape)).reshape(1, -1).shape[1]
    return sum(p.numel() for p in net.parameters()), C


# ---------------------------------------------------------------------------------------------
# the baselines
# ---------------------------------------------------------------------------------------------


def baseline_ntk(net: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    """vmap(jacrev) over the whole batch (the n x P Jacobian), then Σ_p J_p J_pᵀ (trace over outputs)."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}

    def f_single(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(net, p, (x.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(f_single), (None, 0))(params, X)  # name -> (n, C, *shape)
    n = X.shape[0]
    K = torch.zeros(n, n, dtype=X.dtype, device=X.device)
    for j in jac.values():
        j = j.reshape(n, j.shape[1], -1)
        K += torch.einsum("ncp,mcp->nm", j, j)
    return K


def jvp_ntk(net: torch.nn.Module, X: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Θ[:, B] = J (Jᵀ E_B): vmapped vjp of the rows B, then vmapped jvp over all inputs."""
    from torch.func import functional_call, jvp, vjp, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}
    n = X.shape[0]

    def f_all(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(net, p, (X,)).reshape(n, -1)

    K = torch.zeros(n, n, dtype=X.dtype, device=X.device)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        Xb = X[b0:b1]
        out, vjp_fn = vjp(lambda p: functional_call(net, p, (Xb,)).reshape(b1 - b0, -1), params)  # noqa: B023
        C = out.shape[1]
        for c in range(C):
            basis = torch.zeros(b1 - b0, b1 - b0, C, dtype=X.dtype, device=X.device)
            basis[torch.arange(b1 - b0), torch.arange(b1 - b0), c] = 1.0
            tangents = vmap(vjp_fn)(basis)[0]  # rows B: name -> (b, *shape)
            cols = vmap(lambda t, c=c: jvp(f_all, (params,), (t,))[1][:, c])(tangents)  # (b, n)
            K[:, b0:b1] += cols.T
    return 0.5 * (K + K.T)


# ---------------------------------------------------------------------------------------------
# worker: one measurement in a fresh process
# ---------------------------------------------------------------------------------------------


def worker(case: str, n: int, method: str, out: str, device: str) -> None:
    from actspec.finite.entk import entk

    net, shape = build(case)
    X = data(shape, n).to(device)
    net = net.to(device=device, dtype=torch.float64).eval()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    info: dict[str, Any] = {}
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if method == "baseline":
        K = baseline_ntk(net, X).cpu().numpy()
    elif method == "jvp":
        K = jvp_ntk(net, X).cpu().numpy()
    else:
        K = entk(net, X, method=method, device=device, info=info)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    np.save(out, K)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gpu = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    plan = info.get("plan") or {}
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss": rss, "gpu_peak": gpu,
                      "passes": plan.get("passes"), "chunk": plan.get("chunk"),
                      "modes": [ly["mode"] for ly in plan.get("layers", [])]}))


def run_worker(case: str, n: int, method: str, out: Path, threads: int | None, device: str,
               timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", case, str(n), method, str(out),
           "--device", device]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout ({timeout:.0f} s)"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        oom = "memory" in tail.lower() or proc.returncode in (-9, 137)
        status = "out of memory" if oom else f"failed: {tail[:120]}"
        return {"status": status}
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["status"] = "ok"
    return rec


# ---------------------------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------------------------


def matmul_peak(dtype: torch.dtype, device: str, size: int = 2048, repeats: int = 3,
                wall: bool = False) -> float:
    """Best GFLOP/s of a square matmul, per wall-clock second (GPU, --wall) or per CPU second."""
    A = torch.randn(size, size, dtype=dtype, device=device)
    B = torch.randn(size, size, dtype=dtype, device=device)
    clock = time.perf_counter if wall or device != "cpu" else time.process_time
    best = math.inf
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = clock()
        A @ B
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, clock() - t0)
    return 2.0 * size**3 / best / 1e9


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", nargs=4, metavar=("CASE", "N", "METHOD", "OUT"))
    ap.add_argument("--quick", action="store_true", help="n = 500 only")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per measurement")
    ap.add_argument("--wall", action="store_true",
                    help="rate and speedups from wall-clock seconds (default: CPU seconds of the "
                    "worker, which a busy shared machine does not inflate; use with --threads 1)")
    args = ap.parse_args()
    if args.worker:
        case, n, method, out = args.worker
        worker(case, int(n), method, out, args.device)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    peak64 = matmul_peak(torch.float64, dev, wall=args.wall)
    peak32 = matmul_peak(torch.float32, dev, wall=args.wall)
    print(f"matmul peak ({dev}, 2048², best of 3): float64 {peak64:.1f} GFLOP/s, "
          f"float32 {peak32:.1f} GFLOP/s; "
          f"threads {args.threads or torch.get_num_threads()}; load {loadavg():.1f}", flush=True)
    rows: list[dict[str, Any]] = []
    methods = [m for m in args.methods.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        for case in [c for c in args.cases.split(",") if c]:
            P, C = parameters(case)
            for n in CASES[case]["quick_ns" if args.quick else "ns"]:
                ref_name = None
                thetas: dict[str, Path] = {}
                for method in methods:
                    row: dict[str, Any] = {"case": case, "n": n, "parameters": P, "outputs": C,
                                           "method": method, "load": loadavg()}
                    jac_bytes = 8 * n * P * C
                    if method == "baseline" and jac_bytes > 0.6 * available_memory():
                        row["status"] = f"out of memory (its Jacobian alone: {jac_bytes / 2**30:.0f} GiB)"
                    elif method == "baseline" and case == "mlp10m":
                        row["status"] = "out of memory"
                    elif method == "jvp" and not (case == "mlp1m" and n <= 500):
                        row["status"] = "skipped (~4 n² P flops)"
                    elif case == "mlp10m" and method in ("jacobian", "explicit"):
                        row["status"] = "skipped (n² P = 4e13 flops)"
                    else:
                        out = Path(tmp) / f"{case}-{n}-{method}.npy"
                        row.update(run_worker(case, n, method, out, args.threads, dev, args.timeout))
                        if row["status"] == "ok":
                            thetas[method] = out
                            if ref_name is None and method in ("baseline", "jacobian"):
                                ref_name = method
                    if row.get("status") == "ok":
                        row["time"] = row["seconds"] if args.wall or dev != "cpu" else row["cpu_seconds"]
                        row["gflops_equivalent"] = 2.0 * n * n * C * P / row["time"] / 1e9
                        row["percent_of_float64_peak"] = 100.0 * row["gflops_equivalent"] / peak64
                    rows.append(row)
                    print(f"  {case:7s} n={n:5d} {method:9s} {row.get('status'):>8s} "
                          + (f"{row['seconds']:8.2f} s wall {row['cpu_seconds']:8.2f} s cpu  "
                             f"{row['gflops_equivalent']:8.1f} GFLOP/s eq.  "
                             f"RSS {row['rss'] / 2**30:5.2f} GiB  passes {row.get('passes')}  "
                             f"modes {row.get('modes')}" if row.get("status") == "ok" else ""),
                          flush=True)
                if ref_name is not None:
                    ref = np.load(thetas[ref_name])
                    base_t = next((r["time"] for r in rows if r["case"] == case and r["n"] == n
                                   and r["method"] == "baseline" and r.get("status") == "ok"), None)
                    for r in rows:
                        if r["case"] == case and r["n"] == n and r["method"] in thetas:
                            K = np.load(thetas[r["method"]])
                            r["reference"] = ref_name
                            r["max_rel_diff"] = float(np.abs(K - ref).max() / np.abs(ref).max())
                            if base_t is not None:
                                r["speedup_vs_baseline"] = base_t / r["time"]
    peak64_end = matmul_peak(torch.float64, dev, wall=args.wall)
    print()
    what = "wall s" if args.wall or dev != "cpu" else "cpu s"
    print(f"{'case':7s} {'n':>5s} {'P':>10s} {'method':9s} {what:>9s} {'GFLOP/s eq.':>12s} "
          f"{'% peak64':>9s} {'RSS GiB':>8s} {'rel.diff':>9s} {'speedup':>8s}  status")
    for r in rows:
        ok = r.get("status") == "ok"
        print(f"{r['case']:7s} {r['n']:5d} {r['parameters']:10,d} {r['method']:9s} "
              + (f"{r['time']:9.2f} {r['gflops_equivalent']:12.1f} {r['percent_of_float64_peak']:9.0f} "
                 f"{r['rss'] / 2**30:8.2f} {r.get('max_rel_diff', float('nan')):9.1e} "
                 f"{r.get('speedup_vs_baseline', float('nan')):8.2f}" if ok else " " * 62)
              + f"  {r.get('status')}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cpu_count": os.cpu_count(), "threads": args.threads or torch.get_num_threads(),
                        "device": dev, "torch": torch.__version__,
                        "float64_peak_gflops": max(peak64, peak64_end), "float32_peak_gflops": peak32},
            "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
