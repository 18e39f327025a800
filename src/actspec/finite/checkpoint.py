"""Resumable checkpoints of the finite-width G-matrix's partial sums.

A long finite-width run (``gram(X, act, width=m, checkpoint=PATH)``) accumulates
G = (1/m) sum_k a_k^2 phi'(w_k.x_i) phi'(w_k.x_j) <x_i, x_j> neuron chunk by neuron chunk
(:mod:`actspec.empirical`). Every ``every`` seconds, at a point where the float32 buffer has
just been flushed into the float64 accumulator, the state is written to PATH:

* the float64 block-upper triangle of each accumulator (``G``, and ``H`` for ``train="both"``),
  row by row: the rows ``r0:r1`` of each row block from column ``r0`` on (the part the
  pipeline updates; about half of the n x n matrix);
* the number of neurons done, and the float32 buffers with their pending neuron counts when
  the state was saved between flushes (only on an interrupt, see below);
* the settings that determine the result (data hash, activation, width, seed, init, train,
  dtype, outputs, chunk size, weights hash, and for seeded weights the generator scheme
  ``weights_scheme``, :data:`actspec.core.inits.WEIGHTS_SCHEME`) and their hash.

A checkpoint of seeded weights made with another generator scheme (e.g. by an actspec from
before ``blocked-randn32-v2``, whose settings have no ``weights_scheme``) is refused with a
one-line error that says to delete it and start again: its partial sums belong to a different
network.

Because the weights are drawn per RNG block (:func:`actspec.inits.sample_block`) and the
chunks and flush points after neuron ``done`` are the same whether or not the run was
restarted, a resumed run performs exactly the same floating-point operations as an
uninterrupted one: the G it returns is bit-identical (on the same machine and thread count;
a different BLAS or device changes only the rounding).

On an interrupt (Ctrl-C, or a ``KeyboardInterrupt`` raised by the progress callback) the run
stops at the next chunk boundary, writes the full state (float32 buffers included) and raises
:class:`CheckpointInterrupt`, a ``KeyboardInterrupt`` that says how to resume.

The file is an uncompressed ``.npz`` (readable with ``np.load``; ``meta`` is UTF-8 JSON as
uint8), written to a temporary name in the same directory, fsynced and renamed over PATH
(:class:`actspec.core.io.atomic_path`), so an interrupted save never damages the previous
checkpoint. Arrays are streamed in row groups of at most ~32 MiB: saving or loading never holds
a second copy of G.

Removing the file is a step of its own. The computation calls :meth:`Checkpoint.run_finished`
when it has the result in memory: that deletes the file (unless ``keep``), which is right for a
library call whose result is the returned array. A caller that writes the result to a file
itself creates the checkpoint with ``defer_removal=True`` and calls :meth:`Checkpoint.finish`
only once that file is durable (written, fsynced and renamed, e.g. when
:class:`~actspec.core.io.atomic_path` has exited): if the write fails (a full disk), the
checkpoint is still there and the same command resumes from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

from ..core.errors import ActspecError
from ..core.inits import LEGACY_WEIGHTS_SCHEMES
from ..core.io import array_digest, atomic_path

__all__ = [
    "Checkpoint",
    "CheckpointInterrupt",
    "FORMAT",
    "array_digest",
    "activation_fingerprint",
    "settings_hash",
    "save_state",
    "load_state",
    "read_meta",
    "upper_entries",
]

FORMAT = "actspec-gram-checkpoint/1"
_GROUP_BYTES = 32 * 2**20  # rows streamed per write/read: at most this many bytes at once
_PROBES = np.linspace(-4.0, 4.0, 41)  # points where an activation is evaluated for its hash


@dataclass
class Checkpoint:
    """Where and how often to checkpoint a finite-width run, and what happened (filled in).

    ``every``: seconds between saves (0: at every flush point). ``keep``: leave the file
    after a successful finish (default: delete it). ``defer_removal`` (keyword only): the
    computation leaves the file when it ends (:meth:`run_finished` does nothing); the caller
    deletes it with :meth:`finish` once the result it writes is durable. The fields after
    ``keep`` are set by the run: ``resumed_from`` (neurons loaded from an existing
    checkpoint), ``saves``, ``save_seconds`` (time spent writing), ``saved_neurons`` (neurons
    in the last save), ``bytes`` (size of the last save), ``interrupted``, ``weights_scheme``
    (the generator scheme of seeded weights; None for given weights or before a save/load).
    """

    path: Path
    every: float = 300.0
    keep: bool = False
    defer_removal: bool = field(default=False, kw_only=True)
    resumed_from: int = 0
    saves: int = 0
    save_seconds: float = 0.0
    saved_neurons: int = 0
    bytes: int = 0
    interrupted: bool = False
    weights_scheme: str | None = None
    _last: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser()
        try:
            self.every = float(self.every)
        except (TypeError, ValueError):
            raise ActspecError(
                f"checkpoint_every must be a number of seconds (got {self.every!r})"
            ) from None
        if not self.every >= 0:
            raise ActspecError(f"checkpoint_every must be >= 0 seconds (got {self.every!r})")
        if self.path.is_dir():
            raise ActspecError(
                f"checkpoint path {str(self.path)!r} is a directory; give a file name"
            )
        parent = self.path.parent
        if not parent.is_dir():
            raise ActspecError(
                f"cannot write checkpoint {str(self.path)!r}: directory {str(parent)!r} does "
                "not exist; create it first"
            )
        self._last = time.monotonic()

    def due(self) -> bool:
        """True when ``every`` seconds have passed since the start or the last save."""
        return time.monotonic() - self._last >= self.every

    def discard(self) -> None:
        """Delete the checkpoint file (nothing when there is none)."""
        self.path.unlink(missing_ok=True)

    def run_finished(self) -> None:
        """Called by the computation when its result is complete (in memory): deletes the file
        unless ``keep``, or unless ``defer_removal`` leaves that to :meth:`finish`."""
        if not (self.keep or self.defer_removal):
            self.discard()

    def finish(self) -> None:
        """Called by whoever writes the result, once it is durable (written, fsynced, renamed):
        deletes the file unless ``keep``. Never call it before: a failed write (a full disk)
        would leave neither the result nor the checkpoint."""
        if not self.keep:
            self.discard()

    def info(self) -> dict[str, Any]:
        """JSON-ready summary of the checkpointing of this run."""
        return {
            "path": str(self.path),
            "every_seconds": self.every,
            "resumed_from": self.resumed_from,
            "saves": self.saves,
            "save_seconds": self.save_seconds,
            "saved_neurons": self.saved_neurons,
            "bytes": self.bytes,
            "interrupted": self.interrupted,
            "weights_scheme": self.weights_scheme,
            "kept": self.keep and self.path.exists(),
        }


class CheckpointInterrupt(KeyboardInterrupt):
    """A checkpointed run was interrupted; its state is saved and the same call resumes it."""

    def __init__(self, done: int, total: int, path: Path | None) -> None:
        self.done, self.total, self.path = done, total, path
        if path is None:
            msg = f"interrupted after {done} of {total} neurons; no checkpoint was written"
        else:
            msg = (
                f"interrupted after {done} of {total} neurons; checkpoint saved to {path}; "
                "run the same command again to resume"
            )
        super().__init__(msg)


# ---- identity of a run ----------------------------------------------------------------------


def activation_fingerprint(act: Any) -> str:
    """Name, parameters and scale of an activation plus a hash of phi and phi' at 41 points.

    The values make user callables identifiable across processes (their names alone may
    collide, e.g. two different lambdas).
    """
    return act.fingerprint_at(_PROBES)


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``settings``."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ---- the accumulator state ------------------------------------------------------------------


def upper_entries(size: int, blocks: list[tuple[int, int]]) -> int:
    """Number of stored entries: rows r0:r1 of each row block from column r0 on."""
    return sum((r1 - r0) * (size - r0) for r0, r1 in blocks)


def _row_groups(
    blocks: list[tuple[int, int]], size: int, itemsize: int
) -> Iterator[tuple[int, int, int]]:
    """(g0, g1, c0): rows g0:g1, columns c0: of the stored part, at most _GROUP_BYTES each."""
    for r0, r1 in blocks:
        rows = max(1, _GROUP_BYTES // max(1, (size - r0) * itemsize))
        for g0 in range(r0, r1, rows):
            yield g0, min(r1, g0 + rows), r0


def _npy_header(fh: IO[bytes], dtype: np.dtype, count: int) -> None:
    np.lib.format.write_array_header_1_0(
        fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)}
    )


def _write_upper(zf: zipfile.ZipFile, name: str, T: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
    """Stream the stored part of T (any device) into the member ``name.npy`` as a flat array."""
    size = T.shape[0]
    dtype = np.dtype(str(T.dtype).replace("torch.", ""))
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
        _npy_header(fh, dtype, upper_entries(size, blocks))
        for g0, g1, c0 in _row_groups(blocks, size, dtype.itemsize):
            part = T[g0:g1, c0:].to("cpu").numpy()  # a view on CPU, a small copy from a GPU
            fh.write(np.ascontiguousarray(part).data.cast("B"))


def _read_upper(zf: zipfile.ZipFile, name: str, T: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
    """Fill the stored part of T from the member ``name.npy`` (checks size, dtype and CRC)."""
    size = T.shape[0]
    dtype = np.dtype(str(T.dtype).replace("torch.", ""))
    with zf.open(f"{name}.npy") as member:
        fh = cast(io.BufferedIOBase, member)  # a ZipExtFile: readinto, CRC checked at the end
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, got = reader(fh)
        if got != dtype or fortran or shape != (upper_entries(size, blocks),):
            raise ValueError(f"{name}: stored {got} {shape}, expected {dtype} for size {size}")
        for g0, g1, c0 in _row_groups(blocks, size, dtype.itemsize):
            buf = bytearray((g1 - g0) * (size - c0) * dtype.itemsize)
            if fh.readinto(buf) != len(buf):
                raise ValueError(f"{name}: truncated")
            vals = torch.frombuffer(buf, dtype=T.dtype).view(g1 - g0, size - c0)
            T[g0:g1, c0:].copy_(vals)
        if fh.read(1):  # reading to the end also makes zipfile verify the CRC
            raise ValueError(f"{name}: longer than expected")


def save_state(
    ckpt: Checkpoint,
    settings: dict[str, Any],
    done: int,
    total: int,
    accumulators: dict[str, Any],
) -> None:
    """Write the accumulators' state after ``done`` of ``total`` neurons to ``ckpt.path``.

    ``accumulators`` maps a name ("G", "H") to an object with ``total`` (float64 tensor),
    ``low`` (float32 tensor or None), ``pending`` (neurons in ``low``) and ``blocks``.
    The float32 buffers are written only when they hold pending neurons.
    """
    t0 = time.perf_counter()
    meta: dict[str, Any] = {
        "format": FORMAT,
        "hash": settings_hash(settings),
        "settings": settings,
        "done": int(done),
        "total": int(total),
        "accumulators": {
            name: {
                "size": int(acc.total.shape[0]),
                "blocks": [list(b) for b in acc.blocks],
                "pending": int(acc.pending),
                "low": acc.low is not None and acc.pending > 0,
            }
            for name, acc in accumulators.items()
        },
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(ckpt.path) as tmp:
        with open(tmp, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                text = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
                with zf.open("meta.npy", "w") as fh:
                    np.lib.format.write_array(fh, text, allow_pickle=False)
                for name, acc in accumulators.items():
                    _write_upper(zf, name, acc.total, acc.blocks)
                    if meta["accumulators"][name]["low"]:
                        _write_upper(zf, f"{name}_low", acc.low, acc.blocks)
        ckpt.bytes = tmp.stat().st_size  # atomic_path fsyncs the file and its directory
    ckpt.saves += 1
    ckpt.weights_scheme = settings.get("weights_scheme")
    ckpt.saved_neurons = int(done)
    ckpt.save_seconds += time.perf_counter() - t0
    ckpt._last = time.monotonic()


def _corrupt(path: Path, why: str) -> ActspecError:
    return ActspecError(
        f"checkpoint {str(path)!r} is unreadable or damaged ({why}); delete it to start over"
    )


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint file (ActspecError when it is not a valid one)."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open("meta.npy") as fh:
            raw = np.lib.format.read_array(fh, allow_pickle=False)
        meta = json.loads(raw.tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _corrupt(path, f"not an {FORMAT} file")
    return meta


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'key: saved -> now' for each setting that differs (hashes shortened)."""

    def short(v: Any) -> str:
        s = json.dumps(v)
        return s[:19] + "…" if len(s) > 20 else s

    keys = sorted(set(saved) | set(now))
    return [f"{k}: {short(saved.get(k))} -> {short(now.get(k))}" for k in keys if saved.get(k) != now.get(k)]


