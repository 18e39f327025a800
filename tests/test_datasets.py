"""Data sets: generators against exact geometry, real data loaders, files, preprocessing, errors."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actspec.core.errors import ActspecError
from actspec.data.datasets import (
    CIFAR10_TRAIN_FILES,
    Dataset,
    circle,
    load_data,
    normalize_rows,
    preprocess_paper,
    smoothed,
    sphere,
    subspace,
)
from actspec.data.diagnostics import data_diagnostics

HALF = math.sqrt(0.5)


def _rank(X: np.ndarray) -> int:
    return int(np.linalg.matrix_rank(X))


# ----------------------------------------------------------------------------- circle


@pytest.mark.parametrize("n,dim", [(10, 10), (50, 10), (7, 2), (13, 30)])
def test_circle_equally_spaced_on_a_great_circle(n, dim):
    X = circle(n, dim, seed=3)
    assert X.shape == (n, dim) and X.dtype == np.float64 and X.flags.c_contiguous
    k = np.arange(n)
    expected = np.cos(2 * np.pi * (k[:, None] - k[None, :]) / n)
    np.testing.assert_allclose(X @ X.T, expected, atol=2e-15)
    D = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    np.testing.assert_allclose(D, 2 * np.abs(np.sin(np.pi * (k[:, None] - k[None, :]) / n)),
                               atol=5e-15)
    assert _rank(X) == 2


def test_circle_defaults_match_the_paper():
    ds = load_data("circle")
    assert isinstance(ds, Dataset)
    assert (ds.n, ds.dim) == (50, 10) and ds.name == "circle"
    assert ds.info["n"] == 50 and ds.info["dim"] == 10 and ds.info["span_dim"] == 2
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), 1.0, atol=1e-15)
    # random +-1 labels
    assert ds.y is not None and ds.y.dtype == np.float64 and set(np.unique(ds.y)) <= {-1.0, 1.0}


# ----------------------------------------------------------------------------- subspace etc.


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    dim=st.integers(1, 25),
    span=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_subspace_spans_exactly_span_dim(n, dim, span, seed):
    if span > dim or span > n:
        with pytest.raises(ActspecError, match="--span-dim"):
            subspace(n, dim, span, seed)
        return
    X = subspace(n, dim, span, seed)
    assert X.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    assert _rank(X) == span
    assert data_diagnostics(X)["span_dim"] == span


def test_smoothed_is_full_rank_in_its_span_and_perturbs_subspace():
    n, dim, span = 200, 30, 5
    base = subspace(n, dim, span, seed=4)
    X = smoothed(n, dim, span, noise=0.1, seed=4)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    # noise within the span (the paper's Assumption 3): the span is unchanged ...
    assert _rank(X) == span
    assert _rank(np.vstack([X, base])) == span
    # ... it is full rank there, with every singular value bounded away from zero
    sv = np.linalg.svd(X, compute_uv=False)
    assert sv[span - 1] > 0.1 * sv[0]
    # noise = 0 gives the subspace points exactly; noise > 0 moves every point
    np.testing.assert_array_equal(smoothed(n, dim, span, noise=0.0, seed=4), base)
    moved = np.linalg.norm(X - base, axis=1)
    assert moved.min() > 1e-4 and np.median(moved) < 0.5
    # span_dim = dim: smoothed data is full rank in R^dim
    assert _rank(smoothed(50, 8, 8, noise=0.1, seed=1)) == 8


def test_smoothed_data_is_separated():
    # Assumption 3 data satisfy Assumption 2: no duplicates or (anti)parallel points, delta > 0
    ds = load_data("smoothed", n=40, dim=6, span_dim=6, noise=0.05, seed=2)
    diag = data_diagnostics(ds.X)
    assert diag["duplicate_pairs"] == 0 and diag["antiparallel_pairs"] == 0
    assert diag["delta"] > 1e-4 and diag["span_dim"] == 6


def test_sphere_uniform_unit_vectors():
    X = sphere(2000, 3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-15)
    # uniform on S^2: mean ~ 0, second moment = I/3
    assert np.abs(X.mean(axis=0)).max() < 0.06
    np.testing.assert_allclose(X.T @ X / len(X), np.eye(3) / 3, atol=0.03)


# ----------------------------------------------------------------------------- seeds


@pytest.mark.parametrize(
    "spec,kw",
    [("circle", {}), ("sphere", {}), ("subspace", {}), ("smoothed", {}), ("digits", {"n": 100})],
)
def test_seeds_reproduce_and_differ(spec, kw):
    a = load_data(spec, seed=7, **kw)
    b = load_data(spec, seed=7, **kw)
    c = load_data(spec, seed=8, **kw)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert a.info["seed"] == 7


def test_random_labels_are_seeded_and_independent_of_data_stream():
    a = load_data("circle", seed=1, labels="random")
    b = load_data("circle", seed=2, labels="random")
    assert not np.array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.X, circle(50, 10, 1))  # labels do not shift the data stream
    assert load_data("digits", labels="random").y.dtype == np.float64
    assert load_data("circle", labels="none").y is None


# ----------------------------------------------------------------------------- preprocessing


def test_paper_lift_unit_norm_and_constant_coordinate():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 7)) * rng.uniform(0.1, 5.0, (60, 1))
    L = preprocess_paper(X)
    assert L.shape == (60, 9)
    np.testing.assert_allclose(np.linalg.norm(L, axis=1), 1.0, rtol=0, atol=3e-16)
    assert np.all(L[:, -1] == HALF)
    np.testing.assert_allclose(np.linalg.norm(L[:, :-1], axis=1), HALF, atol=3e-16)
    # one global scale: relative geometry kept, the largest row has padding 0
    s = HALF / np.linalg.norm(X, axis=1).max()
    np.testing.assert_allclose(L[:, :7], s * X, rtol=1e-15)
    assert L[np.argmax(np.linalg.norm(X, axis=1)), 7] < 1e-7
    ds = load_data("digits", preprocess="paper")
    assert ds.dim == 66 and ds.info["preprocess"] == "paper" and ds.info["normalized"]
    assert np.all(ds.X[:, -1] == HALF)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 25), d=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_paper_lift_preserves_separation(n, d, seed):
    """||x_i - x_j|| >= eps implies Assumption 2 after the lift, delta >= s * eps / sqrt2; and
    the lift never produces antiparallel rows (inner products are in [0, 1])."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if seed % 3 == 0:
        X[1] = -X[0]  # antipodal points: delta = 0 before the lift
    L = preprocess_paper(X)
    dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    eps_sep = dist[~np.eye(n, dtype=bool)].min()
    s = HALF / np.linalg.norm(X, axis=1).max()
    diag = data_diagnostics(L)
    assert diag["delta"] >= s * eps_sep / math.sqrt(2) * (1 - 1e-9) - 1e-12
    assert diag["antiparallel_pairs"] == 0
    assert (L @ L.T).min() >= -1e-15


