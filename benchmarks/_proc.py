"""Peak-memory helpers shared by the benchmark scripts (Linux /proc; None/False elsewhere)."""

from __future__ import annotations


def status_kib(field: str) -> int | None:
    """A kB field of /proc/self/status (e.g. VmHWM, VmRSS), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the process's peak resident set (VmHWM) through /proc/self/clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
