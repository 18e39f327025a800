"""Mercer spectrum on the sphere: mu_0..mu_K of G∞ for every built-in (issue 21).

    python benchmarks/bench_sphere.py [--degree 1000] [--dims 3 100] [--ref-degree 200]
                                      [--ref-degree-high-dim 60] [--high-full relu]
                                      [--no-reference] [--json bench_sphere.json]

For each built-in activation and dimension d, times ``actspec.spectra.sphere.sphere_spectrum(act, d, K)``
in float64 (best of ``--repeats`` calls after a warm-up call, so that one-off costs such as the
theta-tables of the dual functions are not counted; the first call's time is reported too) and
records the method, how many degrees are resolved (error estimate below 1 % of the value), the
fitted decay law and the predicted exponent.

Accuracy: the float64 eigenvalues are compared, for k <= ``--ref-degree``, with the extended-
precision ones (``precision="high"``, digits chosen automatically; available for the closed-form
activations, the ELU family and the smooth built-ins) on the degrees float64 calls resolved:
the largest relative error, and the largest ratio of the actual error to the reported error
estimate (<= 1 means the estimate is honest). The reference's own time is recorded; for the
``--high-full`` activations extended precision is also timed over all K degrees. Smooth
activations at large d need hundreds of digits and Hermite series of > 8192 terms for the
reference; where it is out of reach that is recorded instead.

Nothing here is part of the test suite. The machine is shared: the 1-minute load average is
recorded with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


def bench_one(name: str, dim: int, K: int, repeats: int, ref_degree: int | None) -> dict[str, Any]:
    from actspec.core.errors import ActspecError
    from actspec.spectra.sphere import sphere_spectrum

    t0 = time.perf_counter()
    res = sphere_spectrum(name, dim, K)
    first = time.perf_counter() - t0
    best = first
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sphere_spectrum(name, dim, K)
        best = min(best, time.perf_counter() - t0)
    law = res.decay
    row: dict[str, Any] = {
        "activation": name,
        "dim": dim,
        "degree": K,
        "method": res.method,
        "kernel_source": res.kernel_source,
        "seconds_first": round(first, 4),
        "seconds_best": round(best, 4),
        "resolved": int(res.resolved.sum()),
        "zero_pattern": res.zero_pattern,
        "law": law.describe() if law else None,
        "exponent": law.exponent if law else None,
        "local_exponent": law.local_exponent if law else None,
        "predicted_exponent": law.predicted_exponent if law else None,
        "load1": round(_load(), 2),
    }
    if ref_degree is None:
        return row
    Kr = min(K, ref_degree)
    t0 = time.perf_counter()
    try:
        ref = sphere_spectrum(name, dim, Kr, precision="high")
    except ActspecError as exc:
        row["reference"] = f"unavailable: {exc}"
        return row
    row["reference_seconds"] = round(time.perf_counter() - t0, 2)
    row["reference_digits"] = ref.digits
    mu, err = res.eigenvalues[: Kr + 1], res.errors[: Kr + 1]
    ok = res.resolved[: Kr + 1] & ref.resolved & (np.abs(ref.eigenvalues) > 0)
    zero = ref.zero if ref.zero is not None else np.zeros(Kr + 1, dtype=bool)
    ok &= ~zero
    if ok.any():
        diff = np.abs(mu - ref.eigenvalues)[ok]
        row["compared_degrees"] = int(ok.sum())
        row["max_relative_error"] = float(np.max(diff / np.abs(ref.eigenvalues[ok])))
        row["max_error_over_estimate"] = float(np.max(diff / np.maximum(err[ok], 1e-300)))
        head = ok & (np.arange(Kr + 1) <= 60)
        if head.any():
            row["max_relative_error_k_le_60"] = float(
                np.max(np.abs(mu - ref.eigenvalues)[head] / np.abs(ref.eigenvalues[head])))
    zr = np.flatnonzero(zero)
    if zr.size:  # the degrees that vanish: how small float64 leaves them, relative to mu_max
        row["max_zero_degree_value"] = float(np.max(np.abs(mu[zr])) / np.max(np.abs(mu)))
    row["reference_resolved"] = int(ref.resolved.sum())
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--degree", type=int, default=1000)
    p.add_argument("--dims", type=int, nargs="+", default=[3, 100])
    p.add_argument("--activations", nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--ref-degree", type=int, default=200)
    p.add_argument("--ref-degree-high-dim", type=int, default=60)
    p.add_argument("--high-full", nargs="*", default=["relu"])
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import torch

    from actspec import BUILTIN_NAMES

    names = list(args.activations or BUILTIN_NAMES)
    rows = []
    print(f"{'activation':11s} {'d':>4s} {'method':16s} {'first s':>8s} {'best s':>7s} {'resolved':>9s} "
          f"{'max rel err':>11s} {'err/est':>8s} {'law':30s}", flush=True)
    for dim in args.dims:
        for name in names:
            ref = None if args.no_reference else (args.ref_degree if dim <= 10 else args.ref_degree_high_dim)
            row = bench_one(name, dim, args.degree, args.repeats, ref)
            if name in args.high_full:
                from actspec.spectra.sphere import sphere_spectrum

                t0 = time.perf_counter()
                hi = sphere_spectrum(name, dim, args.degree, precision="high")
                row["high_full"] = {"seconds": round(time.perf_counter() - t0, 2), "digits": hi.digits,
                                    "resolved": int(hi.resolved.sum()),
                                    "law": hi.decay.describe() if hi.decay else None,
                                    "local_exponent": hi.decay.local_exponent if hi.decay else None}
                print(f"    high precision, all {args.degree + 1} degrees: {row['high_full']}", flush=True)
            rows.append(row)
            rel = row.get("max_relative_error")
            ratio = row.get("max_error_over_estimate")
            rel_s = "" if rel is None else f"{rel:11.1e}"
            ratio_s = "" if ratio is None else f"{ratio:8.2f}"
            print(f"{name:11s} {dim:4d} {row['method'][:16]:16s} {row['seconds_first']:8.3f} "
                  f"{row['seconds_best']:7.3f} {row['resolved']:5d}/{args.degree + 1:<4d}"
                  f"{rel_s:>11s} {ratio_s:>8s} {row['law'] or '':30s} {row.get('reference', '')[:60]}",
                  flush=True)
    out = {
        "settings": vars(args),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "platform": platform.platform()},
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
