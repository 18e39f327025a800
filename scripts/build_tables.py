"""Build the θ-tables shipped with actspec (issue 20): ``src/actspec/kernels/shipped/``.

    python scripts/build_tables.py              # build every table, write tables.npz + manifest.json
    python scripts/build_tables.py --check      # rebuild, compare with the shipped files, write nothing
    python scripts/build_tables.py --missing -- spectrum -a elu --normalize --n 50
                                                # which tables does this command still build?

Run it after any change of the quadrature or the tabulation (``tests/test_shipped_tables.py``
fails until then: the manifest records the digest of ``dual._table_params()``), and commit the two
files. The tables are built by ``DualTable.build`` exactly as a process would build them
(``dual_table``: canonical variances of the quantized keys), so a shipped table is bit-identical
to a fresh build on the machine that ran this script. The files are byte-reproducible: same code,
same numpy/scipy, same machine, same bytes.

Which tables (:data:`REQUESTS`): every built-in without a closed-form dual (elu, selu, gelu,
swish, softplus, tanh, sigmoid), both kernels (phi' for G, phi for H and the deep kernels), at
unit variance (unit-norm rows with the default init: spectrum, gram, train, analyze, depth), as
named and scaled to E phi(z)^2 = 1 (``--normalize``); and the variance 83/3300 of the bundled
digits under the paper's lift with fan-in init (``reproduce fig2-training``) for the activations
that part trains. Measured with ``--missing``: ``spectrum``, ``train``, ``depth``, ``analyze``,
``gram`` with their defaults and ``reproduce all --quick`` build no table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from actspec.activations import activation
from actspec.activations.base import Activation
from actspec.core.io import atomic_path
from actspec.core.version import __version__
from actspec.kernels import dual as dual_mod
from actspec.kernels import shipped_tables, table_cache
from actspec.kernels.gram import normalization_constant

QUADRATURE_BUILTINS = ("elu", "selu", "gelu", "swish", "softplus", "tanh", "sigmoid")
KERNELS = ("derivative", "activation")
DIGITS_PAPER_FANIN = 0.025151515151514765  # reproduce fig2-training: digits, paper lift, fan-in

# (activation, normalized, kernel, variance, what asks for it)
REQUESTS: list[tuple[str, bool, str, float, str]] = (
    [(a, norm, k, 1.0, "unit-norm rows" + (", --normalize" if norm else ""))
     for a in QUADRATURE_BUILTINS for norm in (False, True) for k in KERNELS]
    + [(a, False, k, DIGITS_PAPER_FANIN, "reproduce fig2-training (digits, paper lift, fan-in)")
       for a in ("elu", "tanh", "swish") for k in KERNELS]
)

MEMBERS = ("coeffs", "edges", "s", "errors", "level")


def resolve(name: str, normalized: bool) -> Activation:
    act = activation(name)
    return act.scaled(1.0 / normalization_constant(act)) if normalized else act


def plan() -> list[dict[str, Any]]:
    """The tables to ship: activation, kernel, variance keys, canonical variances, id."""
    out: dict[str, dict[str, Any]] = {}
    for name, normalized, which, s, why in REQUESTS:
        act = resolve(name, normalized)
        q = int(dual_mod.quantize(np.array([s]))[0])
        tid = shipped_tables.entry_id(act, which, q, q)
        if tid in out:  # selu: E selu(z)^2 = 1, so --normalize is selu itself
            out[tid]["why"] += f"; {why}"
            continue
        out[tid] = {"act": act, "which": which, "q": (q, q), "why": why,
                    "s": (dual_mod.canonical_variance(q),) * 2, "id": tid}
    return list(out.values())


def environment() -> dict[str, str]:
    """What a build's last bits depend on besides the code: numpy and scipy versions, the machine,
    and the SIMD features numpy dispatches to (AVX512 runs other tanh/exp kernels than AVX2)."""
    import importlib

    feats: dict[str, bool] = {}
    for mod in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy 2, 1
        try:
            feats = dict(importlib.import_module(mod).__cpu_features__)
            break
        except (ImportError, AttributeError):
            continue
    return {"numpy": np.__version__, "scipy": scipy.__version__, "machine": platform.machine(),
            "cpu_features": " ".join(sorted(k for k, v in feats.items() if v)) or "unknown"}


def build_one(item: dict[str, Any]) -> tuple[dict[str, np.ndarray], float]:
    t0 = time.perf_counter()
    tab = dual_mod.DualTable.build(item["act"], item["which"], *item["s"])
    return dual_mod._table_to_arrays(tab), time.perf_counter() - t0


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (np.load reads it) with fixed member order and timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def build_all(items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    entries, members = [], {}
    for i, item in enumerate(items, 1):
        arrays, secs = build_one(item)
        names = {field: f"{item['id']}.{field}" for field in MEMBERS}
        members.update({names[f]: arrays[f] for f in MEMBERS})
        check_error, quad_error, scale = (float(v) for v in arrays["errors"])
        entries.append({
            "id": item["id"],
            "activation": shipped_tables.activation_record(item["act"]),
            "which": item["which"],
            "q": list(item["q"]),
            "s": list(item["s"]),
            "used_by": item["why"],
            "intervals": int(arrays["coeffs"].shape[0]),
            "check_error_relative": check_error / scale,
            "arrays": names,
            "digest": table_cache.arrays_digest(item["id"], arrays),
        })
        print(f"[{i}/{len(items)}] {item['id']}: {arrays['coeffs'].shape[0]} intervals, "
              f"check error {check_error / scale:.1e}, {secs:.1f} s", flush=True)
    manifest = {
        "format": shipped_tables.SHIPPED_FORMAT,
        "table_format": table_cache.FORMAT_VERSION,
        "params_digest": shipped_tables.params_digest(dual_mod._table_params()),
        "built_by": {"actspec": __version__, "python": platform.python_version(),
                     "command": "python scripts/build_tables.py", **environment()},
        "probes": shipped_tables.PROBES.tolist(),
        "tables": entries,
    }
    return manifest, members


def write(manifest: dict[str, Any], members: dict[str, np.ndarray], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / shipped_tables.ARRAYS.name) as tmp:
        Path(tmp).write_bytes(_npz_bytes(members))
    with atomic_path(out / shipped_tables.MANIFEST.name) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def check(manifest: dict[str, Any], members: dict[str, np.ndarray]) -> int:
    """Compare a fresh build with the shipped files: 0 when bit-identical."""
    shipped = json.loads(shipped_tables.MANIFEST.read_text())
    bad = 0
    if shipped.get("format") != manifest["format"]:  # load() then serves none of them
        print(f"format differs: shipped {shipped.get('format')!r}, this code writes {manifest['format']!r}")
        bad += 1
    if shipped["params_digest"] != manifest["params_digest"]:
        print("params_digest differs: the shipped tables were built under other parameters")
        bad += 1
    old = {e["id"]: e for e in shipped["tables"]}
    fresh_ids = {e["id"] for e in manifest["tables"]}
    for tid in sorted(set(old) - fresh_ids):  # a table the plan no longer asks for
        print(f"{tid}: shipped but not in the plan")
        bad += 1
    with np.load(shipped_tables.ARRAYS) as z:
        for e in manifest["tables"]:
            if e["id"] not in old:
                print(f"{e['id']}: not shipped")
                bad += 1
                continue
            diffs = []
            for field, member in e["arrays"].items():
                a, b = members[member], np.array(z[old[e["id"]]["arrays"][field]])
                if a.shape != b.shape:
                    diffs.append(f"{field} shape {b.shape} -> {a.shape}")
                elif not np.array_equal(a, b):
                    diffs.append(f"{field} max |diff| {np.max(np.abs(a - b)):.2e}")
            print(f"{e['id']}: {'bit-identical' if not diffs else '; '.join(diffs)}")
            bad += bool(diffs)
    print("all bit-identical" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


def missing(command: list[str]) -> int:
    """Run ``actspec COMMAND`` with an empty user cache and list the tables it built: exit
    status 1 when it built any, 2 when the command itself failed (its tables are then unknown:
    a command refused before any work builds none), else 0."""
    with tempfile.TemporaryDirectory(prefix="actspec-tables-") as d:
        env = {**os.environ, "ACTSPEC_CACHE_DIR": d}
        env.pop("ACTSPEC_NO_CACHE", None)
        rc = subprocess.run([sys.executable, "-m", "actspec", *command], env=env,
                            stdout=subprocess.DEVNULL).returncode
        built = []
        for f in sorted(Path(d).rglob("*.npz")):
            with np.load(f) as z:
                key = dict(p.split("=", 1) for p in str(z["__key__"]).split("|"))
            built.append(f"{key['key']} {key['which']} q={key['q']}")
    print(f"exit status {rc}; tables built: {len(built)}")
    for b in built:
        print(f"  {b}")
    if rc != 0:
        print("the command failed: the tables it would build are not known")
        return 2
    return 0 if not built else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="rebuild and compare; write nothing")
    ap.add_argument("--out", type=Path, default=shipped_tables.DATA_DIR,
                    help="where to write (default: the package's kernels/shipped)")
    ap.add_argument("--missing", action="store_true",
                    help="run 'actspec COMMAND...' (after --) with an empty cache; list the tables "
                    "it builds (exit status 1 when there are any, 2 when the command fails)")
    ap.add_argument("command", nargs="*", help="the actspec command of --missing")
    opts = ap.parse_args()
    if opts.missing:
        if not opts.command:
            ap.error("--missing needs a command: --missing -- spectrum -a elu")
        return missing(opts.command)
    if opts.command:
        ap.error(f"unexpected arguments {opts.command} (a command goes with --missing)")
    t0 = time.perf_counter()
    manifest, members = build_all(plan())
    print(f"built {len(manifest['tables'])} tables in {time.perf_counter() - t0:.0f} s")
    if opts.check:
        return check(manifest, members)
    write(manifest, members, opts.out)
    size = sum((opts.out / f).stat().st_size for f in (shipped_tables.ARRAYS.name,
                                                       shipped_tables.MANIFEST.name))
    print(f"wrote {opts.out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
