"""θ-tables shipped with the package (issue 20 item 1): no process builds the table of a built-in.

(a) shipped tables are what a build gives (bit-identical in the build's environment) and agree with
an independent quadrature (tensor Gauss-Legendre in Cholesky coordinates, split at the kink
lines) to 1e-13; (b) the manifest matches the code (format, tabulation parameters, the list of
tables of scripts/build_tables.py); (c) a fresh process with an empty user cache builds no table
for the common commands; (d) an activation that only borrows a built-in's name, or whose values
differ, never gets a shipped table; a damaged or outdated shipped file is not used.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import actspec
from actspec.activations import activation
from actspec.kernels import dual as dual_mod
from actspec.kernels import shipped_tables, table_cache
from actspec.kernels.dual import DualTable

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_tables.py"
REBUILD = f"run `python {SCRIPT.relative_to(ROOT)}` and commit src/actspec/kernels/shipped/"


@pytest.fixture(scope="module")
def script() -> Any:
    spec = importlib.util.spec_from_file_location("build_tables", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def plan(script: Any, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The script's tables, by the id of the shipped table that serves each. Matched as
    ``load`` matches (name, kernel, variance keys, values), not by id: elsewhere a --normalize
    scale may differ from the recorded one in the last bit, and so would its id."""
    out: dict[str, dict[str, Any]] = {}
    for item in script.plan():
        act, which, q = item["act"], item["which"], item["q"]
        served = [e["id"] for e in manifest["index"].get((act.name, which, *q), [])
                  if shipped_tables.matches(act, e["activation"])]
        assert served, f"no shipped table serves {item['id']}; {REBUILD}"
        out[served[0]] = item
    return out


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    shipped_tables.clear()
    data = shipped_tables.manifest()
    assert data is not None, f"no readable shipped manifest at {shipped_tables.MANIFEST}; {REBUILD}"
    return data


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No table in memory, an empty user cache, and DualTable.build refusing to run."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(cache))
    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("built a table")

    monkeypatch.setattr(DualTable, "build", refuse)
    dual_mod.clear_caches()
    yield cache
    dual_mod.clear_caches()


def _shipped_arrays(entry: dict[str, Any]) -> dict[str, np.ndarray]:
    with np.load(shipped_tables.ARRAYS) as z:
        return {field: np.array(z[member]) for field, member in entry["arrays"].items()}


# ---- (b) the manifest matches the code ----------------------------------------------------------


def test_manifest_matches_the_code(manifest: dict[str, Any], plan: dict[str, Any]) -> None:
    assert manifest["format"] == shipped_tables.SHIPPED_FORMAT
    assert manifest["table_format"] == table_cache.FORMAT_VERSION, (
        f"the table format changed since the shipped tables were built; {REBUILD}")
    assert manifest["params_digest"] == shipped_tables.params_digest(dual_mod._table_params()), (
        f"the tabulation or quadrature parameters changed since the shipped tables were built; "
        f"{REBUILD}")
    assert sorted(e["id"] for e in manifest["tables"]) == sorted(plan), (
        f"scripts/build_tables.py asks for other tables than are shipped; {REBUILD}")
    for entry in manifest["tables"]:
        item = plan[entry["id"]]
        assert shipped_tables.matches(item["act"], entry["activation"]), entry["id"]
        assert (entry["which"], tuple(entry["q"])) == (item["which"], item["q"])
        arrays = _shipped_arrays(entry)
        assert table_cache.arrays_digest(entry["id"], arrays) == entry["digest"], entry["id"]
        assert dual_mod._table_from_arrays(arrays, *item["s"]) is not None, entry["id"]


def test_shipped_files_are_small_and_packaged() -> None:
    size = shipped_tables.ARRAYS.stat().st_size + shipped_tables.MANIFEST.stat().st_size
    assert size < 1 << 20
    text = (ROOT / "pyproject.toml").read_text()
    assert '"actspec.kernels" = ["shipped/*.npz", "shipped/*.json"]' in text


# ---- (a) shipped tables are what a build gives, and agree with an independent quadrature ---------

