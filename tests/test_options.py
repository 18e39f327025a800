"""One vocabulary (issue 16, items 4 and 7): options declared once for the CLI and the sweep, one
device resolver, ``--precision double|high`` everywhere, library errors that name parameters and
the CLI's flags for them, and the results query as a library function."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import click
import pytest
import typer

from actspec.cli import app, run
from actspec.core.errors import ActspecError
from actspec.core.validate import ParameterError, check_precision, check_width
from actspec.experiments import params as P


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


# ------------------------------------------------------------------ declared once


def _command(name: str) -> click.Command:
    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def _option(cmd: str, flag: str) -> click.Parameter:
    [p] = [p for p in _command(cmd).params if flag in p.opts]
    return p


@pytest.mark.parametrize("cmd", ["spectrum", "gram", "train", "data", "analyze", "depth"])
def test_data_options_are_the_declared_ones(cmd: str) -> None:
    for decl in P.DATA_PARAMS:
        flag = "--" + decl.name.replace("_", "-")
        opt = _option(cmd, flag)
        assert opt.default == decl.default and opt.help == decl.help, (cmd, flag)


def test_shared_network_options_come_from_the_declarations() -> None:
    for cmd in ("spectrum", "gram", "depth"):
        for decl in (P.TRAIN, P.INIT, P.NORMALIZE, P.DTYPE, P.DEVICE):
            flag = "--" + decl.name
            if cmd == "depth" and decl.name in ("train", "init", "normalize"):
                continue
            opt = _option(cmd, flag)
            assert opt.name == decl.name
            if not (cmd == "gram" and decl.name in ("device", "dtype")):  # gram: auto, own help
                assert opt.help == decl.help, (cmd, flag)
    assert _option("gram", "--device").default == "auto"
    assert _option("train", "--dtype").default == "float32"
    for cmd in ("spectrum", "analyze"):
        assert _option(cmd, "--precision").default == P.PRECISION.default == "double"


def test_sweep_parameters_are_generated_from_the_same_declarations() -> None:
    from actspec.sweep.grid import TASK_KINDS

    spectrum = TASK_KINDS["spectrum"].params
    for decl in (*P.DATA_PARAMS, P.WIDTH, P.TRAIN, P.INIT, P.NORMALIZE, P.DTYPE, P.DEVICE):
        assert spectrum[decl.name] == decl
    for kind in ("depth", "analyze", "train"):
        params = TASK_KINDS[kind].params
        for decl in P.DATA_PARAMS:
            assert params[decl.name] == decl, (kind, decl.name)
    assert TASK_KINDS["analyze"].params["precision"] == P.PRECISION
    train = TASK_KINDS["train"].params
    assert train["dtype"].default == "float32" and train["train"].choices == ("hidden", "both")
    assert train["width"].required and train["width"].type == "int"


# ------------------------------------------------------------------ one device resolver


@pytest.mark.skipif(not _no_gpu(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize(
    "args",
    [
        ["spectrum", "--n", "4", "--device", "cuda"],  # infinite width: the device is unused, yet checked
        ["depth", "--n", "4", "--depth", "1", "--device", "cuda"],
        ["gram", "--n", "4", "--device", "cuda", "--out", "{tmp}/G.npy"],
        ["gram", "--n", "4", "--device", "cuda:1", "--out", "{tmp}/G.npy"],  # cuda:N is a device
        ["train", "--n", "4", "--width", "10", "--epochs", "1", "--device", "cuda"],
        ["reproduce", "theorems", "--quick", "--device", "cuda", "--out", "{tmp}/rep"],
    ],
)
def test_device_cuda_without_gpu_is_one_line_exit_2(args: list[str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[0] != "reproduce":  # the one command without --json
        argv += ["--json", str(tmp_path / "out.json")]
    code, _, err = _run(argv, capsys)
    line = _one_error_line(code, err)
    assert "--device cuda" in line and "no CUDA GPU is available" in line, line
    assert list(tmp_path.iterdir()) == []


def test_gram_takes_every_device_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["gram", "--n", "4", "--device", "tpu", "--out", tmp_path / "G.npy"], capsys)
    assert "unknown --device 'tpu'" in _one_error_line(code, err)
    code, _, err = _run(["gram", "--n", "4", "--device", "cpu", "--out", tmp_path / "G.npy",
                         "--json", tmp_path / "g.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "g.json").read_text())["settings"]["device"] == "cpu"


def test_resolve_device_answers_cpu_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from actspec.core.devices import resolve_device; "
            "print(resolve_device(' CPU '), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"]


# ------------------------------------------------------------------ --precision double|high


def test_precision_vocabulary_is_one() -> None:
    assert check_precision("double") == "double" and check_precision("HIGH") == "high"
    assert check_precision("float64") == "double"  # the older spelling still works
    with pytest.raises(ParameterError, match="precision must be 'double' or 'high'"):
        check_precision("quad")
    assert P.PRECISION.coerce("float64") == "double"  # the sweep's analyze tasks too


@pytest.mark.parametrize("cmd", [["spectrum"], ["analyze", "relu"]])
def test_precision_spellings_on_the_command_line(cmd: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([*cmd, "--n", "4", "--precision", "quad"], capsys)
    assert "--precision must be 'double' or 'high' (got 'quad')" in _one_error_line(code, err)
    base = [*cmd, "--degree", "20"] if cmd[0] == "analyze" else [*cmd, "-a", "relu"]
    outs = []
    for spelling in ("double", "float64"):
        js = tmp_path / f"{spelling}.json"
        code, _, err = _run([*base, "--n", "5", "--precision", spelling, "--json", js], capsys)
        assert code == 0, err
        outs.append(json.loads(js.read_text()))
    a, b = outs
    a.pop("meta"), b.pop("meta")
    assert a == b  # float64 is the same run as double
    if cmd[0] == "spectrum":
        assert a["settings"]["precision"] == "double"
    else:  # the report card keeps recording its own spelling (unchanged JSON)
        assert a["settings"]["precision"] == "float64"


# ------------------------------------------------------------------ errors name parameters


def test_parameter_errors_name_the_parameter_and_the_cli_its_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ParameterError) as info:
        check_width("2.5")
    err = info.value
    assert isinstance(err, ActspecError) and err.param == "width"
    assert str(err) == "width must be 'inf' or a positive integer (got '2.5')"
    assert err.render(lambda name: f"--{name}") == "--width must be 'inf' or a positive integer (got '2.5')"
    again = pickle.loads(pickle.dumps(err))  # crosses process boundaries intact
    assert type(again) is ParameterError and again.param == "width" and str(again) == str(err)
    # the CLI shows the command's own flag: spectrum_mode is depth's --spectrum
    code, _, out = _run(["gram", "--n", "4", "--width", "10", "--checkpoint-every", "-1", "--out",
                         tmp_path / "G.npy"], capsys)
    assert "--checkpoint-every must be >= 0 seconds" in _one_error_line(code, out)
    code, _, out = _run(["sweep", "-c", "spectrum", "x.toml"], capsys)
    assert _one_error_line(code, out) == (
        "error: give either a CONFIG file or --command (with --param), not both")


def test_sweep_config_errors_name_parameters_in_the_library() -> None:
    from actspec.sweep.grid import build_config, parse_axis

    assert parse_axis("seed=0..2,7") == ("seed", ["0", "1", "2", "7"])
    with pytest.raises(ParameterError, match=r"^param 'n' must look like NAME=VALUE"):
        parse_axis("n")
    cfg = build_config(command="spectrum", params=["n=4,8", "activation=relu"], db="x.duckdb",
                       workers=3)
    assert [t.params["n"] for t in cfg.tasks] == [4, 8] and cfg.workers == 3
    assert str(cfg.db) == "x.duckdb"


# ------------------------------------------------------------------ data sources in the library


def test_cone_is_a_data_source_of_every_command(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from actspec.experiments.data import DataSpec

    ds = DataSpec(data="cone", n=6, dim=8, seed=1).load()
    assert ds.X.shape == (6, 8) and ds.info["span_dim"] == 6
    js = tmp_path / "s.json"
    code, _, err = _run(["spectrum", "-a", "relu", "--data", "cone", "--n", "6", "--dim", "8",
                         "--json", js], capsys)
    assert code == 0, err
    assert json.loads(js.read_text())["data"]["spread"] == 0.1
    code, _, err = _run(["spectrum", "--data", "cone", "--n", "0"], capsys)
    assert "--n must be >= 1" in _one_error_line(code, err)


# ------------------------------------------------------------------ results querying as a library


def test_query_results_is_a_library_function(tmp_path: Path) -> None:
    from actspec.sweep.grid import expand_grid
    from actspec.sweep.query import query_results, run_sql
    from actspec.sweep.runner import execute_task, make_record
    from actspec.sweep.store import ResultStore

    db = tmp_path / "p.duckdb"
    store = ResultStore(db)
    store.init()
    tasks = expand_grid("_probe", {"value": [1.0, 2.0, 3.0], "seed": [0, 1]})
    store.write([make_record(t, execute_task(t.command, t.params)) for t in tasks])

    res = query_results(db, filters=["value>=2"], sort=["-value", "seed"])
    assert res.total_rows == 4 and res.names[:2] == ["value", "seed"]
    assert [r[:2] for r in res.rows] == [(3.0, 0), (3.0, 1), (2.0, 0), (2.0, 1)]
    rows = res.json_rows()
    assert len(rows) == 4 and rows[0]["square"] == 9.0 and "key" in rows[0]  # every column

    grouped = query_results(db, group_by=["seed"], metrics=["square"], agg="max")
    assert grouped.names == ["seed", "runs", "max(square)"]
    assert grouped.rows == [(0, 3, 9.0), (1, 3, 9.0)]
    ps = grouped.plot_series("value", "square", by="seed")
    assert ps.series[0] == [(1.0, 1.0, 1.0, 1.0, 1), (2.0, 4.0, 4.0, 4.0, 1), (3.0, 9.0, 9.0, 9.0, 1)]

    with pytest.raises(ParameterError, match=r"^metric: unknown column 'squar' \(did you mean 'square'"):
        query_results(db, metrics=["squar"])
    with pytest.raises(ParameterError, match=r"^agg must be one of"):
        query_results(db, group_by=["seed"], agg="mode")
    assert run_sql(db, "SELECT count(*) AS k FROM results").rows == [(6,)]


# ------------------------------------------------------------------ one vocabulary (issue 17, item 7)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from actspec import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"actspec {__version__}"


def test_no_cache_sets_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    monkeypatch.delenv("ACTSPEC_NO_CACHE", raising=False)
    assert run(["hermite", "relu", "-k", "1"]) == 0
    assert "ACTSPEC_NO_CACHE" not in os.environ
    assert run(["--no-cache", "hermite", "relu", "-k", "1"]) == 0
    assert os.environ["ACTSPEC_NO_CACHE"] == "1"
    capsys.readouterr()
    helptext = typer.main.get_command(app).get_help(click.Context(typer.main.get_command(app)))
    for word in ("--no-cache", "ACTSPEC_NO_CACHE", "ACTSPEC_CACHE_DIR", "--version"):
        assert word in helptext


def test_short_flags_mean_one_thing_in_every_command() -> None:
    group = typer.main.get_command(app)
    meaning: dict[str, set[frozenset[str]]] = {}
    for cmd in group.commands.values():  # type: ignore[attr-defined]
        for p in cmd.params:
            longs = [o for o in p.opts if o.startswith("--")]
            for o in p.opts:
                if not o.startswith("--") and longs:
                    meaning.setdefault(o, set()).add(frozenset(longs))
    assert meaning["-m"] == {frozenset({"--width"})}
    assert meaning["-a"] == {frozenset({"--activation"})}
    # -T is the length of training: epochs in train, optimiser steps in model (with --batch-size
    # a step is not an epoch); every other short flag shares a long flag wherever it appears
    for short, longs_sets in meaning.items():
        if short != "-T":
            assert frozenset.intersection(*longs_sets), (short, longs_sets)
    assert "-M" in _option("results", "--metric").opts


@pytest.mark.parametrize("cmd", ["spectrum", "hermite", "train", "analyze", "depth", "gram",
                                 "sphere", "model"])
def test_every_activation_taking_command_has_dash_a(cmd: str) -> None:
    assert _option(cmd, "-a").opts[:2] in (["--activation", "-a"], ["-a", "--activation"])


def test_positional_activation_and_dash_a_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run(["hermite", "elu:1.0", "-k", "4", "--json", str(a)]) == 0
    assert run(["hermite", "-a", "elu:1.0", "-k", "4", "--json", str(b)]) == 0
    assert json.loads(a.read_text())["coefficients"] == json.loads(b.read_text())["coefficients"]
    capsys.readouterr()
    line = _one_error_line(*_run(["hermite", "relu", "-a", "tanh"], capsys)[::2])
    assert "given twice" in line
    assert "missing the activation" in _one_error_line(*_run(["hermite"], capsys)[::2])


def test_dash_m_in_a_command_without_width_says_what_it_means(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["hermite", "relu", "-m", "100"], capsys)
    line = _one_error_line(code, err)
    assert "-m means --width in every actspec command" in line and "has no --width" in line


def test_results_old_dash_m_still_means_metric(tmp_path: Path) -> None:
    """``results -m`` (before -m meant --width everywhere) keeps working there, with a note:
    results has no --width, so it cannot be misread; values and --opt=value are left alone."""
    from actspec.cli.options import legacy_short_flags

    group = typer.main.get_command(app)
    got = legacy_short_flags(["results", "s.duckdb", "-m", "lambda_min", "--sql", "-m",
                              "-mtrace", "--where=-m"], group)
    assert got == ["results", "s.duckdb", "-M", "lambda_min", "--sql", "-m", "-Mtrace",
                   "--where=-m"]
    assert legacy_short_flags(["spectrum", "-m", "10"], group) == ["spectrum", "-m", "10"]


def test_flags_are_named_after_root_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # json_path is the parameter of --json: found in the command after the root option
    out = tmp_path / "x.json"
    code, _, err = _run(["--no-cache", "hermite", "relu", "--json", out, "--plot", out], capsys)
    assert "--json and --plot both name" in _one_error_line(code, err)
