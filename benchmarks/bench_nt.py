"""actspec vs neural-tangents: infinite-width NTK of a two-layer net (issue 9, item 4).

    python benchmarks/bench_nt.py [--nt-python /tmp/ntvenv/bin/python] [--n 1000 2000 4000 8000]
                                  [--d 3072] [--repeats 3] [--json bench_nt.json]

For random unit-norm rows X (n x d), times, in float64,

* actspec:          ``actspec.gram(X, act, train="both")``  (G-infinity + H-infinity),
* neural-tangents:  ``kernel_fn(X, None, "ntk")`` of
  ``stax.serial(stax.Dense(1, W_std=sqrt(d)), <act>, stax.Dense(1))`` (``jax.jit``-compiled,
  ``jax_enable_x64``), for act = ReLU (``stax.Relu()``) and Erf (``stax.Erf()`` = erf(x)),

each as the best of ``--repeats`` calls after one warm-up call at the same shape (for
neural-tangents the warm-up is the jit compilation; its time is reported separately), and the
torch float64 4096 x 4096 matmul GFLOP/s of this machine, measured at the start and the end of
the same run, for context. neural-tangents runs in a subprocess of a python that has it (it needs
an old jax, so normally a separate venv: see benchmarks/README.md); the two exchange X and the
kernels through .npy files in a temporary directory, and never run at the same time.

Convention mapping (checked at small n before any timing). neural-tangents uses the NTK
parameterisation: a Dense layer computes (W_std / sqrt(fan_in)) W x (+ b_std b, here no bias).
With W_std = sqrt(d) in the first layer the pre-activation covariance is <x_i, x_j> = rho_ij
for unit-norm rows, and the NTK of the two layers (readout W_std = 1) is

    Theta_ij = rho_ij E[phi'(u) phi'(v)]  +  E[phi(u) phi(v)]  =  G-inf_ij + H-inf_ij,

the gradient w.r.t. the first layer plus the gradient w.r.t. the readout: exactly actspec's
``train="both"`` kernel in its DZPS setting f = (1/sqrt(m)) sum_k a_k phi(w_k . x).

Accuracy: besides max |actspec - nt| (overall, off the diagonal, on the diagonal), both kernels
are compared on a random subset of rows and columns with a closed form evaluated in long double
(ReLU: arc-cosine kernels; Erf: the arcsin kernel), with the diagonal taken as the exact
correlation-1 value. ReLU's kernel is only Hoelder-1/2 in rho at rho = 1 (theta = arccos rho),
so a last-ulp error in a computed correlation of 1 turns into ~1e-8 on the diagonal: that is
where the two libraries can differ for ReLU, and the reference says which one is right.

Nothing here is part of the test suite. The machine is shared: the 1-minute load average is
recorded with every row; timings are the best of several calls.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ACTS = ("relu", "erf")
WORKER_FLAG = "--_nt-worker"
PROBE_FLAG = "--_nt-probe"


# ---------------------------------------------------------------------------------------------
# neural-tangents side (runs in the subprocess; imports only numpy, jax, neural_tangents)
# ---------------------------------------------------------------------------------------------


def _nt_setup() -> tuple[Any, Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt

    return jax, jnp, nt


def _nt_versions() -> dict[str, str]:
    jax, _, nt = _nt_setup()
    import jaxlib

    return {
        "neural_tangents": nt.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "jax_devices": ", ".join(str(dev) for dev in jax.devices()),
    }


def _nt_kernel_fn(act: str, d: int) -> Any:
    from neural_tangents import stax

    layer = {"relu": stax.Relu(), "erf": stax.Erf(a=1.0, b=1.0, c=0.0)}[act]
    first = stax.Dense(1, W_std=math.sqrt(d), b_std=None)
    _, _, kernel_fn = stax.serial(first, layer, stax.Dense(1, W_std=1.0))
    return kernel_fn


def nt_worker(job_path: str) -> None:
    """Subprocess entry: time kernel_fn for each activation on X, save the kernels."""
    job = json.loads(Path(job_path).read_text())
    jax, jnp, _ = _nt_setup()
    X = np.load(job["X"])
    if X.dtype != np.float64:
        raise SystemExit(f"X must be float64, got {X.dtype}")
    out: dict[str, Any] = {"versions": _nt_versions(), "acts": {}}
    for act in job["acts"]:
        kernel_fn = jax.jit(_nt_kernel_fn(act, X.shape[1]), static_argnames="get")
        x = jnp.asarray(X)
        x.block_until_ready()
        t0 = time.perf_counter()
        K = kernel_fn(x, None, "ntk")
        K.block_until_ready()
        first = time.perf_counter() - t0
        if K.dtype != jnp.float64:
            raise SystemExit(f"neural-tangents returned {K.dtype}: jax_enable_x64 did not take effect")
        times = []
        for _ in range(job["repeats"]):
            del K
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            K = kernel_fn(x, None, "ntk")
            K.block_until_ready()
            times.append({"s": time.perf_counter() - t0, "load1_before": load})
        path = str(Path(job["out"]) / f"nt_{act}.npy")
        np.save(path, np.asarray(K))
        del K
        out["acts"][act] = {"first_call_s": first, "times": times, "kernel": path}
    Path(job["out"], "nt_result.json").write_text(json.dumps(out))


def nt_probe() -> None:
    """Subprocess entry: print the versions and check a tiny float64 kernel against a closed form."""
    _nt_setup()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    K = np.asarray(_nt_kernel_fn("erf", 3)(X, None, "ntk"))
    r = X @ X.T
    ref = r * 4 / np.pi / np.sqrt(9 - 4 * r * r) + 2 / np.pi * np.arcsin(2 * r / 3)
    err = float(np.abs(K - ref).max())
    print(json.dumps({"versions": _nt_versions(), "dtype": str(K.dtype), "err": err}))


# ---------------------------------------------------------------------------------------------
# main side (system python with actspec and torch)
# ---------------------------------------------------------------------------------------------


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def matmul_peak_f64(size: int = 4096, repeats: int = 4) -> dict[str, Any]:
    """torch float64 square-matmul GFLOP/s (best of ``repeats`` after one warm-up)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, dtype=torch.float64, generator=gen)
    b = torch.randn(size, size, dtype=torch.float64, generator=gen)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return {
        "size": size,
        "best_s": best,
        "gflops": 2 * size**3 / best / 1e9,
        "load1": _load1(),
        "torch_threads": torch.get_num_threads(),
    }


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def reference_block(X: np.ndarray, idx: np.ndarray, act: str) -> np.ndarray:
    """Closed-form G-inf + H-inf on rows/columns ``idx`` in long double (diagonal exact)."""
    Xs = X[idx].astype(np.longdouble)
    S = Xs @ Xs.T
    sq = np.diag(S).copy()
    pi = np.arccos(np.longdouble(-1))
    if act == "relu":
        nrm = np.sqrt(sq)
        c = np.clip(S / np.outer(nrm, nrm), -1, 1)
        np.fill_diagonal(c, 1)
        th = np.arccos(c)
        return S * (pi - th) / (2 * pi) + np.outer(nrm, nrm) * (np.sin(th) + (pi - th) * c) / (2 * pi)
    if act == "erf":
        q = np.sqrt(np.outer(1 + 2 * sq, 1 + 2 * sq))
        return S * (4 / pi) / np.sqrt(q * q - 4 * S * S) + (2 / pi) * np.arcsin(2 * S / q)
    raise ValueError(act)


