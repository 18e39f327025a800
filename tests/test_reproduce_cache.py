"""reproduce caches are validated, never trusted blindly (issue 18), and the report explains itself
(issue 17 items 7, 8): reasons, the setting column, --json, a calibrated or labelled time estimate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actspec.experiments.reproduce import framework as fw

CALLS: list[str] = []


def _part_a(ctx: fw.Context) -> dict[str, Any]:
    CALLS.append("a")
    rows = [fw.claim(f"a{i}", "toy", 1, 1, True) for i in range(10)]
    rows.append(fw.claim("a fails", "toy setting", 1, 2, False, tests="a toy check",
                         reason="two is not one"))
    return {"numbers": {"x": 1.0}, "claims": rows, "figures": []}


def _part_b(ctx: fw.Context) -> dict[str, Any]:
    CALLS.append("b")
    return {"numbers": {}, "claims": [fw.claim("b", "toy", 0, None, None, reason="no data")],
            "figures": []}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cheap parts registered only for the test."""
    monkeypatch.setitem(fw.PARTS, "toy-a", fw.Part("toy-a", "Toy A", _part_a, 1, 1))
    monkeypatch.setitem(fw.PARTS, "toy-b", fw.Part("toy-b", "Toy B", _part_b, 1, 1))
    monkeypatch.setitem(fw.REPRODUCTIONS, "toy", ["toy-a", "toy-b"])
    CALLS.clear()


def _run(out: Path, warned: list[str]) -> dict[str, Any]:
    return fw.run_reproduction("toy", out, on_warning=warned.append)


def _cache_of(out: Path, part: str) -> Path:
    (path,) = (out / "cache").glob(f"{part}-*.json")
    return path


@pytest.mark.parametrize("fault", ["empty_object", "other_part", "truncated", "binary", "empty_file",
                                   "other_settings"])
