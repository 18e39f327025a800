"""The results store and its commands under bad input and damage (issues 17 item 6, 17 item 12,
18 "The results store", 18 grids/workers): CSV export, counted aggregates, read-only SQL,
--where without injection, corrupt/SQLite/inconsistent files, --no-code, grid caps, worker cap,
the infinite-width reference line.

Stores are small and synthetic, written by the sweep's own writer (ResultStore.write of records
made by make_record) without running a cluster."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from actspec.cli import run
from actspec.sweep import grid as grid_mod
from actspec.sweep.query import query_results
from actspec.sweep.runner import make_record, make_task
from actspec.sweep.store import ResultStore

# ------------------------------------------------------------------------------ helpers

#: epochs_to_target of the 12 probe runs: present in 5 of them (seed 0: 3 of 6, seed 1: 2 of 6)
EPOCHS = {(0, 0): 7, (0, 2): 3, (0, 5): 11, (1, 1): 4, (1, 4): 9}


def _probe_store(path: Path) -> Path:
    """12 probe rows: seed in {0, 1} x value in 0..5; square = value², epochs_to_target in 5."""
    recs = []
    for seed in (0, 1):
        for v in range(6):
            task = make_task("_probe", {"value": float(v), "seed": seed})
            out = {"status": "ok", "results": {"square": float(v * v),
                                               "epochs_to_target": EPOCHS.get((seed, v))}}
            recs.append(make_record(task, out, sweep="t"))
    assert ResultStore(path).write(recs) == 12
    return path


def _width_store(path: Path) -> dict[tuple[str, float], float]:
    """spectrum rows at widths 100, 1000 and inf for relu and tanh (2 seeds each); returns the
    lambda_min of every (activation, width, seed) as written."""
    lam: dict = {}
    recs = []
    for a, base in (("relu", 0.01), ("tanh", 0.002)):
        for w in ("100", "1000", "inf"):
            for seed in (0, 1):
                v = base * (1 + 0.1 * seed) * (1 if w == "inf" else 1 + 100 / float(w))
                lam[(a, float(w), seed)] = v
                task = make_task("spectrum", {"activation": a, "width": w, "n": 6, "seed": seed})
                recs.append(make_record(task, {"status": "ok", "results": {"lambda_min": v}}))
    ResultStore(path).write(recs)
    return lam


def _run(args: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(code: int, err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------ issue 17 item 6


def test_csv_export_holds_every_selected_row(tmp_path: Path, capsys) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    code, out, err = _run(["results", db, "-f", "seed=1", "--csv", tmp_path / "o.csv"], capsys)
    assert code == 0, err
    with open(tmp_path / "o.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and "wrote" in out
    assert {"key", "value", "seed", "square", "epochs_to_target"} <= set(rows[0])
    for r in rows:  # the stored values, independently: square = value²
        assert int(r["seed"]) == 1 and float(r["square"]) == float(r["value"]) ** 2
    got = {float(r["value"]): (int(r["epochs_to_target"]) if r["epochs_to_target"] else None)
           for r in rows}
    assert got == {float(v): EPOCHS.get((1, v)) for v in range(6)}
    # grouped: the table, as CSV
    code, _, err = _run(["results", db, "-g", "seed", "--metric", "square", "--agg", "sum",
                         "--csv", tmp_path / "g.csv"], capsys)
    assert code == 0, err
    with open(tmp_path / "g.csv", newline="") as fh:
        g = list(csv.DictReader(fh))
    assert [(int(r["seed"]), int(r["runs"]), float(r["sum(square)"])) for r in g] == [
        (0, 6, 55.0), (1, 6, 55.0)]


def test_grouped_aggregate_says_how_many_values_it_counted(tmp_path: Path, capsys) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    code, out, err = _run(["results", db, "-g", "seed", "--metric", "epochs_to_target", "--agg", "median",
                           "--json", tmp_path / "g.json"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["columns"] == ["seed", "runs", "median(epochs_to_target)", "counted(epochs_to_target)"]
    by_seed = {r["seed"]: r for r in doc["rows"]}
    for seed in (0, 1):
        present = [e for (s, _), e in EPOCHS.items() if s == seed]
        assert by_seed[seed]["runs"] == 6
        assert by_seed[seed]["counted(epochs_to_target)"] == len(present)
        assert by_seed[seed]["median(epochs_to_target)"] == pytest.approx(float(np.median(present)))
    assert "over the 5 of 12 run(s)" in " ".join(out.split())
    # a metric every run has: no counted column (the table is unchanged)
    res = query_results(db, group_by=["seed"], metrics=["square"], agg="median")
    assert res.names == ["seed", "runs", "median(square)"] and res.missing == {}
    # geomean uses only positive values: square = 0 at value 0 is not counted
    res = query_results(db, group_by=["seed"], metrics=["square"], agg="geomean")
    assert res.missing == {"square": (10, 12)}
    assert [r[-1] for r in res.rows] == [5, 5]


@pytest.mark.parametrize("sql, word", [
    ("COPY (SELECT 1) TO '{tmp}/x.csv'", "COPY"),
    ("COPY results TO '{tmp}/x.csv' (FORMAT csv)", "COPY"),
    ("ATTACH '{tmp}/x.csv' AS other", "ATTACH"),
    ("INSTALL sqlite", "INSTALL"),
    ("SET enable_external_access = true", "SET"),
    ("SELECT 1; COPY (SELECT 1) TO '{tmp}/x.csv'", "2 statements"),
    ("SELECT * FROM read_csv('{tmp}/secret.csv')", "refused"),
    ("SELECT * FROM results UNION ALL SELECT * FROM read_text('{tmp}/secret.csv')", "refused"),
])
def test_sql_is_read_only_and_reads_no_files(tmp_path: Path, capsys, sql: str, word: str) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    (tmp_path / "secret.csv").write_text("a\nsecret\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(["results", db, "--sql", sql.replace("{tmp}", str(tmp_path))], capsys)
    _one_error(code, err, "--sql" if word != "refused" else "refused", word)
    assert "secret" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    # a plain SELECT works, and its rows can be saved
    code, out, err = _run(["results", db, "--sql", "SELECT seed, count(*) FROM results GROUP BY 1 "
                           "ORDER BY 1", "--csv", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    assert (tmp_path / "s.csv").read_text().splitlines()[1:] == ["0,6", "1,6"]


def test_reading_connections_are_locked_down(tmp_path: Path) -> None:
    from actspec.sweep.store import READ_CONFIG

    db = _probe_store(tmp_path / "p.duckdb")
    with ResultStore(db).connect(read_only=True) as con:
        got = {k: con.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in READ_CONFIG}
        assert got == {"enable_external_access": False, "autoload_known_extensions": False,
                       "autoinstall_known_extensions": False, "lock_configuration": True}
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")


# ------------------------------------------------------------------------------ --where


@pytest.mark.parametrize("where", [
    "1=1 UNION SELECT * FROM read_csv('{tmp}/secret.csv')",
    "value > 1) UNION SELECT * FROM read_csv('{tmp}/secret.csv') --",
    "value > 1 OR key IN (SELECT column0 FROM read_csv('{tmp}/secret.csv'))",
    "value > length(getenv('HOME'))",
    "value > 1; COPY results TO '{tmp}/x.csv'",
])
def test_where_cannot_inject_sql(tmp_path: Path, capsys, where: str) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    (tmp_path / "secret.csv").write_text("column0\nsecret\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(["results", db, "--where", where.replace("{tmp}", str(tmp_path)),
                           "--parquet", tmp_path / "o.parquet"], capsys)
    _one_error(code, err, "--where")
    assert "secret" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_where_conditions_are_parsed_and_bound(tmp_path: Path, capsys) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    code, _, err = _run(["results", db, "--where",
                         "value >= 3 AND (seed = 1 OR value IN (4, 5)) AND NOT value BETWEEN 4.5 AND 9",
                         "--json", tmp_path / "w.json"], capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "w.json").read_text())["rows"]
    expect = sorted((s, v) for s in (0, 1) for v in range(6)
                    if v >= 3 and (s == 1 or v in (4, 5)) and not 4.5 <= v <= 9)
    assert sorted((r["seed"], int(r["value"])) for r in rows) == expect
    from actspec.sweep.query import where_sql

    types = ResultStore(db).columns()
    sql, args = where_sql("command = 'x'' OR 1=1 --' AND epochs_to_target IS NOT NULL", types)
    assert args == ["x' OR 1=1 --"] and "'" not in sql and sql.count("?") == 1
    sql, args = where_sql("command LIKE '_pro%' OR seed != value", types)
    assert args == ["_pro%"] and '"seed" != "value"' in sql
    res = query_results(db, where="epochs_to_target IS NULL AND seed = 0")
    assert res.total_rows == 3
    _, args = where_sql("seed = 9007199254740993", types)  # 2**53 + 1: bound exactly, as an int
    assert args == [9007199254740993] and isinstance(args[0], int)


# ------------------------------------------------------------------------------ damaged stores


def _block_offsets(db: Path) -> list[int]:
    """File offsets of the blocks holding table data (PRAGMA storage_info), one per block."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids: set[int] = set()
        for table in ("actspec_store", "columns", "results", "arrays"):
            for row in con.execute(f"SELECT block_id FROM pragma_storage_info('{table}') "
                                   "WHERE persistent AND block_id >= 0").fetchall():
                ids.add(int(row[0]))
        size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    finally:
        con.close()
    header = 3 * 4096
    return [header + b * int(size) for b in sorted(ids)]


