"""Resources: one budget for every command.

Before heavy work a command builds an :class:`Estimate` (``estimate(flops=..., bytes=...)``: time
from the flops at this machine's measured matmul rate, calibrated once per process; memory as
given) and calls :func:`check_budget`, which refuses (exit 2, one line) with the estimate and the
way out when it does not fit: memory against what the machine has available now, time against
the time budget (``ACTSPEC_MAX_SECONDS``, default 6 hours). The older helpers (dense n x n work,
disk space, the run-time model of a finite-width G) are kept and share the same numbers."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ActspecError
from .validate import ParameterError

__all__ = ["Estimate", "estimate", "check_budget", "time_budget", "memory_budget", "matmul_rate",
           "format_seconds", "format_bytes",
           "available_memory", "dense_bytes", "check_dense_fits", "check_disk_fits",
           "flops_per_neuron", "matmul_gflops", "estimate_seconds", "NEURON_SECONDS",
           "time_limit", "DEFAULT_MAX_HOURS", "table_seconds", "DEFAULT_TABLE_SECONDS"]

#: default time budget in seconds (6 h); ``ACTSPEC_MAX_SECONDS`` overrides it
DEFAULT_MAX_SECONDS = 6 * 3600.0
#: default of ``actspec spectrum --max-hours`` (4 h: a long run on a small machine, refused up front)
DEFAULT_MAX_HOURS = 4.0
#: default seconds one theta-table build may take (``ACTSPEC_TABLE_SECONDS`` overrides; 0: none)
DEFAULT_TABLE_SECONDS = 600.0
#: the share of the available memory one run may plan to use
MEMORY_SHARE = 0.9


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


@functools.cache
def _calibrate(dtype: str, device: str) -> float:
    import torch

    tdt = getattr(torch, dtype)
    size = 512
    a = torch.randn(size, size, dtype=tdt, device=device)
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
    return 2.0 * size**3 / max(best, 1e-9)


def matmul_rate(dtype: str = "float64", device: str = "cpu") -> float:
    """Flop/s of a dense matmul on ``device`` in ``dtype``: the best of four 512^3 products
    (about 0.05 s), measured once per process and then cached."""
    return _calibrate(str(dtype).replace("torch.", ""), str(device))


def matmul_gflops(dtype: str, device: str) -> float:
    """GFLOP/s of a dense matmul on ``device`` in ``dtype`` (:func:`matmul_rate`, cached)."""
    return matmul_rate(dtype, device) / 1e9


#: per-neuron cost of a finite-width G beyond its flops (drawing the weights, now on torch's
#: threads one chunk ahead of the GEMMs, phi' of the pre-activations, chunk bookkeeping):
#: 0.4-0.5 CPU µs per neuron measured at n = 4..200, d = 10..100
NEURON_SECONDS = 5e-7


def estimate_seconds(
    n: int, d: int, m: int, outputs: int, train: str, dtype: str, device: str
) -> float:
    """Run time of a width-m G: the flops at half the measured matmul rate plus
    :data:`NEURON_SECONDS` per neuron. The one finite-width time model (``actspec gram`` and
    ``actspec spectrum --width M`` both use it)."""
    rate = matmul_rate(dtype, device)
    return m * flops_per_neuron(n, d, outputs, train) / (0.5 * rate) + m * NEURON_SECONDS


# ---- the one budget ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What a piece of work will cost: ``seconds`` of run time and peak ``bytes`` of memory."""

    seconds: float
    bytes: int
    flops: float = 0.0
    rate: float = 0.0  # flop/s the time was computed with (0: no flops, no calibration)

    def describe(self) -> str:
        """``"about 3.2 h and 15.0 GiB"``."""
        return f"about {format_seconds(self.seconds)} and {format_bytes(self.bytes)}"


