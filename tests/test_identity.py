"""Regression tests of issue 16: an activation's identity is its values, not its id(); every
member of the leaky-ReLU family gets its own closed form; numpy callables work like torch ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actspec
from actspec.activations.base import Activation


def _circle(n: int = 12) -> np.ndarray:
    return actspec.datasets.circle(n, 5, seed=0)


def _leaky_closed_form(X: np.ndarray, alpha: float) -> np.ndarray:
    """G∞ of leaky ReLU written out: E[phi'(u)phi'(v)] = (1+a^2)(pi-theta)/(2 pi) + a theta/pi."""
    # the angle from |x - y| and |x + y| (accurate for nearly equal and nearly antipodal rows)
    diff = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    summ = np.linalg.norm(X[:, None, :] + X[None, :, :], axis=2)
    theta = 2 * np.arctan2(diff, summ)
    return ((1 + alpha**2) * (math.pi - theta) / (2 * math.pi) + alpha * theta / math.pi) * (X @ X.T)


def test_lambdas_in_a_loop_get_their_own_kernels() -> None:
    """Each new lambda may reuse the freed id() of the previous one: the kernels must differ."""
    X = _circle()
    scales = (3.0, 0.5, 2.0, 1.0)
    Gs = [actspec.gram(X, lambda x, s=s: torch.tanh(s * x)) for s in scales]
    for s, G in zip(scales, Gs, strict=True):
        want = actspec.gram(X, f"tanh({s}*x)")  # the same function as an expression
        np.testing.assert_allclose(G, want, rtol=0, atol=1e-11)
    for i in range(len(Gs)):
        for j in range(i + 1, len(Gs)):
            assert np.max(np.abs(Gs[i] - Gs[j])) > 1e-3


def test_identity_is_a_value_fingerprint() -> None:
    a = actspec.activation(lambda x: torch.tanh(2 * x), name="t")
    b = actspec.activation(lambda x: torch.tanh(2 * x), name="t")
    c = actspec.activation(lambda x: torch.tanh(3 * x), name="t")
    assert a.key == b.key  # same values: same identity, in any process
    assert a.key != c.key
    assert actspec.activation("relu").key == "relu"


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
def test_leaky_relu_family_closed_forms(alpha: float) -> None:
    X = _circle(13)  # odd n: no antipodal pairs (their accuracy is issue 17's item 2)
    G = actspec.gram(X, f"leaky_relu:{alpha:g}")
    np.testing.assert_allclose(G, _leaky_closed_form(X, alpha), rtol=0, atol=1e-14)
    # and by quadrature: the same function as a user callable with its kink declared
    user = actspec.activation(lambda x, a=alpha: torch.where(x > 0, x, a * x), kinks=(0.0,))
    np.testing.assert_allclose(G, actspec.gram(X, user), rtol=0, atol=1e-12)
    if alpha == 1.0:
        np.testing.assert_allclose(G, actspec.gram(X, "linear"), rtol=0, atol=1e-15)
    if alpha == 0.0:
        np.testing.assert_allclose(G, actspec.gram(X, "relu"), rtol=0, atol=1e-15)


def test_leaky_relu_one_in_high_precision_is_linear() -> None:
    from actspec.highprec import gram_highprec

    X = _circle(8)
    a = gram_highprec(X, actspec.activation("leaky_relu:1"), digits=30)
    b = gram_highprec(X, actspec.activation("linear"), digits=30)
    assert np.max(np.abs(a.to_float() - b.to_float())) < 1e-15


def test_numpy_callable_works_like_torch() -> None:
    X = _circle()
    act = actspec.activation(lambda x: np.tanh(x), name="np_tanh")
    assert isinstance(act, Activation)
    x = np.linspace(-4, 4, 101)
    np.testing.assert_allclose(act.dphi(x), 1 - np.tanh(x) ** 2, rtol=0, atol=1e-11)
    np.testing.assert_allclose(actspec.gram(X, act), actspec.gram(X, "tanh"), rtol=0, atol=1e-10)
    # finite width runs through torch: the numpy function is evaluated on the tensor's values
    W, a, _ = actspec.sample_weights(X.shape[1], 200, seed=1)
    np.testing.assert_allclose(actspec.gram(X, act, weights=(W, a)),
                               actspec.gram(X, "tanh", weights=(W, a)), rtol=0, atol=1e-10)


def test_scipy_callable_with_its_derivative() -> None:
    import scipy.special as sps

    X = _circle()
    act = actspec.activation(sps.erf, dphi=lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x))
    np.testing.assert_allclose(actspec.gram(X, act), actspec.gram(X, "erf"), rtol=0, atol=1e-12)


# ---- issue 17, item 1: kinked callables get the kink detection expressions get ----------------

def _paper_circle() -> np.ndarray:
    return actspec.datasets.load_data("circle", n=51, preprocess="paper").X


@pytest.mark.parametrize("builtin,fn,order", [
    ("relu", lambda x: torch.clamp(x, min=0), 1),
    ("elu", lambda x: torch.where(x > 0, x, torch.expm1(x)), 2),
])
def test_kinked_torch_callable_matches_builtin(builtin: str, fn, order: int) -> None:
    """The README's way to add an activation: relu as a callable gave lambda_min 0.00116 against
    relu's 0.00695 on this data (kinks not declared, quadrature not split); elu a negative one."""
    X = _paper_circle()
    act = actspec.activation(fn, name="user")
    assert act.kinks == (0.0,) and act.kink_order == order
    G, ref = actspec.gram(X, act), actspec.gram(X, builtin)
    np.testing.assert_allclose(G, ref, rtol=0, atol=1e-12)
    lam, lam_ref = actspec.spectrum(G).lambda_min, actspec.spectrum(ref).lambda_min
    assert lam > 0 and abs(lam - lam_ref) <= 1e-9 * lam_ref


def test_numpy_callable_without_kinks_warns_and_declared_does_not() -> None:
    with pytest.warns(UserWarning, match=r"kinks=\(0\.0,\)"):
        actspec.activation(lambda x: np.maximum(x, 0), name="np_relu")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        act = actspec.activation(lambda x: np.maximum(x, 0), name="np_relu", kinks=(0.0,))
    X = _paper_circle()
    np.testing.assert_allclose(actspec.gram(X, act), actspec.gram(X, "relu"), rtol=0, atol=1e-10)


# ---- issue 18: seeds do not alias modulo 2^32 --------------------------------------------------

def test_seeds_use_all_their_bits() -> None:
    W0, a0, _ = actspec.sample_weights(4, 64, seed=0)
    W1, a1, _ = actspec.sample_weights(4, 64, seed=2**32)
    W2, _, _ = actspec.sample_weights(4, 64, seed=2**64 + 3)
    W3, _, _ = actspec.sample_weights(4, 64, seed=3)
    assert not np.array_equal(W0, W1) and not np.array_equal(a0, a1)
    assert not np.array_equal(W2, W3)
    # and a seed below 2^32 draws what it always drew: the stream is SeedSequence([seed, block])
    W0b, _, _ = actspec.sample_weights(4, 64, seed=0)
    np.testing.assert_array_equal(W0, W0b)


def test_subnormal_and_huge_rows_get_unit_norm() -> None:
    from actspec.data.datasets import normalize_rows

    X = np.array([[5e-324, 5e-324], [1e-310, 3e-310], [1e300, 1e300], [1.0, 2.0]])
    out = normalize_rows(X)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=0, atol=4e-16)
    np.testing.assert_allclose(out[0], [math.sqrt(0.5)] * 2, rtol=0, atol=2e-16)