def test_corrupt_store_is_refused_by_results(tmp_path: Path, capsys, monkeypatch) -> None:
    good = _probe_store(tmp_path / "good.duckdb")
    offsets = _block_offsets(good)
    assert offsets
    for k, off in enumerate(offsets):
        bad = tmp_path / f"bad{k}.duckdb"
        shutil.copy(good, bad)
        with open(bad, "r+b") as fh:
            fh.seek(off + 1000)
            fh.write(bytes(range(7, 71)))
        for extra in ([], ["-g", "seed"], ["--sql", "SELECT count(*) FROM results"]):
            code, _, err = _run(["results", bad, *extra, "--json", tmp_path / "o.json"], capsys)
            _one_error(code, err, str(bad), "corrupt")
            assert not (tmp_path / "o.json").exists()
    trunc = tmp_path / "truncated.duckdb"  # a copy cut short
    shutil.copy(good, trunc)
    with open(trunc, "r+b") as fh:
        fh.truncate(offsets[-1] + 4096)
    code, _, err = _run(["results", trunc], capsys)
    _one_error(code, err, str(trunc), "corrupt")
    code, _, err = _run(["results", good], capsys)
    assert code == 0, err
    import actspec.sweep.store as store_mod

    assert store_mod.MAX_ROWS == 2_000_000
    monkeypatch.setattr(store_mod, "MAX_ROWS", 1000)  # a query is not held in memory unbounded
    code, _, err = _run(["results", good, "--sql", "SELECT * FROM range(100000)"], capsys)
    _one_error(code, err, "more than 1000 rows", "LIMIT")


