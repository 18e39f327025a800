"""Determinism: the same command and seed give bit-identical JSON (issue 11.4).

Every command's JSON records the versions, git revision, seed, dtype and device; wall-clock
times appear only with ``--timings``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actspec.cli import run
from actspec.core.io import TIMING_KEYS

COMMANDS = {
    "spectrum": ["spectrum", "-a", "relu", "-a", "tanh", "--n", "12", "--width", "inf", "--width", "300",
                 "--dtype", "float32"],
    "spectrum-high": ["spectrum", "-a", "swish", "--n", "10", "--precision", "high", "--digits", "30"],
    "hermite": ["hermite", "elu", "--degree", "10"],
    "data": ["data", "--data", "digits", "--n", "150"],
    "train": ["train", "-a", "relu", "-a", "elu", "--n", "8", "--width", "200", "--lr", "0.1",
              "--epochs", "12", "--batch-size", "4"],
    "depth": ["depth", "-a", "relu", "--n", "8", "--depth", "1..3", "--width", "64"],
    "analyze": ["analyze", "tanh", "--n", "12"],
}


def _keys(obj: object) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _keys(v)}
    return set()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_same_command_same_bytes(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = []
    for i in range(2):
        js = tmp_path / f"{i}.json"
        seed = [] if name == "hermite" else ["--seed", "3"]  # hermite has no randomness
        assert run([*COMMANDS[name], *seed, "--json", str(js)]) == 0, capsys.readouterr().err
        outs.append(js.read_bytes())
    assert outs[0] == outs[1]
    d = json.loads(outs[0])
    meta = d["meta"]
    for key in ("actspec", "python", "numpy", "scipy", "torch", "git_revision"):
        assert key in meta
    assert not (_keys(d) & TIMING_KEYS)
    settings = d.get("settings", {})
    if name in ("spectrum", "train", "depth"):
        assert settings["seed"] == 3 and "dtype" in settings and "device" in settings


def test_timings_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "t.json"
    assert run([*COMMANDS["train"], "--json", str(js), "--timings"]) == 0
    r = json.loads(js.read_text())["results"][0]
    assert r["seconds_per_epoch"] > 0