def test_bad_part_cache_is_recomputed_with_a_warning(tmp_path: Path, toy: None, fault: str) -> None:
    warned: list[str] = []
    first = _run(tmp_path, warned)
    assert first["summary"] == {"holds": 10, "does not hold": 1, "inconclusive": 1} and not warned
    assert CALLS == ["a", "b"]
    cache = _cache_of(tmp_path, "toy-a")
    good = cache.read_bytes()
    if fault == "empty_object":  # the case: "{}" made the report say "1 claims hold"
        cache.write_text("{}")
    elif fault == "other_part":  # a cache copied from another part
        shutil.copy(_cache_of(tmp_path, "toy-b"), cache)
    elif fault == "truncated":
        cache.write_bytes(good[: len(good) // 2])
    elif fault == "binary":
        cache.write_bytes(bytes(range(256)) * 4)
    elif fault == "empty_file":
        cache.write_bytes(b"")
    else:  # right part, but stamped with other settings (e.g. copied from a --seed 1 run)
        data = json.loads(good)
        data["_cache"]["settings"]["seed"] = 1
        cache.write_text(json.dumps(data))
    CALLS.clear()
    again = _run(tmp_path, warned)
    assert CALLS == ["a"]  # only the bad part is recomputed
    assert again["summary"] == first["summary"]  # no claim vanished
    assert len(warned) == 1 and str(cache) in warned[0] and "recomputing part toy-a" in warned[0]
    assert json.loads(cache.read_text())["_cache"]["part"] == "toy-a"  # rewritten, valid
    CALLS.clear()
    warned.clear()
    _run(tmp_path, warned)
    assert CALLS == [] and warned == []  # now served from the (valid) cache


def test_cache_listing_a_missing_figure_is_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      toy: None) -> None:
    def with_figure(ctx: fw.Context) -> dict[str, Any]:
        CALLS.append("f")
        ctx.fig("f.png").write_bytes(b"\x89PNG")
        return {"claims": [fw.claim("f", "toy", 1, 1, True)], "figures": ["f.png"]}

    monkeypatch.setitem(fw.PARTS, "toy-a", fw.Part("toy-a", "Toy A", with_figure, 1, 1))
    warned: list[str] = []
    _run(tmp_path, warned)
    (tmp_path / "f.png").unlink()
    CALLS.clear()
    _run(tmp_path, warned)
    assert CALLS == ["f"] and "f.png which is missing" in warned[0]


@pytest.mark.parametrize("fault", ["empty_object", "other_unit", "truncated", "binary", "bad_schema"])
def test_bad_unit_cache_is_recomputed_with_a_warning(tmp_path: Path, fault: str) -> None:
    calls: list[float] = []

    def work(x: float) -> dict[str, Any]:
        calls.append(x)
        return {"value": x * 2, "curve": [x, x]}

    def check(result: dict[str, Any]) -> str | None:
        return None if isinstance(result.get("curve"), list) else "has no curve"

    warned: list[str] = []
    ctx = fw.Context(tmp_path, part_name="p", on_warning=warned.append)
    assert ctx.unit("u", work, (1.0,), check=check) == {"value": 2.0, "curve": [1.0, 1.0]}
    assert ctx.unit("v", work, (3.0,), check=check)["value"] == 6.0
    (path_u,) = (tmp_path / "cache" / "units" / "p").glob("u-*.json")
    (path_v,) = (tmp_path / "cache" / "units" / "p").glob("v-*.json")
    good = path_u.read_bytes()
    if fault == "empty_object":
        path_u.write_text("{}")
    elif fault == "other_unit":  # another unit's file copied over this one
        shutil.copy(path_v, path_u)
    elif fault == "truncated":
        path_u.write_bytes(good[:20])
    elif fault == "binary":
        path_u.write_bytes(b"\xff\xfe\x00\x81" * 50)
    else:
        data = json.loads(good)
        data["result"].pop("curve")
        path_u.write_text(json.dumps(data))
    calls.clear()
    assert ctx.unit("u", work, (1.0,), check=check) == {"value": 2.0, "curve": [1.0, 1.0]}
    assert calls == [1.0] and len(warned) == 1 and str(path_u) in warned[0]
    assert ctx.unit("u", work, (1.0,), check=check)["value"] == 2.0 and calls == [1.0]


def test_training_unit_check_rejects_interrupted_and_partial_runs() -> None:
    from actspec.experiments.reproduce.parts import check_training_unit

    run = {"epoch": [0, 1], "loss": [1.0, 0.5], "predicted_loss": [1.0, 0.5], "gram_drift": [0, 0.1],
           "status": "ok"}
    assert check_training_unit({"runs": [run]}) is None
    assert check_training_unit({}) is not None
    assert check_training_unit({"runs": [dict(run, loss=[1.0])]}) is not None
    assert check_training_unit({"runs": [dict(run, status="interrupted")]}) is not None


def test_report_rows_carry_reasons_and_settings(tmp_path: Path, toy: None) -> None:
    rep = _run(tmp_path, [])
    rows = {c["claim"]: c for c in rep["claims"]}
    assert rows["a fails"]["reason"] == "two is not one" and rows["a fails"]["tests"] == "a toy check"
    assert rows["b"]["reason"] == "no data" and rows["a0"]["reason"] is None
    md = (tmp_path / "report.md").read_text()
    assert "| why (if not holds) |" in md and "| setting |" in md
    row = "| toy-a | a fails | a toy check | toy setting | 1 | 2 | **does not hold** | two is not one |"
    assert row in md
    html = (tmp_path / "report.html").read_text()
    assert "<td>two is not one</td>" in html and "<th>setting</th>" in html
    # a part that forgets the reason still gets a visible placeholder, never an empty cell
    assert fw.claim("x", "s", 1, 2, False)["reason"] == fw.NO_REASON


def test_cli_summary_shows_setting_and_reason_and_writes_json(
    tmp_path: Path, toy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from actspec.cli import run

    js = tmp_path / "mine.json"
    assert run(["reproduce", "toy", "--out", str(tmp_path / "o"), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "two is not one" in out and "toy setting" in out and "why" in out
    data = json.loads(js.read_text())
    assert data == json.loads((tmp_path / "o" / "report.json").read_text())
    assert data["summary"]["does not hold"] == 1


def test_cli_json_collision_refused_before_any_part(
    tmp_path: Path, toy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from actspec.cli import run

    d = tmp_path / "adir"
    d.mkdir()
    assert run(["reproduce", "toy", "--out", str(tmp_path / "o"), "--json", str(d)]) == 2
    assert capsys.readouterr().err.startswith("error:") and CALLS == []


def test_time_estimate_is_calibrated_or_says_it_is_a_guess() -> None:
    base = fw.expected_seconds("theorems", True)
    sec, how = fw.calibrated_seconds("theorems", True, probe=lambda: 2 * fw.REFERENCE_PROBE_SECONDS)
    assert sec == pytest.approx(2 * base) and how.startswith("calibrated on this machine")
    sec, how = fw.calibrated_seconds("theorems", True, probe=lambda: fw.REFERENCE_PROBE_SECONDS)
    assert sec == pytest.approx(base)
    t = fw.speed_probe()
    assert 0 < t < 30

    def broken() -> float:
        raise RuntimeError("no BLAS")

    sec, how = fw.calibrated_seconds("theorems", True, probe=broken)
    assert sec == base and how.startswith("a guess")
    sec, how = fw.calibrated_seconds("theorems", True, device="cuda")
    assert sec == base and how.startswith("a guess")


def test_units_use_a_fixed_thread_count(tmp_path: Path) -> None:
    """--workers N and --workers 1 agree because every unit runs UNIT_THREADS torch threads."""
    import torch

    seen: list[int] = []
    ctx = fw.Context(tmp_path, part_name="p")
    before = torch.get_num_threads()
    ctx.unit("t", lambda: {"threads": seen.append(torch.get_num_threads()) or 0})
    assert seen == [fw.UNIT_THREADS] and torch.get_num_threads() == before
    assert np.isfinite(fw.UNIT_THREADS)


def test_prefetch_recomputes_bad_unit_caches_once_with_one_warning(tmp_path: Path) -> None:
    """--workers: a corrupt unit file is recomputed in a worker, warned about once, then loaded."""
    warned: list[str] = []
    ctx = fw.Context(tmp_path, part_name="p", workers=2, on_warning=warned.append)
    jobs = [("u", dict, ({"x": 1.0},)), ("v", dict, ({"x": 2.0},)), ("w", dict, ({"x": 3.0},))]
    ctx.prefetch(jobs)
    (path_u,) = (tmp_path / "cache" / "units" / "p").glob("u-*.json")
    path_u.write_bytes(b"\x00\x01 truncated")
    (path_v,) = (tmp_path / "cache" / "units" / "p").glob("v-*.json")
    path_v.write_text("{}")
    again = fw.Context(tmp_path, part_name="p", workers=2, on_warning=warned.append)
    again.prefetch(jobs)
    assert again.units_computed == 2 and len(warned) == 2
    assert {k: again.unit(k, fn, a)["x"] for k, fn, a in jobs} == {"u": 1.0, "v": 2.0, "w": 3.0}
    assert len(warned) == 2  # the loads after prefetch do not warn again
