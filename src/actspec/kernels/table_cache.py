"""On-disk cache of kernel tables (issue 20): a second process never rebuilds a table.

Where: ``$ACTSPEC_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/actspec``, else
``~/.cache/actspec``; below it one directory per actspec version and per table format
(:data:`FORMAT_VERSION`, bumped whenever the stored format or the quadrature that fills the
tables changes). ``ACTSPEC_NO_CACHE=1`` (the CLI's root ``--no-cache``) neither reads nor writes.
The tables shipped with the package (:mod:`.shipped_tables`) are looked up before this cache
and are used whatever ACTSPEC_NO_CACHE says: the built-ins' common tables never reach this directory.

Each entry is one ``.npz`` file named by the SHA-256 of its key; the key itself is stored in the
file, with a digest of the arrays, and both are compared on load, so a file that is truncated,
corrupt, from another key or altered is ignored (and overwritten by the next build), never
trusted. Files are written to a temporary file in the same directory and moved into place with
``os.replace``: concurrent writers of the same entry are safe (the last complete file wins; all
hold the same values). Every failure to read or write (read-only directory, full disk) falls back
to building in memory: one debug log line, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.io import atomic_path
from ..core.version import __version__

__all__ = ["FORMAT_VERSION", "arrays_digest", "cache_root", "cache_dir", "enabled", "load", "save"]

FORMAT_VERSION = 1  # bump when the stored format or the quadrature behind the tables changes

log = logging.getLogger(__name__)

_KEY = "__key__"
_DIGEST = "__digest__"


def enabled() -> bool:
    """False when ``ACTSPEC_NO_CACHE`` is set to 1/true/yes/on (read at every call: the CLI sets
    it after import)."""
    return os.environ.get("ACTSPEC_NO_CACHE", "").strip().lower() not in ("1", "true", "yes", "on")


def cache_root() -> Path:
    """``$ACTSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/actspec``, else ``~/.cache/actspec``."""
    explicit = os.environ.get("ACTSPEC_CACHE_DIR", "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec: relative paths are invalid and ignored
        return Path(xdg) / "actspec"
    return Path.home() / ".cache" / "actspec"


def cache_dir(kind: str) -> Path:
    """The directory of one kind of entry for this actspec version and table format."""
    return cache_root() / __version__ / f"{kind}-f{FORMAT_VERSION}"


def arrays_digest(key: str, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of ``key`` and the names, dtypes, shapes and bytes of ``arrays``."""
    h = hashlib.sha256(key.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _path(kind: str, key: str) -> Path:
    return cache_dir(kind) / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.npz"


def load(kind: str, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None (disabled, absent, unreadable, or not exactly
    what was written for this key). The caller still checks shapes and values."""
    if not enabled():
        return None
    try:
        path = _path(kind, key)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: np.array(z[name]) for name in z.files}
        stored_key = arrays.pop(_KEY, None)
        stored_digest = arrays.pop(_DIGEST, None)
        if stored_key is None or stored_digest is None or str(stored_key[()]) != key:
            log.debug("table cache: %s holds another key; ignored", path)
            return None
        if str(stored_digest[()]) != arrays_digest(key, arrays):
            log.debug("table cache: %s fails its digest; ignored", path)
            return None
        return arrays
    except Exception as exc:  # noqa: BLE001 - a cache never fails the computation
        log.debug("table cache: cannot read %r: %s", key, exc)
        return None


def save(kind: str, key: str, arrays: dict[str, np.ndarray]) -> bool:
    """Store ``arrays`` under ``key`` atomically; False (and nothing half-written) on failure."""
    if not enabled():
        return False
    try:
        path = _path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {name: np.asarray(a) for name, a in arrays.items()}
        payload[_KEY] = np.array(key)
        payload[_DIGEST] = np.array(arrays_digest(key, {k: v for k, v in payload.items() if k != _KEY}))
        # the project's atomic writer: temporary file beside the target, fsynced, renamed over it,
        # removed on failure; the mode follows the umask like every other file actspec writes
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **payload)
        return True
    except Exception as exc:  # noqa: BLE001 - a cache never fails the computation
        log.debug("table cache: cannot write %r: %s", key, exc)
        return False