def test_corrupt_store_is_refused_by_sweep_before_any_task(tmp_path: Path, capsys,
                                                           monkeypatch) -> None:
    import actspec.sweep.runner as runner

    def no(*a, **k):
        raise AssertionError("a task or cluster was started on a corrupt store")

    monkeypatch.setattr(runner, "start_client", no)
    monkeypatch.setattr(runner, "execute_task", no)
    good = _probe_store(tmp_path / "good.duckdb")
    bad = tmp_path / "bad.duckdb"
    shutil.copy(good, bad)
    with open(bad, "r+b") as fh:
        fh.seek(_block_offsets(good)[-1] + 1000)
        fh.write(b"\xff" * 64)
    for extra in ([], ["--dry-run"]):
        code, _, err = _run(["sweep", "-c", "_probe", "-p", "value=1,2,99", "--db", bad, *extra],
                            capsys)
        _one_error(code, err, str(bad), "corrupt")


def test_store_row_count_is_checked_against_its_index(tmp_path: Path, capsys) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    assert ResultStore(db).verify() == 12
    con = duckdb.connect(str(db))
    try:  # rows lost outside actspec (e.g. a bad copy, another tool)
        assert con.execute("SELECT value FROM actspec_store WHERE name = 'rows'").fetchone() == ("12",)
        con.execute("DELETE FROM results WHERE seed = 1 AND value < 2")
    finally:
        con.close()
    code, _, err = _run(["results", db], capsys)
    _one_error(code, err, str(db), "10 rows", "12 recorded")


