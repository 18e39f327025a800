"""Sweeps on a local Dask cluster and the results database (actspec sweep / actspec results)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from actspec.cli import run
from actspec.core.errors import ActspecError
from actspec.sweep.runner import (
    config_from_dict,
    execute_task,
    expand_grid,
    load_config,
    local_cluster,
    make_record,
    make_task,
    plan,
    run_sweep,
)
from actspec.sweep.store import ResultStore


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def cluster():
    """One local cluster (2 worker processes, 1 thread each) shared by the tests of this module."""
    cl = local_cluster(2, 1)
    yield cl
    cl.close()


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    c = Client(cluster)
    yield c
    c.close()


# ------------------------------------------------------------------------------ grids, keys


def test_grid_expansion_and_keys() -> None:
    tasks = expand_grid("spectrum", {"data": "circle", "activation": ["relu", "tanh"],
                                     "n": [8, 16], "seed": {"range": [0, 3]}, "width": ["inf", 100]})
    assert len(tasks) == 2 * 2 * 3 * 2
    assert len({t.key for t in tasks}) == len(tasks)
    t = tasks[0]
    assert t.params["activation"] == "relu" and t.params["width"] == "inf" and t.params["noise"] == 0.1
    # defaults written out or left out, any order, plural alias: the same key
    a = make_task("spectrum", {"activation": "relu", "n": 8})
    b = make_task("spectrum", {"n": 8, "activations": "relu", "train": "hidden", "width": float("inf")})
    assert a.key == b.key
    assert make_task("spectrum", {"activation": "relu", "n": 9}).key != a.key
    assert [v.params["n"] for v in expand_grid("spectrum", {"n": {"geom": [10, 160, 5]}})] == [
        10, 20, 40, 80, 160]


@pytest.mark.parametrize(
    "grid, msg",
    [
        ({"activation": ["relu"], "widht": [1]}, "did you mean 'width'"),
        ({"activation": []}, "empty list"),
        ({"activation": ["nosuch"]}, "nosuch"),
        ({"n": ["ten"]}, "must be an integer"),
        ({"width": [0]}, "'inf' or a positive integer"),
        ({"seed": {"range": [3, 3]}}, "empty"),
    ],
)
def test_bad_grids(grid: dict, msg: str) -> None:
    with pytest.raises(ActspecError, match=msg):
        expand_grid("spectrum", grid)


def test_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grid]\ncommand = 'spectrum'\n")
    code, _, err = _run(["sweep", bad], capsys)
    assert code == 2 and err.startswith("error: ") and "TOML" in err and "Traceback" not in err
    for text, msg in [
        ("[[grid]]\ncommand = 'spectrm'\n", "did you mean 'spectrum'"),
        ("[sweep]\nworkerz = 2\n[[grid]]\ncommand = 'spectrum'\n", "unknown [sweep] setting"),
        ("[sweep]\nname = 'x'\n", "no [[grid]]"),
        ("[[grid]]\ncommand = 'spectrum'\nn = []\n", "empty list"),
    ]:
        bad.write_text(text)
        code, _, err = _run(["sweep", bad], capsys)
        assert code == 2 and msg in err, err
    code, _, err = _run(["sweep"], capsys)
    assert code == 2 and "CONFIG" in err
    code, _, err = _run(["results", tmp_path / "missing.duckdb"], capsys)
    assert code == 2 and "does not exist" in err
    (tmp_path / "junk.duckdb").write_text("not a database")
    code, _, err = _run(["results", tmp_path / "junk.duckdb"], capsys)
    assert code == 2 and "error: " in err and "Traceback" not in err


def test_config_file_and_overrides(tmp_path: Path) -> None:
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(
        '[sweep]\nname = "demo"\nretries = 1\n'
        '[[grid]]\ncommand = "spectrum"\ndata = "sphere"\nactivation = ["relu", "elu"]\nn = [6, 12]\n'
        '[[grid]]\ncommand = "spectrum"\nactivation = "relu"\nn = 6\nwidth = [50]\n'
    )
    cfg = load_config(cfg_path)
    assert cfg.db == tmp_path / "c.duckdb" and cfg.name == "demo" and cfg.retries == 1
    assert len(cfg.tasks) == 5
    cfg2 = load_config(cfg_path, overrides={"seed": ["1", "2"]})
    assert len(cfg2.tasks) == 10 and {t.params["seed"] for t in cfg2.tasks} == {1, 2}
    with pytest.raises(ActspecError, match="not a parameter"):
        config_from_dict({"grid": [{"command": "spectrum"}]}, overrides={"lr": ["1"]})


def test_execute_task_never_raises() -> None:
    out = execute_task("_probe", make_task("_probe", {"fail": True}).params)
    assert out["status"] == "error" and "probe failure" in out["error"] and out["traceback"]
    out = execute_task("spectrum", make_task("spectrum", {"data": "subspace", "n": 5, "dim": 3,
                                                          "span_dim": 4}).params)
    assert out["status"] == "error" and out["error"]


def test_other_command_kinds_match_their_libraries() -> None:
    """train/depth/analyze kinds (registered when their modules are there) give their rows."""
    from actspec.data.datasets import load_data
    from actspec.sweep.runner import TASK_KINDS

    X = load_data("sphere", n=8, dim=4).X
    if "depth" in TASK_KINDS:
        from actspec.experiments.depth import depth_study

        t = make_task("depth", {"activation": "relu", "depth": 3, "data": "sphere", "n": 8, "dim": 4})
        out = execute_task("depth", t.params)
        [ref] = depth_study(X, ["relu"], [3])
        assert out["status"] == "ok", out["error"]
        assert out["results"]["condition_number"] == pytest.approx(ref["condition_number"], rel=1e-9)
        rec = make_record(t, out)
        assert rec.columns["depth"] == 3 and rec.columns["width"] == float("inf")
    if "train" in TASK_KINDS:
        t = make_task("train", {"activation": "relu", "width": 40, "lr": 0.5, "epochs": 4,
                                "data": "sphere", "n": 8, "dim": 4})
        out = execute_task("train", t.params)
        assert out["status"] == "ok", out["error"]
        assert "loss" in out["arrays"] and out["results"]["final_loss"] > 0
        assert make_record(t, out).columns["train_status"] == "ok"  # 'status' is a core column
    if "analyze" in TASK_KINDS:
        out = execute_task("analyze", make_task("analyze", {"activation": "relu", "data": "sphere",
                                                            "n": 8, "dim": 4, "degree": 40}).params)
        assert out["status"] == "ok", out["error"]
        assert out["results"]["kink_class"] == "J_1" and "eigenvalues" in out["arrays"]


# ------------------------------------------------------------------------------ on the cluster


def test_sweep_completes_equals_direct_and_resumes(client, tmp_path: Path) -> None:
    from actspec.data.datasets import load_data
    from actspec.experiments.spectrum import run_spectrum

    db = tmp_path / "s.duckdb"
    tasks = expand_grid("spectrum", {"data": "sphere", "dim": 5, "activation": ["relu", "erf"],
                                     "n": [6, 12], "seed": [0, 1], "width": ["inf", 200]})
    seen = []
    summary = run_sweep(tasks, db, client=client, name="t", on_record=lambda r, t: seen.append(r.key))
    assert summary.run == summary.ok == 16 and summary.failed == 0 and summary.written == 16
    assert sorted(seen) == sorted(t.key for t in tasks)
    assert _rows(db, "SELECT count(*), count(DISTINCT key) FROM results") == [(16, 16)]
    assert _rows(db, "SELECT DISTINCT status, sweep, command FROM results") == [("ok", "t", "spectrum")]

    # every row equals what run_spectrum (actspec spectrum) gives for the same parameters
    store = ResultStore(db)
    for t in tasks:
        X = load_data("sphere", n=t.params["n"], dim=5, seed=t.params["seed"]).X
        width = None if t.params["width"] == "inf" else t.params["width"]
        [ref] = run_spectrum(X, [t.params["activation"]], [width], seed=t.params["seed"])
        (lmin, lmax, cond, tr, n, w, arrays), = _rows(
            db, "SELECT lambda_min, lambda_max, condition_number, trace, n, width, arrays "
                f"FROM results WHERE key = '{t.key}'")
        assert n == t.params["n"] and (w == np.inf if width is None else w == width)
        np.testing.assert_allclose([lmin, lmax, tr], [ref["lambda_min"], ref["lambda_max"],
                                                      ref["trace"]], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cond, ref["condition_number"], rtol=1e-6)
        assert arrays == ["eigenvalues"]
        ev = store.load_arrays(t.key)["eigenvalues"]
        np.testing.assert_allclose(ev, ref["eigenvalues"], rtol=1e-9, atol=1e-12)

    # a second run executes nothing: it does not even connect to a cluster
    again = run_sweep(tasks, db, scheduler="tcp://127.0.0.1:9", retries=0)
    assert again.run == 0 and again.skipped == 16
    assert _rows(db, "SELECT count(*) FROM results") == [(16,)]


def test_stop_midway_then_resume_no_duplicates(client, tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    tasks = expand_grid("spectrum", {"activation": ["relu", "erf", "quadratic"], "n": [5, 9],
                                     "seed": [0, 1]})
    first = run_sweep(tasks, db, client=client, max_tasks=5)
    assert first.run == 5 and first.remaining == 7
    assert _rows(db, "SELECT count(*) FROM results") == [(5,)]
    second = run_sweep(tasks + tasks[:3], db, client=client)  # duplicates in the grid are merged
    assert second.skipped == 5 and second.run == 7
    assert _rows(db, "SELECT count(*), count(DISTINCT key) FROM results") == [(12, 12)]
    assert _rows(db, "SELECT count(*), count(DISTINCT key) FROM arrays") == [(12, 12)]


def test_failing_task_recorded_others_finish(client, tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    tasks = expand_grid("_probe", {"value": [1.0, 2.0, 3.0], "fail": [False, True]})
    s = run_sweep(tasks, db, client=client)
    assert s.run == 6 and s.ok == 3 and s.failed == 3
    rows = _rows(db, "SELECT value, fail, status, error, square FROM results ORDER BY fail, value")
    assert [r[2] for r in rows] == ["ok"] * 3 + ["error"] * 3
    assert [r[4] for r in rows[:3]] == [1.0, 4.0, 9.0]
    assert all("probe failure requested" in r[3] for r in rows[3:])
    assert run_sweep(tasks, db, client=client).run == 0  # failed tasks are not re-run ...
    s3 = run_sweep(tasks, db, client=client, retry_failed=True)  # ... unless asked
    assert s3.run == 3 and s3.failed == 3
    assert _rows(db, "SELECT count(*), count(DISTINCT key) FROM results") == [(6, 6)]


def test_results_lists_failures(client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "f.duckdb"
    run_sweep(expand_grid("_probe", {"value": [1.0, 2.0], "fail": [False, True]}), db, client=client)
    code, out, _ = _run(["results", db], capsys)
    assert code == 0 and "2 ok row(s)" in out and "2 failed task(s) not shown" in out
    code, out, _ = _run(["results", db, "--status", "failed"], capsys)
    assert code == 0 and out.count("probe failure requested") == 2


def test_cli_sweep_and_results(cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "demo.toml"
    cfg.write_text(
        '[sweep]\nname = "demo"\n'
        '[[grid]]\ncommand = "spectrum"\ndata = "sphere"\ndim = 6\n'
        'activation = ["relu", "erf", "quadratic"]\nn = [8, 16]\nseed = { range = [0, 2] }\n'
    )
    js = tmp_path / "sweep.json"
    code, out, err = _run(["sweep", cfg, "--scheduler", cluster.scheduler_address, "--json", js], capsys)
    assert code == 0, err
    db = tmp_path / "demo.duckdb"
    summary = json.loads(js.read_text())["summary"]
    assert summary["run"] == summary["ok"] == 12 and summary["tasks_per_minute"] > 0
    assert "ran 12" in out and str(db) in out
    code, out, _ = _run(["sweep", cfg, "--scheduler", cluster.scheduler_address, "--dry-run"], capsys)
    assert code == 0 and "would run 0" in out

    code, out, _ = _run(["results", db], capsys)
    assert code == 0
    assert "activation" in out and "lambda_min" in out and "12 ok row(s)" in out
    jr = tmp_path / "r.json"
    code, out, _ = _run(["results", db, "-g", "activation", "--metric", "lambda_min", "--agg", "min",
                         "--sort", "-min(lambda_min)", "--json", jr], capsys)
    assert code == 0 and "min(lambda_min)" in out
    rows = json.loads(jr.read_text())["rows"]
    assert [r["runs"] for r in rows] == [4, 4, 4]
    vals = [r["min(lambda_min)"] for r in rows]
    assert vals == sorted(vals, reverse=True)
    expect = _rows(db, "SELECT activation, min(lambda_min) FROM results GROUP BY 1")
    assert {r["activation"]: r["min(lambda_min)"] for r in rows} == pytest.approx(dict(expect))

    code, out, _ = _run(["results", db, "-f", "activation=relu,erf", "-f", "n>=16", "--json", jr,
                         "--with-arrays"], capsys)
    rows = json.loads(jr.read_text())["rows"]
    assert code == 0 and len(rows) == 4
    assert {r["activation"] for r in rows} == {"relu", "erf"} and all(r["n"] == 16 for r in rows)
    assert all(len(r["eigenvalues"]) == 16 for r in rows)
    assert all(r["params"]["activation"] == r["activation"] and r["actspec_version"]
               and r["status"] == "ok" and r["seconds"] > 0 for r in rows)

    code, out, _ = _run(["results", db, "--sql", "SELECT activation, count(*) AS k FROM results "
                         "GROUP BY 1 ORDER BY 1", "--json", jr], capsys)
    assert code == 0 and json.loads(jr.read_text())["rows"] == [
        {"activation": "erf", "k": 4}, {"activation": "quadratic", "k": 4}, {"activation": "relu", "k": 4}]

    png, pq = tmp_path / "lmin.png", tmp_path / "all.parquet"
    code, out, _ = _run(["results", db, "--plot", png, "--x", "n", "--y", "lambda_min",
                         "--parquet", pq, "--with-arrays"], capsys)
    assert code == 0 and png.stat().st_size > 1000
    assert _rows(db, f"SELECT count(*), min(len(eigenvalues)) FROM read_parquet('{pq}')") == [(12, 8)]

    code, _, err = _run(["results", db, "-f", "nosuch=1"], capsys)
    assert code == 2 and "unknown column 'nosuch'" in err
    code, _, err = _run(["results", db, "--sql", "SELEC 1"], capsys)
    assert code == 2 and "query failed" in err


def test_lost_worker_is_retried_then_recorded(client, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    marker = tmp_path / "crashed-once"
    tasks = [
        make_task("_probe", {"value": 1.0, "crash_once": str(marker)}),  # dies once, then fine
        make_task("_probe", {"value": 2.0, "crash": True}),  # dies every time
        *expand_grid("_probe", {"value": [3.0, 4.0, 5.0], "sleep": 0.2}),
    ]
    s = run_sweep(tasks, db, client=client, retries=1)
    assert marker.exists()
    rows = dict((r[0], r[1:]) for r in _rows(db, "SELECT value, status, attempts, error FROM results"))
    assert rows[1.0][0] == "ok" and rows[1.0][1] >= 2
    assert rows[2.0][0] == "lost" and rows[2.0][1] == 2 and "worker died" in rows[2.0][2]
    assert all(rows[v][0] == "ok" for v in (3.0, 4.0, 5.0))
    assert s.failed == 1 and s.ok == 4
    assert _rows(db, "SELECT count(*), count(DISTINCT key) FROM results") == [(5, 5)]
    # a lost task is tried again by the next run; finished ones are not
    todo, counts = plan(tasks, ResultStore(db))
    assert [t.params["value"] for t in todo] == [2.0] and counts == {"ok": 4, "error": 0, "lost": 1,
                                                                     "new": 0}


def _start_sweep(cfg: Path, log: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "actspec", "sweep", str(cfg), "-v", *extra],
            stdout=subprocess.DEVNULL, stderr=fh, text=True, env=env, start_new_session=True,
            # Ctrl-C's default action even when the suite itself runs with SIGINT ignored
            # (started in the background by a script)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def _ok_lines(log: Path) -> int:
    return sum(ln.startswith("ok ") for ln in log.read_text().splitlines())


def _wait_for(proc: subprocess.Popen, log: Path, k: int, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if _ok_lines(log) >= k:
            return
        time.sleep(0.05)
    raise AssertionError("the sweep produced no results in time:\n" + log.read_text())


def test_killed_and_interrupted_sweeps_resume(cluster, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "slow.toml"
    cfg.write_text('[sweep]\nworkers = 2\n[[grid]]\ncommand = "_probe"\nsleep = 0.3\n'
                   'value = { range = [0, 16] }\n')
    db = tmp_path / "slow.duckdb"
    log = tmp_path / "err.txt"

    # Ctrl-C: every finished result is written before the process exits (status 130)
    proc = _start_sweep(cfg, log, "--scheduler", cluster.scheduler_address)
    try:
        _wait_for(proc, log, 3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 130 and "error: interrupted" in err, err
    n_ok = _ok_lines(log)
    stored = _rows(db, "SELECT count(*), count(DISTINCT key) FROM results")[0]
    assert stored[0] == stored[1] == n_ok and 3 <= n_ok < 16

    # SIGKILL of the sweep (the writer): the file stays valid, committed rows survive
    proc = _start_sweep(cfg, log, "--scheduler", cluster.scheduler_address)
    try:
        _wait_for(proc, log, 2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    after_kill = _rows(db, "SELECT count(*), count(DISTINCT key) FROM results")[0]
    assert after_kill[0] == after_kill[1] >= n_ok

    code, out, err = _run(["sweep", cfg, "--scheduler", cluster.scheduler_address], capsys)
    assert code == 0, err
    assert f"{after_kill[0]} already stored" in out and f"ran {16 - after_kill[0]}" in out
    assert _rows(db, "SELECT count(*), count(DISTINCT key), min(value), max(value) FROM results "
                     "WHERE status = 'ok'") == [(16, 16, 0.0, 15.0)]


def test_list_commands_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep --list --json F` writes the sweepable commands with their parameters."""
    code, out, _ = _run(["sweep", "--list", "--json", str(tmp_path / "l.json")], capsys)
    assert code == 0 and "spectrum" in out
    listed = json.loads((tmp_path / "l.json").read_text())["commands"]
    assert set(listed) == {"spectrum", "train", "depth", "analyze"}
    params = listed["spectrum"]["parameters"]
    assert params["activation"] == {"type": "str", "required": False, "default": "relu",
                                    "help": params["activation"]["help"]}
    assert params["width"]["default"] == "inf" and params["n"]["type"] == "int"
    assert "lambda_min" in listed["spectrum"]["metrics"]
