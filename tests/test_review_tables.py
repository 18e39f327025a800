"""Review of scripts/build_tables.py: --missing and --check report what they claim.

Truths: the exit status of a command that is known to fail (an unknown flag), and shipped files
written here by the script's own writer with a known difference from the fresh build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actspec.kernels import shipped_tables

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_tables.py"


@pytest.fixture(scope="module")
def script() -> Any:
    spec = importlib.util.spec_from_file_location("build_tables_review", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
