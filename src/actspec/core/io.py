"""Safe output: files are written to a temporary name in the target directory and renamed, so an
interrupted or failed run never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ActspecError

__all__ = [
    "check_writable",
    "check_output_dir",
    "write_json",
    "without_timings",
    "TIMING_KEYS",
    "atomic_path",
    "run_metadata",
    "to_jsonable",
]


def check_writable(path: str | os.PathLike[str] | None, what: str = "output") -> Path | None:
    """Fail early (before any computation) when ``path`` cannot be written."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.exists() and p.is_dir():
        raise ActspecError(f"{what} path {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ActspecError(
            f"cannot write {what} {str(p)!r}: {str(parent)!r} is a file, not a directory"
        )
    if not parent.exists():
        raise ActspecError(
            f"cannot write {what} {str(p)!r}: directory {str(parent)!r} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK):
        raise ActspecError(
            f"cannot write {what} {str(p)!r}: directory {str(parent)!r} is not writable"
        )
    return p


def check_output_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Fail early when ``path`` cannot be used as an output directory (it may not exist yet:
    it is created later, so its nearest existing ancestor must be a writable directory)."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ActspecError(f"{what} {str(p)!r} is a file; give a directory (it is created if missing)")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ActspecError(f"cannot write into {what} {str(p)!r}: the directory is not writable")
        return p
    anc = p.absolute().parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ActspecError(
            f"cannot create {what} {str(p)!r}: {str(anc)!r} is a file, not a directory"
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ActspecError(
            f"cannot create {what} {str(p)!r}: directory {str(anc)!r} is not writable"
        )
    return p


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` on success only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        suffix = self.path.suffix
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.",
            suffix=f".tmp{suffix}",
            dir=self.path.parent if str(self.path.parent) else ".",
        )
        os.close(fd)
        self.tmp = Path(tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays to Python; non-finite floats to None (strict JSON has no inf/NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: JSON keys holding wall-clock measurements. They differ between two runs of the same command,
#: so :func:`write_json` leaves them out unless ``timings=True`` (the CLI's ``--timings``): the
#: same command and seed then give bit-identical JSON on the same machine.
TIMING_KEYS = frozenset(
    {"elapsed_s", "seconds", "seconds_per_epoch", "kernel_seconds", "gflops", "seconds_entries",
     "seconds_eigen"}
)


def without_timings(obj: Any) -> Any:
    """``obj`` with every key in :data:`TIMING_KEYS` removed, at any depth."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, (list, tuple)):
        return [without_timings(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any, *, timings: bool = True) -> None:
    """Write ``obj`` as strict JSON (NaN/inf as null), atomically.

    ``timings=False`` drops the wall-clock keys (:data:`TIMING_KEYS`) for reproducible output.
    """
    if not timings:
        obj = without_timings(obj)
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_metadata(**extra: Any) -> dict[str, Any]:
    """Versions and provenance recorded in every JSON result."""
    import scipy
    import torch

    from .version import __version__

    meta = {
        "actspec": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "git_revision": _git_revision(),
    }
    meta.update(extra)
    return meta


def array_digest(*arrays: Any) -> str:
    """SHA-256 of the shapes and float64 bytes of ``arrays`` (None entries are marked)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(repr(arr.shape).encode())
        h.update(arr.data.cast("B"))
    return h.hexdigest()
