"""Seeded finite-width weights (issue 20 item 3): parallel per-block streams, the scheme recorded,
checkpoints of another scheme refused.

The scheme (actspec.core.inits.WEIGHTS_SCHEME, "blocked-randn32-v2"): neurons in blocks of
WEIGHT_BLOCK = 256; block b of seed s is drawn by torch.randn (float32) from a CPU generator seeded
with SeedSequence(s, spawn_key=(0x57, b)).generate_state(1, uint64)[0]: W~ (256, d), then a~
(256, C), then b~ (256,). The tests rebuild the weights from that recipe independently and check
that chunking, the number of drawing threads and the width m do not change them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import actspec
import actspec.finite.checkpoint as ck
from actspec.cli import run
from actspec.core.inits import (
    LEGACY_WEIGHTS_SCHEMES,
    WEIGHT_BLOCK,
    WEIGHTS_SCHEME,
    init_scheme,
    sample_block,
)
from actspec.finite.checkpoint import Checkpoint, CheckpointInterrupt


def _recipe(seed: int, d: int, m: int, outputs: int = 1) -> tuple[np.ndarray, ...]:
    """Standard normals (W~, a~, b~) of the first m neurons, straight from the documented recipe."""
    ws, as_, bs = [], [], []
    for blk in range(-(-m // WEIGHT_BLOCK)):
        word = np.random.SeedSequence(seed, spawn_key=(0x57, blk)).generate_state(1, np.uint64)[0]
        g = torch.Generator().manual_seed(int(word))
        ws.append(torch.randn(WEIGHT_BLOCK, d, generator=g, dtype=torch.float32))
        as_.append(torch.randn(WEIGHT_BLOCK, outputs, generator=g, dtype=torch.float32))
        bs.append(torch.randn(WEIGHT_BLOCK, generator=g, dtype=torch.float32))
    return tuple(torch.cat(t)[:m].double().numpy() for t in (ws, as_, bs))


def _data(n: int = 40, d: int = 9, seed: int = 3) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_scheme_name_and_legacy() -> None:
    assert WEIGHTS_SCHEME == "blocked-randn32-v2"
    assert WEIGHTS_SCHEME not in LEGACY_WEIGHTS_SCHEMES and "blocked-randn64-v1" in LEGACY_WEIGHTS_SCHEMES


@pytest.mark.parametrize("init", ["dzps", "fanin", "fanout"])
def test_sample_weights_follow_the_documented_recipe(init: str) -> None:
    d, m, C = 11, 3 * WEIGHT_BLOCK + 17, 2
    W, a, b = actspec.sample_weights(d, m, init=init, seed=2**40 + 9, outputs=C)
    Wz, az, bz = _recipe(2**40 + 9, d, m, C)
    s = init_scheme(init)
    assert np.array_equal(W, Wz * s.weight_std(d, m))
    assert np.array_equal(a, az * s.output_std(m))
    assert np.array_equal(b, bz * s.bias_std(m))
    assert W.dtype == np.float64 and np.array_equal(Wz.astype(np.float32), Wz)  # float32 draws


def test_draws_do_not_depend_on_split_threads_or_width() -> None:
    d, m = 7, 5 * WEIGHT_BLOCK + 3
    s = init_scheme("dzps")
    ref = sample_block(d, m, 0, m, s, 5, 2, threads=1)
    for threads in (2, 3, 8):
        got = sample_block(d, m, 0, m, s, 5, 2, threads=threads)
        assert all(torch.equal(x, y) for x, y in zip(got, ref, strict=True))
    for lo, hi in [(0, 1), (3, WEIGHT_BLOCK + 5), (WEIGHT_BLOCK, 3 * WEIGHT_BLOCK), (m - 2, m)]:
        got = sample_block(d, m, lo, hi, s, 5, 2, threads=2)
        assert all(torch.equal(x, y[lo:hi]) for x, y in zip(got, ref, strict=True))
    # neuron k's draws depend on (seed, k, d, C) only: a narrower network is a prefix (dzps)
    narrow = sample_block(d, 300, 0, 300, s, 5, 2)
    assert all(torch.equal(x, y[:300]) for x, y in zip(narrow, ref, strict=True))
    # float32 output: the same normals, no float64 round trip
    w32, _, _ = sample_block(d, m, 0, m, s, 5, 2, dtype=torch.float32)
    assert w32.dtype == torch.float32 and torch.equal(w32.double(), ref[0])


def test_parallel_draws_of_a_large_block_match_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the size where blocks are drawn concurrently (the thread pool path)."""
    import actspec.core.inits as inits

    monkeypatch.setattr(inits, "_PARALLEL_MIN", 1)
    d, m = 64, 6 * WEIGHT_BLOCK
    s = init_scheme("fanin")
    one = sample_block(d, m, 0, m, s, 1, threads=1)
    many = sample_block(d, m, 100, m, s, 1, threads=4)
    assert all(torch.equal(x[100:], y) for x, y in zip(one, many, strict=True))


def test_draws_are_standard_normal() -> None:
    """The float32 Box-Muller normals (first two moments, tails) over 256 x 4096 draws."""
    Wz, _, _ = _recipe(0, 4096, WEIGHT_BLOCK)
    z = Wz.ravel()
    assert abs(z.mean()) < 5 / np.sqrt(z.size)  # 5 sigma of the sample mean
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)
    assert abs(np.mean(np.abs(z) > 3) / 2.6998e-3 - 1) < 0.05  # P(|z| > 3), ~2800 draws


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gram_does_not_depend_on_the_chunk_size(dtype: str) -> None:
    """Chunks that divide the RNG block, multiples of it, and neither: same network, same G."""
    X = _data()
    m = 2 * WEIGHT_BLOCK + 77
    W, a, b = actspec.sample_weights(X.shape[1], m, init="fanin", seed=6)
    ref = actspec.gram(X, "tanh", weights=(W, a, b), init="fanin", dtype="float64")
    tol = 1e-14 if dtype == "float64" else 2e-6
    for chunk in (64, 100, WEIGHT_BLOCK, 3 * WEIGHT_BLOCK, None):
        G = actspec.gram(X, "tanh", width=m, init="fanin", seed=6, chunk=chunk, dtype=dtype)
        assert np.max(np.abs(G - ref)) <= tol * np.max(np.abs(ref)), chunk


