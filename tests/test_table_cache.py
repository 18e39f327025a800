"""The on-disk cache of dual tables (issue 20 item 1): loaded values are bit-identical to built
ones, bad files are never trusted, ACTSPEC_NO_CACHE disables it, failures fall back silently.

The built-in tanh stands for any activation here, so the tables shipped with the package are
switched off in this module (tests/test_shipped_tables.py covers those)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import actspec
from actspec.activations import activation
from actspec.kernels import dual as dual_mod
from actspec.kernels import shipped_tables, table_cache
from actspec.kernels.dual import DualTable


def _X() -> np.ndarray:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, 4))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module", autouse=True)
def _no_shipped_tables() -> Iterator[None]:
    """dual_table goes to the user's cache (and builds) for built-ins too, as for any activation."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shipped_tables, "load", lambda *a, **k: None)
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """G-infinity of tanh built with an empty cache directory (the one real build here)."""
    d = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTSPEC_CACHE_DIR", str(d))
        mp.delenv("ACTSPEC_NO_CACHE", raising=False)
        dual_mod.clear_caches()
        G = actspec.gram(_X(), "tanh")
        tab = dual_mod.dual_table(activation("tanh"), "derivative")
        dual_mod.clear_caches()
    files = sorted(d.rglob("*.npz"))
    return {"dir": d, "G": G, "tab": tab, "files": files}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: dict) -> Path:
    """A private copy of the built cache directory, selected by ACTSPEC_CACHE_DIR."""
    d = tmp_path / "cache"
    shutil.copytree(built["dir"], d)
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(d))
    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)
    dual_mod.clear_caches()
    yield d
    dual_mod.clear_caches()


def _count_builds(monkeypatch: pytest.MonkeyPatch, tab: DualTable) -> list[int]:
    """Replace DualTable.build by a counter returning the known table (no 3-second builds)."""
    calls: list[int] = []

    def fake(cls, act, which, s1, s2):  # noqa: ANN001, ARG001
        calls.append(1)
        return tab

    monkeypatch.setattr(DualTable, "build", classmethod(fake))
    return calls


def _tanh_file(d: Path) -> Path:
    act = activation("tanh")
    key = dual_mod._disk_key(act, "derivative", 0, 0)
    return table_cache._path("dual-tables", key)


def test_build_writes_files_under_version_and_format(built: dict) -> None:
    assert built["files"], "nothing was written"
    for f in built["files"]:
        rel = f.relative_to(built["dir"])
        assert rel.parts[0] == actspec.__version__
        assert rel.parts[1] == f"dual-tables-f{table_cache.FORMAT_VERSION}"
    assert not [p for p in built["dir"].rglob("*") if p.name.startswith(".")]  # no temporary left


def test_loaded_values_are_bit_identical(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                         built: dict) -> None:
    def refuse(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("rebuilt a table that is on disk")

    monkeypatch.setattr(DualTable, "build", refuse)
    G = actspec.gram(_X(), "tanh")
    assert np.array_equal(G, built["G"])
    tab = dual_mod.dual_table(activation("tanh"), "derivative")
    assert np.array_equal(tab.coeffs, built["tab"].coeffs)
    assert (tab.edges is None) == (built["tab"].edges is None)
    if tab.edges is not None:
        assert np.array_equal(tab.edges, built["tab"].edges)
    assert (tab.check_error, tab.quad_error, tab.scale, tab.level) == (
        built["tab"].check_error, built["tab"].quad_error, built["tab"].scale, built["tab"].level)
    th = np.linspace(0.0, np.pi, 1001)
    assert np.array_equal(tab.evaluate_theta(th), built["tab"].evaluate_theta(th))


def test_truncated_file_is_rebuilt_and_overwritten(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                   built: dict) -> None:
    path = _tanh_file(cache)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    calls = _count_builds(monkeypatch, built["tab"])
    tab = dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1] and tab is built["tab"]
    assert path.read_bytes() != data[: len(data) // 2]  # rewritten whole
    dual_mod.clear_caches()
    dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1]  # the rewritten file is used


def test_file_of_another_key_is_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                        built: dict) -> None:
    path = _tanh_file(cache)
    arrays = table_cache.load("dual-tables", dual_mod._disk_key(activation("tanh"), "derivative",
                                                                 0, 0))
    assert arrays is not None
    other = dual_mod._disk_key(activation("elu"), "derivative", 0, 0)
    assert table_cache.save("dual-tables", other, arrays)
    shutil.copyfile(table_cache._path("dual-tables", other), path)  # a hash collision, say
    calls = _count_builds(monkeypatch, built["tab"])
    dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1]


def test_altered_or_nonfinite_values_are_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                 built: dict) -> None:
    path = _tanh_file(cache)
    with np.load(path) as z:
        payload = {k: np.array(z[k]) for k in z.files}
    payload["coeffs"][0, 0] += 1e-3  # altered, digest kept
    np.savez(path, **payload)
    calls = _count_builds(monkeypatch, built["tab"])
    dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1]
    # a consistent file (right key and digest) with a non-finite coefficient: refused by the checks
    key = dual_mod._disk_key(activation("tanh"), "derivative", 0, 0)
    arrays = table_cache.load("dual-tables", key)
    assert arrays is not None
    arrays["coeffs"] = arrays["coeffs"].copy()
    arrays["coeffs"][1, 2] = np.nan
    assert table_cache.save("dual-tables", key, arrays)
    dual_mod.clear_caches()
    dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1, 1]


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, cache: Path,
                                           monkeypatch: pytest.MonkeyPatch, built: dict) -> None:
    monkeypatch.setenv("ACTSPEC_NO_CACHE", "1")
    calls = _count_builds(monkeypatch, built["tab"])
    dual_mod.dual_table(activation("tanh"), "derivative")  # a valid file is there: not read
    assert calls == [1]
    empty = tmp_path / "empty"
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(empty))
    dual_mod.clear_caches()
    dual_mod.dual_table(activation("tanh"), "derivative")
    assert calls == [1, 1] and not empty.exists()


def test_unwritable_directory_falls_back_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  built: dict) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(blocker / "cache"))  # mkdir must fail
    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)
    dual_mod.clear_caches()
    calls = _count_builds(monkeypatch, built["tab"])
    tab = dual_mod.dual_table(activation("tanh"), "derivative")
    assert tab is built["tab"] and calls == [1]
    assert not table_cache.save("dual-tables", "k", {"a": np.zeros(2)})
    assert table_cache.load("dual-tables", "k") is None
    dual_mod.clear_caches()


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(tmp_path / "x"))
    assert table_cache.cache_root() == tmp_path / "x"
    monkeypatch.delenv("ACTSPEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert table_cache.cache_root() == tmp_path / "xdg" / "actspec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert table_cache.cache_root() == tmp_path / "home" / ".cache" / "actspec"
    assert table_cache.cache_dir("k") == (tmp_path / "home" / ".cache" / "actspec"
                                          / actspec.__version__ / f"k-f{table_cache.FORMAT_VERSION}")


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTSPEC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)
    arrays = {"coeffs": np.arange(24000, dtype=np.float64).reshape(2000, 12)}
    ok: list[bool] = []
    threads = [threading.Thread(target=lambda: ok.append(table_cache.save("k", "key", arrays)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ok == [True] * 8
    got = table_cache.load("k", "key")
    assert got is not None and np.array_equal(got["coeffs"], arrays["coeffs"])
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [
        table_cache._path("k", "key").name]  # one whole file, no temporary left
