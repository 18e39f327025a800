"""The command line: JSON per the contract, plots, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import actspec
from actspec.cli import run


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_spectrum_json_matches_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    code, out, _ = _run(["spectrum", "-a", "relu", "--activation", "tanh", "--data", "circle", "--n", "15",
                         "--width", "inf", "--width", "2000", "--json", str(js), "--plot", str(png)], capsys)
    assert code == 0
    assert "relu" in out and "λ_min" in out
    d = json.loads(js.read_text())
    assert {"settings", "data", "results"} <= set(d)
    assert d["data"]["n"] == 15 and d["data"]["dim"] == 10
    assert [(r["activation"], r["width"]) for r in d["results"]] == [
        ("relu", "inf"), ("relu", 2000), ("tanh", "inf"), ("tanh", 2000)]
    X = actspec.datasets.load_data("circle", n=15).X
    for r in d["results"]:
        for key in ("eigenvalues", "lambda_min", "lambda_max", "condition_number", "trace"):
            assert key in r
        ev = np.array(r["eigenvalues"])
        assert np.all(np.diff(ev) <= 0) and len(ev) == 15
        width = None if r["width"] == "inf" else r["width"]
        G = actspec.gram(X, r["activation"], width, seed=0)
        np.testing.assert_allclose(ev, actspec.eigenvalues(G), atol=1e-12)
        assert r["trace"] == pytest.approx(np.trace(G), rel=1e-12)
        assert r["lambda_min"] == ev[-1] and r["lambda_max"] == ev[0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrum_defaults_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["spectrum", "--n", "12"], capsys)
    assert code == 0
    for name in ("relu", "elu", "tanh", "swish"):
        assert name in out


def test_hermite_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "h.json"
    code, _, _ = _run(["hermite", "elu", "--degree", "12", "--json", str(js),
                       "--plot", str(tmp_path / "h.png")],
                      capsys)
    assert code == 0
    d = json.loads(js.read_text())
    assert d["activation"] == "elu" and d["kink_order"] == 2
    np.testing.assert_allclose(d["coefficients"], actspec.hermite_coefficients("elu", 12), rtol=0, atol=0)
    assert len(d["coefficients"]) == 13
    code, _, _ = _run(["hermite", "tanh", "--degree", "3", "--json", str(js)], capsys)
    assert json.loads(js.read_text())["kink_order"] is None


BAD = [
    (["spectrum", "-a", "rleu"], "Did you mean 'relu'"),
    (["spectrum", "--width", "abc"], "--width"),
    (["spectrum", "--width", "-5"], "--width"),
    (["spectrum", "--train", "everything"], "train"),
    (["spectrum", "--init", "xavier"], "init"),
    (["spectrum", "--n", "0"], ""),
    (["spectrum", "--data", "nosuchfile.npy"], ""),
    (["spectrum", "--data", "moons"], ""),
    (["spectrum", "--dtype", "float16", "--width", "10"], "dtype"),
    (["spectrum", "--bogus"], "No such option"),
    (["hermite", "relu", "--degree", "-1"], "--degree"),
    (["hermite", "relu", "--of", "second"], "--of"),
    (["hermite"], "missing the activation"),
    (["nosuchcommand"], "No such command"),
]


@pytest.mark.parametrize("args,fragment", BAD)
def test_bad_input_one_line_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_bad_data_files_leave_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[1.0, np.nan], [0.0, 1.0]]))
    js = tmp_path / "out.json"
    code, _, err = _run(["spectrum", "--data", str(bad), "--json", str(js)], capsys)
    assert code == 2 and err.startswith("error: ")
    assert not js.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_unwritable_output_fails_before_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["spectrum", "--json", str(tmp_path / "missing" / "x.json")], capsys)
    assert code == 2 and "does not exist" in err


def test_console_script_exit_status(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "actspec", "spectrum", "-a", "tahn"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown activation 'tahn'")
    assert "Traceback" not in proc.stderr


def test_spectrum_high_precision_resolves_tiny_eigenvalues(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "hp.json"
    code, _, _ = _run(["spectrum", "-a", "swish", "-a", "relu", "--n", "41", "--precision", "high",
                       "--json", str(js)], capsys)
    assert code == 0
    rows = {r["activation"]: r for r in json.loads(js.read_text())["results"]}
    X = actspec.datasets.load_data("circle", n=41).X
    for name, r in rows.items():  # large eigenvalues agree with float64
        ev = actspec.eigenvalues(actspec.gram(X, name))
        np.testing.assert_allclose(r["eigenvalues"][:5], ev[:5], rtol=1e-11)
    sw = rows["swish"]
    assert sw["precision"] == "high" and not sw["condition_number_is_lower_bound"]
    assert 0 < sw["lambda_min"] < 1e-14 * sw["lambda_max"]  # below what float64 could resolve


def test_expression_activation_equals_builtin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "e.json"
    code, _, _ = _run(["spectrum", "-a", "x*sigmoid(x)", "-a", "swish", "--n", "9", "--json", str(js)],
                      capsys)
    assert code == 0
    a, b = json.loads(js.read_text())["results"]
    np.testing.assert_allclose(a["eigenvalues"], b["eigenvalues"], rtol=1e-10, atol=1e-13)
