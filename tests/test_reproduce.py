"""actspec reproduce: claims that must hold at quick size, caching, and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actspec.cli import run
from actspec.reproduce import run_reproduction


def _claims(report: dict, part: str) -> list[dict]:
    return [c for c in report["claims"] if c["part"] == part]


def test_fig1_and_theorems_quick(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    rep = run_reproduction("theorems", tmp_path, quick=True, on_part=lambda p, s, k, t: events.append((p, s)))
    assert ("theorems-core", "done") in events
    core = {c["claim"]: c for c in _claims(rep, "theorems-core")}
    rank = next(c for k, c in core.items() if k.startswith("quadratic activation"))
    assert rank["measured"] == 3 and rank["status"] == "holds"
    assert all(c["status"] == "holds" for k, c in core.items() if "is in class" in k)
    rep1 = run_reproduction("fig1", tmp_path, quick=True)
    n50 = [c for c in _claims(rep1, "fig1-spectra") if "n=50" in c["setting"]]
    relu = [c for c in n50 if c["claim"].startswith("ReLU")]
    assert relu and all(c["status"] == "holds" for c in relu)
    assert all(c["measured"]["relu"] > c["measured"]["tanh"] for c in relu)
    assert (tmp_path / "fig1_eigenvalues_n50.png").read_bytes()[:4] == b"\x89PNG"
    # a second run is served from the cache
    events.clear()
    rep2 = run_reproduction("fig1", tmp_path, quick=True, on_part=lambda p, s, k, t: events.append((p, s)))
    assert events == [("fig1-spectra", "cached"), ("fig1-training", "cached")]
    assert rep2["claims"] == rep1["claims"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reproduction"] == "fig1" and report["summary"]["holds"] >= 2
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()
    assert "| part | claim |" in (tmp_path / "report.md").read_text()


def test_cli_unknown_reproduction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["reproduce", "fig9", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown reproduction 'fig9'")