@pytest.mark.parametrize("cmd", ["results", "sweep"])
def test_sqlite_and_other_files_are_refused_before_duckdb(tmp_path: Path, capsys, monkeypatch,
                                                           cmd: str) -> None:
    real = duckdb.connect

    def guarded(database=":memory:", *a, **k):
        if str(database).endswith((".sqlite", ".bin", ".duckdb")) and "s." in str(database):
            raise AssertionError(f"DuckDB was asked to open {database}")
        return real(database, *a, **k)

    sq = tmp_path / "s.sqlite"
    con = sqlite3.connect(sq)
    con.execute("CREATE TABLE results (a)")
    con.commit()
    con.close()
    (tmp_path / "s.bin").write_bytes(b"\x00" * 4096)
    (tmp_path / "s.duckdb").write_bytes(b"")
    monkeypatch.setattr(duckdb, "connect", guarded)
    for f, word in (("s.sqlite", "SQLite"), ("s.bin", "not a DuckDB"), ("s.duckdb", "empty")):
        args = ["results", tmp_path / f] if cmd == "results" else [
            "sweep", "-c", "_probe", "-p", "value=1", "--db", tmp_path / f, "--dry-run"]
        code, _, err = _run(args, capsys)
        _one_error(code, err, str(tmp_path / f), word)


def test_output_collisions_are_refused(tmp_path: Path, capsys) -> None:
    db = _probe_store(tmp_path / "p.duckdb")
    code, _, err = _run(["results", db, "--json", tmp_path / "a.out", "--csv", tmp_path / "a.out"],
                        capsys)
    _one_error(code, err, "--json", "--csv", str(tmp_path / "a.out"))
    assert not (tmp_path / "a.out").exists()


# ------------------------------------------------------------------------------ sweep guards


