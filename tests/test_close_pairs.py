"""Issue 17 item 2: nearly antipodal and nearly duplicate rows in J_1 kernels.

Near rho = +-1 a kinked kernel moves like sqrt(1 -+ rho): the angle from arccos of the rounded
correlation is off by ~1e-8. The kernels take the angle of close pairs from the rows,
theta = 2 atan2(|x - y|, |x + y|); the reference is the same formula in 40-digit mpmath.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import torch

import actspec
from actspec.spectra.iterative import infinite_block


def _pairs(d: int = 3072, eps: float = 1e-9) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(d)
    x /= np.linalg.norm(x)
    y = -x + eps * rng.standard_normal(d)
    z = x + eps * rng.standard_normal(d)
    w = rng.standard_normal(d)
    X = np.stack([x, y / np.linalg.norm(y), z / np.linalg.norm(z), w / np.linalg.norm(w)])
    return X


def _leaky_reference(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    with mp.workdps(40):
        A = [mp.mpf(float(t)) for t in a]
        B = [mp.mpf(float(t)) for t in b]
        dn = mp.sqrt(mp.fsum((p - q) ** 2 for p, q in zip(A, B, strict=True)))
        sn = mp.sqrt(mp.fsum((p + q) ** 2 for p, q in zip(A, B, strict=True)))
        th = 2 * mp.atan2(dn, sn)
        c = mp.fsum(p * q for p, q in zip(A, B, strict=True))
        e = (1 + alpha**2) * (mp.pi - th) / (2 * mp.pi) + alpha * th / mp.pi
        return float(e * c)


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_closed_form_at_close_pairs(alpha: float) -> None:
    X = _pairs()
    G = actspec.gram(X, f"leaky_relu:{alpha:g}")
    lmax = np.linalg.eigvalsh(G).max()
    for i in range(4):
        for j in range(4):
            assert abs(G[i, j] - _leaky_reference(X[i], X[j], alpha)) <= 1e-14 * lmax, (i, j)


def test_table_path_at_close_pairs() -> None:
    """A kinked user callable (theta-table, no closed form) agrees with the closed form."""
    X = _pairs()
    user = actspec.activation(lambda x: torch.where(x > 0, x, 0.2 * x), kinks=(0.0,), name="lk")
    G, ref = actspec.gram(X, user), actspec.gram(X, "leaky_relu:0.2")
    assert np.max(np.abs(G - ref)) <= 1e-13 * np.linalg.eigvalsh(ref).max()


@pytest.mark.parametrize("name", ["relu", "selu", "leaky_relu:0.2"])
def test_iterative_blocks_equal_dense_at_close_pairs(name: str) -> None:
    X = _pairs()
    G = actspec.gram(X, name)
    B = infinite_block(X[:2], X[2:], name)
    np.testing.assert_allclose(B, G[:2, 2:], rtol=0, atol=1e-15 * np.abs(G).max())


def test_antipodal_circle_exact_zeros() -> None:
    """Equally spaced circle points with even n: ReLU's odd part has rank 2 (<x, y>/4 on the
    circle), so G∞ has n/2 - 2 exact zero eigenvalues (antipodal differences); the entries of
    antipodal pairs are exactly relu's value at theta = pi, 0."""
    n = 12
    X = actspec.datasets.circle(n, 5, seed=0)
    G = actspec.gram(X, "relu")
    for i in range(n // 2):
        assert abs(G[i, i + n // 2]) <= 1e-16
    ev = np.linalg.eigvalsh(G)
    assert np.sum(ev < 1e-14 * ev.max()) == n // 2 - 2
    assert ev[n // 2 - 2] > 1e-3 * ev.max()  # and the others are well away from 0