def compare(A: np.ndarray, K: np.ndarray, X: np.ndarray, act: str, sample: int, seed: int) -> dict[str, Any]:
    n = A.shape[0]
    diff_max_off = 0.0
    for lo in range(0, n, 1024):  # blockwise: no extra n x n temporaries
        hi = min(n, lo + 1024)
        D = np.abs(A[lo:hi] - K[lo:hi])
        D[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        diff_max_off = max(diff_max_off, float(D.max()))
    diff_diag = float(np.abs(np.diag(A) - np.diag(K)).max())
    idx = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(n, sample), replace=False))
    R = reference_block(X, idx, act)
    ea = np.abs(A[np.ix_(idx, idx)] - R)
    ek = np.abs(K[np.ix_(idx, idx)] - R)
    return {
        "max_abs_diff": max(diff_max_off, diff_diag),
        "max_abs_diff_offdiag": diff_max_off,
        "max_abs_diff_diag": diff_diag,
        "ref_sample": int(len(idx)),
        "actspec_err_vs_ref": float(ea.max()),
        "actspec_err_vs_ref_offdiag": float((ea - np.diag(np.diag(ea))).max()),
        "nt_err_vs_ref": float(ek.max()),
        "nt_err_vs_ref_offdiag": float((ek - np.diag(np.diag(ek))).max()),
        "kernel_max": float(np.abs(A).max()),
        "lambda_max": _lambda_max(A),
    }


