"""First-run and second-run wall time of small spectra (issue 20, item 1).

    python benchmarks/bench_startup.py [--repeats 3] [--json out.json]

Runs, as fresh processes, ``actspec spectrum -a elu -a tanh -a swish --n 50`` with an empty
θ-table cache directory (first run: the three tables are built and written), the same command
again (second run: the tables are read from disk), the same with ``--no-cache``, and
``actspec spectrum -a relu --n 50`` (closed form, no table) as the reference. It prints the
seconds of each (median of the repeats) and their ratios to the relu run. Each repeat uses a new
cache directory (``ACTSPEC_CACHE_DIR``), so nothing from an earlier run is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SMOOTH = ["spectrum", "-a", "elu", "-a", "tanh", "-a", "swish", "--n", "50"]
RELU = ["spectrum", "-a", "relu", "--n", "50"]


def _run(args: list[str], cache: str, extra_env: dict[str, str] | None = None) -> float:
    env = {**os.environ, "ACTSPEC_CACHE_DIR": cache, **(extra_env or {})}
    env.pop("ACTSPEC_NO_CACHE", None)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "actspec", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the measurements here")
    opts = ap.parse_args()
    times: dict[str, list[float]] = {"relu": [], "first": [], "second": [], "no_cache": []}
    for _ in range(opts.repeats):
        with tempfile.TemporaryDirectory(prefix="actspec-bench-cache-") as cache:
            times["relu"].append(_run(RELU, cache))
            times["first"].append(_run(SMOOTH, cache))
            times["second"].append(_run(SMOOTH, cache))
        with tempfile.TemporaryDirectory(prefix="actspec-bench-cache-") as cache:
            times["no_cache"].append(_run(["--no-cache", *SMOOTH], cache))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'run':<40} {'seconds':>8} {'/ relu':>7}")
    labels = {"relu": "spectrum -a relu --n 50", "first": "elu+tanh+swish, empty cache (first run)",
              "second": "elu+tanh+swish, second run (from disk)", "no_cache": "elu+tanh+swish, --no-cache"}
    for k, label in labels.items():
        print(f"{label:<40} {med[k]:8.2f} {med[k] / med['relu']:7.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {opts.repeats} repeats, median")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"seconds": times, "median": med, "loadavg": os.getloadavg()}, f, indent=1)


if __name__ == "__main__":
    main()