def test_center_and_normalize_options():
    ds = load_data("digits", preprocess="center")
    raw = load_data("digits", normalize=False)
    Xc = raw.X - raw.X.mean(axis=0)
    np.testing.assert_allclose(ds.X, Xc / np.linalg.norm(Xc, axis=1, keepdims=True), atol=1e-14)
    assert ds.info["preprocess"] == "center"
    # normalize=False keeps the raw scale (digits pixels / 16 in [0, 1])
    assert raw.X.max() == 1.0 and not raw.info["normalized"]
    both = load_data("digits", preprocess="center+paper")
    np.testing.assert_allclose(np.linalg.norm(both.X, axis=1), 1.0, atol=1e-15)
    st_ = load_data("digits", preprocess="standardize", normalize=False)
    assert np.abs(st_.X.mean(axis=0)).max() < 1e-12


def test_normalize_rows_and_zero_rows():
    X = np.array([[3.0, 4.0], [1e-200, 0.0], [1e200, 1e200]])
    U = normalize_rows(X)
    np.testing.assert_allclose(U, [[0.6, 0.8], [1, 0], [HALF, HALF]], rtol=1e-15)
    with pytest.raises(ActspecError, match="zero norm.*--preprocess paper"):
        normalize_rows(np.array([[1.0, 2.0], [0.0, 0.0]]))