def _lambda_max(A: np.ndarray) -> float:
    """Largest eigenvalue of the (symmetric) actspec kernel, for errors relative to it."""
    from scipy.sparse.linalg import eigsh

    return float(eigsh(A, k=1, which="LA", return_eigenvectors=False, tol=1e-8)[0])


def find_nt_python(arg: str | None) -> tuple[str | None, str]:
    if arg:
        return arg, "--nt-python"
    env = os.environ.get("ACTSPEC_NT_PYTHON")
    if env:
        return env, "ACTSPEC_NT_PYTHON"
    import importlib.util

    if importlib.util.find_spec("neural_tangents") is not None:
        return sys.executable, "current interpreter"
    return None, "no --nt-python, no ACTSPEC_NT_PYTHON, and neural_tangents not importable here"


def _sub_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("PYTHONPATH", None)  # keep the system site-packages out of the venv
    return env


def probe_nt(python: str) -> dict[str, Any]:
    proc = subprocess.run(
        [python, __file__, PROBE_FLAG], capture_output=True, text=True, env=_sub_env(), timeout=600
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError("neural-tangents probe failed: " + " | ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_nt(python: str, X_path: str, acts: list[str], repeats: int, tmp: str) -> dict[str, Any]:
    job = Path(tmp, "job.json")
    job.write_text(json.dumps({"X": X_path, "acts": acts, "repeats": repeats, "out": tmp}))
    proc = subprocess.run(
        [python, __file__, WORKER_FLAG, str(job)], capture_output=True, text=True, env=_sub_env()
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise RuntimeError(f"neural-tangents worker failed (rc {proc.returncode}): {' | '.join(tail)}")
    return json.loads(Path(tmp, "nt_result.json").read_text())


def time_actspec(X: np.ndarray, act: str, repeats: int) -> tuple[np.ndarray, dict[str, Any]]:
    import actspec

    t0 = time.perf_counter()
    A = actspec.gram(X, act, train="both")  # warm-up (builds any tables)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        del A
        load = _load1()
        t0 = time.perf_counter()
        A = actspec.gram(X, act, train="both")
        times.append({"s": time.perf_counter() - t0, "load1_before": load})
    return A, {"first_call_s": first, "times": times}


BASELINE_FLAG = "--_baseline-worker"


def baseline_worker(job_path: str) -> None:
    """Subprocess entry: time actspec.gram(X, act, train="both") of whichever actspec this
    interpreter imports (PYTHONPATH = --baseline-src), as :func:`time_actspec` does."""
    job = json.loads(Path(job_path).read_text())
    import actspec

    X = np.load(job["X"])
    _, ta = time_actspec(X, job["act"], job["repeats"])
    ta["actspec_file"] = actspec.__file__
    Path(job["out"]).write_text(json.dumps(ta))


def run_baseline(src: str, X_path: str, act: str, repeats: int, tmp: str) -> dict[str, Any]:
    job = Path(tmp, "baseline_job.json")
    out = Path(tmp, "baseline_result.json")
    job.write_text(json.dumps({"X": X_path, "act": act, "repeats": repeats, "out": str(out)}))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(src).resolve())
    proc = subprocess.run([sys.executable, __file__, BASELINE_FLAG, str(job)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise RuntimeError(f"baseline worker failed (rc {proc.returncode}): {' | '.join(tail)}")
    return json.loads(out.read_text())


def time_xxt(X: np.ndarray, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        G = X @ X.T
        best = min(best, time.perf_counter() - t0)
        del G
    return best


def _fmt(v: float | None, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-".rjust(int(spec.split(".")[0]))
    return format(v, spec)


def print_table(rows: list[dict[str, Any]], peak: float) -> None:
    head = (
        f"{'act':<5} {'n':>6} {'XX^T s':>7} {'actspec s':>9} {'nt s':>8} {'nt/act':>7} "
        f"{'max|diff|':>9} {'offdiag':>9} {'act err':>9} {'nt err':>9} {'load1':>5}"
    )
    print(f"\nmatmul peak (torch float64 4096^2, best of start/end): {peak:.1f} GFLOP/s")
    print(head)
    print("-" * len(head))
    if any("baseline_s" in r for r in rows):
        print("with --baseline-src (same run, same X):")
        for r in rows:
            if "baseline_s" in r:
                print(f"  {r['act']:<5} {r['n']:>6}: baseline {r['baseline_s']:.3f} s -> this "
                      f"{r['actspec_s']:.3f} s; nt/baseline {_fmt(r.get('ratio_baseline'), '5.2f')}"
                      f" -> nt/this {_fmt(r.get('ratio'), '5.2f')}; actspec/XX^T "
                      f"{r['baseline_s'] / r['xxt_s'] if r.get('xxt_s') else float('nan'):.2f} -> "
                      f"{r['actspec_s'] / r['xxt_s'] if r.get('xxt_s') else float('nan'):.2f}; "
                      f"nt/XX^T {_fmt(r.get('nt_over_xxt'), '5.2f')}")
    for r in rows:
        c = r.get("compare", {})
        print(
            f"{r['act']:<5} {r['n']:>6} {_fmt(r.get('xxt_s'), '7.3f')} {_fmt(r['actspec_s'], '9.3f')} "
            f"{_fmt(r.get('nt_s'), '8.3f')} {_fmt(r.get('ratio'), '7.2f')} "
            f"{_fmt(c.get('max_abs_diff'), '9.1e')} {_fmt(c.get('max_abs_diff_offdiag'), '9.1e')} "
            f"{_fmt(c.get('actspec_err_vs_ref'), '9.1e')} {_fmt(c.get('nt_err_vs_ref'), '9.1e')} "
            f"{r['load1']:>5.2f}"
        )
    print(
        "nt/act = nt s / actspec s (>1: actspec faster); max|diff| = max |actspec - nt| over the whole\n"
        "kernel, offdiag = the same off the diagonal; act err / nt err = max error vs the long-double\n"
        "closed form on a random sub-block (diagonal included); load1 = max 1-minute load average seen."
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    p.add_argument("--d", type=int, default=3072)
    p.add_argument("--acts", nargs="+", default=list(ACTS), choices=ACTS)
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (best is kept)")
    p.add_argument("--check-n", type=int, default=300, help="n of the convention check before timing")
    p.add_argument("--check-tol", type=float, default=1e-10, help="off-diagonal tolerance of the check")
    p.add_argument("--sample", type=int, default=200, help="rows/cols compared with the reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nt-python", default=None, help="python with neural_tangents (else $ACTSPEC_NT_PYTHON)")
    p.add_argument("--json", default="bench_nt.json", help="where to write all measurements")
    p.add_argument("--no-xxt", action="store_true", help="skip timing X @ X.T (numpy) for context")
    p.add_argument("--baseline-src", default=None,
                   help="also time the actspec of this source tree (e.g. a git worktree's src/ "
                        "at an older commit) right after this one, in a subprocess, for a "
                        "before/after ratio measured in the same conditions")
    args = p.parse_args(argv)

    import torch

    import actspec

    result: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "actspec": getattr(actspec, "__version__", "?"),
        },
        "args": vars(args),
        "rows": [],
    }
    peaks = [matmul_peak_f64()]
    first = peaks[0]
    print(f"matmul peak at start: {first['gflops']:.1f} GFLOP/s (load {first['load1']:.2f})", flush=True)

    nt_python, why = find_nt_python(args.nt_python)
    nt_ok = False
    if nt_python is not None:
        try:
            probe = probe_nt(nt_python)
            result["neural_tangents"] = {"python": nt_python, "found_by": why, **probe}
            nt_ok = probe["dtype"] == "float64" and probe["err"] < 1e-12
            v = probe["versions"]
            print(
                f"neural-tangents {v['neural_tangents']} (jax {v['jax']}, jaxlib {v['jaxlib']}, numpy "
                f"{v['numpy']}, python {v['python']}) via {nt_python}; probe err {probe['err']:.1e}",
                flush=True,
            )
            if not nt_ok:
                print(f"SKIP neural-tangents: probe failed ({probe})", flush=True)
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
            print(f"SKIP neural-tangents: {exc}", flush=True)
            result["neural_tangents"] = {"python": nt_python, "error": str(exc)}
    else:
        print(f"SKIP neural-tangents: {why}; timing actspec only", flush=True)
        result["neural_tangents"] = {"error": why}

    tmp = tempfile.mkdtemp(prefix="bench_nt_")
    try:
        if nt_ok:
            X = unit_rows(args.check_n, args.d, args.seed + 12345)
            np.save(Path(tmp, "X.npy"), X)
            nt_res = run_nt(nt_python, str(Path(tmp, "X.npy")), args.acts, 0, tmp)  # type: ignore[arg-type]
            checks = {}
            for act in args.acts:
                A = actspec.gram(X, act, train="both")
                K = np.load(nt_res["acts"][act]["kernel"])
                checks[act] = compare(A, K, X, act, args.check_n, args.seed)
                ok = checks[act]["max_abs_diff_offdiag"] <= args.check_tol
                c = checks[act]
                print(
                    f"check {act} n={args.check_n}: max|actspec-nt| off-diagonal "
                    f"{c['max_abs_diff_offdiag']:.1e}, diagonal {c['max_abs_diff_diag']:.1e}; "
                    f"vs long-double reference: actspec {c['actspec_err_vs_ref']:.1e}, "
                    f"nt {c['nt_err_vs_ref']:.1e} -> {'ok' if ok else 'MISMATCH'}",
                    flush=True,
                )
                if not ok:
                    print("conventions do not match: not timing neural-tangents", flush=True)
                    nt_ok = False
            result["check"] = checks

        for n in args.n:
            X = unit_rows(n, args.d, args.seed)
            xxt = None if args.no_xxt else time_xxt(X, 2)
            X_path = str(Path(tmp, "X.npy"))
            np.save(X_path, X)
            kernels = {}
            for act in args.acts:
                A, ta = time_actspec(X, act, args.repeats)
                kernels[act] = A
                row: dict[str, Any] = {
                    "act": act,
                    "n": n,
                    "d": args.d,
                    "xxt_s": xxt,
                    "actspec": ta,
                    "actspec_s": min(t["s"] for t in ta["times"]),
                }
                result["rows"].append(row)
                print(f"actspec {act} n={n}: {row['actspec_s']:.3f} s (load {_load1():.2f})", flush=True)
                if args.baseline_src:
                    tb = run_baseline(args.baseline_src, X_path, act, args.repeats, tmp)
                    row["baseline"] = tb
                    row["baseline_s"] = min(t["s"] for t in tb["times"])
                    print(f"baseline {act} n={n}: {row['baseline_s']:.3f} s ({tb['actspec_file']}, "
                          f"load {_load1():.2f})", flush=True)
            if nt_ok:
                del A
                try:
                    nt_res = run_nt(nt_python, X_path, args.acts, args.repeats, tmp)  # type: ignore[arg-type]
                except RuntimeError as exc:
                    print(f"neural-tangents failed at n={n}: {exc}", flush=True)
                    nt_res = None  # type: ignore[assignment]
                for row in result["rows"][-len(args.acts) :]:
                    act = row["act"]
                    if nt_res is None:
                        row["nt_error"] = "worker failed"
                        continue
                    r = nt_res["acts"][act]
                    row["nt"] = {"first_call_s": r["first_call_s"], "times": r["times"]}
                    row["nt_s"] = min(t["s"] for t in r["times"])
                    row["ratio"] = row["nt_s"] / row["actspec_s"]
                    if "baseline_s" in row:
                        row["ratio_baseline"] = row["nt_s"] / row["baseline_s"]
                    if row.get("xxt_s"):
                        row["nt_over_xxt"] = row["nt_s"] / row["xxt_s"]
                    K = np.load(r["kernel"], mmap_mode="r")
                    row["compare"] = compare(kernels[act], K, X, act, args.sample, args.seed)
                    del K
                    os.remove(r["kernel"])
                    c = row["compare"]
                    print(
                        f"nt {act} n={n}: {row['nt_s']:.3f} s (compile+first {r['first_call_s']:.2f} s), "
                        f"ratio {row['ratio']:.2f}, max|diff| {c['max_abs_diff']:.1e}; vs closed form "
                        f"actspec {c['actspec_err_vs_ref'] / c['lambda_max']:.1e} lambda_max, nt "
                        f"{c['nt_err_vs_ref'] / c['lambda_max']:.1e} lambda_max "
                        f"(lambda_max {c['lambda_max']:.4g})",
                        flush=True,
                    )
            for row in result["rows"][-len(args.acts) :]:
                loads = [t["load1_before"] for t in row["actspec"]["times"]]
                loads += [t["load1_before"] for t in row.get("nt", {}).get("times", [])]
                loads += [t["load1_before"] for t in row.get("baseline", {}).get("times", [])]
                row["load1"] = max(loads)
            del kernels
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    peaks.append(matmul_peak_f64())
    result["matmul_peak"] = {"runs": peaks, "best_gflops": max(q["gflops"] for q in peaks)}
    print_table(result["rows"], result["matmul_peak"]["best_gflops"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == WORKER_FLAG:
        nt_worker(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == BASELINE_FLAG:
        baseline_worker(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == PROBE_FLAG:
        nt_probe()
    else:
        sys.exit(main())
