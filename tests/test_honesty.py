"""Numerical honesty: unresolvable eigenvalues are reported as such, explosions are named."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from actspec.cli import run


def test_unresolved_eigenvalues_flagged_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js = tmp_path / "s.json"
    assert run(["spectrum", "-a", "swish", "-a", "relu", "--n", "50", "--preprocess", "paper",
                "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "≥" in out and "--precision high" in out
    res = {r["activation"]: r for r in json.loads(js.read_text())["results"]}
    swish, relu = res["swish"], res["relu"]
    # swish's λ_min is below n·eps·λ_max: the condition number is a lower bound, not noise
    assert swish["condition_number_is_lower_bound"] and swish["n_below_resolution"] >= 1
    assert swish["condition_number"] == pytest.approx(swish["lambda_max"] / swish["resolution"])
    assert not relu["condition_number_is_lower_bound"]
    assert relu["condition_number"] == pytest.approx(relu["lambda_max"] / relu["lambda_min"])


def test_exploding_activation_with_depth_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["depth", "-a", "cubic", "--n", "8", "--depth", "1..8", "--scaling", "raw"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the layer-")
    assert "overflowed" in err[0] and "--scaling cphi" in err[0]


def test_python_warnings_become_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from actspec.cli import _app

    @_app.app.command("_warn_probe", hidden=True)
    def _probe() -> None:
        warnings.warn("overflow encountered in multiply", RuntimeWarning, stacklevel=1)

    try:
        assert run(["_warn_probe"]) == 0
    finally:
        _app.app.registered_commands = [
            c for c in _app.app.registered_commands if c.name != "_warn_probe"
        ]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: overflow encountered in multiply (numerical overflow or invalid values: results "
        "may be inf/NaN; try --normalize)"
    ]


def test_dense_too_large_is_the_only_stderr_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The method line is printed only after the memory check, so a refusal stays one line."""
    monkeypatch.setattr("actspec.core.resources.available_memory", lambda: 2**20)  # 1 MiB free
    out = tmp_path / "d.json"
    assert run(["spectrum", "-a", "relu", "--data", "sphere", "--n", "500", "--dim", "4",
                "--method", "dense", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: dense G∞ for n=500 needs about")
    assert "--method iterative" in err[0] and not out.exists()
