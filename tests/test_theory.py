"""actspec.theory: Hermite decay fits against the paper's exponents, rank predictions against
numerical ranks, theorem rows, the report card and ``actspec analyze``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import circle_points, subspace_points

import actspec
from actspec import activation
from actspec.cli import run
from actspec.core.io import to_jsonable
from actspec.experiments.theory import (
    antipodal_pairs,
    hermite_decay,
    parity,
    polynomial_rank,
    report_card,
    resolve_activation,
    sphere_harmonic_dim,
    theorem_checks,
)

# ---- Hermite decay: c_a^2 ~ a^-(2r+1)/2 for a jump in phi^(r) (SCIENCE §3) ---------------------


@pytest.mark.parametrize(
    "name,r,tol",
    [("relu", 1, 0.03), ("leaky_relu:0.2", 1, 0.03), ("selu", 1, 0.08), ("elu:0.5", 1, 0.05),
     ("elu", 2, 0.05)],
)  # fmt: skip
def test_kinked_decay_exponent(name: str, r: int, tol: float) -> None:
    fit = hermite_decay(name, 800)
    assert fit.model == "power law"
    assert fit.predicted_exponent == (2 * r + 1) / 2
    assert fit.power_exponent == pytest.approx((2 * r + 1) / 2, abs=tol)


def test_relu_fit_uses_odd_degrees() -> None:
    fit = hermite_decay("relu", 600)
    assert fit.parity == "constant + odd"  # relu' = 1/2 + odd
    assert all(a % 2 == 1 for a in fit.degrees_used)
    assert fit.subsequence == "odd a"


def test_user_spline_j3_decay() -> None:
    # a jump of 6 in the third derivative at 0 (J_3): c_a^2 ~ a^-3.5. (A kink at alpha != 0
    # multiplies the coefficients by an oscillating factor ~cos(alpha sqrt(2a)), which smears a
    # power-law fit.)
    def spline(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) + torch.where(x > 0, x**3, torch.zeros_like(x))

    act = activation(spline, kinks=(0.0,), kink_order=3)
    fit = hermite_decay(act, 1000)
    assert fit.model == "power law"
    assert fit.power_exponent == pytest.approx(3.5, abs=0.1)


@pytest.mark.parametrize("name", ["tanh", "swish", "softplus"])
def test_smooth_decay_is_stretched_exponential(name: str) -> None:
    # analytic in a strip: c_a^2 ~ exp(-Θ(sqrt a)) (Boyd 1984)
    fit = hermite_decay(name, 400)
    assert fit.model == "stretched exponential"
    assert 0.4 <= fit.stretched_kappa <= 0.65
    assert fit.predicted_exponent is None


def test_entire_function_decays_geometrically() -> None:
    fit = hermite_decay("erf", 300)  # erf' = Gaussian: c_2k^2 geometric
    assert fit.model == "stretched exponential"
    assert fit.stretched_kappa == pytest.approx(1.0, abs=0.1)
    assert hermite_decay("quadratic", 50).model == "finite (polynomial)"


def test_parity() -> None:
    assert parity(actspec.hermite_coefficients("tanh", 30)) == "even"
    assert parity(actspec.hermite_coefficients("quadratic", 30)) == "odd"
    assert parity(actspec.hermite_coefficients("gelu", 30)) == "constant + odd"
    assert parity(actspec.hermite_coefficients("elu", 30)) == "none"


# ---- rank of polynomial G∞ (Thm 4.3 / F.2) ---------------------------------------------------


def test_harmonic_dimensions() -> None:
    assert [sphere_harmonic_dim(3, ell) for ell in range(5)] == [1, 3, 5, 7, 9]
    assert [sphere_harmonic_dim(2, ell) for ell in range(4)] == [1, 2, 2, 2]
    assert sphere_harmonic_dim(4, 2) == 9


# (expression, paper bound on the circle (d0=2), exact on the circle, bound / exact for d0=3)
RANKS = [
    ("x**2", 3, 3, 6, 6),  # G = 4 rho^2
    ("x**3", 6, 4, 13, 10),  # G = 9 rho + 18 rho^3: degree-3 harmonics contain degree 1
    ("x + x**2", 5, 5, 9, 9),  # G = rho + 4 rho^2
]


@pytest.mark.parametrize("expr,b2,s2,b3,s3", RANKS)
def test_polynomial_rank_prediction_equals_numerical_rank(
    expr: str, b2: int, s2: int, b3: int, s3: int
) -> None:
    act = resolve_activation(expr)
    assert act.polynomial_degree is not None
    c = actspec.hermite_coefficients(act, 12)
    for X, d0, bound, sharp in (
        (circle_points(41), 2, b2, s2),
        (subspace_points(60, 7, 3, seed=1), 3, b3, s3),
    ):
        pr = polynomial_rank(c, d0, X.shape[0])
        assert pr["paper_bound"] == bound and pr["unit_sphere"] == sharp
        s = actspec.spectrum(actspec.gram(X, act))
        rows = theorem_checks(X, act, s.eigenvalues, resolution=s.resolution, coefficients=c,
                              span_dim=d0)
        (row,) = [r for r in rows if r["check"] == "polynomial_rank"]
        assert row["numbers"]["rank"] == sharp  # the numerical rank
        assert row["holds"] is True  # rank <= paper bound


def test_builtin_quadratic_rank_on_subspace() -> None:
    X = subspace_points(50, 6, 4, seed=2)
    s = actspec.spectrum(actspec.gram(X, "quadratic"))
    rank = int(np.sum(s.eigenvalues > 1e-10 * s.lambda_max))
    assert rank == math.comb(4 + 1, 2) == polynomial_rank([0, 2], 4, 50)["paper_bound"]


# ---- theorem rows ------------------------------------------------------------------------------


def _checks(X: np.ndarray, name: str, **kw):
    act = resolve_activation(name)
    s = actspec.spectrum(actspec.gram(X, act))
    return {r["check"]: r for r in theorem_checks(X, act, s.eigenvalues, resolution=s.resolution,
                                                  **kw)}, s


def test_trace_row_is_exact() -> None:
    X = subspace_points(30, 6, 3, seed=3)
    rows, s = _checks(X, "relu")
    tr = rows["trace"]
    assert tr["holds"] is True
    assert tr["numbers"]["predicted_trace"] == pytest.approx(30 * 0.5, rel=1e-12)  # E relu'^2
    assert tr["numbers"]["trace"] == pytest.approx(s.trace, rel=1e-12)


def test_antipodal_zero_rows() -> None:
    X = circle_points(50)
    assert antipodal_pairs(X) == 25
    expected = {"relu": 23, "tanh": 25, "swish": 23, "elu": 0}
    for name, zeros in expected.items():
        rows, s = _checks(X, name, span_dim=2)
        row = rows["antipodal_zeros"]
        assert row["numbers"]["predicted_zeros"] == zeros
        assert row["holds"] is True
        if name in ("relu", "tanh"):  # no other eigenvalue is that small
            assert row["numbers"]["measured_zeros"] == zeros
    rows, _ = _checks(circle_points(51), "relu", span_dim=2)
    assert "antipodal_zeros" not in rows  # odd n: no antipodal pairs


def test_kink_row_and_delta() -> None:
    X = circle_points(51)  # odd n: delta = sin(pi/51) > 0
    delta = float(np.sin(2 * np.pi / 51 / 2) * 2 * np.cos(np.pi / 51))
    rows, s = _checks(X, "relu", span_dim=2, delta=delta)
    row = rows["kink_lower_bound"]
    assert row["holds"] is True and s.lambda_min > row["numbers"]["yardstick"] > 0
    rows0, _ = _checks(circle_points(50), "relu", span_dim=2, delta=1e-16)
    assert rows0["kink_lower_bound"]["holds"] is None  # delta = 0: not applicable


def test_smooth_row_and_hermite_lower_bound() -> None:
    X = subspace_points(80, 10, 2, seed=4)
    rows, s = _checks(X, "tanh", span_dim=2)
    sm = rows["smooth_small_eigenvalues"]
    assert sm["numbers"]["predicted_count"] == 80 - 40 + 1
    assert sm["numbers"]["count_below"] == int(np.sum(s.eigenvalues < 1e-12 * s.lambda_max))
    # smoothed data of larger span: the Hermite bound is informative and below lambda_min
    Xs = actspec.datasets.smoothed(40, 12, 10, noise=0.3, seed=1)
    rows, s = _checks(Xs, "tanh")
    hb = rows["hermite_lower_bound"]
    assert hb["holds"] is True
    assert 0 < hb["numbers"]["bound"] <= s.lambda_min


# ---- report card and CLI ---------------------------------------------------------------------


def test_report_card_numbers() -> None:
    ds = actspec.datasets.load_data("circle", n=20)
    card = report_card("relu", ds, degree=300)
    assert card["kinks"]["kink_class"] == "J_1"
    assert card["hermite"]["E_dphi_squared"] == pytest.approx(0.5, rel=1e-12)
    assert card["dual_kernel"]["at_rho_0"] == pytest.approx(0.25, abs=1e-12)
    assert card["data"]["antipodal_pairs"] == 10
    assert {r["check"] for r in card["checks"]} >= {"trace", "kink_lower_bound", "antipodal_zeros"}
    assert "8 eigenvalues are exactly 0" in card["verdict"]
    json.dumps(to_jsonable(card), allow_nan=False)


def test_cli_analyze_expression(tmp_path) -> None:
    out = tmp_path / "card.json"
    png = tmp_path / "card.png"
    rc = run(["analyze", "x*sigmoid(x)", "--n", "10", "--degree", "200", "--json", str(out),
              "--plot", str(png)])
    assert rc == 0
    card = json.loads(out.read_text())
    assert card["kinks"]["kink_class"] == "smooth"
    assert card["activation"]["source"] == "expression"
    assert card["hermite"]["decay"]["model"] == "stretched exponential"
    assert png.stat().st_size > 10_000
    assert card["verdict"].startswith("x*sigmoid(x) is smooth")


def test_module_function_and_high_precision_cli(tmp_path, monkeypatch) -> None:
    (tmp_path / "myacts.py").write_text(
        "import torch\n\ndef kinked(x):\n    return torch.where(x > 0.5, 2 * x - 0.5, x)\n"
    )
    monkeypatch.chdir(tmp_path)
    act = resolve_activation("myacts:kinked")
    assert act.kink_class == "J_1" and act.kinks == pytest.approx((0.5,), abs=1e-9)
    assert act.formula == "python function myacts:kinked"
    out = tmp_path / "t.json"
    rc = run(["analyze", "tanh", "--n", "12", "--precision", "high", "--digits", "30",
              "--degree", "200", "--json", str(out)])
    assert rc == 0
    card = json.loads(out.read_text())
    assert card["spectrum"]["precision"] == "high" and card["spectrum"]["exact_circle"] is True
    # 6 antipodal pairs, tanh' even: exactly 6 zero eigenvalues, resolved to ~1e-40
    assert card["spectrum"]["n_below_resolution"] == 6
    ev = np.asarray(card["spectrum"]["eigenvalues"])
    assert np.all(np.abs(ev[-6:]) < 1e-40) and ev[-7] > 1e-8


def test_cli_analyze_errors(tmp_path, capsys) -> None:
    assert run(["analyze", "__import__('os')"]) == 2
    assert "activation expression" in capsys.readouterr().err
    assert run(["analyze", "relu", "--precision", "quad"]) == 2
    assert run(["analyze", "nosuchmodule:f"]) == 2
    assert not list(tmp_path.iterdir())
