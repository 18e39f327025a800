"""Issue 19 item 2: the paper lift must not add a spurious coordinate.

``out[:, d] = sqrt(1/2 - |s x|^2)`` cancelled catastrophically: unit rows (whose lift coordinate
is exactly 0) got up to 1.5e-8, and ``--precision high`` then reported the eigenvalues of the
perturbed data. The references are exact: the lifted circle has Gram matrix (1 + cos(2 pi k/n))/2
(a circulant; its extended-precision spectrum is computed from those exact cosines).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np

from actspec.data.datasets import circle, load_data, preprocess_paper
from actspec.highprec.kernels import _bits_for, _to_fixed, eigvalsh_highprec, gram_highprec


def test_unit_rows_get_an_exact_zero_lift_coordinate() -> None:
    X = circle(50, 10, seed=0)  # norms 1 +- 1 ulp
    P = preprocess_paper(X)
    assert np.all(P[:, 10] == 0.0)  # was up to 1.5e-8 on 30 of 50 rows
    assert np.all(P[:, 11] == math.sqrt(0.5))
    # Gram matrix of the lifted rows against the exact (1 + cos)/2
    k = np.arange(50)
    exact = (1.0 + np.cos(2 * np.pi * (k[:, None] - k[None, :]) / 50)) / 2
    assert np.max(np.abs(P @ P.T - exact)) <= 1e-15


def test_lift_coordinate_is_accurate_for_rows_of_any_norm() -> None:
    """s sqrt(M^2 - |x|^2) against 40-digit mpmath, relative to each row's own value."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 7))
    X[3] *= 1 - 1e-9  # nearly the largest row: the old formula lost half of its digits
    X[5] = X[0] * (1 - 1e-12)
    imax = int(np.argmax(np.linalg.norm(X, axis=1)))
    X[3] = X[imax] * (1 - 1e-9)
    P = preprocess_paper(X)
    with mp.workdps(40):
        norms = [mp.sqrt(mp.fsum(mp.mpf(float(v)) ** 2 for v in row)) for row in X]
        M = max(norms)
        s = mp.sqrt(mp.mpf(1) / 2) / M
        for i, nv in enumerate(norms):
            ref = s * mp.sqrt(M * M - nv * nv)
            got = P[i, 7]
            if ref == 0:
                assert got == 0.0
            else:
                assert abs(got - ref) <= 1e-14 * ref, (i, got, float(ref))


def test_precision_high_gelu_on_lifted_circle_equals_exact_lifted_circle() -> None:
    """gelu lambda_min at n = 50: the lifted float64 circle against the exact lifted circle
    (was 9.26e-18 against 2.166e-18: the eigenvalues of the perturbed data)."""
    n = 50
    S = _bits_for(50)
    with mp.workprec(S + 32):
        row = [_to_fixed((1 + mp.cos(2 * mp.pi * k / n)) / 2, S) for k in range(n)]
    R = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            R[i, j] = row[(i - j) % n]
    ref = eigvalsh_highprec(gram_highprec(None, "gelu", rho=R))
    ds = load_data("circle", n=n, preprocess="paper")
    got = eigvalsh_highprec(gram_highprec(ds.X, "gelu"))
    assert 2.1e-18 < float(ref[-1]) < 2.2e-18
    assert abs(float(got[-1]) - float(ref[-1])) <= 1e-6 * float(ref[-1])
