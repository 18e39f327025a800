"""Ctrl-C during long commands (issue 11, item 5): exit status 130, one line ``error: interrupted;
...`` saying what was kept and how to resume, resumable state, and no half-written files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import actspec.experiments.depth as deep
import actspec.experiments.reproduce.framework as rep
import actspec.experiments.spectrum as runs
import actspec.experiments.training as tr
import actspec.sweep.runner as sweep
from actspec.cli import run


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    """The single ``error:`` line (progress lines may precede it); it must be the last line."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    assert errors[0].startswith("error: interrupted;"), errors[0]
    return errors[0]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_spectrum_finite_width(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    real = runs.gram

    def gram(X: Any, act: Any, width: Any = None, **kw: Any) -> Any:
        if width is not None:  # the infinite-width G of the first activation is done by then
            raise KeyboardInterrupt
        return real(X, act, width, **kw)

    monkeypatch.setattr(runs, "gram", gram)
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    code, _, err = _run(["spectrum", "-a", "relu", "--n", "6", "--width", "inf", "--width", "50",
                         "--json", str(js), "--plot", str(png)], capsys)
    assert code == 130
    line = _error_line(err)
    assert "no output file was written" in line and "run the same command again" in line
    assert _files(tmp_path) == set()


def test_train_keeps_finished_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = tr.TwoLayerNet.step
    calls = {"n": 0}

    def step(self: Any, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(tr.TwoLayerNet, "step", step)
    js, png = tmp_path / "t.json", tmp_path / "t.png"
    code, _, err = _run(["train", "-a", "relu", "-a", "tanh", "--n", "6", "--width", "50",
                         "--epochs", "20", "--log-every", "1", "--json", str(js), "--plot", str(png)],
                        capsys)
    assert code == 130
    line = _error_line(err)
    assert str(js) in line and str(png) in line and "epochs finished so far" in line
    assert "run the same command again" in line
    d = json.loads(js.read_text())  # complete JSON, flagged as interrupted
    assert d["interrupted"] is True and [r["activation"] for r in d["results"]] == ["relu"]
    assert d["results"][0]["epoch"] == [0, 1, 2, 3]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert _files(tmp_path) == {"t.json", "t.png"}  # no temporary files


def test_train_without_outputs_says_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def step(self: Any, *a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(tr.TwoLayerNet, "step", step)
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["train", "-a", "relu", "--n", "6", "--width", "50", "--epochs", "5"], capsys)
    assert code == 130
    assert "no file was written" in _error_line(err)
    assert _files(tmp_path) == set()


def test_depth(tmp_path: Path, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    real = deep.deep_params
    calls = {"n": 0}

    def params(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(deep, "deep_params", params)
    js, png = tmp_path / "d.json", tmp_path / "d.png"
    code, _, err = _run(["depth", "-a", "relu", "-a", "tanh", "--depth", "1..2", "--n", "6",
                         "--json", str(js), "--plot", str(png)], capsys)
    assert code == 130 and calls["n"] == 2
    assert "no output file was written" in _error_line(err)
    assert _files(tmp_path) == set()


def test_hermite_generic_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def coefficients(*a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "hermite_coefficients", coefficients)
    code, _, err = _run(["hermite", "relu", "--json", str(tmp_path / "h.json")], capsys)
    assert code == 130 and "run the same command again" in _error_line(err)
    assert _files(tmp_path) == set()


def test_sweep_says_where_results_are(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def run_sweep(*a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    db, js = tmp_path / "s.duckdb", tmp_path / "s.json"
    code, _, err = _run(["sweep", "-c", "spectrum", "-p", "n=4,5", "--db", str(db), "--json", str(js)],
                        capsys)
    assert code == 130
    line = _error_line(err)
    assert str(db) in line and "run the same command again" in line
    assert not js.exists()


# ---- reproduce: finished parts stay cached and a re-run resumes from them


_STOP = {"second": True}


def _part_one(ctx: Any) -> dict[str, Any]:
    return {"claims": [rep.claim("one", "tiny", 1, 1, True)], "figures": []}


def _part_two(ctx: Any) -> dict[str, Any]:
    if _STOP["second"]:
        raise KeyboardInterrupt
    return {"claims": [rep.claim("two", "tiny", 2, 2, True)], "figures": []}


def test_reproduce_resumes_from_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rep.part_names("fig1")  # registers the real parts first
    monkeypatch.setitem(rep.PARTS, "t-one", rep.Part("t-one", "one", _part_one, 0.1, 0.1))
    monkeypatch.setitem(rep.PARTS, "t-two", rep.Part("t-two", "two", _part_two, 0.1, 0.1))
    monkeypatch.setitem(rep.REPRODUCTIONS, "t-rep", ["t-one", "t-two"])
    monkeypatch.setitem(_STOP, "second", True)
    out = tmp_path / "out"
    code, _, err = _run(["reproduce", "t-rep", "--out", str(out)], capsys)
    assert code == 130
    line = _error_line(err)
    assert "during t-two" in line and "1 of 2 part(s) are finished" in line
    assert f"{out / 'cache'}" in line and "run the same command to resume" in line
    cached = sorted(p.name for p in (out / "cache").glob("*.json"))
    assert len(cached) == 1 and cached[0].startswith("t-one-")
    assert not (out / "report.json").exists()
    assert all(p.parent.name != "out" or not p.name.startswith(".") for p in out.rglob("*"))

    _STOP["second"] = False
    code, _, err = _run(["reproduce", "t-rep", "--out", str(out)], capsys)
    assert code == 0, err
    assert "t-one: cached" in err and "t-two: cached" not in err
    report = json.loads((out / "report.json").read_text())
    assert [c["claim"] for c in report["claims"]] == ["one", "two"]


# ---- the real entry point and a real SIGINT


def _default_sigint() -> None:
    """In the child: Ctrl-C's default action, as in a terminal. A suite started in the
    background (``cmd &`` in a script, nohup) inherits SIGINT ignored, and a child that ignores
    it would never see the signal these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)



def test_sigint_to_train_process(tmp_path: Path) -> None:
    js = tmp_path / "t.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "actspec", "train", "-a", "relu", "--n", "8", "--width", "200",
         "--epochs", "100000000", "--log-every", "1000", "--json", str(js)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
        preexec_fn=_default_sigint,
    )
    try:
        time.sleep(12.0)  # past the imports and the kernel at initialisation
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Traceback" not in out
    line = _error_line(err)
    if "while starting" in line:  # a very slow machine: still one clean line
        assert _files(tmp_path) == set()
        return
    assert "epochs finished so far" in line and str(js) in line
    d = json.loads(js.read_text())
    assert d["interrupted"] is True and d["results"][0]["epoch"][0] == 0
    assert np.isfinite(d["results"][0]["loss"][0])
    assert _files(tmp_path) == {"t.json"}


def test_startup_interrupt_only_exits_for_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during the package imports: the command exits 130 with one line; a library
    user's program gets its KeyboardInterrupt back (the helper returns)."""
    from actspec.core.errors import exit_if_command_startup

    with pytest.raises(SystemExit) as exc:
        exit_if_command_startup("/usr/local/bin/actspec")
    assert exc.value.code == 130
    assert capsys.readouterr().err.strip() == "error: interrupted while starting; nothing was done"
    assert exit_if_command_startup("/home/me/my_script.py") is None
    assert capsys.readouterr().err == ""


def test_sigint_while_installed_script_starts(tmp_path: Path) -> None:
    """A real SIGINT to the installed ``actspec`` script during its imports: no traceback."""
    import shutil

    # the console script pip installed next to this interpreter; a wrapper found first on PATH
    # (pyenv's bash shim) would take the signal itself while it resolves the version (exit 130,
    # nothing printed by actspec)
    here = Path(sys.executable).parent / "actspec"
    exe = str(here) if here.exists() else shutil.which("actspec")
    if exe is None:
        pytest.skip("the actspec script is not installed on PATH")
    proc = subprocess.Popen([exe, "spectrum", "--n", "10"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_default_sigint)
    time.sleep(0.3)  # Python is up, torch is still being imported
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    if proc.returncode == 0:  # a very fast machine finished first: nothing to check
        return
    if proc.returncode == -signal.SIGINT and not err and not out:
        return  # a loaded machine: the signal came before Python was up (default action)
    assert proc.returncode == 130, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted"), err
    assert err.strip().splitlines()[-1] == errors[0]


# ---- a second Ctrl-C while the first is reported (issue 18: torch traceback, 1 in 14 runs) -----

_SECOND_CTRL_C_AT_EXIT = r"""
import atexit, os, signal, sys, time
import actspec.experiments.spectrum as runs
from actspec import cli

def second_ctrl_c():  # where torch's finalizers run at exit: a second Ctrl-C lands here
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)

atexit.register(second_ctrl_c)

def first_ctrl_c(*a, **k):
    raise KeyboardInterrupt

runs.run_hermite = first_ctrl_c
cli.main(["hermite", "relu", "-k", "2"])
"""


def test_second_ctrl_c_while_exiting_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _SECOND_CTRL_C_AT_EXIT], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120,
                          preexec_fn=_default_sigint)
    assert proc.returncode == 130, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["error: interrupted; no output file was written or left half-written; run "
                     "the same command again"], proc.stderr


def test_second_ctrl_c_while_reporting_the_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second Ctrl-C lands after the error line (e.g. in warnings.catch_warnings' exit):
    main still exits 130 with that one line; or before it: main prints it."""
    import actspec.cli as cli

    old = signal.getsignal(signal.SIGINT)

    def reported_then_interrupted(args: list[str]) -> int:
        cli._error("interrupted after 3 of 9 neurons; checkpoint saved to c.ckpt", 130)
        raise KeyboardInterrupt

    try:
        for fake, expected in [
            (reported_then_interrupted, "error: interrupted after 3 of 9 neurons; checkpoint "
             "saved to c.ckpt"),
            (lambda args: (_ for _ in ()).throw(KeyboardInterrupt()),
             "error: interrupted; no output file was written or left half-written; run the "
             "same command again"),
        ]:
            monkeypatch.setattr(cli, "_run", fake)
            with pytest.raises(SystemExit) as info:
                cli.main(["gram"])
            assert info.value.code == 130
            assert capsys.readouterr().err.splitlines() == [expected]
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # further Ctrl-C: ignored
    finally:
        signal.signal(signal.SIGINT, old)
        monkeypatch.setattr(cli, "_ON_INTERRUPT", None)
