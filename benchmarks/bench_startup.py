"""First-run and second-run wall time of small spectra (issue 20, item 1).

    python benchmarks/bench_startup.py [--repeats 3] [--json /tmp/bench_startup.json]

Runs, as fresh processes, ``actspec spectrum -a elu -a tanh -a swish --n 50``:

* with an empty user cache (``ACTSPEC_CACHE_DIR`` a new directory): the first run of a new
  install. The three θ-tables ship with the package, so nothing is built or written;
* the same command again (second run);
* the same with ``--no-cache`` (the user's cache off; the shipped tables stay: they are part of
  the package);
* with the shipped tables switched off in the process and an empty cache: what every first run
  cost before the tables shipped (3 tables built and written);

and ``actspec spectrum -a relu --n 50`` (closed form, no table) as the reference. It prints the
seconds of each (median of the repeats), their ratios to the relu run, and the load average.
Runs are interleaved per repeat, so a change of the machine's load hits all of them alike.
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
# a fresh process exactly as `python -m actspec ARGS`, optionally without the shipped tables
_LAUNCH = (
    "import sys\n"
    "if sys.argv[1] == 'no-shipped':\n"
    "    import actspec.kernels.shipped_tables as s\n"
    "    s.load = lambda *a, **k: None\n"
    "sys.argv = ['actspec', *sys.argv[2:]]\n"
    "import runpy\n"
    "runpy.run_module('actspec', run_name='__main__')\n"
)


def _run(args: list[str], cache: str, *, shipped: bool = True) -> float:
    env = {**os.environ, "ACTSPEC_CACHE_DIR": cache}
    env.pop("ACTSPEC_NO_CACHE", None)
    mode = "shipped" if shipped else "no-shipped"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LAUNCH, mode, *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _tables_in(cache: str) -> int:
    return sum(1 for _, _, files in os.walk(cache) for f in files if f.endswith(".npz"))


LABELS = {
    "relu": "spectrum -a relu --n 50 (closed form)",
    "first": "elu+tanh+swish, empty cache (first run)",
    "second": "elu+tanh+swish, second run",
    "no_cache": "elu+tanh+swish, --no-cache",
    "built": "elu+tanh+swish, tables built (not shipped)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the measurements here (e.g. /tmp/...)")
    opts = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in LABELS}
    written: dict[str, list[int]] = {"first": [], "built": []}
    load = [os.getloadavg()[0]]
    for _ in range(opts.repeats):
        with tempfile.TemporaryDirectory(prefix="actspec-bench-cache-") as cache:
            times["relu"].append(_run(RELU, cache))
            times["first"].append(_run(SMOOTH, cache))
            written["first"].append(_tables_in(cache))
            times["second"].append(_run(SMOOTH, cache))
        with tempfile.TemporaryDirectory(prefix="actspec-bench-cache-") as cache:
            times["no_cache"].append(_run(["--no-cache", *SMOOTH], cache))
        with tempfile.TemporaryDirectory(prefix="actspec-bench-cache-") as cache:
            times["built"].append(_run(SMOOTH, cache, shipped=False))
            written["built"].append(_tables_in(cache))
        load.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'run':<44} {'seconds':>8} {'/ relu':>7}")
    for k, label in LABELS.items():
        print(f"{label:<44} {med[k]:8.2f} {med[k] / med['relu']:7.2f}")
    print(f"tables written to the user cache: first run {written['first']}, "
          f"not shipped {written['built']}")
    print(f"load average (1 min) {min(load):.1f}..{max(load):.1f} on {os.cpu_count()} cores; "
          f"{opts.repeats} repeats, median")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"seconds": times, "median": med,
                       "ratio_to_relu": {k: med[k] / med["relu"] for k in med},
                       "tables_written": written, "loadavg": load}, f, indent=1)


if __name__ == "__main__":
    main()