FULL_BUILDS = ["elu-derivative-q0,0", "tanh*1.5925374197228315-activation-q0,0",
               "swish-derivative-q-93470994255231,-93470994255231"]


@pytest.mark.parametrize("tid", FULL_BUILDS)
def test_shipped_table_equals_a_fresh_build(tid: str, manifest: dict[str, Any],
                                            plan: dict[str, Any], script: Any) -> None:
    entry = next(e for e in manifest["tables"] if e["id"] == tid)
    item = plan[tid]
    shipped = _shipped_arrays(entry)
    fresh = script.build_one(item)[0]
    here = script.environment()
    same_env = all(manifest["built_by"].get(k) == v for k, v in here.items())
    if same_env:  # the environment that built them: bit for bit
        for field in shipped:
            assert np.array_equal(shipped[field], fresh[field]), (tid, field)
    a = dual_mod._table_from_arrays(shipped, *item["s"])
    b = dual_mod._table_from_arrays(fresh, *item["s"])
    assert a is not None and b is not None
    th = np.linspace(0.0, np.pi, 2001)
    assert np.max(np.abs(a.evaluate_theta(th) - b.evaluate_theta(th))) <= 1e-14 * b.scale


_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_L = 10.0  # standard-normal coordinates: the mass beyond |z| = 10 is ~1e-23


def _composite(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on panels [edges[..., i], edges[..., i+1]] (last axis)."""
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    x = 0.5 * (a + b) + 0.5 * (b - a) * _GL_X
    w = 0.5 * (b - a) * _GL_W
    return x.reshape(*edges.shape[:-1], -1), w.reshape(*edges.shape[:-1], -1)


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _reference(f: Any, kinks: tuple[float, ...], s: float, theta: float) -> float:
    """E f(u) f(v), u = sigma z1, v = sigma (cos t z1 + sin t z2), z ~ N(0, I_2): tensor
    Gauss-Legendre, the z1 axis split at the kinks, each z2 line split where v crosses a kink."""
    sig = np.sqrt(s)
    base = np.linspace(-_L, _L, 41)
    e1 = np.unique(np.concatenate([base, [k / sig for k in kinks if abs(k / sig) < _L]]))
    z1, w1 = _composite(e1)
    c, sn = np.cos(theta), np.sin(theta)
    if sn < 1e-12:  # theta = 0 or pi: v = +-u, a line integral
        return float(np.sum(w1 * _phi(z1) * f(sig * z1) * f(np.sign(c) * sig * z1)))
    bps = [(k / sig - c * z1) / sn for k in kinks]
    e2 = np.sort(np.concatenate([np.broadcast_to(base, (z1.size, base.size)),
                                 *[np.clip(b, -_L, _L)[:, None] for b in bps]], axis=1), axis=1)
    z2, w2 = _composite(e2)
    inner = np.sum(w2 * _phi(z2) * f(sig * (c * z1[:, None] + sn * z2)), axis=1)
    return float(np.sum(w1 * _phi(z1) * f(sig * z1) * inner))


ANGLES = (0.0, 0.37, 1.3, np.pi / 2, 2.2, np.pi)


def _all_ids() -> list[str]:
    return [e["id"] for e in json.loads(shipped_tables.MANIFEST.read_text())["tables"]]


@pytest.mark.parametrize("tid", _all_ids())
def test_shipped_table_agrees_with_independent_quadrature(tid: str, manifest: dict[str, Any],
                                                         plan: dict[str, Any]) -> None:
    entry = next(e for e in manifest["tables"] if e["id"] == tid)
    item = plan[tid]
    act = item["act"]
    tab = dual_mod._table_from_arrays(_shipped_arrays(entry), *item["s"])
    assert tab is not None
    f = act.dphi if item["which"] == "derivative" else act.phi
    got = tab.evaluate_theta(np.array(ANGLES))
    ref = np.array([_reference(f, act.kinks, item["s"][0], t) for t in ANGLES])
    err = np.max(np.abs(got - ref)) / tab.scale
    assert err <= 1e-13, f"{tid}: {err:.2e}"


# ---- (c) no table is built where one is shipped ---------------------------------------------------


def test_every_shipped_table_is_served_without_a_build(fresh: Path, plan: dict[str, Any]) -> None:
    for tid, item in plan.items():
        s = item["s"][0]
        tab = dual_mod.dual_table(item["act"], item["which"], s, s)
        assert tab.coeffs.shape[1] == 12, tid
    assert not fresh.exists()  # nothing written to the user cache either


def test_no_cache_keeps_the_shipped_tables(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-cache / ACTSPEC_NO_CACHE turns off the user's cache; the package's tables stay."""
    monkeypatch.setenv("ACTSPEC_NO_CACHE", "1")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 4))
    G = actspec.gram(X / np.linalg.norm(X, axis=1, keepdims=True), "swish")
    assert G.shape == (7, 7) and not fresh.exists()