# ----------------------------------------------------------------------------- real data


def test_digits_real_data():
    ds = load_data("digits")
    assert ds.X.shape == (1797, 64) and ds.y.shape == (1797,)
    assert ds.y.dtype == np.int64 and ds.info["n_classes"] == 10
    assert set(np.unique(ds.y)) == set(range(10))
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), 1.0, atol=1e-14)
    sub = load_data("digits", n=300, seed=1)
    assert sub.X.shape == (300, 64) and sub.info["subset"] and sub.info["n_available"] == 1797
    # the subset rows are rows of the full set, in the original order
    full = {r.tobytes(): i for i, r in enumerate(ds.X)}
    idx = [full[r.tobytes()] for r in sub.X]
    assert idx == sorted(idx)
    np.testing.assert_array_equal(sub.y, ds.y[idx])


def _write_cifar(root, n_per_batch=4, seed=0, files=(*CIFAR10_TRAIN_FILES, "test_batch")):
    """A tiny CIFAR-10 directory in the real python-pickle batch layout."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, name in enumerate(files):
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        data[:, 0] = 1  # no all-zero image
        labels = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        batch = {
            b"batch_label": f"batch {k}".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img{k}_{i}.png".encode() for i in range(n_per_batch)],
        }
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
        out[name] = (data, np.array(labels))
    return out


def test_cifar10_tiny_directory_loads(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    batches = _write_cifar(d)
    X_all = np.concatenate([batches[f][0] for f in CIFAR10_TRAIN_FILES]).astype(float) / 255
    y_all = np.concatenate([batches[f][1] for f in CIFAR10_TRAIN_FILES])
    ds = load_data("cifar10", data_dir=str(d), normalize=False)  # default n=10000 > 20: all
    assert ds.X.shape == (20, 3072) and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.X, X_all)
    np.testing.assert_array_equal(ds.y, y_all)
    # the parent directory works too; a seeded subset, normalised rows
    sub = load_data("cifar10", data_dir=str(tmp_path), n=7, seed=3)
    assert sub.X.shape == (7, 3072) and sub.info["subset"] and sub.info["n_available"] == 20
    np.testing.assert_allclose(np.linalg.norm(sub.X, axis=1), 1.0, atol=1e-14)
    again = load_data("cifar10", data_dir=str(tmp_path), n=7, seed=3)
    np.testing.assert_array_equal(sub.X, again.X)
    test = load_data("cifar10-test", data_dir=str(d), normalize=False)
    np.testing.assert_array_equal(test.X, batches["test_batch"][0] / 255.0)
    paper = load_data("cifar10", data_dir=str(d), n=5, preprocess="paper")
    assert paper.dim == 3074


def test_cifar10_missing_files_named(tmp_path):
    with pytest.raises(ActspecError, match="data_batch_1.*test_batch"):
        load_data("cifar10", data_dir=str(tmp_path))
    _write_cifar(tmp_path, files=("data_batch_1", "data_batch_2"))
    with pytest.raises(ActspecError, match="no data_batch_3, data_batch_4, data_batch_5"):
        load_data("cifar10", data_dir=str(tmp_path))
    with pytest.raises(ActspecError, match="--data-dir"):
        load_data("cifar10")
    with pytest.raises(ActspecError, match="not a directory"):
        load_data("cifar10", data_dir=str(tmp_path / "nope"))


def test_cifar10_bad_batches_rejected(tmp_path):
    _write_cifar(tmp_path)
    # a pickle that would run code is refused
    with open(tmp_path / "data_batch_2", "wb") as fh:
        pickle.dump({b"data": print, b"labels": []}, fh)
    with pytest.raises(ActspecError, match="cannot read .*data_batch_2"):
        load_data("cifar10", data_dir=str(tmp_path))
    _write_cifar(tmp_path)
    with open(tmp_path / "data_batch_5", "wb") as fh:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, fh)
    with pytest.raises(ActspecError, match=r"expected \(N, 3072\)"):
        load_data("cifar10", data_dir=str(tmp_path))
    (tmp_path / "data_batch_5").write_bytes(b"not a pickle")
    with pytest.raises(ActspecError, match="data_batch_5"):
        load_data("cifar10", data_dir=str(tmp_path))
    _write_cifar(tmp_path)
    with pytest.raises(ActspecError, match="larger than the 20 rows"):
        load_data("cifar10", data_dir=str(tmp_path), n=21)


# ----------------------------------------------------------------------------- files


def test_npy_npz_csv_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    y = rng.integers(0, 3, 12)
    np.save(tmp_path / "a.npy", X)
    ds = load_data(str(tmp_path / "a.npy"), normalize=False)
    np.testing.assert_array_equal(ds.X, X)
    assert ds.name == "file:a.npy" and ds.info["source"] == "file"
    assert ds.y.dtype == np.float64  # no labels in the file: random +-1
    np.savez(tmp_path / "b.npz", X=X, y=y)
    ds = load_data(str(tmp_path / "b.npz"), normalize=False)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.y.dtype == np.int64 and ds.info["n_classes"] == len(np.unique(y))
    # CSV: header with a label column anywhere
    lines = ["f0,label,f1,f2,f3"] + [
        ",".join([repr(float(r[0])), str(int(t))] + [repr(float(v)) for v in r[1:]])
        for r, t in zip(X, y, strict=True)
    ]
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    ds = load_data(str(tmp_path / "c.csv"), normalize=False)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    # CSV without header: all columns are features
    np.savetxt(tmp_path / "d.csv", X, delimiter=",", fmt="%.17g")
    ds = load_data(str(tmp_path / "d.csv"), normalize=False, labels="none")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y is None
    # normalised by default
    ds = load_data(str(tmp_path / "d.csv"))
    np.testing.assert_allclose(ds.X, X / np.linalg.norm(X, axis=1, keepdims=True), rtol=1e-15)
    # subset with labels follows the rows
    sub = load_data(str(tmp_path / "b.npz"), n=5, seed=2, normalize=False)
    idx = [int(np.flatnonzero((X == r).all(axis=1))[0]) for r in sub.X]
    np.testing.assert_array_equal(sub.y, y[idx])


def test_label_files(tmp_path):
    y = np.arange(50) % 2 * 2 - 1
    np.save(tmp_path / "y.npy", y)
    ds = load_data("circle", labels=str(tmp_path / "y.npy"))
    np.testing.assert_array_equal(ds.y, y)
    (tmp_path / "y.csv").write_text("label\n" + "\n".join(str(v) for v in y) + "\n")
    np.testing.assert_array_equal(load_data("circle", labels=str(tmp_path / "y.csv")).y, y)
    # labels for all 1797 digits follow a subset
    yd = np.arange(1797) * 0.5
    np.save(tmp_path / "yd.npy", yd)
    full = load_data("digits", labels=str(tmp_path / "yd.npy"))
    sub = load_data("digits", n=10, seed=1, labels=str(tmp_path / "yd.npy"))
    assert full.y.dtype == np.float64
    for r, lab in zip(sub.X, sub.y, strict=True):
        i = int(np.flatnonzero((full.X == r).all(axis=1))[0])
        assert lab == yd[i]
    with pytest.raises(ActspecError, match="has 50 labels but the data has 10 rows"):
        load_data("circle", n=10, labels=str(tmp_path / "y.npy"))
    with pytest.raises(ActspecError, match="--labels"):
        load_data("circle", labels="sometimes")


# ----------------------------------------------------------------------------- errors


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda t: _write(t, "r.csv", "1,2,3\n4,5\n"), "ragged CSV: row at line 2 has 2 fields"),
        (lambda t: _write(t, "n.csv", "1,2\n3,nan\n"), "NaN or inf.*row 1, column 1"),
        (lambda t: _write(t, "i.csv", "1,2\ninf,3\n"), "NaN or inf"),
        (lambda t: _write(t, "s.csv", "a,b\n1,x\n"), "non-numeric value 'x' at line 2"),
        (lambda t: _write(t, "e.csv", ""), "empty"),
        (lambda t: _write(t, "h.csv", "a,b\n"), "header but no data"),
        (lambda t: _write(t, "z.csv", "1,2\n0,0\n"), "zero norm.*--preprocess paper"),
        (lambda t: _write(t, "l.csv", "label,y,a\n1,2,3\n"), "several label columns"),
        (lambda t: _write(t, "x.json", "{}"), "unknown file type '.json'"),
        (lambda t: str(t / "missing.npy"), "does not exist"),
        (lambda t: str(t), "is a directory"),
    ],
)
def test_bad_files(tmp_path, make, match):
    with pytest.raises(ActspecError, match=match):
        load_data(make(tmp_path))


def test_bad_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(5))
    with pytest.raises(ActspecError, match="2-D"):
        load_data(str(tmp_path / "one.npy"))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(ActspecError, match="empty"):
        load_data(str(tmp_path / "empty.npy"))
    np.save(tmp_path / "obj.npy", np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    with pytest.raises(ActspecError, match="cannot load"):
        load_data(str(tmp_path / "obj.npy"))
    np.savez(tmp_path / "nox.npz", A=np.ones((2, 2)))
    with pytest.raises(ActspecError, match="no array 'X'.*keys: A"):
        load_data(str(tmp_path / "nox.npz"))
    np.savez(tmp_path / "mis.npz", X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(ActspecError, match="4 labels for 3 rows"):
        load_data(str(tmp_path / "mis.npz"))
    with pytest.raises(ActspecError, match="different lengths"):
        normalize_rows([[1.0, 2.0], [3.0]])
    with pytest.raises(ActspecError, match="NaN"):
        preprocess_paper(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"spec": "banana"}, "unknown data set 'banana'"),
        ({"spec": ""}, "--data must be"),
        ({"spec": "circle", "n": 0}, "--n must be >= 1"),
        ({"spec": "circle", "n": 2.5}, "--n must be an integer"),
        ({"spec": "circle", "dim": 1}, "--dim must be >= 2"),
        ({"spec": "sphere", "n": 10**6, "dim": 10**4}, "too large"),
        ({"spec": "subspace", "dim": 5, "span_dim": 6}, r"--span-dim \(6\) must be <= --dim"),
        ({"spec": "smoothed", "noise": -1.0}, "--noise"),
        ({"spec": "smoothed", "noise": float("nan")}, "--noise"),
        ({"spec": "circle", "seed": -1}, "--seed"),
        ({"spec": "circle", "preprocess": "whiten"}, "unknown --preprocess step 'whiten'"),
        ({"spec": "circle", "preprocess": "paper+center"}, "'paper' must be the last"),
        ({"spec": "digits", "dim": 3}, "--dim is fixed"),
        ({"spec": "digits", "n": 5000}, "larger than the 1797 rows"),
    ],
)
def test_bad_arguments(kw, match):
    spec = kw.pop("spec")
    with pytest.raises(ActspecError, match=match):
        load_data(spec, **kw)


def test_messages_are_one_line():
    with pytest.raises(ActspecError) as exc:
        load_data("sphere", n=10**6, dim=10**4)
    assert "\n" not in str(exc.value)
