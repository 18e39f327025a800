"""Resources: refuse dense n x n work or outputs that cannot fit (memory, disk), with the size they
would need; the run-time model of a finite-width G (flops per neuron, measured GEMM rate)."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

from .errors import ActspecError
from .validate import ParameterError

__all__ = ["available_memory", "dense_bytes", "check_dense_fits", "check_disk_fits",
           "flops_per_neuron", "matmul_gflops", "estimate_seconds"]


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or a conservative 4 GiB if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def dense_bytes(n: int, copies: float = 3.0) -> int:
    """Peak bytes of a dense float64 n x n computation holding ``copies`` matrices."""
    return int(copies * 8 * n * n)


def check_dense_fits(
    n: int,
    what: str = "G",
    copies: float = 3.0,
    fix: str = "use a smaller --n, or the matrix-free actspec.largescale.extreme_eigenvalues for "
    "the extreme eigenvalues",
) -> None:
    """Refuse (ActspecError) a dense n x n float64 computation that cannot fit in memory;
    ``fix`` ends the message (what to do instead)."""
    need = dense_bytes(n, copies)
    have = available_memory()
    if need > 0.9 * have:
        raise ActspecError(
            f"dense {what} for n={n} needs about {need / 2**30:.1f} GiB (float64, {copies:g} n x n "
            f"arrays) but only {have / 2**30:.1f} GiB is available; {fix}"
        )


def check_disk_fits(path: str | os.PathLike[str], need: int, param: str) -> None:
    """Refuse (ParameterError naming ``param``) an output of ``need`` bytes that cannot fit on the
    disk holding ``path``."""
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    free = shutil.disk_usage(parent).free
    if need > free:
        raise ParameterError(
            f"{{-{param}}} {str(p)!r} needs about {need / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB is free on its disk; choose another directory or a smaller {{-n}}"
        )


# ---- run-time model of the finite-width G (neuron by neuron GEMMs) -------------------------------


def flops_per_neuron(n: int, d: int, outputs: int, train: str) -> float:
    """Flops one neuron adds: X w (2nd), plus 2(nC)^2 for G and 2n^2 for H (full products)."""
    f = 2.0 * n * d
    if train in ("hidden", "both"):
        f += 2.0 * (n * outputs) ** 2
    if train in ("both", "output"):
        f += 2.0 * n * n
    return f


def matmul_gflops(dtype: str, device: str) -> float:
    """Best GFLOP/s of a 1024^3 matmul on ``device`` in ``dtype`` (a ~0.1 s calibration)."""
    import torch

    tdt = getattr(torch, dtype)
    a = torch.randn(1024, 1024, dtype=tdt, device=device)
    cuda = str(device).startswith("cuda")
    best = math.inf
    for _ in range(4):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ a
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * 1024**3 / max(best, 1e-9) / 1e9


def estimate_seconds(
    n: int, d: int, m: int, outputs: int, train: str, dtype: str, device: str
) -> float:
    """Rough run time of a width-m G: the flops at half the measured matmul rate, plus a third of
    the RNG time (~70 µs per neuron at d = 3072, mostly hidden behind the GEMMs)."""
    rate = matmul_gflops(dtype, device) * 1e9
    return m * flops_per_neuron(n, d, outputs, train) / (0.5 * rate) + m * d * 8e-9