def test_fresh_process_with_empty_cache_builds_no_table(tmp_path: Path) -> None:
    """A new process: ``spectrum -a elu -a tanh -a swish`` (plain and --normalize) and the H
    kernel of ``train --train both`` with DualTable.build made to fail, ACTSPEC_CACHE_DIR empty."""
    cache = tmp_path / "cache"
    code = textwrap.dedent("""
        import sys
        from actspec.kernels.dual import DualTable
        def refuse(*a, **k):
            raise SystemExit("built a table")
        DualTable.build = refuse
        from actspec.cli import main
        for args in (["spectrum", "-a", "elu", "-a", "tanh", "-a", "swish", "--n", "30"],
                     ["spectrum", "-a", "elu", "-a", "tanh", "-a", "swish", "--n", "30",
                      "--normalize"],
                     ["train", "-a", "gelu", "--n", "8", "-m", "50", "-T", "2", "--train", "both"]):
            try:
                main(args)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise
    """)
    env = {**os.environ, "ACTSPEC_CACHE_DIR": str(cache)}
    env.pop("ACTSPEC_NO_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not cache.exists() or not any(cache.rglob("*.npz"))


# ---- (d) only the built-in by value gets a shipped table ----------------------------------------


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = shipped_tables.load

    def fake_build(cls: Any, act: Any, which: Any, s1: float, s2: float) -> DualTable:
        calls.append(act.name)
        # a stand-in (no 2-second build): the shipped tanh table, marked by its check error
        arrays = real(activation("tanh"), "derivative", 0, 0, dual_mod._table_params())
        tab = dual_mod._table_from_arrays(arrays, 1.0, 1.0)
        assert tab is not None
        tab.check_error = -1.0
        return tab

    monkeypatch.setattr(DualTable, "build", classmethod(fake_build))
    return calls


def test_user_activation_with_a_builtin_name_is_not_served(fresh: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls = _count_builds(monkeypatch)
    user = activation(lambda x: torch.tanh(2.0 * x), name="tanh", kinks=())  # not the built-in
    assert user.name == "tanh" and not user.builtin
    assert shipped_tables.load(user, "derivative", 0, 0, dual_mod._table_params()) is None
    assert dual_mod.dual_table(user, "derivative").check_error == -1.0 and calls == ["tanh"]


def test_builtin_with_other_values_is_not_served(fresh: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_builds(monkeypatch)
    tanh = activation("tanh")
    # claims to be the built-in tanh (same name, builtin=True) but phi differs by 1e-9
    impostor = dataclasses.replace(tanh, _phi=lambda x, o: o.tanh(x) + 1e-9 * x,
                                   _dphi=lambda x, o: 1 - o.tanh(x) ** 2 + 1e-9)
    assert impostor.name == "tanh" and impostor.builtin and impostor.key == tanh.key
    assert shipped_tables.load(impostor, "derivative", 0, 0, dual_mod._table_params()) is None
    assert dual_mod.dual_table(impostor, "derivative").check_error == -1.0
    assert calls == ["tanh"]
    # the same values in another object: the built-in, served
    dual_mod.clear_caches()
    twin = dataclasses.replace(tanh)
    assert dual_mod.dual_table(twin, "derivative").check_error >= 0 and calls == ["tanh"]
    # another scale (as --normalize with a different constant) is not served either
    dual_mod.clear_caches()
    dual_mod.dual_table(tanh.scaled(1.5), "derivative")
    assert calls == ["tanh", "tanh"]


def test_outdated_or_damaged_shipped_files_are_not_used(manifest: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    params = dual_mod._table_params()
    tanh = activation("tanh")
    assert shipped_tables.load(tanh, "derivative", 0, 0, params) is not None
    # built under other tabulation parameters
    assert shipped_tables.load(tanh, "derivative", 0, 0, params + "|changed") is None
    # arrays that fail their digest
    entry = next(e for e in manifest["tables"] if e["id"] == "tanh-derivative-q0,0")
    arrays = _shipped_arrays(entry)
    arrays["coeffs"][0, 0] += 1e-12
    damaged = tmp_path / "tables.npz"
    np.savez(damaged, **{entry["arrays"][f]: a for f, a in arrays.items()})
    monkeypatch.setattr(shipped_tables, "ARRAYS", damaged)
    assert shipped_tables.load(tanh, "derivative", 0, 0, params) is None
    # another shipped format
    other = copy.deepcopy(manifest)
    other["format"] = shipped_tables.SHIPPED_FORMAT + 1
    path = tmp_path / "manifest.json"
    other.pop("index")
    path.write_text(json.dumps(other))
    monkeypatch.setattr(shipped_tables, "MANIFEST", path)
    shipped_tables.clear()
    try:
        assert shipped_tables.manifest() is None
        assert shipped_tables.load(tanh, "derivative", 0, 0, params) is None
    finally:
        monkeypatch.undo()
        shipped_tables.clear()


# ---- scripts/build_tables.py --missing and --check report what they claim (review): the exit
# status of a command known to fail, and shipped files written by the script's own writer with a
# known difference from the fresh build


def test_missing_fails_when_the_command_fails(script: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # old code: "exit status 2; tables built: 0" and status 0, i.e. "builds no table" for a
    # command that never ran
    assert script.missing(["spectrum", "--no-such-flag"]) == 2
    assert "exit status 2" in capsys.readouterr().out


def _entry(tid: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"id": tid, "activation": {"name": tid}, "which": "derivative", "q": [0, 0],
            "arrays": {f: f"{tid}.{f}" for f in arrays}, "digest": "x"}


def _fake(script: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_ids: list[str],
          fresh_ids: list[str], shipped_format: int = shipped_tables.SHIPPED_FORMAT,
          ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays = {"coeffs": np.arange(12.0).reshape(1, 12), "edges": np.zeros(0)}

    def manifest(ids: list[str], fmt: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        members = {f"{t}.{f}": a for t in ids for f, a in arrays.items()}
        return ({"format": fmt, "params_digest": "p", "probes": [0.0],
                 "tables": [_entry(t, arrays) for t in ids]}, members)

    script.write(*manifest(shipped_ids, shipped_format), tmp_path)
    monkeypatch.setattr(shipped_tables, "MANIFEST", tmp_path / "manifest.json")
    monkeypatch.setattr(shipped_tables, "ARRAYS", tmp_path / "tables.npz")
    assert json.loads((tmp_path / "manifest.json").read_text())["format"] == shipped_format
    return manifest(fresh_ids, shipped_tables.SHIPPED_FORMAT)


def test_check_is_clean_for_identical_files(script: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = _fake(script, tmp_path, monkeypatch, ["a", "b"], ["a", "b"])
    assert script.check(*fresh) == 0


def test_check_reports_a_shipped_table_the_plan_dropped(script: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # old code compared only the fresh tables: "all bit-identical" with a stale extra table
    fresh = _fake(script, tmp_path, monkeypatch, ["a", "b"], ["a"])
    assert script.check(*fresh) == 1
    assert "b: shipped but not in the plan" in capsys.readouterr().out


def test_check_reports_another_shipped_format(script: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # load() serves nothing from a manifest of another format; old --check called it identical
    fresh = _fake(script, tmp_path, monkeypatch, ["a"], ["a"],
                  shipped_format=shipped_tables.SHIPPED_FORMAT + 1)
    assert script.check(*fresh) == 1