def test_no_code_refuses_module_function_before_importing(tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    from actspec.sweep.grid import build_config, is_code_activation

    mod = tmp_path / "evil_act_mod.py"
    mod.write_text("import pathlib\npathlib.Path(__file__).with_name('IMPORTED').write_text('x')\n"
                   "import torch\ndef f(x):\n    return torch.sin(x)\n")
    cfg = tmp_path / "shared.toml"
    cfg.write_text('[[grid]]\ncommand = "spectrum"\nactivation = ["relu", "evil_act_mod:f"]\n'
                   'n = 4\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = _run(["sweep", cfg, "--no-code", "--dry-run"], capsys)
    _one_error(code, err, "evil_act_mod:f", "--no-code")
    code, _, err = _run(["sweep", "-c", "depth", "-p", "activation=tanh,evil_act_mod:f", "--no-code",
                         "--dry-run", "--db", tmp_path / "d.duckdb"], capsys)
    _one_error(code, err, "evil_act_mod:f", "--no-code")
    assert not (tmp_path / "IMPORTED").exists()  # refused before the module was imported
    # built-in names with a parameter and expressions are not code
    assert not is_code_activation("elu:1.0") and not is_code_activation("leaky_relu:0.2")
    assert not is_code_activation("x*sigmoid(x)") and is_code_activation("pkg.mod:fn")
    cfg2 = build_config(None, "spectrum", ["activation=elu:1.0,leaky_relu:0.2,x*sigmoid(x)",
                                           "n=4"], allow_code=False)
    assert len(cfg2.tasks) == 3
    code, out, _ = _run(["sweep", "--help"], capsys)
    text = " ".join(out.split())
    assert "--no-code" in text and "module:function" in text and "every worker" in text


def test_huge_grids_are_counted_not_built(tmp_path: Path, capsys, monkeypatch) -> None:
    import tracemalloc

    MAX_TASKS = grid_mod.MAX_TASKS  # (the old code has no cap: fails here)
    from actspec.sweep.grid import expand_grid

    assert MAX_TASKS == 100_000
    monkeypatch.setattr(grid_mod, "MAX_TASKS", 50)

    code, _, err = _run(["sweep", "-c", "_probe", "-p", "seed=0..99", "--dry-run",
                         "--db", tmp_path / "s.duckdb"], capsys)
    _one_error(code, err, "100 values", "50 tasks", "split")
    monkeypatch.setattr(grid_mod, "MAX_TASKS", MAX_TASKS)
    toml = tmp_path / "big.toml"
    toml.write_text('[[grid]]\ncommand = "_probe"\nvalue = {range = [0, 100000]}\n'
                    'seed = {range = [0, 100000]}\n')
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        code, _, err = _run(["sweep", toml, "--dry-run"], capsys)
        _one_error(code, err, "10000000000 tasks", f"{MAX_TASKS}", "split")
        code, _, err = _run(["sweep", "-c", "_probe", "-p", "seed=0..1000000000", "--dry-run",
                             "--db", tmp_path / "s.duckdb"], capsys)
        _one_error(code, err, "1000000001 values", "split")
        with pytest.raises(Exception, match="geom asks for 10000000000 values"):
            expand_grid("_probe", {"value": {"geom": [1.0, 2.0, 10**10]}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak  # nothing of the size of the grid was built
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "s.duckdb").exists()
    # several grids add up
    toml.write_text('[[grid]]\ncommand = "_probe"\nseed = {range = [0, 60000]}\n'
                    '[[grid]]\ncommand = "_probe"\nvalue = 1.0\nseed = {range = [0, 60000]}\n')
    code, _, err = _run(["sweep", toml, "--dry-run"], capsys)
    _one_error(code, err, "60000 tasks", "grids before it")


def test_workers_are_capped_at_the_cores(tmp_path: Path, capsys, monkeypatch) -> None:
    import actspec.sweep.runner as runner

    seen = {}

    def fake_run_sweep(tasks, store, **kw):
        seen.update(kw)
        return runner.SweepSummary(db=str(store.path), total=1, skipped=1, run=0, ok=0, failed=0,
                                   retried=0, written=0, remaining=0, seconds=0.0)

    monkeypatch.setattr(runner, "run_sweep", fake_run_sweep)
    monkeypatch.setattr(runner, "usable_cores", lambda: 3)
    code, out, err = _run(["sweep", "-c", "_probe", "-p", "value=1", "--workers", "1000",
                           "--db", tmp_path / "s.duckdb"], capsys)
    assert code == 0, err
    assert seen["workers"] == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning:") and "1000" in lines[0] \
        and "using 3" in lines[0]
    code, out, err = _run(["sweep", "-c", "_probe", "-p", "value=1", "--workers", "2",
                           "--db", tmp_path / "s.duckdb"], capsys)
    assert code == 0 and seen["workers"] == 2 and "warning" not in err


# ------------------------------------------------------------------------------ issue 17 item 12


def test_plot_width_draws_infinite_width_as_reference(tmp_path: Path, capsys, monkeypatch) -> None:
    import matplotlib.colors as mcolors

    import actspec.plots.results as pr

    db = tmp_path / "w.duckdb"
    lam = _width_store(db)
    res = query_results(db)
    ps = res.plot_series("width", "lambda_min")
    assert ps.dropped == 0
    for a in ("relu", "tanh"):
        inf_vals = [lam[(a, float("inf"), s)] for s in (0, 1)]
        yv, lo, hi, cnt = ps.reference[a]
        assert yv == pytest.approx(np.mean(inf_vals), rel=1e-15)
        assert (lo, hi, cnt) == (min(inf_vals), max(inf_vals), 2)
        assert [p[0] for p in ps.series[a]] == [100.0, 1000.0]
    figs = []
    real_save = pr.save_figure
    monkeypatch.setattr(pr, "save_figure", lambda fig, path: (figs.append(fig), real_save(fig, path)))
    code, _, err = _run(["results", db, "--plot", tmp_path / "w.png", "--x", "width"], capsys)
    assert code == 0, err
    assert (tmp_path / "w.png").stat().st_size > 0
    ax = figs[0].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["relu", "tanh", "∞ width"]
    for a in ("relu", "tanh"):
        [data_line] = [ln for ln in ax.lines if ln.get_label() == a]
        hlines = [ln for ln in ax.lines if ln.get_linestyle() == "--"
                  and mcolors.same_color(ln.get_color(), data_line.get_color())]
        assert len(hlines) == 1
        ys = np.asarray(hlines[0].get_ydata(), dtype=float)
        assert np.all(ys == pytest.approx(np.mean([lam[(a, float("inf"), s)] for s in (0, 1)])))
