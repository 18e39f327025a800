"""Resumable finite-width G (actspec.checkpoint) and the ``actspec gram`` command.

The central property: a run interrupted (at any chunk, any number of times) and resumed from
its checkpoint returns a G bit-identical to the same run done in one go.
"""

from __future__ import annotations

import json
import signal
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import actspec
import actspec.finite.checkpoint as ck
import actspec.finite.empirical as emp
from actspec.cli import run
from actspec.core.inits import WEIGHT_BLOCK, init_scheme, sample_block
from actspec.finite.checkpoint import Checkpoint, CheckpointInterrupt

N, D, M, CHUNK = 120, 12, 2500, 192  # 14 chunks; chunk does not divide the RNG block


def _data(n: int = N, d: int = D, seed: int = 3) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture
def small_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 runs flush every 500 neurons (not a multiple of the chunk): several flushes,
    and interrupts land both on and between flush points."""
    monkeypatch.setattr(emp, "_FLUSH_NEURONS", 500)


def _stop_after(k: int, how: str = "raise") -> Callable[[int, int], None]:
    """A progress callback that interrupts after its k-th call (KeyboardInterrupt, SIGINT or a
    crash that skips the checkpoint code, like a killed process)."""
    calls = [0]

    def progress(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == k:
            if how == "raise":
                raise KeyboardInterrupt
            if how == "sigint":
                signal.raise_signal(signal.SIGINT)
            if how == "crash":
                raise RuntimeError("simulated crash")

    return progress


def _gram(X: np.ndarray, **kw: Any) -> np.ndarray:
    kw.setdefault("width", M)
    kw.setdefault("chunk", CHUNK)
    return actspec.gram(X, "tanh", **kw)


# ---- weights drawn mid-way ------------------------------------------------------------------


def test_sample_block_from_the_middle_gives_the_same_weights() -> None:
    scheme = init_scheme("fanin")
    m = 2 * WEIGHT_BLOCK + 100
    W, a, b = sample_block(7, m, 0, m, scheme, seed=5, outputs=2)
    for lo, hi in [(100, WEIGHT_BLOCK + 150), (WEIGHT_BLOCK, m), (m - 3, m), (5, 9)]:
        w2, a2, b2 = sample_block(7, m, lo, hi, scheme, seed=5, outputs=2)
        assert torch.equal(w2, W[lo:hi]) and torch.equal(a2, a[lo:hi]) and torch.equal(b2, b[lo:hi])


# ---- interrupted + resumed == uninterrupted, bit for bit ------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("train,outputs", [("hidden", 1), ("both", 1), ("hidden", 2)])
@pytest.mark.parametrize("k", [3, 4])  # float32: stop 576 is a flush point, 768 is not
def test_interrupt_and_resume_is_bit_identical(
    tmp_path: Path, small_flush: None, dtype: str, train: str, outputs: int, k: int
) -> None:
    X = _data()
    kw = {"dtype": dtype, "train": train, "outputs": outputs, "init": "fanin"}
    ref = _gram(X, **kw)
    path = tmp_path / "g.ckpt.npz"
    with pytest.raises(CheckpointInterrupt) as info:
        _gram(X, **kw, checkpoint=path, checkpoint_every=0, progress=_stop_after(k))
    assert info.value.done == k * CHUNK and info.value.total == M
    assert "run the same command again to resume" in str(info.value)
    assert ck.read_meta(path)["done"] == k * CHUNK
    G = _gram(X, **kw, checkpoint=path, checkpoint_every=0)
    assert np.array_equal(G, ref)
    assert not path.exists()  # deleted after success


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_crash_resumes_from_last_periodic_checkpoint(
    tmp_path: Path, small_flush: None, dtype: str
) -> None:
    """A crash writes nothing: the last save at a flush point is resumed, still bit-identical."""
    X = _data()
    ref = _gram(X, dtype=dtype, train="both")
    path = tmp_path / "c.npz"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _gram(X, dtype=dtype, train="both", checkpoint=path, checkpoint_every=0,
              progress=_stop_after(8, "crash"))
    meta = ck.read_meta(path)
    # float64: every chunk boundary is a flush point (last save after chunk 7); float32: the
    # buffer is flushed after the chunks ending at 576 and 1152 (first stops past 500, 1000)
    assert meta["done"] == (7 * CHUNK if dtype == "float64" else 6 * CHUNK)
    assert all(a["pending"] == 0 and not a["low"] for a in meta["accumulators"].values())
    ckpt = Checkpoint(path, every=0)
    G = _gram(X, dtype=dtype, train="both", checkpoint=ckpt)
    assert ckpt.resumed_from == meta["done"]
    assert np.array_equal(G, ref)


def test_sigint_stops_at_chunk_boundary_and_repeated_interrupts_resume(tmp_path: Path) -> None:
    X = _data()
    ref = _gram(X, dtype="float32")
    path = tmp_path / "c.npz"
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(CheckpointInterrupt) as info:
        _gram(X, dtype="float32", checkpoint=path, checkpoint_every=1e9,
              progress=_stop_after(2, "sigint"))
    assert info.value.done == 2 * CHUNK
    assert signal.getsignal(signal.SIGINT) is handler  # previous handler restored
    seen: list[int] = []
    with pytest.raises(CheckpointInterrupt) as info:  # resume, interrupt again
        stop = _stop_after(4)

        def progress(done: int, total: int) -> None:
            seen.append(done)
            stop(done, total)

        _gram(X, dtype="float32", checkpoint=path, progress=progress)
    assert seen[0] == 2 * CHUNK  # first call reports the neurons loaded (ETA starts there)
    assert info.value.done == 5 * CHUNK
    assert np.array_equal(_gram(X, dtype="float32", checkpoint=path), ref)


def test_explicit_weights_resume(tmp_path: Path) -> None:
    X = _data()
    W, a, _ = actspec.sample_weights(D, 900, seed=4)
    ref = actspec.gram(X, "relu", weights=(W, a), chunk=128)
    path = tmp_path / "w.npz"
    with pytest.raises(CheckpointInterrupt):
        actspec.gram(X, "relu", weights=(W, a), chunk=128, checkpoint=path,
                     progress=_stop_after(3))
    G = actspec.gram(X, "relu", weights=(W, a), chunk=128, checkpoint=path)
    assert np.array_equal(G, ref)


def test_keep_checkpoint_returns_finished_sums_without_recomputing(tmp_path: Path) -> None:
    X = _data()
    path = tmp_path / "keep.npz"
    G1 = _gram(X, checkpoint=path, keep_checkpoint=True)
    assert ck.read_meta(path)["done"] == M
    calls: list[tuple[int, int]] = []
    G2 = _gram(X, checkpoint=path, keep_checkpoint=True, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(M, M)]  # loaded, nothing left to compute
    assert np.array_equal(G1, G2) and path.exists()


# ---- wrong or damaged checkpoints -----------------------------------------------------------


def _interrupted(path: Path, X: np.ndarray, **kw: Any) -> None:
    with pytest.raises(CheckpointInterrupt):
        _gram(X, checkpoint=path, progress=_stop_after(2), **kw)


@pytest.mark.parametrize(
    "change,named",
    [
        ({"seed": 1}, "seed"),
        ({"dtype": "float32"}, "dtype"),
        ({"width": M + 1}, "width"),
        ({"chunk": CHUNK * 2}, "chunk"),
        ({"train": "both"}, "train"),
        ({"normalize": True}, "activation"),
        ({"X": "other"}, "X"),
    ],
)
def test_mismatched_settings_are_refused(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    path = tmp_path / "c.npz"
    X = _data()
    _interrupted(path, X)
    if change.pop("X", None):
        X = _data(seed=4)
    with pytest.raises(actspec.ActspecError) as info:
        _gram(X, checkpoint=path, **change)
    msg = str(info.value)
    assert "different settings" in msg and f"{named}:" in msg and "delete it" in msg
    assert "\n" not in msg
    assert path.exists()  # never deleted behind the user's back


def test_damaged_checkpoints_are_refused(tmp_path: Path) -> None:
    X = _data()
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    good = tmp_path / "good.npz"
    _interrupted(good, X)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.npz"  # one byte of G changed: the CRC check catches it
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("G.npy")
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + 4000
    flipped.write_bytes(data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:])
    for path in (garbage, truncated, flipped):
        with pytest.raises(actspec.ActspecError, match="unreadable or damaged.*delete it"):
            _gram(X, checkpoint=path)


def test_checkpoint_needs_finite_width_and_valid_interval(tmp_path: Path) -> None:
    X = _data()
    with pytest.raises(actspec.ActspecError, match="finite-width"):
        actspec.gram(X, "relu", checkpoint=tmp_path / "c.npz")
    with pytest.raises(actspec.ActspecError, match="checkpoint_every"):
        _gram(X, checkpoint=tmp_path / "c.npz", checkpoint_every=-1)
    with pytest.raises(actspec.ActspecError, match="does not exist"):
        _gram(X, checkpoint=tmp_path / "missing" / "c.npz")


# ---- memory: saving and loading stream row groups -------------------------------------------


def test_save_and_load_stream_without_copying_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ck, "_GROUP_BYTES", 64 * 1024)
    monkeypatch.setattr(emp, "_MIN_BLOCK_ROWS", 128)  # 8 row blocks: stored part ~ 0.56 n^2
    n = 1100
    acc = emp._Accumulator(n, torch.float32, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    acc.total.copy_(torch.randn(n, n, generator=g, dtype=torch.float64))
    acc.low.copy_(torch.randn(n, n, generator=g))
    acc.pending = 7
    settings = {"width": 10, "n": n}
    ckpt = Checkpoint(tmp_path / "s.npz", every=0)
    matrix = n * n * 8
    tracemalloc.start()
    try:
        ck.save_state(ckpt, settings, 5, 10, {"G": acc})
        _, peak_save = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        back = emp._Accumulator(n, torch.float32, torch.device("cpu"))
        base, _ = tracemalloc.get_traced_memory()
        assert ck.load_state(ckpt, settings, {"G": back}) == 5
        _, peak_load = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_save < matrix / 8 and peak_load - base < matrix / 8
    for r0, r1 in acc.blocks:  # the stored part round-trips exactly
        assert torch.equal(back.total[r0:r1, r0:], acc.total[r0:r1, r0:])
        assert torch.equal(back.low[r0:r1, r0:], acc.low[r0:r1, r0:])
    assert back.pending == 7
    assert len(acc.blocks) == 8
    assert ckpt.bytes < 0.6 * (matrix + matrix // 2)  # about half of G and of the buffer
    arrays = np.load(ckpt.path)  # a plain .npz
    assert json.loads(arrays["meta"].tobytes())["done"] == 5


# ---- CUDA (skipped without a GPU) -----------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_interrupt_and_resume(tmp_path: Path, small_flush: None, dtype: str) -> None:
    X = _data()
    kw = {"dtype": dtype, "device": "cuda", "train": "both"}
    ref = _gram(X, **kw)
    path = tmp_path / "cuda.npz"
    with pytest.raises(CheckpointInterrupt):
        _gram(X, **kw, checkpoint=path, checkpoint_every=0, progress=_stop_after(5))
    assert np.array_equal(_gram(X, **kw, checkpoint=path), ref)
    cpu = _gram(X, dtype=dtype, train="both")
    np.testing.assert_allclose(ref, cpu, rtol=0, atol=(1e-12 if dtype == "float64" else 1e-5))


# ---- the actspec gram command ---------------------------------------------------------------


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(["gram", *args])
    out, err = capsys.readouterr()
    return code, out, err


DATA = ["--data", "sphere", "--n", "60", "--dim", "8", "--seed", "2"]


def test_cli_writes_the_library_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = actspec.datasets.load_data("sphere", n=60, dim=8, seed=2).X
    out, js = tmp_path / "G.npy", tmp_path / "G.json"
    code, stdout, _ = _cli(["-a", "elu", *DATA, "--width", "700", "--dtype", "float32",
                            "--device", "cpu", "--out", str(out), "--json", str(js), "--timings"],
                           capsys)
    assert code == 0 and "wrote" in stdout
    assert np.array_equal(np.load(out), actspec.gram(X, "elu", 700, seed=2, dtype="float32"))
    d = json.loads(js.read_text())
    assert d["data"]["n"] == 60 and d["data"]["dim"] == 8
    assert d["settings"]["width"] == 700 and d["settings"]["device"] == "cpu"
    assert d["result"]["seconds"] > 0 and d["result"]["gflops"] > 0
    assert d["checkpoint"] is None and "torch" in d["meta"]
    code, _, _ = _cli(["-a", "relu", *DATA, "--out", str(out)], capsys)  # infinite width
    assert code == 0 and np.array_equal(np.load(out), actspec.gram(X, "relu"))


def test_cli_interrupt_then_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    X = actspec.datasets.load_data("sphere", n=60, dim=8, seed=2).X
    out, ckpt = tmp_path / "G.npy", tmp_path / "G.npy.ckpt.npz"
    args = ["-a", "tanh", *DATA, "--width", "1500", "--chunk", "100", "--out", str(out)]
    monkeypatch.setattr("actspec.experiments.gram_job.estimate_seconds", lambda *a: 3600.0)
    add = emp._add_chunk
    calls = [0]

    def ctrl_c_on_fourth(*a: Any) -> None:  # a real SIGINT arriving mid-chunk
        calls[0] += 1
        if calls[0] == 4:
            signal.raise_signal(signal.SIGINT)
        add(*a)

    monkeypatch.setattr(emp, "_add_chunk", ctrl_c_on_fourth)
    code, _, err = _cli(args, capsys)
    assert code == 130
    assert "checkpointing to" in err
    lines = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert lines == [f"error: interrupted after 400 of 1500 neurons; checkpoint saved to {ckpt}; "
                     "run the same command again to resume"]
    assert ckpt.exists() and not out.exists()
    monkeypatch.setattr(emp, "_add_chunk", add)
    monkeypatch.setattr("actspec.experiments.gram_job.estimate_seconds", lambda *a: 1.0)  # still resumes
    code, _, err = _cli([*args, "--json", str(tmp_path / "g.json")], capsys)
    assert code == 0 and "resuming from" in err
    assert np.array_equal(np.load(out), actspec.gram(X, "tanh", 1500, seed=2, chunk=100))
    assert not ckpt.exists()
    info = json.loads((tmp_path / "g.json").read_text())["checkpoint"]
    assert info["resumed_from"] == 400 and info["kept"] is False


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["-a", "nosuch"], "unknown activation"),
        (["--width", "0"], "--width"),
        (["--width", "100", "--dtype", "float16"], "--dtype"),
        (["--device", "tpu"], "--device"),
        (["--checkpoint", "CKPT"], "--checkpoint is for finite widths"),
        (["--width", "100", "--checkpoint-every", "-5"], "--checkpoint-every"),
        (["--width", "100", "--outputs", "0"], "--outputs"),
        (["--n", "0"], "n"),
    ],
)
def test_cli_bad_inputs_exit_2_without_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    out = tmp_path / "G.npy"
    extra = [str(tmp_path / "c.npz") if e == "CKPT" else e for e in extra]
    code, _, err = _cli([*DATA, *extra, "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert fragment in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_mismatched_checkpoint_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "c.npz"
    _interrupted(ckpt, _data())
    out = tmp_path / "G.npy"
    code, _, err = _cli([*DATA, "--width", str(M), "--checkpoint", str(ckpt), "--out", str(out)], capsys)
    assert code == 2 and err.startswith("error: checkpoint") and "different settings" in err
    assert not out.exists() and ckpt.exists()


def test_cli_memory_guard_names_the_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actspec.core.resources.available_memory", lambda: 2**30)
    out = tmp_path / "G.npy"
    code, _, err = _cli(["--data", "sphere", "--n", "20000", "--width", "1000", "--out", str(out)],
                        capsys)
    assert code == 2 and err.startswith("error: dense G-matrix for n=20000 needs about 7.5 GiB")
    assert not out.exists()


def test_estimate_seconds_scales_with_the_work() -> None:
    from actspec.core.resources import estimate_seconds

    small = estimate_seconds(100, 10, 1000, 1, "hidden", "float64", "cpu")
    big = estimate_seconds(10000, 3072, 100000, 1, "hidden", "float32", "cpu")
    assert 0 < small < 1 < big < 1e5