# ---- the scheme in checkpoints ----------------------------------------------------------------


def _interrupted_checkpoint(path: Path, X: np.ndarray, **kw: Any) -> None:
    calls = [0]

    def stop(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt

    with pytest.raises(CheckpointInterrupt):
        actspec.gram(X, "relu", width=900, chunk=128, checkpoint=path, progress=stop, **kw)


def _rewrite_settings(path: Path, edit: Any) -> None:
    """Rewrite the checkpoint's settings (and their hash) as another actspec would have saved them."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(np.lib.format.read_array(io.BytesIO(members["meta.npy"])).tobytes())
    edit(meta["settings"])
    meta["hash"] = ck.settings_hash(meta["settings"])
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_checkpoint_records_the_scheme(tmp_path: Path) -> None:
    X = _data()
    path = tmp_path / "c.npz"
    _interrupted_checkpoint(path, X)
    assert ck.read_meta(path)["settings"]["weights_scheme"] == WEIGHTS_SCHEME
    ckpt = Checkpoint(path, every=0)
    G = actspec.gram(X, "relu", width=900, chunk=128, checkpoint=ckpt)
    assert ckpt.info()["weights_scheme"] == WEIGHTS_SCHEME and ckpt.resumed_from == 256
    assert np.array_equal(G, actspec.gram(X, "relu", width=900, chunk=128))
    # given weights: no generator, no scheme
    W, a, _ = actspec.sample_weights(X.shape[1], 300, seed=1)
    ckpt = Checkpoint(tmp_path / "w.npz", every=0, keep=True)
    actspec.gram(X, "relu", weights=(W, a), chunk=128, checkpoint=ckpt)
    assert "weights_scheme" not in ck.read_meta(ckpt.path)["settings"]
    assert ckpt.info()["weights_scheme"] is None


def _old(settings: dict[str, Any]) -> None:  # what every checkpoint before the scheme held
    del settings["weights_scheme"]
    settings["weight_block"] = 4096


@pytest.mark.parametrize("edit,old", [
    (_old, "blocked-randn64-v1"),
    (lambda s: s.update(weights_scheme="blocked-randn32-v9"), "blocked-randn32-v9"),
])
def test_checkpoint_of_another_scheme_is_refused(tmp_path: Path, edit: Any, old: str) -> None:
    X = _data()
    path = tmp_path / "c.npz"
    _interrupted_checkpoint(path, X)
    _rewrite_settings(path, edit)
    with pytest.raises(actspec.ActspecError) as info:
        actspec.gram(X, "relu", width=900, chunk=128, checkpoint=path)
    msg = str(info.value)
    assert "\n" not in msg and f"generator scheme {old!r}" in msg and WEIGHTS_SCHEME in msg
    assert "delete" in msg and "run the same command again to restart" in msg
    assert path.exists()  # never deleted behind the user's back


def test_given_weights_checkpoint_without_scheme_still_resumes(tmp_path: Path) -> None:
    """Explicit weights involve no generator: an old checkpoint of them stays usable."""
    X = _data()
    W, a, _ = actspec.sample_weights(X.shape[1], 900, seed=1)
    path = tmp_path / "w.npz"
    calls = [0]

    def stop(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt

    with pytest.raises(CheckpointInterrupt):
        actspec.gram(X, "relu", weights=(W, a), chunk=128, checkpoint=path, progress=stop)
    _rewrite_settings(path, lambda s: s.pop("weights_scheme", None))
    G = actspec.gram(X, "relu", weights=(W, a), chunk=128, checkpoint=path)
    assert np.array_equal(G, actspec.gram(X, "relu", weights=(W, a), chunk=128))


def test_cli_refuses_an_old_scheme_checkpoint_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ckpt, js = tmp_path / "G.npy", tmp_path / "G.ckpt.npz", tmp_path / "G.json"
    args = ["gram", "-a", "tanh", "--data", "sphere", "--n", "30", "--dim", "6", "--seed", "2",
            "--width", "600", "--chunk", "128", "--checkpoint", str(ckpt), "--keep-checkpoint",
            "--out", str(out)]
    assert run(args) == 0
    G = np.load(out)
    out.unlink()
    _rewrite_settings(ckpt, _old)
    code = run([*args, "--json", str(js)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: checkpoint")
    assert "'blocked-randn64-v1'" in err[0] and "restart from the beginning" in err[0]
    assert not out.exists() and not js.exists() and ckpt.exists()
    ckpt.unlink()  # the way out the message gives
    assert run([*args, "--json", str(js)]) == 0
    assert np.array_equal(np.load(out), G)
    assert json.loads(js.read_text())["checkpoint"]["weights_scheme"] == WEIGHTS_SCHEME


def test_every_json_result_records_the_weights_scheme(tmp_path) -> None:
    """The JSON of a finite-width run says which generator scheme drew its seeded weights."""
    import json

    from typer.testing import CliRunner

    from actspec.cli import app
    from actspec.core.inits import WEIGHTS_SCHEME

    out = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["spectrum", "--data", "circle", "--n", "6", "-a", "relu",
                                   "--width", "64", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["meta"]["weights_scheme"] == WEIGHTS_SCHEME == "blocked-randn32-v2"
