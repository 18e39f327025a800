"""Issue 17 item 9: eigenvectors (dense, --save-vectors, Ritz vectors), the cross kernel
gram(X, act, Y=...), kernel-regression predictions, and the documented submodule names.

Truths: the ReLU closed form (arc-cosine kernel) for cross entries, blocks of the G of the stacked
rows, the eigen-equation G v = λ v with orthonormal V, and a direct dense solve for regression.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import circle_points, unit_rows

import actspec
from actspec.core.errors import ActspecError


def _relu_cross(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """G∞(x, y) = <x, y> (π − θ)/(2π), θ from the rows (atan2: exact near 0 and π)."""
    U = X / np.linalg.norm(X, axis=1)[:, None]
    V = Y / np.linalg.norm(Y, axis=1)[:, None]
    th = 2 * np.arctan2(np.linalg.norm(U[:, None] - V[None], axis=2),
                        np.linalg.norm(U[:, None] + V[None], axis=2))
    return (X @ Y.T) * (math.pi - th) / (2 * math.pi)


@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    X = unit_rows(rng.standard_normal((25, 6)))
    Y = 1.7 * unit_rows(rng.standard_normal((9, 6)))  # other norms too
    Y[2] = X[4]  # a test point equal to a training point
    Y[5] = -X[7]  # and one antipodal to a training point
    return X, Y


# ------------------------------------------------------------------------------ eigenvectors
def test_spectrum_vectors_dense():
    X = circle_points(12, 5, seed=1)
    G = actspec.gram(X, "leaky_relu:0.2")
    s = actspec.spectrum(G, vectors=True)
    V = s.eigenvectors
    assert V.shape == (12, 12)
    np.testing.assert_allclose(V.T @ V, np.eye(12), atol=1e-13)
    np.testing.assert_allclose(G @ V, V * s.eigenvalues, atol=1e-13 * s.lambda_max)
    assert np.all(np.diff(s.eigenvalues) <= 0)
    # the other fields are unchanged, and absent vectors stay out of to_dict
    plain = actspec.spectrum(G)
    assert plain.eigenvectors is None and "eigenvectors" not in plain.to_dict()
    assert plain.lambda_min == pytest.approx(s.lambda_min, abs=1e-14 * s.lambda_max)
    assert plain.row().keys() == s.row().keys()


def test_ritz_vectors_of_the_iterative_solver():
    from actspec.largescale import extreme_eigenvalues

    rng = np.random.default_rng(0)
    X = unit_rows(rng.standard_normal((240, 6)))
    G = actspec.gram(X, "relu")
    lam, W = np.linalg.eigh(G)
    r = extreme_eigenvalues(X, "relu", k=3, method="iterative", vectors=True, tol=1e-8, maxiter=300)
    assert r["converged"]
    for which, vals, ref in (("smallest", r["smallest"], lam[:3]), ("largest", r["largest"], lam[::-1][:3])):
        V = r[f"{which}_vectors"]
        assert V.shape == (240, 3)
        np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
        res = np.linalg.norm(G @ V - V * np.asarray(vals), axis=0)
        np.testing.assert_allclose(res, r[f"{which}_error"], rtol=1e-6, atol=1e-14)
        np.testing.assert_allclose(vals, ref, rtol=1e-6)
    # the smallest Ritz vector spans the true bottom eigenvector (gap lam[1] - lam[0] is large)
    assert abs(float(W[:, 0] @ r["smallest_vectors"][:, 0])) == pytest.approx(1.0, abs=1e-5)
    # without vectors=True the arrays are not returned
    r2 = extreme_eigenvalues(X, "relu", k=2, method="iterative", maxiter=50)
    assert "smallest_vectors" not in r2


def test_lobpcg_stopping_at_maxiter_says_it_missed_tol():
    from actspec.largescale import extreme_eigenvalues

    rng = np.random.default_rng(0)
    X = unit_rows(rng.standard_normal((240, 6)))
    lines: list[str] = []
    r = extreme_eigenvalues(X, "relu", k=3, method="iterative", maxiter=2, tol=1e-10, log=lines.append)
    assert not r["converged"] and r["relative_residual"] > 1e-10
    [warn] = [ln for ln in lines if ln.startswith("warning:")]
    assert "--maxiter 2" in warn and "--tol 1e-10" in warn and "achieved relative residual" in warn
    lines.clear()
    r = extreme_eigenvalues(X, "relu", k=3, method="iterative", maxiter=300, tol=1e-6, log=lines.append)
    assert r["converged"] and not any(ln.startswith("warning:") for ln in lines)


def test_cli_save_vectors(tmp_path):
    from typer.testing import CliRunner

    from actspec.cli import app, run

    npz = tmp_path / "v.npz"
    res = CliRunner().invoke(app, ["spectrum", "-a", "relu", "-a", "erf", "--n", "11", "--width", "inf",
                                   "--width", "200", "--save-vectors", str(npz),
                                   "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    z = np.load(npz)
    from actspec.data.datasets import load_data

    X = load_data("circle", n=11).X
    G = actspec.gram(X, "erf")
    V, lam = z["erf_inf.vectors"], z["erf_inf.eigenvalues"]
    np.testing.assert_allclose(G @ V, V * lam, atol=1e-12 * lam[0])
    assert z["relu_200.vectors"].shape == (11, 11)
    np.testing.assert_array_equal(z["relu_inf.index"], np.arange(1, 12))
    doc = json.loads((tmp_path / "s.json").read_text())
    assert "eigenvectors" not in doc["results"][0]  # vectors never go to the JSON
    # iterative: Ritz vectors, k largest then k smallest, .npy for one result
    npy = tmp_path / "r.npy"
    res = CliRunner().invoke(app, ["spectrum", "-a", "relu", "--data", "sphere", "--n", "60", "--dim", "5",
                                   "--method", "iterative", "--k", "2", "--save-vectors", str(npy)])
    assert res.exit_code == 0, res.output
    assert np.load(npy).shape == (60, 4)
    # bad paths fail before any work, exit 2, nothing written
    for argv in (["-a", "relu", "-a", "elu", "--save-vectors", str(tmp_path / "two.npy")],
                 ["-a", "relu", "--save-vectors", str(tmp_path / "v.txt")],
                 ["-a", "relu", "--precision", "high", "--save-vectors", str(tmp_path / "h.npz")]):
        assert run(["spectrum", "--n", "8", *argv]) == 2
    assert not (tmp_path / "two.npy").exists() and not (tmp_path / "h.npz").exists()


# ------------------------------------------------------------------------------ cross kernel
@pytest.mark.parametrize(("act", "train", "init"), [
    ("relu", "hidden", "dzps"), ("relu", "both", "fanin"), ("erf", "output", "dzps"),
    ("leaky_relu:0.2", "both", "dzps"),
    ("tanh", "hidden", "dzps"),  # theta-tables and the close-pair angles through the tables
])
def test_cross_kernel_is_the_block_of_the_stacked_gram(data, act, train, init):
    X, Y = data
    if act == "tanh":  # one variance group: one theta-table (tables are costly to build)
        Y = unit_rows(Y)
    big = actspec.gram(np.vstack([X, Y]), act, train=train, init=init)
    K = actspec.gram(X, act, Y=Y, train=train, init=init)
    assert K.shape == (25, 9)
    np.testing.assert_allclose(K, big[:25, 25:], rtol=0, atol=1e-14 * np.abs(big).max())


def test_cross_kernel_relu_closed_form_and_invariances(data):
    X, Y = data
    K = actspec.gram(X, "relu", Y=Y)
    np.testing.assert_allclose(K, _relu_cross(X, Y), rtol=0, atol=2e-15)
    # a rotation of both sets changes nothing; permutations permute
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((6, 6)))
    np.testing.assert_allclose(actspec.gram(X @ Q.T, "relu", Y=Y @ Q.T), K, atol=1e-14)
    p, q = np.random.default_rng(6).permutation(25), np.random.default_rng(7).permutation(9)
    np.testing.assert_allclose(actspec.gram(X[p], "relu", Y=Y[q]), K[np.ix_(p, q)], atol=1e-15)
    # Y = X gives G itself
    np.testing.assert_allclose(actspec.gram(X, "relu", Y=X), actspec.gram(X, "relu"), atol=1e-15)


def test_cross_kernel_finite_width_same_weights(data):
    X, Y = data
    G = actspec.gram(X, "tanh", 400, seed=3)
    big = actspec.gram(np.vstack([X, Y]), "tanh", 400, seed=3)
    np.testing.assert_allclose(big[:25, :25], G, atol=1e-13)  # the same weights
    K = actspec.gram(X, "tanh", 400, Y=Y, seed=3)
    np.testing.assert_allclose(K, big[:25, 25:], atol=1e-15)
    # explicit weights: (1/m) sum_k a_k^2 phi'(w.x) phi'(w.y) <x, y>
    rng = np.random.default_rng(1)
    W, a = rng.standard_normal((50, 6)), rng.standard_normal(50)
    K = actspec.gram(X, "tanh", Y=Y, weights=(W, a))
    D = lambda Z: 1 / np.cosh(Z @ W.T) ** 2  # noqa: E731
    ref = ((D(X) * a**2) @ D(Y).T / 50) * (X @ Y.T)
    np.testing.assert_allclose(K, ref, atol=1e-13)
    # several outputs: grouped by output, nC x n'C
    K2 = actspec.gram(X, "tanh", 400, Y=Y, seed=3, outputs=2)
    big2 = actspec.gram(np.vstack([X, Y]), "tanh", 400, seed=3, outputs=2)
    assert K2.shape == (50, 18)
    np.testing.assert_allclose(K2[25:, 9:], big2[34:59, 59:68], atol=1e-15)  # output 1 x output 1
    np.testing.assert_allclose(K2[:25, 9:], big2[:25, 59:68], atol=1e-15)  # output 0 x output 1


def test_cross_kernel_bad_input(data):
    X, Y = data
    with pytest.raises(ActspecError, match="columns"):
        actspec.gram(X, "relu", Y=Y[:, :4])


# ------------------------------------------------------------------------------ regression
def test_kernel_regression_interpolates_and_matches_direct_solve(data):
    X, Y = data
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    pred = actspec.kernel_regression(X, y, X, "relu")
    np.testing.assert_allclose(pred, y, atol=1e-11)
    # test points: G(Y, X) G^-1 y by a direct solve on the closed form
    ref = _relu_cross(Y, X) @ np.linalg.solve(_relu_cross(X, X), y)
    np.testing.assert_allclose(actspec.kernel_regression(X, y, Y, "relu"), ref, atol=1e-11)
    # ridge, several outputs, finite width
    Yt = np.stack([y, y**2], axis=1)
    G = actspec.gram(X, "erf")
    ref = actspec.gram(Y, "erf", Y=X) @ np.linalg.solve(G + 0.1 * np.eye(25), Yt)
    np.testing.assert_allclose(actspec.kernel_regression(X, Yt, Y, "erf", ridge=0.1), ref, atol=1e-12)
    Gm = actspec.gram(X, "relu", 300, seed=2)
    ref = actspec.gram(Y, "relu", 300, Y=X, seed=2) @ np.linalg.solve(Gm, y)
    np.testing.assert_allclose(actspec.kernel_regression(X, y, Y, "relu", width=300, seed=2), ref,
                               rtol=1e-8, atol=1e-9)


def test_kernel_regression_singular_needs_ridge():
    Xc = circle_points(20, 6, seed=0)  # antipodal pairs: relu G∞ has 8 exact zeros
    with pytest.raises(ActspecError, match=r"singular.*8 exactly zero eigenvalues.*ridge > 0"):
        actspec.kernel_regression(Xc, np.ones(20), Xc[:3], "relu")
    out = actspec.kernel_regression(Xc, np.ones(20), Xc[:3], "relu", ridge=1e-6)
    assert np.all(np.isfinite(out))
    with pytest.raises(ActspecError, match="ridge"):
        actspec.kernel_regression(Xc, np.ones(20), Xc[:3], "relu", ridge=-1.0)


# ------------------------------------------------------------------------------ module names
def test_documented_submodules_import():
    import importlib

    for name, attr in (("theory", "polynomial_rank"), ("kinks", "detect_kinks"),
                       ("largescale", "extreme_eigenvalues"), ("datasets", "circle")):
        mod = importlib.import_module(f"actspec.{name}")
        assert getattr(mod, attr) is getattr(getattr(actspec, name), attr)
    from actspec.theory import hermite_decay  # noqa: F401  (docs/science.md)
