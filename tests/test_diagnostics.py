"""Data diagnostics against independent truths: exact circle geometry, brute force, invariances."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from scipy.stats import special_ortho_group

from actspec.core.errors import ActspecError
from actspec.data.datasets import circle, load_data, subspace
from actspec.data.diagnostics import data_diagnostics
from actspec.plots.data import plot_data_diagnostics


def brute_delta(X: np.ndarray) -> float:
    """min_{i != j} ||(I - xh_i xh_i^T) x_j|| by explicit projection matrices."""
    n, d = X.shape
    best = math.inf
    for i in range(n):
        xi = X[i] / np.linalg.norm(X[i])
        P = np.eye(d) - np.outer(xi, xi)
        for j in range(n):
            if i != j:
                best = min(best, float(np.linalg.norm(P @ X[j])))
    return best


@pytest.mark.parametrize("n", [7, 10, 50, 51])
def test_circle_distances_and_delta_exact(n):
    X = circle(n, 10, seed=1)
    diag = data_diagnostics(X, chunk=8)  # several blocks, incl. partial ones
    k = np.arange(1, n)
    # pairwise distances 2 sin(pi k / n): min at k = 1, max at k = floor(n / 2)
    assert diag["min_distance"] == pytest.approx(2 * math.sin(math.pi / n), abs=1e-14)
    assert diag["max_distance"] == pytest.approx(2 * math.sin(math.pi * (n // 2) / n), abs=1e-7)
    # mean over pairs: each k (1..n-1) appears n times among ordered pairs
    assert diag["mean_distance"] == pytest.approx(np.mean(2 * np.sin(np.pi * k / n)), rel=1e-12)
    # Assumption 2: delta = min_k |sin(2 pi k / n)|: zero for even n (antipodal points)
    delta = np.abs(np.sin(2 * np.pi * k / n)).min()
    assert diag["delta"] == pytest.approx(delta, abs=1e-14)
    assert diag["delta_normalized"] == pytest.approx(delta, abs=1e-14)
    assert diag["antiparallel_pairs"] == (n // 2 if n % 2 == 0 else 0)
    assert diag["duplicate_pairs"] == 0 and diag["parallel_pairs"] == 0
    assert diag["span_dim"] == 2 and diag["unit_norm"]
    assert sum(diag["histogram"]["counts"]) == n * (n - 1) // 2 == diag["n_pairs"]
    # singular values of a circle: two equal values sqrt(n / 2)
    np.testing.assert_allclose(diag["singular_values"][:2], math.sqrt(n / 2), rtol=1e-12)
    assert diag["cumulative_energy"][1] == pytest.approx(1.0, abs=1e-14)


def test_histogram_matches_pdist():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    diag = data_diagnostics(X, chunk=64, bins=20)
    h = diag["histogram"]
    e = np.asarray(h["edges"])
    assert len(h["counts"]) == len(e) - 1 <= 20
    dist = pdist(X)
    assert e[0] <= dist.min() and e[-1] >= dist.max()
    ref, _ = np.histogram(dist, bins=e)
    # identical up to points that sit within rounding of a bin edge
    assert np.abs(np.asarray(h["counts"]) - ref).sum() <= 2
    assert diag["mean_distance"] == pytest.approx(dist.mean(), rel=1e-12)
    assert diag["max_distance"] == pytest.approx(dist.max(), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 30),
    d=st.integers(1, 6),
    chunk=st.integers(1, 40),
    seed=st.integers(0, 10**6),
)
def test_matches_brute_force(n, d, chunk, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.2, 3.0, (n, 1))
    diag = data_diagnostics(X, chunk=chunk)
    assert diag["min_distance"] == pytest.approx(pdist(X).min(), rel=1e-9, abs=1e-12)
    assert diag["delta"] == pytest.approx(brute_delta(X), rel=1e-9, abs=1e-12)
    i, j = diag["delta_pair"]
    xi = X[i] / np.linalg.norm(X[i])
    assert np.linalg.norm(X[j] - (xi @ X[j]) * xi) == pytest.approx(diag["delta"], abs=1e-15)
    assert diag["span_dim"] == np.linalg.matrix_rank(X)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(4, 40), d=st.integers(2, 8), seed=st.integers(0, 10**6))
def test_rotation_invariance(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[-1] = X[0]  # a duplicate and an antiparallel pair survive rotation
    X[-2] = -0.5 * X[1]
    Q = special_ortho_group.rvs(d, random_state=seed % (2**32)) if d > 1 else np.eye(1)
    a, b = data_diagnostics(X), data_diagnostics(X @ Q)
    for key in ("min_distance", "delta", "delta_normalized"):  # recomputed exactly
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12)
    for key in ("mean_distance", "max_distance"):  # Gram-based: absolute error ~ sqrt(eps) R
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-7 * a["row_norm_max"])
    for key in ("span_dim", "duplicate_pairs", "parallel_pairs", "antiparallel_pairs", "n_pairs"):
        assert a[key] == b[key]
    np.testing.assert_allclose(b["singular_values"], a["singular_values"], rtol=1e-9, atol=1e-12)
    assert a["duplicate_pairs"] >= 1 and a["antiparallel_pairs"] >= 1


def test_duplicates_and_parallel_points_detected():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6))
    X[5] = X[17]
    X[30] = X[17]  # three copies: 3 duplicate pairs
    X[8] = 2.5 * X[2]  # parallel
    X[9] = -X[4]  # antiparallel
    X[11] = X[12] + 1e-9 * np.linalg.norm(X[12])  # a near duplicate within duplicate_tol
    diag = data_diagnostics(X, chunk=7)
    assert diag["duplicate_pairs"] == 4
    assert sorted(map(tuple, diag["duplicate_examples"])) == [(5, 17), (5, 30), (11, 12),
                                                              (17, 30)]
    assert diag["parallel_pairs"] == 1 and diag["parallel_examples"] == [[2, 8]]
    assert diag["antiparallel_pairs"] == 1 and diag["antiparallel_examples"] == [[4, 9]]
    assert diag["min_distance"] == 0.0 and diag["delta"] == 0.0
    assert len(diag["warnings"]) == 3
    assert any("singular for every activation" in w for w in diag["warnings"])
    # the paper lift removes the antiparallel pair; normalising makes the parallel pair a duplicate
    lifted = data_diagnostics(load_data_from(X, preprocess="paper"))
    assert lifted["antiparallel_pairs"] == 0
    unit = data_diagnostics(X / np.linalg.norm(X, axis=1, keepdims=True))
    assert unit["parallel_pairs"] == 0 and unit["duplicate_pairs"] == 5
    # a stricter tolerance no longer merges the near duplicate
    strict = data_diagnostics(X, duplicate_tol=1e-12)
    assert strict["duplicate_pairs"] == 3


def load_data_from(X, **kw):
    from actspec.data.datasets import apply_preprocess

    return apply_preprocess(X, kw.get("preprocess"))[0]


def test_zero_rows_and_single_point():
    X = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    diag = data_diagnostics(X)
    assert diag["zero_norm_rows"] == 1 and diag["delta"] == 0.0
    one = data_diagnostics(np.array([[1.0, 2.0, 3.0]]))
    assert one["n_pairs"] == 0 and one["min_distance"] is None and one["delta"] is None
    assert one["span_dim"] == 1
    json.dumps(one, allow_nan=False)


def test_span_dim_subspace_and_tolerance():
    X = subspace(500, 40, 7, seed=2)
    diag = data_diagnostics(X)
    assert diag["span_dim"] == 7
    assert diag["singular_values"][7] < diag["rank_tol"] < diag["singular_values"][6]
    assert diag["rank_tol_rule"].startswith("sigma_max * max(n, dim) * eps")
    assert diag["dims_for_energy"]["0.999"] <= 7
    # the fast Gram route agrees on the large singular values and the rank
    g = data_diagnostics(X, svd_method="gram")
    assert g["svd_method"] == "gram" and g["span_dim"] == 7
    np.testing.assert_allclose(g["singular_values"][:7], diag["singular_values"][:7], rtol=1e-10)
    assert data_diagnostics(X, tol=1e9)["span_dim"] == 0


def test_digits_diagnostics_json_safe():
    ds = load_data("digits")
    diag = data_diagnostics(ds.X)
    text = json.dumps(diag, allow_nan=False)
    back = json.loads(text)
    assert back["n"] == 1797 and back["dim"] == 64
    # unit rows: delta = min sin(angle) <= min 2 sin(angle / 2) = min distance; 3 pixels are
    # always 0 in the digits set, so the span is 61-dimensional
    assert 0 < back["delta"] <= back["min_distance"]
    assert back["span_dim"] == 61 and back["duplicate_pairs"] == 0
    cum = np.asarray(back["cumulative_energy"])
    assert np.all(np.diff(cum) >= -1e-15) and cum[-1] == pytest.approx(1.0)
    assert len(back["singular_values"]) == 64


def test_scale_extremes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    a = data_diagnostics(X)
    for s in (1e-150, 1e150):
        b = data_diagnostics(X * s)
        assert b["min_distance"] == pytest.approx(a["min_distance"] * s, rel=1e-10)
        assert b["delta"] == pytest.approx(a["delta"] * s, rel=1e-10)
        assert b["span_dim"] == 3


@pytest.mark.parametrize(
    "X,kw,match",
    [
        (np.array([[1.0, np.nan]]), {}, "NaN or inf"),
        (np.array([[1.0, np.inf], [1.0, 2.0]]), {}, "NaN or inf"),
        (np.zeros((0, 3)), {}, "empty"),
        (np.ones(4), {}, "2-D"),
        ([[1.0, 2.0], [3.0]], {}, "different lengths"),
        (np.ones((3, 2)), {"chunk": 0}, "chunk"),
        (np.ones((3, 2)), {"bins": 0}, "bins"),
        (np.ones((3, 2)), {"svd_method": "qr"}, "svd-method"),
        (np.ones((3, 2)), {"tol": -1.0}, "tol"),
        (np.ones((3, 2)), {"duplicate_tol": 2.0}, "duplicate_tol"),
    ],
)
def test_bad_inputs(X, kw, match):
    with pytest.raises(ActspecError, match=match):
        data_diagnostics(X, **kw)


def test_plots_written_atomically(tmp_path):
    diag = data_diagnostics(circle(20, 5, 0))
    a, b = tmp_path / "dist.png", tmp_path / "sv.png"
    plot_data_diagnostics(diag, a, b)
    for p in (a, b):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist.png", "sv.png"]
    plot_data_diagnostics(diag, None, tmp_path / "only.png")
    assert (tmp_path / "only.png").exists()
    with pytest.raises(ActspecError, match="does not exist"):
        plot_data_diagnostics(diag, tmp_path / "no" / "x.png", None)
    # a single point: empty histogram still gives a figure
    plot_data_diagnostics(data_diagnostics(np.ones((1, 3))), tmp_path / "e.png", None)


def test_cli_data_command(tmp_path):
    from typer.testing import CliRunner

    from actspec.cli import app, run

    out = tmp_path / "d.json"
    res = CliRunner().invoke(
        app,
        ["data", "--data", "circle", "--n", "9", "--dim", "4", "--json", str(out),
         "--plot-prefix", str(tmp_path / "c")],
    )
    assert res.exit_code == 0, res.output
    assert "span dimension" in res.output
    doc = json.loads(out.read_text())
    assert doc["data"]["n"] == 9 and doc["data"]["dim"] == 4
    diag = doc["diagnostics"]
    assert diag["span_dim"] == 2
    assert diag["min_distance"] == pytest.approx(2 * math.sin(math.pi / 9), abs=1e-14)
    for name in ("c_distances.png", "c_singular.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    # bad input: exit status 2, one-line error, no output file
    bad = tmp_path / "bad.json"
    assert run(["data", "--data", "subspace", "--span-dim", "50", "--json", str(bad)]) == 2
    assert not bad.exists()