def format_seconds(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.2 h"``, ``"5.1 days"``, ``"2.0e+04 years"``."""
    s = float(seconds)
    if not math.isfinite(s):
        return "forever"
    if s < 90:
        return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 365 * 86400:
        return f"{s / 86400:.1f} days"
    return f"{s / (365.25 * 86400):.2g} years"


def format_bytes(nbytes: float) -> str:
    """``"512 MiB"``, ``"15.0 GiB"``, ``"3.0e+03 TiB"``."""
    b = float(nbytes)
    if b < 2**30:
        return f"{b / 2**20:.0f} MiB"
    if b < 2**40:
        return f"{b / 2**30:.1f} GiB"
    return f"{b / 2**40:.3g} TiB"


_TIME_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar("actspec_time_limit",
                                                                         default=None)


@contextlib.contextmanager
def time_limit(seconds: float | None):  # type: ignore[no-untyped-def]
    """Within the block, :func:`time_budget` is ``seconds`` (``None``: unchanged; 0 or inf: no
    limit). ``actspec spectrum --max-hours H`` runs its work inside ``time_limit(3600 H)``."""
    if seconds is None:
        yield
        return
    value = float(seconds)
    token = _TIME_LIMIT.set(math.inf if value <= 0 or not math.isfinite(value) else value)
    try:
        yield
    finally:
        _TIME_LIMIT.reset(token)


def _env_seconds(name: str, default: float) -> float:
    """The number in environment variable ``name``; ``default`` when unset, empty or not a
    number."""
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def time_budget() -> float:
    """Seconds one command may plan to run: the innermost :func:`time_limit` (``--max-hours``),
    else ``ACTSPEC_MAX_SECONDS``, else 6 hours."""
    override = _TIME_LIMIT.get()
    if override is not None:
        return override
    value = _env_seconds("ACTSPEC_MAX_SECONDS", DEFAULT_MAX_SECONDS)
    return value if value > 0 else DEFAULT_MAX_SECONDS


def table_seconds() -> float:
    """The time one theta-table build may take: ``ACTSPEC_TABLE_SECONDS`` (0 or negative: no
    limit), else :data:`DEFAULT_TABLE_SECONDS`. Built-ins ship their tables and smooth user
    activations build in seconds; a very steep one (``tanh(300*x)``: more than 5 minutes) is
    refused with this budget instead of running on silently."""
    value = _env_seconds("ACTSPEC_TABLE_SECONDS", DEFAULT_TABLE_SECONDS)
    return value if value > 0 and math.isfinite(value) else math.inf


def budget_source() -> str:
    """Where :func:`time_budget` comes from, for messages."""
    return "--max-hours" if _TIME_LIMIT.get() is not None else "ACTSPEC_MAX_SECONDS"


def memory_budget() -> int:
    """Bytes one command may plan to hold: 90 % of the memory available now."""
    return int(MEMORY_SHARE * available_memory())


def estimate(
    *,
    flops: float = 0.0,
    bytes: float = 0,  # noqa: A002 - the name the callers read best
    seconds: float = 0.0,
    dtype: str = "float64",
    device: str = "cpu",
    efficiency: float = 0.5,
    rate: float | None = None,
) -> Estimate:
    """The cost of ``flops`` floating-point operations holding ``bytes`` at peak.

    Time is ``flops / (efficiency * rate) + seconds``: ``rate`` (flop/s) defaults to this
    machine's measured matmul rate on ``device`` in ``dtype`` (:func:`matmul_rate`, one ~0.05 s
    calibration per process, skipped when ``flops`` is 0); ``seconds`` adds costs that are not
    flops (per-item overheads, I/O). ``efficiency`` is the share of the matmul rate the work
    reaches (0.5 for large GEMMs; lower for elementwise or Python-bound loops)."""
    f = max(0.0, float(flops))
    r = 0.0
    t = max(0.0, float(seconds))
    if f > 0:
        r = float(rate) if rate else matmul_rate(dtype, device)
        t += f / (max(efficiency, 1e-6) * r)
    b = float(bytes)
    nbytes = int(min(max(b, 0.0), 2.0**62)) if math.isfinite(b) else 2**62
    return Estimate(seconds=t, bytes=nbytes, flops=f, rate=r)


def check_budget(
    est: Estimate,
    *,
    what: str,
    way_out: str,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
) -> Estimate:
    """``est`` when it fits; else :class:`ParameterError` (an :class:`ActspecError`: one line,
    exit 2 from the CLI) saying what would not fit, the estimate, the budget, and ``way_out``.

    Memory is checked against ``max_bytes`` (default :func:`memory_budget`: 90 % of the memory
    available now), time against ``max_seconds`` (default :func:`time_budget`). ``what`` and
    ``way_out`` may name parameters as ``{-name}`` (the CLI shows them as its flags)."""
    have = memory_budget() if max_bytes is None else int(max_bytes)
    if est.bytes > have:
        raise ParameterError(
            f"{what} needs about {format_bytes(est.bytes)} of memory but only "
            f"{format_bytes(have)} is available; {way_out}"
        )
    limit = time_budget() if max_seconds is None else float(max_seconds)
    if est.seconds > limit:
        how = (f" at the {est.rate / 1e9:.3g} GFLOP/s measured on this machine"
               if est.rate else "")
        raise ParameterError(
            f"{what} would take about {format_seconds(est.seconds)}{how}, over the "
            f"{format_seconds(limit)} budget ({budget_source()}); {way_out}"
        )
    return est
