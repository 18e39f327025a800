"""Structural singularity of G∞ (issue 17 item 4): ``structural_zeros`` against independent truths.

Truths: on equally spaced circle data G∞ is circulant, so its eigenvalues are the DFT of its first
row, computed here from closed-form kernels (ReLU arc-cosine, erf, x^3) or from a Gauss-Hermite
quadrature written in this file (tanh) — no actspec kernel code. On general data the truth is the
eigen-decomposition of the closed-form ReLU / erf matrix, where a wide gap separates the zeros.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from conftest import circle_points, unit_rows

from actspec.data.diagnostics import structural_zeros


def _relu_k(rho: np.ndarray) -> np.ndarray:
    th = np.arccos(np.clip(rho, -1, 1))
    return rho * (math.pi - th) / (2 * math.pi)


def _erf_k(rho: np.ndarray) -> np.ndarray:
    # erf'(z) = 2/sqrt(pi) exp(-z^2): E[exp(-u^2 - v^2)] = 1/sqrt(det(I + 2 Sigma)) = (9 - 4 rho^2)^-1/2
    return rho * (4 / math.pi) / np.sqrt(9 - 4 * rho * rho)


def _cubic_k(rho: np.ndarray) -> np.ndarray:
    return rho * 9 * (1 + 2 * rho * rho)  # SCIENCE §3: x^3


# the same kernels in mpmath (the circulant truth is computed with 40 digits: analytic kernels such
# as erf's have genuine eigenvalues near 1e-16 that float64 cannot tell from zero)
MP_KERNELS = {
    "relu": lambda r: r * (mp.pi - mp.acos(r)) / (2 * mp.pi),
    "erf": lambda r: r * (4 / mp.pi) / mp.sqrt(9 - 4 * r * r),
    "cubic": lambda r: r * 9 * (1 + 2 * r * r),
}


def _tanh_k(rho: np.ndarray) -> np.ndarray:
    """Gauss-Hermite quadrature of rho E[sech^2(u) sech^2(v)] (float64; small n only)."""
    z, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / w.sum()
    sech2 = lambda t: 1.0 / np.cosh(t) ** 2  # noqa: E731
    out = np.empty_like(rho)
    for i, r in enumerate(rho):
        v = r * z[:, None] + math.sqrt(max(0.0, 1 - r * r)) * z[None, :]
        out[i] = r * float(w @ (sech2(z)[:, None] * sech2(v)) @ w)
    return out


def _circulant_zeros_mp(act: str, n: int) -> int:
    """Zero eigenvalues of the circulant G∞ on n equally spaced circle points: the DFT of its first
    row, in 40-digit arithmetic (zeros come out below 1e-35, the others above 1e-25)."""
    with mp.workdps(40):
        f = MP_KERNELS[act]
        first = [f(mp.cos(2 * mp.pi * k / n)) for k in range(n)]
        lam = [abs(mp.fsum(first[k] * mp.cos(2 * mp.pi * m * k / n) for k in range(n)))
               for m in range(n)]
        top = max(lam)
        small = [v / top for v in lam if v / top < mp.mpf("1e-25")]
        assert all(v < mp.mpf("1e-35") for v in small)  # a clean gap
        return len(small)


def _circulant_zeros(kernel, n: int) -> tuple[int, float]:
    """(number of zero eigenvalues, gap): DFT of the first row of the circulant G∞ (float64)."""
    first = kernel(np.cos(2 * np.pi * np.arange(n) / n))
    lam = np.sort(np.abs(np.fft.fft(first).real))[::-1]
    tiny = lam <= 1e-12 * lam[0]
    gap = float(lam[~tiny].min() / max(lam[tiny].max(), 1e-300)) if tiny.any() else math.inf
    return int(tiny.sum()), gap


@pytest.mark.parametrize("n", [6, 10, 16, 50, 51, 64])
@pytest.mark.parametrize("act", ["relu", "erf", "cubic"])
def test_circle_counts_match_circulant_dft(act, n):
    truth = _circulant_zeros_mp(act, n)
    X = circle_points(n, 10, seed=3)
    count, reason = structural_zeros(X, act)
    assert count == truth
    assert (reason != "") == (truth > 0)


@pytest.mark.parametrize("n", [6, 7, 10])
def test_tanh_circle_counts_match_quadrature_dft(n):
    truth, gap = _circulant_zeros(_tanh_k, n)
    assert gap > 1e10
    assert structural_zeros(circle_points(n, 10, seed=4), "tanh")[0] == truth == (n // 2 if n % 2 == 0 else 0)


def test_the_issue_numbers():
    # ReLU on raw circle data, n = 50: the odd harmonics >= 3 vanish -> 23 zeros; tanh: the 25 even
    X = circle_points(50, 10, seed=0)
    assert structural_zeros(X, "relu")[0] == 23
    assert structural_zeros(X, "tanh")[0] == 25
    # smooth activations with phi' = 1/2 + odd have ReLU's pattern; ELU and SELU have none
    for act in ("swish", "gelu", "softplus", "leaky_relu:0.2"):
        assert structural_zeros(X, act)[0] == 23, act
    for act in ("elu", "selu"):
        assert structural_zeros(X, act) == (0, "")
    # the paper's preprocessing removes the antipodal pairs: nothing left
    from actspec.data.datasets import load_data

    ds = load_data("circle", n=50, dim=10, preprocess="paper")
    assert structural_zeros(ds.X, "relu") == (0, "")


def _eig_zeros(G: np.ndarray) -> tuple[int, float]:
    lam = np.linalg.eigvalsh(G)[::-1]
    tiny = lam <= 1e-11 * lam[0]
    gap = float(lam[~tiny].min() / max(np.abs(lam[tiny]).max(), 1e-300)) if tiny.any() else math.inf
    return int(tiny.sum()), gap


@pytest.mark.parametrize(("pairs", "dim"), [(3, 5), (5, 5), (8, 5), (12, 4)])
def test_antipodal_pairs_in_general_position(pairs, dim):
    rng = np.random.default_rng(pairs * 10 + dim)
    P = unit_rows(rng.standard_normal((pairs, dim)))
    other = unit_rows(rng.standard_normal((4, dim)))
    X = np.vstack([P, other, -P])[rng.permutation(2 * pairs + 4)]
    rho = np.clip(X @ X.T, -1, 1)
    for act, kern, expect in (("relu", _relu_k, pairs - min(pairs, dim)), ("erf", _erf_k, pairs)):
        truth, gap = _eig_zeros(kern(rho))
        assert truth == expect and gap > 1e4
        assert structural_zeros(X, act)[0] == expect


def test_duplicates_scaled_rows_and_zero_rows():
    rng = np.random.default_rng(7)
    X = unit_rows(rng.standard_normal((9, 4)))
    Xd = np.vstack([X, X[[0, 3]], 2.5 * X[[5]]])  # two duplicates, one positive multiple
    # ELU (phi' neither parity nor homogeneous): only exact duplicates
    assert structural_zeros(Xd, "elu")[0] == 2
    # ReLU is 0-homogeneous: G = R G(unit rows) R, so the multiple is a duplicate too
    U = unit_rows(Xd)
    # angles from the rows (arccos of a rounded rho near 1 would be off by 1e-8)
    th = 2 * np.arctan2(np.linalg.norm(U[:, None] - U[None], axis=2),
                        np.linalg.norm(U[:, None] + U[None], axis=2))
    r = np.linalg.norm(Xd, axis=1)
    truth, gap = _eig_zeros(np.outer(r, r) * np.cos(th) * (math.pi - th) / (2 * math.pi))
    assert truth == 3 and gap > 1e4
    assert structural_zeros(Xd, "relu")[0] == 3
    # zero rows give zero rows of G (fanin: with a bias G∞ is defined there)
    Xz = np.vstack([X, np.zeros((2, 4))])
    count, reason = structural_zeros(Xz, "elu", init="fanin")
    assert count == 2 and "zero row" in reason


def test_polynomial_rank_matches_theorem():
    # x^2 on circle data (d0 = 2): rank 3 (SCIENCE §4), whatever the lift and n
    for n in (5, 12, 40):
        assert structural_zeros(circle_points(n, 7, seed=n), "quadratic")[0] == n - 3
    # generic data in a 3-dim span: quadratic rank C(4, 2) = 6, cubic (degrees 3 and 1 on the
    # sphere: the top degree spans the lower one) C(5, 3) = 10
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 3)))
    X = unit_rows(rng.standard_normal((30, 3))) @ Q.T
    assert structural_zeros(X, "quadratic")[0] == 30 - 6
    assert structural_zeros(X, "cubic")[0] == 30 - 10
    G = _cubic_k(np.clip(X @ X.T, -1, 1))
    assert _eig_zeros(G)[0] == 20
    # enough generic points in a large span: full rank, nothing to report
    assert structural_zeros(unit_rows(rng.standard_normal((12, 6))), "cubic") == (0, "")


def test_nearly_antipodal_is_not_structural():
    rng = np.random.default_rng(2)
    P = unit_rows(rng.standard_normal((6, 30)))
    X = np.vstack([P, unit_rows(-P + 1e-7 * rng.standard_normal(P.shape))])
    assert structural_zeros(X, "tanh") == (0, "")


def test_spectrum_says_it_once_and_suggests_no_precision(tmp_path):
    from typer.testing import CliRunner

    from actspec.cli import app

    res = CliRunner().invoke(app, ["spectrum", "-a", "relu", "-a", "elu", "--data", "circle",
                                   "--n", "50"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.count("G∞ is exactly singular") == 1
    assert "relu: G∞ is exactly singular: 23 zero eigenvalues (" in out
    assert "--precision high" not in out and "≥9" not in out
    res = CliRunner().invoke(app, ["spectrum", "-a", "relu", "--n", "10", "--precision", "high",
                                   "--digits", "30", "--json", str(tmp_path / "s.json")],
                             env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert res.output.count("G∞ is exactly singular: 3 zero eigenvalues") == 1
    assert "--precision high" not in res.output and "<3.1e" not in res.output
    import json

    row = json.loads((tmp_path / "s.json").read_text())["results"][0]
    assert row["structural_zeros"] == 3 and "antipodal" in row["structural_reason"]


def test_data_command_counts_for_relu(tmp_path):
    from typer.testing import CliRunner

    from actspec.cli import app

    res = CliRunner().invoke(app, ["data", "--data", "circle", "--n", "50", "-a", "relu",
                                   "-a", "elu"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert "not for ReLU" not in res.output
    assert "relu: G∞ is exactly singular: 23 zero eigenvalues" in res.output
    assert "elu: no structural zero eigenvalue" in res.output
