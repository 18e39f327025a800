"""Catalogue of bad inputs across every command (issue 11, item 1).

Every case must give exit status 2, exactly one line ``error: ...`` on stderr that names what was
wrong, no Python traceback, and leave nothing behind: the output targets do not exist afterwards
and no stray temporary file appears next to them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from actspec.cli import run

# ------------------------------------------------------------------------------ input builders


def _npy(name: str, arr: np.ndarray) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        p = tmp / name
        np.save(p, arr)
        return str(p)

    return make


def _text(name: str, text: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        p = tmp / name
        p.write_text(text)
        return str(p)

    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        p = tmp / name
        p.write_bytes(data)
        return str(p)

    return make


def _npz(name: str, **arrays: np.ndarray) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        p = tmp / name
        np.savez(p, **arrays)  # type: ignore[arg-type]
        return str(p)

    return make


def _good_data(tmp: Path) -> str:
    rng = np.random.default_rng(0)
    p = tmp / "good.npy"
    np.save(p, rng.standard_normal((6, 3)))
    return str(p)


def _cifar_dir(kind: str) -> Callable[[Path], str]:
    """A CIFAR-10 directory: 'empty' (no batches), 'corrupt' (garbage batch), 'shape' (bad shape)."""

    def make(tmp: Path) -> str:
        d = tmp / "cifar"
        d.mkdir()
        if kind == "empty":
            return str(d)
        for k in range(1, 6):
            f = d / f"data_batch_{k}"
            if kind == "corrupt":
                f.write_bytes(b"\x80\x04this is not a pickle" * 3)
            else:
                obj = {b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
                f.write_bytes(pickle.dumps(obj, protocol=2))
        return str(d)

    return make


def _sub(file: str, child: str) -> Callable[[Path], str]:
    """A path below a regular file (its parent "directory" is a file)."""

    def make(tmp: Path) -> str:
        (tmp / file).write_text("x")
        return str(tmp / file / child)

    return make


def _cache_file(tmp: Path) -> str:
    out = tmp / "rep"
    out.mkdir()
    (out / "cache").write_text("not a directory")
    return str(out)


def _readonly_dir(tmp: Path) -> str:
    d = tmp / "ro"
    d.mkdir()
    d.chmod(0o555)
    return str(d / "out.json")


def _duckdb_file(tmp: Path) -> str:
    p = tmp / "results.duckdb"
    p.write_text("this is a text file, not a DuckDB database\n")
    return str(p)


def _empty_duckdb(tmp: Path) -> str:
    import duckdb

    p = tmp / "empty.duckdb"
    duckdb.connect(str(p)).close()
    return str(p)


@dataclass
class Case:
    id: str
    args: list[str | Callable[[Path], str]]
    keyword: str  # must appear in the error line (case-insensitive)
    outputs: list[str] = field(default_factory=lambda: ["out.json"])
    root_skip: bool = False  # meaningless when running as root (permissions not enforced)


J = "--json"
OUT = "{tmp}/out.json"
PNG = "{tmp}/out.png"

CASES: list[Case] = [
    # ---- activations
    Case("spectrum-unknown-activation", ["spectrum", "-a", "rleu", J, OUT], "did you mean 'relu'"),
    Case("train-unknown-activation", ["train", "-a", "tahn", "--width", "10", J, OUT], "'tanh'"),
    Case("hermite-malformed-expr", ["hermite", "x*", J, OUT], "x*"),
    Case("analyze-import-os", ["analyze", "import os", J, OUT], "import os"),
    Case("spectrum-dunder-class", ["spectrum", "-a", "__class__", J, OUT], "__class__"),
    Case("spectrum-attr-escape", ["spectrum", "-a", "x.__class__", J, OUT], "x.__class__"),
    Case("spectrum-unbalanced", ["spectrum", "-a", "exp(x", J, OUT], "exp(x"),
    Case("spectrum-empty-activation", ["spectrum", "-a", "", J, OUT], "activation"),
    Case("spectrum-elu-abc", ["spectrum", "-a", "elu:abc", J, OUT], "elu:abc"),
    Case("spectrum-leaky-empty-param", ["spectrum", "-a", "leaky_relu:", J, OUT], "leaky_relu:"),
    Case("spectrum-elu-nan-param", ["spectrum", "-a", "elu:nan", J, OUT], "elu:nan"),
    Case("depth-missing-module", ["depth", "-a", "nosuchmodule_xyz:f", "--depth", "2", J, OUT],
         "nosuchmodule_xyz"),
    Case("hermite-compare-unknown", ["hermite", "relu", "--compare", "sigmod", J, OUT], "sigmoid"),
    Case("spectrum-overflowing-power", ["spectrum", "-a", "x**1000", "--n", "4", J, OUT], "overflows"),
    Case("gram-exp-overflow", ["gram", "-a", "exp(100*x)", "--n", "4", "--out", "{tmp}/G.npy"],
         "overflows", ["G.npy"]),
    Case("spectrum-pole-between-grid-points", ["spectrum", "-a", "1/x", "--n", "4", J, OUT],
         "singularity near x = 0"),
    Case("hermite-tan-poles", ["hermite", "tan(x)", "--degree", "3", J, OUT], "singularity"),
    Case("spectrum-sqrt-undefined", ["spectrum", "-a", "sqrt(x)", "--n", "4", J, OUT], "undefined"),
    Case("hermite-log-undefined", ["hermite", "log(x)", "--degree", "3", J, OUT], "undefined"),
    Case("analyze-if-else", ["analyze", "x if x > 0 else 0", J, OUT], "if/else"),
    Case("train-lambda", ["train", "-a", "lambda: 0", "--width", "10", J, OUT], "lambda"),
    Case("depth-module-not-tensor", ["depth", "-a", "math:sin", "--depth", "2", J, OUT], "torch tensor"),
    # ---- data files
    Case("npy-nan", ["spectrum", "--data", _npy("nan.npy", np.array([[1.0, np.nan], [0.0, 1.0]])),
                     J, OUT, "--plot", PNG], "nan", ["out.json", "out.png"]),
    Case("csv-inf", ["data", "--data", _text("inf.csv", "1,2\ninf,3\n"), J, OUT], "inf"),
    Case("npy-empty", ["spectrum", "--data", _npy("empty.npy", np.zeros((0, 3))), J, OUT], "empty"),
    Case("csv-empty", ["analyze", "relu", "--data", _text("empty.csv", ""), J, OUT], "empty"),
    Case("csv-ragged", ["spectrum", "--data", _text("ragged.csv", "1,2,3\n4,5\n"), J, OUT], "ragged"),
    Case("npy-1d", ["train", "--data", _npy("flat.npy", np.arange(1.0, 6.0)), "--width", "10", J, OUT],
         "2-d"),
    Case("npy-strings", ["spectrum", "--data", _npy("str.npy", np.array([["a", "b"], ["c", "d"]])),
                         J, OUT], "numeric"),
    Case("csv-strings", ["depth", "--depth", "2", "--data", _text("s.csv", "1,2\n3,abc\n"), J, OUT],
         "abc"),
    Case("npy-corrupt-bytes", ["spectrum", "--data", _bytes("junk.npy", b"not numpy at all" * 4),
                               J, OUT], "junk.npy"),
    Case("npz-no-X", ["spectrum", "--data", _npz("noX.npz", A=np.eye(3)), J, OUT], "'x'"),
    Case("npz-3d", ["spectrum", "--data", _npz("x3.npz", X=np.ones((2, 2, 2))), J, OUT], "2-d"),
    Case("data-unknown-extension", ["spectrum", "--data", _text("d.json", "[[1, 2]]"), J, OUT],
         ".json"),
    Case("data-missing-file", ["spectrum", "--data", "{tmp}/nope.npy", J, OUT], "does not exist"),
    Case("data-is-directory", ["spectrum", "--data", "{tmp}", J, OUT], "directory"),
    Case("zero-norm-row", ["spectrum", "--data", _npy("z.npy", np.array([[1.0, 0.0], [0.0, 0.0]])),
                           J, OUT], "zero norm"),
    Case("duplicate-rows-train", ["train", "--data",
                                  _npz("dup.npz", X=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
                                       y=np.array([1.0, -1.0, -1.0])),
                                  "--width", "10", "--epochs", "2", J, OUT], "duplicate"),
    # ---- labels
    Case("labels-wrong-length", ["train", "--data", _good_data, "--labels",
                                 _npy("y.npy", np.ones(4)), "--width", "10", J, OUT], "4 labels"),
    Case("labels-non-numeric", ["train", "--data", _good_data, "--labels",
                                _text("y.csv", "label\na\nb\nc\nd\ne\nf\n"), "--width", "10", J, OUT],
         "non-numeric"),
    Case("labels-nan", ["train", "--data", _good_data, "--labels",
                        _npy("ynan.npy", np.array([1, 0, np.nan, 1, 0, 1.0])), "--width", "10", J, OUT],
         "nan"),
    Case("labels-unknown-word", ["train", "--labels", "randon", "--width", "10", J, OUT], "randon"),
    Case("npz-label-mismatch", ["train", "--data", _npz("m.npz", X=np.eye(3), y=np.ones(2)),
                                "--width", "10", J, OUT], "2 labels"),
    # ---- sizes
    Case("n-negative", ["spectrum", "--n", "-3", J, OUT], "--n"),
    Case("n-zero", ["data", "--n", "0", J, OUT], "--n"),
    Case("n-absurd", ["spectrum", "--n", "100000000000", J, OUT], "--n"),
    Case("n-larger-than-file", ["spectrum", "--data", _good_data, "--n", "50", J, OUT], "--n 50"),
    Case("dim-zero", ["spectrum", "--dim", "0", J, OUT], "--dim"),
    Case("width-zero", ["spectrum", "--width", "0", J, OUT], "--width"),
    Case("width-negative", ["train", "--width", "-5", J, OUT], "--width"),
    Case("width-absurd", ["spectrum", "--width", "1e99", J, OUT], "--width"),
    Case("width-fraction", ["depth", "--width", "2.5", "--depth", "2", J, OUT], "--width"),
    Case("train-width-inf", ["train", "--width", "inf", J, OUT], "--width"),
    Case("epochs-negative", ["train", "--n", "4", "--width", "10", "--epochs", "-1", J, OUT], "--epochs"),
    Case("lr-negative", ["train", "--n", "4", "--width", "10", "--lr", "-1", J, OUT], "--lr"),
    Case("lr-nan", ["train", "--n", "4", "--width", "10", "--lr", "nan", J, OUT], "--lr"),
    Case("lr-inf", ["train", "--n", "4", "--width", "10", "--lr", "inf", J, OUT], "--lr"),
    Case("batch-size-zero", ["train", "--n", "4", "--width", "10", "--batch-size", "0", J, OUT],
         "--batch-size"),
    Case("batch-size-above-n", ["train", "--n", "4", "--width", "10", "--batch-size", "9", J, OUT],
         "--batch-size"),
    Case("repeats-zero", ["train", "--n", "4", "--width", "10", "--repeats", "0", J, OUT], "--repeats"),
    Case("log-every-zero", ["train", "--n", "4", "--width", "10", "--log-every", "0", J, OUT],
         "--log-every"),
    Case("train-unknown-loss", ["train", "--n", "4", "--width", "10", "--loss", "hinge", J, OUT],
         "--loss"),
    Case("degree-negative", ["hermite", "relu", "--degree", "-1", J, OUT], "--degree"),
    Case("degree-absurd", ["hermite", "relu", "--degree", str(10**7), J, OUT], "--degree"),
    Case("analyze-degree-absurd", ["analyze", "relu", "--degree", str(10**7), J, OUT], "--degree"),
    Case("span-dim-above-dim", ["spectrum", "--data", "subspace", "--dim", "5", "--span-dim", "8",
                                J, OUT], "--span-dim"),
    Case("noise-negative", ["spectrum", "--data", "smoothed", "--noise", "-1", J, OUT], "--noise"),
    Case("seed-negative", ["spectrum", "--seed", "-1", J, OUT], "--seed"),
    Case("digits-high-zero", ["spectrum", "--precision", "high", "--digits", "0", J, OUT], "--digits"),
    Case("show-negative", ["spectrum", "--show", "-2", J, OUT], "--show"),
    Case("data-bins-zero", ["data", "--bins", "0", J, OUT], "--bins"),
    Case("data-chunk-zero", ["data", "--chunk", "0", J, OUT], "--chunk"),
    Case("depth-zero-range", ["depth", "--depth", "0..3", J, OUT], "--depth"),
    Case("depth-letters", ["depth", "--depth", "a..b", J, OUT], "--depth"),
    Case("depth-absurd", ["depth", "--depth", "100000", J, OUT], "--depth"),
    Case("depth-bias-nan", ["depth", "--depth", "2", "--bias", "nan", J, OUT], "--bias"),
    Case("spectrum-train-unknown", ["spectrum", "--train", "everything", J, OUT], "--train"),
    Case("spectrum-init-unknown", ["spectrum", "--init", "xavier", "--plot", PNG], "init",
         ["out.png"]),
    Case("spectrum-device-unknown", ["spectrum", "--device", "tpu", "--width", "10", "--n", "4", J, OUT],
         "--device"),
    Case("train-device-unknown", ["train", "--device", "tpu", "--n", "4", "--width", "10", J, OUT],
         "--device"),
    Case("depth-device-bad-index", ["depth", "--device", "cuda:99", "--width", "10", "--depth", "2",
                                    J, OUT], "--device"),
    Case("hermite-rows-negative", ["hermite", "relu", "--rows", "-1", J, OUT], "--rows"),
    Case("data-rank-tol-negative", ["data", "--rank-tol", "-1", J, OUT], "--rank-tol"),
    Case("data-svd-method", ["data", "--svd-method", "qr", J, OUT], "--svd-method"),
    Case("depth-scaling-word", ["depth", "--depth", "2", "--scaling", "xavier", J, OUT], "--scaling"),
    # ---- sources and preprocessing
    Case("unknown-data-source", ["spectrum", "--data", "sphre", J, OUT], "did you mean 'sphere'"),
    Case("unknown-preprocess", ["data", "--preprocess", "whiten", J, OUT], "--preprocess"),
    Case("cifar-no-data-dir", ["spectrum", "--data", "cifar10", J, OUT], "--data-dir"),
    Case("cifar-missing-dir", ["spectrum", "--data", "cifar10", "--data-dir", "{tmp}/nodir", J, OUT],
         "nodir"),
    Case("cifar-no-batches", ["spectrum", "--data", "cifar10", "--data-dir", _cifar_dir("empty"),
                              J, OUT], "data_batch_1"),
    Case("cifar-corrupt-batch", ["spectrum", "--data", "cifar10", "--data-dir", _cifar_dir("corrupt"),
                                 J, OUT], "data_batch_1"),
    Case("cifar-bad-shape", ["data", "--data", "cifar10", "--data-dir", _cifar_dir("shape"), J, OUT],
         "3072"),
    Case("dim-with-file", ["spectrum", "--data", _good_data, "--dim", "3", J, OUT], "--dim"),
    # ---- output paths
    Case("json-missing-dir", ["spectrum", "--n", "4", J, "{tmp}/missing/out.json"], "does not exist",
         ["missing"]),
    Case("json-is-directory", ["hermite", "relu", J, "{tmp}"], "directory", []),
    Case("plot-missing-dir", ["hermite", "relu", "--plot", "{tmp}/nodir/h.png"], "does not exist",
         ["nodir"]),
    Case("json-readonly-dir", ["spectrum", "--n", "4", J, _readonly_dir], "not writable", [],
         root_skip=True),
    Case("depth-angle-plot-dir", ["depth", "--depth", "2", "--angle-plot", "{tmp}", J, OUT],
         "directory"),
    Case("reproduce-out-is-file", ["reproduce", "fig1", "--quick", "--out",
                                   _text("afile", "x")], "afile", []),
    Case("json-parent-is-file", ["spectrum", "--n", "4", J, _text("afile", "x"), "--plot",
                                 "{tmp}/afile/out.png"], "not a directory", []),
    # ---- reproduce
    Case("reproduce-unknown-name", ["reproduce", "fig9", "--out", "{tmp}/rep"], "fig9", ["rep"]),
    Case("reproduce-unknown-data", ["reproduce", "fig2", "--quick", "--data", "digit", "--out",
                                    "{tmp}/rep"], "did you mean 'digits'", ["rep"]),
    Case("reproduce-cifar-no-dir", ["reproduce", "fig2", "--quick", "--data", "cifar10", "--out",
                                    "{tmp}/rep"], "--data-dir", ["rep"]),
    Case("reproduce-seed-negative", ["reproduce", "fig1", "--quick", "--seed", "-2", "--out",
                                     "{tmp}/rep"], "--seed", ["rep"]),
    Case("reproduce-workers-zero", ["reproduce", "fig1", "--quick", "--workers", "0", "--out",
                                    "{tmp}/rep"], "--workers", ["rep"]),
    Case("reproduce-out-under-file", ["reproduce", "fig1", "--quick", "--out", _sub("afile", "rep")],
         "not a directory", []),
    # ---- gram
    Case("gram-unknown-activation", ["gram", "-a", "sofplus", "--out", "{tmp}/G.npy", J, OUT],
         "did you mean 'softplus'", ["G.npy", "out.json"]),
    Case("gram-nan-data", ["gram", "--data", _npy("nan.npy", np.array([[np.nan, 1.0], [1.0, 0.0]])),
                           "--out", "{tmp}/G.npy", J, OUT], "nan", ["G.npy", "out.json"]),
    Case("gram-width-zero", ["gram", "--width", "0", "--out", "{tmp}/G.npy"], "--width", ["G.npy"]),
    Case("gram-out-is-dir", ["gram", "--n", "4", "--out", "{tmp}"], "directory", []),
    Case("gram-out-missing-dir", ["gram", "--n", "4", "--out", "{tmp}/nodir/G.npy"],
         "does not exist", ["nodir"]),
    Case("gram-outputs-zero", ["gram", "--n", "4", "--width", "10", "--outputs", "0", "--out",
                               "{tmp}/G.npy"], "--outputs", ["G.npy"]),
    # ---- sweep
    Case("sweep-corrupt-toml", ["sweep", _text("bad.toml", "[sweep\nname = 1\n"), "--db",
                                "{tmp}/s.duckdb", J, OUT], "toml", ["out.json", "s.duckdb"]),
    Case("sweep-json-config", ["sweep", _text("cfg.json", '{"grid": [{"command": "spectrum"}]}'),
                               "--db", "{tmp}/s.duckdb", J, OUT], "toml", ["out.json", "s.duckdb"]),
    Case("sweep-unknown-sweep-key", ["sweep", _text("k.toml", '[sweep]\nnmae = "x"\n[[grid]]\n'
                                                    'command = "spectrum"\nn = 4\n'),
                                     "--db", "{tmp}/s.duckdb", J, OUT], "nmae",
         ["out.json", "s.duckdb"]),
    Case("sweep-unknown-grid-param", ["sweep", _text("g.toml", '[[grid]]\ncommand = "spectrum"\n'
                                                     'widht = [10]\n'),
                                      "--db", "{tmp}/s.duckdb", J, OUT], "widht",
         ["out.json", "s.duckdb"]),
    Case("sweep-unknown-command", ["sweep", "-c", "spectra", "-p", "n=4", "--db", "{tmp}/s.duckdb",
                                   J, OUT], "spectra", ["out.json", "s.duckdb"]),
    Case("sweep-missing-config", ["sweep", "{tmp}/none.toml", J, OUT], "none.toml"),
    Case("sweep-bad-param", ["sweep", "-c", "spectrum", "-p", "n", "--db", "{tmp}/s.duckdb", J, OUT],
         "--param", ["out.json", "s.duckdb"]),
    Case("sweep-db-missing-dir", ["sweep", "-c", "spectrum", "-p", "n=4", "--db",
                                  "{tmp}/nodir/s.duckdb", J, OUT], "does not exist",
         ["out.json", "nodir"]),
    Case("sweep-negative-n", ["sweep", "-c", "spectrum", "-p", "n=-4", "--db", "{tmp}/s.duckdb", J, OUT],
         ">= 1", ["out.json", "s.duckdb"]),
    Case("sweep-train-zero-epochs", ["sweep", "-c", "train", "-p", "epochs=0", "-p", "width=10",
                                     "-p", "lr=0.1", "--db", "{tmp}/s.duckdb", J, OUT], "epochs",
         ["out.json", "s.duckdb"]),
    Case("sweep-bad-value", ["sweep", "-c", "spectrum", "-p", "n=abc", "--db", "{tmp}/s.duckdb",
                             J, OUT], "abc", ["out.json", "s.duckdb"]),
    # ---- results
    Case("results-missing-db", ["results", "{tmp}/none.duckdb", J, OUT], "none.duckdb"),
    Case("results-not-duckdb", ["results", _duckdb_file, J, OUT], "results.duckdb"),
    Case("results-empty-duckdb", ["results", _empty_duckdb, J, OUT], "empty.duckdb"),
    Case("results-json-is-dir", ["results", _empty_duckdb, J, "{tmp}"], "directory", []),
    # ---- issue 18: limits of the validation gate, output collisions
    Case("spectrum-seed-2-64", ["spectrum", "--n", "4", "--width", "10", "--seed",
                                str(2**64), J, OUT], "--seed must be <="),
    Case("train-seed-2-64", ["train", "--n", "4", "--width", "10", "--epochs", "1", "--seed",
                             str(2**64), J, OUT], "63-bit"),
    Case("gram-data-seed-2-64", ["gram", "--n", "4", "--width", "10", "--seed", str(2**64),
                                 "--out", "{tmp}/G.npy", J, OUT], "--seed", ["out.json", "G.npy"]),
    Case("sweep-seed-2-64", ["sweep", "-c", "spectrum", "-p", f"seed={2**64}", "--db",
                             "{tmp}/s.duckdb", J, OUT], str(2**63 - 1), ["out.json", "s.duckdb"]),
    Case("data-bins-1e9", ["data", "--n", "4", "--bins", "1000000000", J, OUT],
         "--bins must be <= 10000"),
    Case("data-bins-1e9-float", ["data", "--n", "4", "--bins", "1e9", J, OUT], "--bins"),
    Case("spectrum-noise-1e308", ["spectrum", "--data", "smoothed", "--n", "5", "--noise", "1e308",
                                  J, OUT], "--noise must be <="),
    Case("hermite-json-is-plot", ["hermite", "relu", "-k", "3", "--plot", OUT, J, OUT],
         "both name"),
    Case("gram-out-is-json", ["gram", "--n", "4", "--out", OUT, J, OUT], "both name"),
    Case("depth-plot-is-angle-plot", ["depth", "--n", "4", "--plot", OUT, "--angle-plot", OUT],
         "--plot and --angle-plot both name"),
    Case("gram-out-is-checkpoint", ["gram", "--n", "4", "--width", "10", "--out", OUT,
                                    "--checkpoint", OUT], "both name"),
    Case("results-parquet-is-json", ["results", _empty_duckdb, "--parquet", OUT, J, OUT],
         "both name"),
    Case("spectrum-json-over-data", ["spectrum", "--data", _good_data, J, "{tmp}/good.npy"],
         "input file", []),
    # ---- issue 18: nothing printed before the error line
    Case("sweep-bad-scheduler", ["sweep", "-c", "spectrum", "-p", "n=5", "--scheduler", "bogus",
                                 "--db", "{tmp}/s.duckdb", J, OUT], "--scheduler",
         ["out.json", "s.duckdb"]),
    Case("reproduce-cache-is-a-file", ["reproduce", "theorems", "--quick", "--out", _cache_file],
         "'cache'", []),
]

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS)


def _materialise(case: Case, tmp: Path) -> list[str]:
    out = []
    for a in case.args:
        out.append(a(tmp) if callable(a) else a.replace("{tmp}", str(tmp)))
    return out


def _tree(tmp: Path) -> set[str]:
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*")}


def _check(code: int, out: str, err: str, keyword: str) -> None:
    assert "Traceback" not in out and "Traceback" not in err, err
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].strip(), f"stderr must be exactly one line: {err!r}"
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ") + 10, lines[0]
    assert keyword.lower() in lines[0].lower(), f"{keyword!r} not in {lines[0]!r}"


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 40
    commands = {str(c.args[0]) for c in CASES}
    assert {"spectrum", "hermite", "data", "train", "analyze", "depth", "reproduce", "sweep",
            "results"} <= commands


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if case.root_skip and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: directory permissions are not enforced")
    args = _materialise(case, tmp_path)
    before = _tree(tmp_path)
    try:
        code = run(args)
    finally:
        ro = tmp_path / "ro"
        if ro.exists():
            ro.chmod(0o755)
    out, err = capsys.readouterr()
    _check(code, out, err, case.keyword)
    for name in case.outputs:
        assert not (tmp_path / name).exists(), f"{name} was left behind"
    assert _tree(tmp_path) == before, f"stray files: {_tree(tmp_path) - before}"


# ------------------------------------------------------------------ the real entry point


SUBPROCESS_CASES = [
    ("nan-data", ["spectrum", "--data", "{tmp}/nan.npy", "--json", "{tmp}/out.json"], "nan"),
    ("lr-nan", ["train", "--n", "4", "--width", "10", "--lr", "nan", "--json", "{tmp}/out.json"],
     "--lr"),
    ("results-not-duckdb", ["results", "{tmp}/nan.npy"], "nan.npy"),
]


@pytest.mark.parametrize("name,args,keyword", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_entry_point_prints_no_traceback(name: str, args: list[str], keyword: str,
                                         tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [0.0, 1.0]]))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "actspec", *argv], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, keyword)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.npy"]