_FIRST_SCHEME = "blocked-randn64-v1"  # what checkpoints without a weights_scheme were made with


def _check_weights_scheme(path: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """ActspecError (one line: what happened, how to restart) when the checkpoint's seeded
    weights came from another generator scheme than this version's."""
    if saved.get("seed") is None or now.get("seed") is None:  # given weights: no generator
        return
    old = saved.get("weights_scheme") or _FIRST_SCHEME
    new = now.get("weights_scheme")
    if old == new:
        return
    what = "an older actspec" if old in LEGACY_WEIGHTS_SCHEMES else "another actspec version"
    raise ActspecError(
        f"checkpoint {str(path)!r} was written by {what} whose seeded weights came from the "
        f"generator scheme {old!r}; this version draws them with {new!r}, so it cannot continue "
        f"those partial sums: delete {str(path)!r} and run the same command again to restart "
        "from the beginning"
    )


def load_state(ckpt: Checkpoint, settings: dict[str, Any], accumulators: dict[str, Any]) -> int:
    """Restore the accumulators from ``ckpt.path``; return the number of neurons done.

    Raises ActspecError, naming what differs, when the file was made with other settings,
    and ActspecError when it is damaged.
    """
    path = ckpt.path
    meta = read_meta(path)
    _check_weights_scheme(path, meta.get("settings") or {}, settings)
    if meta.get("hash") != settings_hash(settings):
        diff = _differences(meta.get("settings") or {}, settings)
        raise ActspecError(
            f"checkpoint {str(path)!r} was made with different settings "
            f"({'; '.join(diff) or 'format details'}); delete it or choose another checkpoint path"
        )
    stored = meta.get("accumulators", {})
    if set(stored) != set(accumulators):
        raise _corrupt(path, f"holds {sorted(stored)}, expected {sorted(accumulators)}")
    try:
        with zipfile.ZipFile(path) as zf:
            for name, acc in accumulators.items():
                info = stored[name]
                if info["size"] != acc.total.shape[0] or [tuple(b) for b in info["blocks"]] != acc.blocks:
                    raise ValueError(f"{name}: layout differs")
                _read_upper(zf, name, acc.total, acc.blocks)
                acc.pending = int(info["pending"])
                if info["low"]:
                    if acc.low is None:
                        raise ValueError(f"{name}: float32 buffer saved for a float64 run")
                    _read_upper(zf, f"{name}_low", acc.low, acc.blocks)
        done = int(meta["done"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from None
    if not 0 <= done <= int(settings["width"]):
        raise _corrupt(path, f"neurons done {done} outside 0..{settings['width']}")
    ckpt.resumed_from = ckpt.saved_neurons = done
    ckpt.weights_scheme = settings.get("weights_scheme")
    ckpt.bytes = path.stat().st_size
    return done
