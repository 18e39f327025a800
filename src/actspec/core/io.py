"""Safe output: files are written to a temporary name in the target directory, fsynced and renamed,
so an interrupted or failed run never leaves a half-written file behind.

* ``~`` is expanded (``--json '~/t.json'``), the same way in :func:`check_writable` and the writer.
* Only regular files (or names that do not exist yet) are replaced by a rename. A special file
  (``/dev/null``, a FIFO, a character device, ``/dev/stdout``, ``/proc/self/fd/N``) is opened and
  written directly: it is never replaced by a regular file.
* A symbolic link to a regular file is kept: its target is replaced atomically.
* The new file gets the mode an ordinary ``open(path, "w")`` gives: ``0o666 & ~umask``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ActspecError

__all__ = [
    "check_writable",
    "check_output_dir",
    "check_distinct_paths",
    "output_group",
    "write_json",
    "without_timings",
    "TIMING_KEYS",
    "atomic_path",
    "current_umask",
    "run_metadata",
    "to_jsonable",
]


def check_writable(path: str | os.PathLike[str] | None, what: str = "output") -> Path | None:
    """Fail early (before any computation) when ``path`` cannot be written.

    Agrees with :class:`atomic_path`: ``~`` is expanded; an existing special file (device, FIFO,
    ``/dev/stdout``) must itself be writable; otherwise (a new or regular file, through a symbolic
    link if there is one) the directory that will receive the temporary file must be writable.
    """
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.exists() and p.is_dir():
        raise ActspecError(f"{what} path {str(p)!r} is a directory; give a file name")
    target, direct = _output_target(p)
    if direct:
        if not os.access(p, os.W_OK):
            raise ActspecError(f"cannot write {what} {str(p)!r}: the file is not writable")
        return p
    parent = target.parent if str(target.parent) else Path(".")
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


def check_output_dir(
    path: str | os.PathLike[str], what: str = "--out", *, subdirs: tuple[str, ...] = ()
) -> Path:
    """Fail early when ``path`` cannot be used as an output directory (it may not exist yet:
    it is created later, so its nearest existing ancestor must be a writable directory).
    ``subdirs`` (e.g. ``("cache", "cache/units")``) are directories the command creates inside
    it: one that exists as a file (or not as a writable directory) is refused now too."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ActspecError(f"{what} {str(p)!r} is a file; give a directory (it is created if missing)")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ActspecError(f"cannot write into {what} {str(p)!r}: the directory is not writable")
        for sub in subdirs:
            q = p / sub
            if q.exists() and not q.is_dir():
                raise ActspecError(
                    f"{what} {str(p)!r} holds a file {sub!r} where actspec keeps a directory; "
                    f"move it away or choose another {what}"
                )
            if q.is_dir() and not os.access(q, os.W_OK | os.X_OK):
                raise ActspecError(f"cannot write into {str(q)!r}: the directory is not writable")
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


def _file_key(path: Any) -> str | None:
    """The file ``path`` names, for comparing outputs: ``~`` expanded, symbolic links and ``..``
    resolved; None for what two outputs may share (a special file such as ``/dev/null`` or
    ``/dev/stdout``, a directory) or for a value that is not a path."""
    if path is None or isinstance(path, bool):
        return None
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip() or text == "-":
        return None
    p = Path(text).expanduser()
    try:
        st = os.stat(p)
    except (OSError, ValueError):
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None  # a directory, device, FIFO: shared or checked elsewhere
    if _via_descriptor(p):
        return None
    try:
        return os.path.realpath(p)
    except (OSError, ValueError):
        return None


def check_distinct_paths(
    outputs: Mapping[str, Any], inputs: Mapping[str, Any] | None = None
) -> None:
    """Refuse, before any work, outputs that name the same file, or an output that names an
    existing input file (``--json`` and ``--plot`` both ``r.json``; ``--json`` over the
    ``--data`` file). ``outputs`` and ``inputs`` map parameter names to paths (None: not
    given); paths are compared after ``~`` expansion and resolving links and ``..``. Special
    files (``/dev/null``) may be shared. Raises :class:`ParameterError` naming both parameters
    (the CLI shows them as its flags)."""
    from .validate import ParameterError

    seen: dict[str, str] = {}
    for name, path in outputs.items():
        key = _file_key(path)
        if key is None:
            continue
        if key in seen:
            raise ParameterError(
                f"{{-{seen[key]}}} and {{-{name}}} both name {key!r}: one would overwrite the "
                f"other; give each output its own file"
            )
        seen[key] = name
    for name, path in (inputs or {}).items():
        key = _file_key(path)
        if key is None or key not in seen or not os.path.isfile(key):
            continue
        raise ParameterError(
            f"{{-{seen[key]}}} names the input file of {{-{name}}} ({key!r}): writing it would "
            f"destroy the input; write the output elsewhere"
        )


