"""θ-tables shipped with the package (issue 20): no process builds the table of a built-in.

The built-in activations without a closed-form dual (elu, selu, gelu, swish, softplus, tanh,
sigmoid) need a θ-table per kernel and pair of input variances (:class:`.dual.DualTable`), 2-5 s
each to build. The tables the common commands ask for (both kernels at unit variance, for the
activation as named and scaled to E phi(z)^2 = 1 as ``--normalize`` does) are built once by
``python scripts/build_tables.py`` and stored in ``kernels/shipped/``:

* ``tables.npz``: the arrays of every table (stored uncompressed, written byte-reproducibly);
* ``manifest.json``: the shipped format (:data:`SHIPPED_FORMAT`), the actspec/numpy/scipy versions
  and machine that built them (for the record: they are not part of the match), the digest of
  the table format and tabulation parameters they were built under, and per table the activation
  (name, parameters, kinks, phi and phi' at :data:`PROBES`), the kernel, the variance keys and a
  SHA-256 of its arrays.

:func:`load` hands a table out only when all of these hold, else returns None (the caller then
uses the user's cache or builds): the manifest's shipped format and parameter digest equal this
code's (so a change of the quadrature or the tabulation never serves an old table; the test
``tests/test_shipped_tables.py`` fails until the tables are rebuilt), the activation is a built-in
with the same name, parameters and kinks, its phi and phi' agree with the recorded values to
1e-14 of their largest magnitude (a user activation that only borrows a built-in's name never gets
its table; an ulp of difference in a libm elsewhere still does), and the arrays match their
digest. Shipped tables are part of the package, so ``ACTSPEC_NO_CACHE`` / ``--no-cache`` (which
disable the user's cache) leave them in use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..activations.base import Activation
from . import table_cache

__all__ = ["SHIPPED_FORMAT", "DATA_DIR", "MANIFEST", "ARRAYS", "PROBES", "VALUE_TOL", "manifest",
           "load", "params_digest", "activation_record", "entry_id", "matches", "clear"]

SHIPPED_FORMAT = 1  # bump when the layout of manifest.json / tables.npz changes
DATA_DIR = Path(__file__).resolve().with_name("shipped")
MANIFEST = DATA_DIR / "manifest.json"
ARRAYS = DATA_DIR / "tables.npz"
# where phi and phi' of an activation are compared with the built-in's recorded values
PROBES = np.concatenate([np.linspace(-6.0, 6.0, 25), [-20.0, -13.5, -9.25, 9.25, 13.5, 20.0]])
VALUE_TOL = 1e-14  # relative to the largest |value| over the probes, per function

log = logging.getLogger(__name__)


def params_digest(params: str) -> str:
    """SHA-256 of the tabulation parameters string (``dual._table_params()``)."""
    return hashlib.sha256(params.encode()).hexdigest()


def entry_id(act: Activation, which: str, q1: int, q2: int) -> str:
    """The name of a table in ``tables.npz``: activation name (and scale), kernel, variance keys."""
    scale = "" if act.scale == 1.0 else f"*{act.scale!r}"
    return f"{act.name}{scale}-{which}-q{q1},{q2}"


def activation_record(act: Activation) -> dict[str, Any]:
    """What identifies a built-in by value: name, parameters, kinks, scale, phi and phi' at
    :data:`PROBES`, and (for the record) its fingerprint."""
    with np.errstate(all="ignore"):
        phi = np.asarray(act.phi(PROBES), dtype=np.float64)
        dphi = np.asarray(act.dphi(PROBES), dtype=np.float64)
    return {
        "name": act.name,
        "params": {k: float(v) for k, v in sorted(act.params.items())},
        "kinks": [float(k) for k in act.kinks],
        "scale": float(act.scale),
        "phi": phi.tolist(),
        "dphi": dphi.tolist(),
        "fingerprint": act.fingerprint,
    }


def matches(act: Activation, record: dict[str, Any]) -> bool:
    """Whether ``act`` is the built-in ``record`` describes, by value (see the module doc)."""
    if not act.builtin or act.name != record["name"]:
        return False
    if {k: float(v) for k, v in act.params.items()} != record["params"]:
        return False
    if [float(k) for k in act.kinks] != record["kinks"]:
        return False
    with np.errstate(all="ignore"):
        got = (np.asarray(act.phi(PROBES), dtype=np.float64),
               np.asarray(act.dphi(PROBES), dtype=np.float64))
    for values, ref in zip(got, (record["phi"], record["dphi"]), strict=True):
        ref_arr = np.asarray(ref, dtype=np.float64)
        if values.shape != ref_arr.shape or not np.all(np.isfinite(values)):
            return False
        tol = VALUE_TOL * float(np.max(np.abs(ref_arr)))
        if not np.all(np.abs(values - ref_arr) <= tol):
            return False
    return True


@functools.cache
def manifest() -> dict[str, Any] | None:
    """The parsed manifest (tables indexed by (name, kernel, q1, q2)), or None when it is
    missing, unreadable or of another shipped format."""
    try:
        data = json.loads(MANIFEST.read_text())
        if data.get("format") != SHIPPED_FORMAT:
            log.debug("shipped tables: format %r, this code reads %r", data.get("format"),
                      SHIPPED_FORMAT)
            return None
        index: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {}
        for entry in data["tables"]:
            k = (entry["activation"]["name"], entry["which"], int(entry["q"][0]), int(entry["q"][1]))
            index.setdefault(k, []).append(entry)
        data["index"] = index
        return data
    except Exception as exc:  # noqa: BLE001 - no shipped tables: tables are built as before
        log.debug("shipped tables: cannot read %s: %s", MANIFEST, exc)
        return None


def clear() -> None:
    """Forget the parsed manifest (tests that replace the shipped files)."""
    manifest.cache_clear()


def load(act: Activation, which: str, q1: int, q2: int, params: str) -> dict[str, np.ndarray] | None:
    """The arrays of the shipped table of ``act`` (kernel ``which``, variance keys q1, q2), or
    None: no such table, built under other tabulation parameters (``params``, the string of
    ``dual._table_params()``), not this built-in by value, or arrays that fail their digest."""
    data = manifest()
    if data is None:
        return None
    candidates = data["index"].get((act.name, which, int(q1), int(q2)))
    if not candidates:
        return None
    if data.get("params_digest") != params_digest(params):
        log.debug("shipped tables: built under other table parameters; not used")
        return None
    for entry in candidates:
        try:
            if not matches(act, entry["activation"]):
                continue
            names = entry["arrays"]
            with np.load(ARRAYS, allow_pickle=False) as z:
                arrays = {name: np.array(z[member]) for name, member in names.items()}
            if table_cache.arrays_digest(entry["id"], arrays) != entry["digest"]:
                log.debug("shipped tables: %s fails its digest; not used", entry["id"])
                return None
            return arrays
        except Exception as exc:  # noqa: BLE001 - a damaged package file: build instead
            log.debug("shipped tables: cannot read %s: %s", entry.get("id"), exc)
            return None
    return None
