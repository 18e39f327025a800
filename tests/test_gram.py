"""actspec.gram: closed forms, circulant spectra, rank formulas, finite -> infinite width,
explicit weights, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import circle_points, subspace_points, unit_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import actspec
from actspec import ActspecError, gram


def relu_closed(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rho = np.clip(X @ X.T, -1, 1)
    th = np.arccos(rho)
    g = rho * (np.pi - th) / (2 * np.pi)
    h = (np.sin(th) + (np.pi - th) * rho) / (2 * np.pi)
    return g, h


def test_relu_closed_form(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((40, 7)))
    g, h = relu_closed(X)
    np.testing.assert_allclose(gram(X, "relu"), g, atol=1e-12)
    np.testing.assert_allclose(gram(X, "relu", train="both"), g + h, atol=1e-12)
    np.testing.assert_allclose(gram(X, "relu", train="output"), h, atol=1e-12)


def test_polynomial_closed_forms(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((25, 6)))
    rho = X @ X.T
    np.testing.assert_allclose(gram(X, "linear"), rho, atol=1e-13)
    np.testing.assert_allclose(gram(X, "quadratic"), 4 * rho**2, atol=1e-12)
    np.testing.assert_allclose(gram(X, "cubic"), 9 * (1 + 2 * rho**2) * rho, atol=1e-11)
    np.testing.assert_allclose(gram(X, "quadratic", train="output"), 1 + 2 * rho**2, atol=1e-12)


def test_erf_closed_form_with_general_norms(rng: np.random.Generator) -> None:
    X = rng.standard_normal((15, 4)) * 0.7  # rows not normalised
    K = X @ X.T
    s = np.diag(K)
    expected = (4 / np.pi) / np.sqrt(np.outer(1 + 2 * s, 1 + 2 * s) - 4 * K**2) * K
    np.testing.assert_allclose(gram(X, "erf"), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["relu", "elu", "tanh", "swish", "gelu", "selu", "sigmoid"])
def test_circle_gives_circulant_matrix_with_dft_eigenvalues(name: str) -> None:
    n = 31  # odd: no antipodal pairs, so rho is never -1 (arccos is ill-conditioned there)
    X = circle_points(n, dim=10, seed=3)
    G = gram(X, name)
    row = G[0]
    for k in range(1, n):  # circulant: G_{k, j} = G_{0, j-k}
        np.testing.assert_allclose(G[k], np.roll(row, k), rtol=0, atol=1e-13)
    dft = np.sort(np.fft.fft(row).real)[::-1]
    ev = actspec.eigenvalues(G)
    np.testing.assert_allclose(ev, dft, atol=1e-12 * ev[0])


def test_quadratic_rank_on_circle_is_three() -> None:
    G = gram(circle_points(40, dim=10), "quadratic")
    ev = actspec.eigenvalues(G)
    assert np.sum(ev > 1e-10 * ev[0]) == 3  # rank of (XX^T)^{.2} for d0 = 2: C(3, 2)


@pytest.mark.parametrize("d0", [2, 3, 4])
def test_cubic_rank_formula(d0: int) -> None:
    """phi' = 3x^2 = 3 h_0 + 3 sqrt2 h_2, so G∞ = 9 XX^T + 18 (XX^T)^{.3}. Thm 4.3 / F.2 bounds the rank
    by C(d0, 1) + C(d0 + 2, 3); on unit-norm data the degree-1 features are contained in the degree-3
    ones (x = x |x|^2), so the exact rank is C(d0 + 2, 3), the number of cubic monomials."""
    X = subspace_points(80, dim=12, span=d0, seed=d0)
    ev = actspec.eigenvalues(gram(X, "cubic"))
    rank = int(np.sum(ev > 1e-9 * ev[0]))
    assert rank == math.comb(d0 + 2, 3)
    assert rank <= math.comb(d0, 1) + math.comb(d0 + 2, 3)


def test_finite_width_converges_like_inverse_sqrt_m() -> None:
    X = circle_points(9, dim=6, seed=1)
    for name in ["relu", "tanh"]:
        Ginf = gram(X, name)
        errs = []
        for m in (1_000, 10_000, 100_000):
            e = [np.linalg.norm(gram(X, name, m, seed=s) - Ginf) for s in range(4)]
            errs.append(np.mean(e))
        ratios = np.array(errs[:-1]) / np.array(errs[1:])
        # each tenfold width divides the error by about sqrt(10) = 3.16
        assert np.all((ratios > 1.8) & (ratios < 5.5)), (name, errs)
        assert errs[-1] < 0.02 * np.linalg.norm(Ginf)


def test_explicit_weights_match_direct_numpy_eq2(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((12, 5)))
    m = 300
    W = rng.standard_normal((m, 5))
    a = rng.choice([-1.0, 1.0], m)
    for name in ["tanh", "relu", "elu"]:
        act = actspec.activation(name)
        D = act.dphi(X @ W.T)
        expected = (D * a**2) @ D.T / m * (X @ X.T)
        np.testing.assert_allclose(gram(X, name, weights=(W, a)), expected, atol=1e-14)
        P = act.phi(X @ W.T)
        np.testing.assert_allclose(gram(X, name, train="both", weights=(W, a)),
                                   expected + P @ P.T / m, atol=1e-13)


def test_sampled_width_equals_sample_weights() -> None:
    X = circle_points(10, dim=5)
    W, a, b = actspec.sample_weights(5, 700, seed=4)
    np.testing.assert_allclose(gram(X, "gelu", 700, seed=4), gram(X, "gelu", weights=(W, a)), atol=1e-14)


def test_chunking_and_seeds() -> None:
    X = circle_points(10, dim=5)
    g1 = gram(X, "tanh", 9000, seed=2, chunk=128)
    g2 = gram(X, "tanh", 9000, seed=2, chunk=5000)
    np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-15)
    assert np.abs(gram(X, "tanh", 9000, seed=3) - g1).max() > 1e-4
    g32 = gram(X, "tanh", 9000, seed=2, dtype="float32")
    assert g32.dtype == np.float64
    np.testing.assert_allclose(g32, g1, atol=1e-5)


def test_multi_output_blocks(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((6, 4)))
    m, C = 200, 3
    W = rng.standard_normal((m, 4))
    A = rng.standard_normal((m, C))
    G = gram(X, "tanh", weights=(W, A))
    assert G.shape == (18, 18)
    D = actspec.activation("tanh").dphi(X @ W.T)
    for c in range(C):
        for c2 in range(C):
            blk = (D * (A[:, c] * A[:, c2])) @ D.T / m * (X @ X.T)
            np.testing.assert_allclose(G[c * 6:(c + 1) * 6, c2 * 6:(c2 + 1) * 6], blk, atol=1e-14)
    Ginf = gram(X, "tanh", outputs=C)
    np.testing.assert_allclose(Ginf, np.kron(np.eye(C), gram(X, "tanh")), atol=0)


@pytest.mark.parametrize("init", ["fanin", "fanout"])
def test_standard_inits_converge_to_their_infinite_width_kernel(init: str) -> None:
    X = circle_points(8, dim=6, seed=2)
    for name in ["relu", "tanh"]:
        Ginf = gram(X, name, init=init)
        Gm = np.mean([gram(X, name, 100_000, init=init, seed=s) for s in range(3)], axis=0)
        assert np.abs(Gm - Ginf).max() < 0.01 * np.abs(Ginf).max() + 1e-3, (init, name)


def test_fanout_limit_of_smooth_activation_is_phi_prime_zero_squared() -> None:
    X = circle_points(8, dim=6)
    np.testing.assert_allclose(gram(X, "tanh", init="fanout"), X @ X.T, atol=1e-14)  # tanh'(0) = 1


def test_normalize_gives_unit_second_moment(rng: np.random.Generator) -> None:
    X = unit_rows(rng.standard_normal((7, 5)))
    for name in ["relu", "tanh", "elu", "swish"]:
        H = gram(X, name, train="output", normalize=True)
        np.testing.assert_allclose(np.diag(H), 1.0, atol=1e-12)
    c2 = actspec.normalization_constant(actspec.activation("relu")) ** 2
    assert c2 == pytest.approx(0.5, abs=1e-14)


def test_general_norms_tanh_matches_quadrature(rng: np.random.Generator) -> None:
    from actspec.kernels.dual import dual

    norms = np.array([[0.5], [1.5], [1.0], [0.5], [2.0], [1.0], [0.7], [1.5], [1.1]])
    X = rng.standard_normal((9, 4)) * norms
    K = X @ X.T
    s = np.diag(K)
    expected = dual(actspec.activation("tanh"), s[:, None], s[None, :], K, method="quadrature") * K
    np.testing.assert_allclose(gram(X, "tanh"), expected, atol=1e-12)


def test_user_callable_matches_builtin(rng: np.random.Generator) -> None:
    import torch

    X = unit_rows(rng.standard_normal((10, 4)))
    mine = actspec.activation(lambda x: torch.tanh(x), name="mytanh")
    np.testing.assert_allclose(gram(X, mine), gram(X, "tanh"), atol=1e-12)
    np.testing.assert_allclose(gram(X, mine, 500, seed=1), gram(X, "tanh", 500, seed=1), atol=1e-14)


# ---- invariances (hypothesis) ---------------------------------------------------------------

finite_rows = arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(2, 5)),
                     elements=st.floats(-3, 3, allow_nan=False, width=64))


def _usable(X: np.ndarray) -> bool:
    return bool(np.all(np.linalg.norm(X, axis=1) > 0.1))


@settings(max_examples=25, deadline=None)
@given(finite_rows, st.sampled_from(["relu", "tanh", "elu", "gelu"]), st.randoms(use_true_random=False))
def test_permutation_equivariance_symmetry_psd(X: np.ndarray, name: str, r) -> None:
    if not _usable(X):
        return
    X = unit_rows(X)
    G = gram(X, name)
    perm = np.array(r.sample(range(X.shape[0]), X.shape[0]))
    np.testing.assert_allclose(gram(X[perm], name), G[np.ix_(perm, perm)], atol=1e-13)
    assert np.array_equal(G, G.T)
    ev = np.linalg.eigvalsh(G)
    assert ev.min() > -1e-12 * max(1.0, ev.max())


@settings(max_examples=20, deadline=None)
@given(finite_rows, st.sampled_from(["relu", "tanh", "swish", "selu"]), st.integers(0, 10_000))
def test_rotation_invariance(X: np.ndarray, name: str, seed: int) -> None:
    if not _usable(X):
        return
    X = unit_rows(X)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((X.shape[1], X.shape[1])))
    np.testing.assert_allclose(gram(X @ Q, name), gram(X, name), atol=1e-11)
    # finite width: rotating the data and the weights together leaves G unchanged
    W, a, _ = actspec.sample_weights(X.shape[1], 50, seed=seed)
    np.testing.assert_allclose(gram(X @ Q, name, weights=(W @ Q, a)), gram(X, name, weights=(W, a)),
                               atol=1e-12)


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "X,kwargs,fragment",
    [
        (np.ones((3,)), {}, "2-D"),
        (np.zeros((0, 3)), {}, "empty"),
        (np.array([[1.0, np.nan]]), {}, "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), {}, "zero norm"),
        (np.eye(3), {"width": 0}, "positive integer"),
        (np.eye(3), {"width": 2.5}, "positive integer"),
        (np.eye(3), {"width": "abc"}, "positive integer"),
        (np.eye(3), {"train": "all"}, "train must be"),
        (np.eye(3), {"init": "xavier"}, "unknown init"),
        (np.eye(3), {"weights": (np.ones((4, 2)), np.ones(4))}, "shape"),
        (np.eye(3), {"weights": (np.ones((4, 3)), np.ones(5))}, "shape"),
        (np.eye(3), {"width": 10, "dtype": "float16"}, "dtype"),
        ([[1.0, 2.0], [3.0]], {}, "ragged"),
    ],
)
def test_bad_input(X, kwargs, fragment: str) -> None:
    with pytest.raises(ActspecError, match=fragment):
        gram(X, "relu", **kwargs)