class _OutputGroup:
    """Outputs written together: their temporary files are renamed into place only when the
    whole group succeeds (see :func:`output_group`)."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.pending: dict[str, Path] = {}  # final target -> its finished temporary file

    def wants(self, target: Path) -> bool:
        try:
            return os.path.realpath(target) in self.keys
        except (OSError, ValueError):
            return False

    def add(self, tmp: Path, target: Path) -> None:
        old = self.pending.pop(str(target), None)
        if old is not None:  # written twice: the later content wins
            old.unlink(missing_ok=True)
        self.pending[str(target)] = tmp

    def discard(self) -> None:
        for tmp in self.pending.values():
            tmp.unlink(missing_ok=True)
        self.pending.clear()

    def commit(self) -> None:
        items = list(self.pending.items())
        self.pending.clear()
        try:
            for k, (target, tmp) in enumerate(items):
                os.replace(tmp, target)
                items[k] = (target, Path(target))
        finally:
            for target, tmp in items:
                if str(tmp) != target:
                    tmp.unlink(missing_ok=True)
        for parent in {os.path.dirname(t) or "." for t, _ in items}:
            _fsync_dir(Path(parent))


_GROUP: ContextVar[_OutputGroup | None] = ContextVar("actspec_output_group", default=None)


@contextmanager
def output_group(paths: Iterable[Any]) -> Iterator[None]:
    """Write the files at ``paths`` as one group: inside the block each finished file waits as
    a temporary file next to its target; when the block ends without an error all are renamed
    into place, when it fails none is (the temporary files are removed). So a full disk on
    ``--json`` after ``--plot`` leaves no PNG behind. :class:`~actspec.core.errors.Interrupted`
    (a command that stops on Ctrl-C and says which files it kept) renames what was finished.
    Other files (checkpoints, caches) are
    written as usual; special files (``/dev/null``) are written directly."""
    keys = {k for k in (_file_key(p) for p in paths) if k is not None}
    if not keys:
        yield
        return
    from .errors import Interrupted

    group = _OutputGroup(keys)
    token = _GROUP.set(group)
    try:
        yield
    except Interrupted:  # a command that stops on Ctrl-C after writing what it kept, on purpose
        _GROUP.reset(token)
        group.commit()
        raise
    except BaseException:
        _GROUP.reset(token)
        group.discard()
        raise
    _GROUP.reset(token)
    group.commit()


# ---- where and how a file is written ------------------------------------------------------------

#: Paths that name an open file descriptor (the ``/proc`` "magic" links): what they point to is
#: written in place, never replaced (``--json /dev/stdout > out.txt`` must write into out.txt's
#: open file, not rename a new file over it).
_DESCRIPTOR_PREFIXES = ("/proc/", "/dev/fd/")
_DESCRIPTOR_NAMES = frozenset({"/dev/stdin", "/dev/stdout", "/dev/stderr"})


def _via_descriptor(path: Path) -> bool:
    """True when ``path`` or a symbolic link on its way names an open file descriptor."""
    cur = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on nested links
        if cur in _DESCRIPTOR_NAMES or cur.startswith(_DESCRIPTOR_PREFIXES):
            return True
        if not os.path.islink(cur):
            return False
        try:
            link = os.readlink(cur)
        except OSError:
            return False
        cur = os.path.normpath(os.path.join(os.path.dirname(cur), link))
    return False


def _output_target(path: Path) -> tuple[Path, bool]:
    """(the file to write, direct): ``direct`` when ``path`` is an existing special file (or names
    an open descriptor) and must be written in place; else the path a temporary file is renamed
    over: ``path`` itself, or the final target when ``path`` is a symbolic link (the link stays)."""
    try:
        st = os.stat(path)  # follows links
    except OSError:
        st = None  # missing (or a dangling link): a new file
    if st is not None and not stat.S_ISREG(st.st_mode):
        return path, True  # device, FIFO, socket (a directory fails to open with a clear error)
    if _via_descriptor(path):
        return path, True
    if os.path.islink(path):
        return Path(os.path.realpath(path)), False
    return path, False


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells (Linux >= 4.7);
    elsewhere set and restored under a lock (to 0o077 meanwhile, so a file another thread creates
    in that instant is never more open than intended)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (where directories can be fsynced)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support it; the rename itself is still atomic
    finally:
        os.close(fd)


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` on success only.

    On success the temporary file gets mode ``0o666 & ~umask``, is fsynced, renamed over the
    target and the directory is fsynced: when the block exits, the file is durable. ``~`` is
    expanded. A symbolic link to a regular file is kept and its target replaced. An existing
    special file (``/dev/null``, a FIFO, a device, ``/dev/stdout``) is never replaced nor
    deleted (``direct`` is True): the yielded path is ``path`` itself, to be written directly;
    with ``spool=True`` (for writers that delete or recreate the file they are given, e.g.
    DuckDB's COPY) it is a temporary file in the system's temporary directory whose bytes are
    copied into the special file on success.
    """

    def __init__(self, path: str | os.PathLike[str], *, spool: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.target, self.direct = _output_target(self.path)
        self.spooled = self.direct and spool
        if self.direct and not spool:
            self.tmp = self.path
            return
        if self.direct:
            where = tempfile.gettempdir()
        else:
            where = str(self.target.parent) if str(self.target.parent) else "."
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=f".tmp{self.target.suffix}", dir=where
        )
        os.close(fd)
        self.tmp = Path(tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.direct and not self.spooled:
            return  # written in place; a special file is never deleted
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        if self.spooled:
            try:
                with open(self.tmp, "rb") as src, open(self.path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 2**20)
            finally:
                self.tmp.unlink(missing_ok=True)
            return
        group = _GROUP.get()
        try:
            os.chmod(self.tmp, 0o666 & ~current_umask())
            _fsync_path(self.tmp)
            if group is not None and group.wants(self.target):
                group.add(self.tmp, Path(os.path.realpath(self.target)))
                return  # renamed with the rest of its group (output_group)
            os.replace(self.tmp, self.target)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.target.parent if str(self.target.parent) else Path("."))


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

    from .inits import WEIGHTS_SCHEME
    from .version import __version__

    meta = {
        "actspec": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "git_revision": _git_revision(),
        "weights_scheme": WEIGHTS_SCHEME,  # generator scheme of seeded finite-width weights
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
