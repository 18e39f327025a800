"""Memory guard: refuse dense n x n work that cannot fit, with the size it would need."""

from __future__ import annotations

from .errors import ActspecError

__all__ = ["available_memory", "dense_bytes", "check_dense_fits"]


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
