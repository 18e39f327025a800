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


# ---------------------------------------------------------------------------------------------
# the deep recursion (issue 17 item 2): layer-1 angles from the rows, accurate angles propagated
# ---------------------------------------------------------------------------------------------


def _leaky_deep_reference(X: np.ndarray, depth: int, alpha: float) -> list[np.ndarray]:
    """Theta^1..Theta^depth of the leaky-ReLU net (cphi scaling 2/(1 + alpha^2)) in 40-digit
    mpmath: angles from the rows at layer 1, arccos of the 40-digit correlations afterwards."""
    with mp.workdps(40):
        n = len(X)
        A = [[mp.mpf(float(t)) for t in r] for r in X]
        S = [[mp.fsum(p * q for p, q in zip(A[i], A[j], strict=True)) for j in range(n)]
             for i in range(n)]
        th = [[2 * mp.atan2(mp.sqrt(mp.fsum((p - q) ** 2 for p, q in zip(A[i], A[j], strict=True))),
                            mp.sqrt(mp.fsum((p + q) ** 2 for p, q in zip(A[i], A[j], strict=True))))
               for j in range(n)] for i in range(n)]
        a = mp.mpf(alpha)
        w2 = 2 / (1 + a * a)
        Th = [r[:] for r in S]
        out = []
        for _ in range(depth):
            Sd = [[w2 * ((1 + a * a) * (mp.pi - th[i][j]) / (2 * mp.pi) + a * th[i][j] / mp.pi)
                   for j in range(n)] for i in range(n)]
            Sn = [[None] * n for _ in range(n)]
            for i in range(n):
                for j in range(n):
                    t, s = th[i][j], mp.sqrt(S[i][i] * S[j][j])
                    j1 = s * (mp.sin(t) + (mp.pi - t) * mp.cos(t)) / (2 * mp.pi)
                    c = s * mp.cos(t)
                    Sn[i][j] = w2 * (a * a * c + a * (1 - a) * c + (1 - a) ** 2 * j1)
            Th = [[Sn[i][j] + Th[i][j] * Sd[i][j] for j in range(n)] for i in range(n)]
            S = Sn
            th = [[mp.acos(max(-1, min(1, S[i][j] / mp.sqrt(S[i][i] * S[j][j])))) for j in range(n)]
                  for i in range(n)]
            out.append(np.array([[float(v) for v in r] for r in Th]))
        return out


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_deep_ntk_at_close_pairs_closed_form(alpha: float) -> None:
    """relu / leaky_relu depth 1..4: was 3.6e-10 .. 7.4e-10 lambda_max off (relu), now ~5e-16."""
    from actspec.kernels.deep import iter_deep_kernels

    X = _pairs()
    ref = _leaky_deep_reference(X, 4, alpha)
    name = "relu" if alpha == 0.0 else f"leaky_relu:{alpha:g}"
    for layer, R in zip(iter_deep_kernels(X, name, 4), ref, strict=True):
        lmax = np.linalg.eigvalsh(R).max()
        assert np.max(np.abs(layer.ntk - R)) <= 1e-14 * lmax, layer.depth


def test_deep_ntk_at_close_pairs_table_path() -> None:
    """A kinked user callable (theta-tables, no closed form) through 3 layers."""
    from actspec.kernels.deep import iter_deep_kernels

    X = _pairs()
    ref = _leaky_deep_reference(X, 3, 0.2)
    user = actspec.activation(lambda x: torch.where(x > 0, x, 0.2 * x), kinks=(0.0,), name="lk")
    for layer, R in zip(iter_deep_kernels(X, user, 3), ref, strict=True):
        lmax = np.linalg.eigvalsh(R).max()
        assert np.max(np.abs(layer.ntk - R)) <= 1e-14 * lmax, layer.depth


def test_deep_depth1_equals_two_layer_gram_at_close_pairs() -> None:
    """Depth 1, raw scaling: Theta^1 = G∞ + H∞, whose close pairs the 2-layer gram fixes."""
    from actspec.kernels.deep import deep_ntk

    X = _pairs()
    for name in ("selu", "tanh"):
        T = deep_ntk(X, name, 1, scaling="raw")
        G = actspec.gram(X, name, train="both")
        assert np.max(np.abs(T - G)) <= 1e-14 * np.abs(G).max(), name
