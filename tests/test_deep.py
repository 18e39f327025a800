"""Deep networks: infinite-width recursion, finite-width empirical NTK, Liu & Hui conditioning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import subspace_points, unit_rows

import actspec
from actspec.cli import run
from actspec.core.errors import ActspecError
from actspec.experiments.depth import (
    depth_study,
    depth_summary,
    gradient_angles,
    input_angles,
    kernel_spectrum,
    parse_depths,
    small_angle_data,
)
from actspec.finite.deep import empirical_deep_ntk, empirical_deep_ntks, layer_weights
from actspec.kernels.deep import deep_kernels, deep_ntk, deep_params, iter_deep_kernels, penultimate_gram


def _rel(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.max(np.abs(A - B)) / np.max(np.abs(B)))


def _relu_numpy(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _step_numpy(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) > 0).astype(float)


# ReLU as a user function: no closed form, so the theta-table / quadrature paths run. One object
# for the whole module, so its tables (keyed by the function's identity) are built once.
USER_RELU = actspec.activation(_relu_numpy, dphi=_step_numpy, kinks=(0.0,), kink_order=1, name="user_relu")


@pytest.fixture(scope="module")
def sphere_pts() -> np.ndarray:
    return unit_rows(np.random.default_rng(3).standard_normal((24, 10)))


# ---------------------------------------------------------------------------------------------
# infinite width
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "erf"])
def test_depth1_equals_two_layer_gram(name: str, sphere_pts: np.ndarray) -> None:
    X = sphere_pts
    # raw phi, sigma_w^2 = 1: Theta^1 = G∞ + H∞ of the DZPS net with both layers trained
    G = actspec.gram(X, name, train="both")
    assert _rel(deep_ntk(X, name, 1, scaling="raw"), G) < 1e-13
    # penultimate-layer G at depth 1 is the core's G∞ (only W trained)
    assert _rel(penultimate_gram(X, name, 1, scaling="raw"), actspec.gram(X, name)) < 1e-13
    if name in ("relu", "erf", "tanh"):
        # paper's normalisation: c_phi^2 = 1/E phi^2 on every layer == gram(normalize=True)
        Gn = actspec.gram(X, name, train="both", normalize=True)
        assert _rel(deep_ntk(X, name, 1, scaling="cphi"), Gn) < 1e-12


def test_linear_condition_number_equals_data_gram_at_every_depth() -> None:
    X = subspace_points(20, 50, 20, seed=1)  # n <= dim: X X^T invertible
    c0 = np.linalg.cond(X @ X.T)
    for scaling in ("cphi", "raw", 1.7):
        for layer in iter_deep_kernels(X, "linear", 8, scaling=scaling):
            for K in (layer.ntk, layer.penultimate(), layer.nngp):
                c = actspec.spectrum(K).condition_number
                assert c == pytest.approx(c0, rel=1e-8), (scaling, layer.depth)
            # the gradient features of a linear net keep the input angles
            np.testing.assert_allclose(gradient_angles(layer.ntk), input_angles(X), atol=1e-7)


def _cho_saul(X: np.ndarray, depth: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Arc-cosine kernel of degree 1 (Cho & Saul 2009) composed ``depth`` times, He scaling,
    with the NTK recursion on top: written with angles only, independent of actspec.dual."""
    norms = np.linalg.norm(X, axis=1)
    S = X @ X.T
    T = S.copy()
    sig, ntk = [], []
    for _ in range(depth):
        d = np.sqrt(np.diag(S))
        theta = np.arccos(np.clip(S / np.outer(d, d), -1, 1))
        np.fill_diagonal(theta, 0.0)
        S = np.outer(d, d) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi
        T = S + T * (np.pi - theta) / np.pi
        sig.append(S)
        ntk.append(T)
    assert np.allclose(np.sqrt(np.diag(sig[-1])), norms)  # He scaling keeps the norms
    return sig, ntk


def test_relu_recursion_matches_arccos_closed_form(sphere_pts: np.ndarray) -> None:
    X = sphere_pts
    sig, ntk = _cho_saul(X, 6)
    built_in = deep_kernels(X, "relu", 6, scaling="he")
    assert built_in.params.weight_var == 2.0
    assert deep_params("relu", "cphi").weight_var == pytest.approx(2.0, rel=1e-13)
    user = deep_kernels(X, USER_RELU, 6, scaling=2.0)  # theta-table path
    for ell in range(1, 7):
        assert _rel(built_in.sigma[ell], sig[ell - 1]) < 1e-14
        assert _rel(built_in.ntk[ell], ntk[ell - 1]) < 1e-14
        assert _rel(user.sigma[ell], sig[ell - 1]) < 1e-13
        assert _rel(user.ntk[ell], ntk[ell - 1]) < 1e-13 * ell


def test_inputs_of_any_norm_and_bias(sphere_pts: np.ndarray) -> None:
    X = sphere_pts[:16] * np.where(np.arange(16) % 3 == 0, 2.0, 1.0)[:, None]  # two norms
    sig, ntk = _cho_saul(X, 3)
    user = deep_kernels(X, USER_RELU, 3, scaling=2.0)  # two variance groups: three table pairs
    for ell in range(1, 4):
        assert _rel(user.ntk[ell], ntk[ell - 1]) < 1e-12
    # bias: closed form vs the per-entry quadrature fallback (many distinct norms, small n)
    Xm = sphere_pts[:7] * np.linspace(0.6, 1.8, 7)[:, None]
    a = deep_kernels(Xm, "relu", 2, bias=0.3)
    b = deep_kernels(Xm, USER_RELU, 2, bias=0.3)
    for ell in (1, 2):
        assert _rel(b.ntk[ell], a.ntk[ell]) < 1e-12
        assert _rel(b.penultimate(ell), a.penultimate(ell)) < 1e-12


def test_kernels_are_symmetric_and_penultimate_definition(sphere_pts: np.ndarray) -> None:
    dk = deep_kernels(sphere_pts, "tanh", 2, bias=0.2)
    for ell in range(1, 3):
        for M in (dk.sigma[ell], dk.sigma_dot[ell], dk.ntk[ell]):
            assert M is not None and np.array_equal(M, M.T)
        G = (dk.sigma[ell - 1] - 0.04) * dk.sigma_dot[ell]
        assert _rel(dk.penultimate(ell), G) < 1e-14
        assert _rel(dk.ntk[ell], dk.sigma[ell] + dk.ntk[ell - 1] * dk.sigma_dot[ell]) < 1e-15
    # c_phi normalisation keeps unit variances on every layer
    np.testing.assert_allclose(np.diag(deep_kernels(sphere_pts, "tanh", 4).sigma[4]), 1.0, atol=1e-12)


def test_errors() -> None:
    X = unit_rows(np.random.default_rng(0).standard_normal((5, 3)))
    with pytest.raises(ActspecError, match="depth"):
        deep_ntk(X, "relu", 0)
    with pytest.raises(ActspecError, match="Kaiming"):
        deep_params("gelu", "he")
    with pytest.raises(ActspecError, match="scaling"):
        deep_params("relu", "bogus")
    with pytest.raises(ActspecError, match="bias"):
        deep_params("relu", bias=-1)
    with pytest.raises(ActspecError, match="zero"):
        deep_ntk(np.vstack([X, np.zeros(3)]), "tanh", 2)
    assert parse_depths("1..4") == [1, 2, 3, 4]
    assert parse_depths("8,2,4") == [2, 4, 8]
    assert parse_depths("3") == [1, 2, 3]
    with pytest.raises(ActspecError, match="depth"):
        parse_depths("4..2")


def test_extreme_eigenvalues_match_dense(sphere_pts: np.ndarray) -> None:
    X = unit_rows(np.random.default_rng(5).standard_normal((200, 12)))
    K = deep_ntk(X, "relu", 3)
    full, ext = kernel_spectrum(K, "full"), kernel_spectrum(K, "extremes")
    assert ext["eigenvalues"] is None
    for key in ("lambda_min", "lambda_max", "condition_number"):
        assert ext[key] == pytest.approx(full[key], rel=1e-9)


# ---------------------------------------------------------------------------------------------
# finite width
# ---------------------------------------------------------------------------------------------


def test_empirical_depth1_is_core_gram_with_same_weights(sphere_pts: np.ndarray) -> None:
    X = sphere_pts[:10]
    W, a, _ = actspec.sample_weights(10, 300, seed=2)
    for name in ("relu", "tanh"):
        E = empirical_deep_ntk(X, name, 1, weights=([W], a), scaling="raw")
        assert _rel(E.ntk, actspec.gram(X, name, width=300, train="both", weights=(W, a))) < 1e-13
        assert _rel(E.penultimate, actspec.gram(X, name, width=300, train="hidden", weights=(W, a))) < 1e-13


def test_empirical_ntk_equals_autograd_jacobian(sphere_pts: np.ndarray) -> None:
    """The per-layer products equal J J^T with J from autograd (tanh, depth 3, biases)."""
    X = sphere_pts[:6]
    m, L, beta, seed = 48, 3, 0.3, 4
    p = deep_params("tanh", "cphi", beta)
    sw = math.sqrt(p.weight_var / m)
    params = []
    for ell in range(1, L + 1):
        W, b = layer_weights(seed, ell, m, X.shape[1] if ell == 1 else m)
        params += [W.clone().requires_grad_(True), b.clone().requires_grad_(True)]
    a, b_out = layer_weights(seed, 0, m, m)
    params += [a.clone().requires_grad_(True), b_out.clone().requires_grad_(True)]

    def f(x: torch.Tensor) -> torch.Tensor:
        h = x
        for ell in range(L):
            W, b = params[2 * ell], params[2 * ell + 1]
            h = sw * torch.tanh(W @ h + beta * b)
        return (params[-2] @ h + beta * params[-1]).sum()

    rows = []
    for x in torch.as_tensor(X):
        g = torch.autograd.grad(f(x), params)
        rows.append(torch.cat([t.reshape(-1) for t in g]))
    J = torch.stack(rows).numpy()
    E = empirical_deep_ntk(X, "tanh", L, m, bias=beta, seed=seed)
    assert _rel(E.ntk, J @ J.T) < 1e-12


def test_empirical_ntk_converges_like_inverse_sqrt_width(sphere_pts: np.ndarray) -> None:
    X = sphere_pts[:10]
    widths = (64, 256, 1024)
    for name in ("relu", "tanh"):
        ref = deep_kernels(X, name, 3, bias=0.2)
        err = np.zeros((len(widths), 2))
        for k, m in enumerate(widths):
            for seed in range(4):
                emp = empirical_deep_ntks(X, name, [1, 3], m, bias=0.2, seed=seed)
                for c, ell in enumerate((1, 3)):
                    e = np.linalg.norm(emp[ell].ntk - ref.ntk[ell]) / np.linalg.norm(ref.ntk[ell])
                    err[k, c] += e / 4
        # error ~ m^(-1/2): least-squares slope of log error against log width; measured -0.38 to
        # -0.64 over seed sets (relu, tanh; depths 1 and 3), -0.5 expected
        slope = np.polyfit(np.log(widths), np.log(err), 1)[0]
        assert np.all(err[1] < err[0]) and np.all(err[2] < err[1]), (name, err)
        assert np.all((slope > -0.8) & (slope < -0.3)), (name, slope)
        assert np.all(err[-1] < 0.15), (name, err)


# ---------------------------------------------------------------------------------------------
# Liu & Hui (2023): ReLU and depth improve the NTK conditioning on similar inputs
# ---------------------------------------------------------------------------------------------


def test_liu_hui_small_angles() -> None:
    """Measured on n = 40 points in a narrow cone of R^80 (pairwise angles 3.0..5.1 degrees),
    c_phi scaling (He for ReLU), no bias, NTK with all layers trained, depths 1..6:

    linear: cond = cond(X X^T) = 1.53e5 at every depth.
    relu:   6.33e3, 3.22e3, 2.15e3, 1.61e3, 1.28e3, 1.06e3 (24x below linear at L=1, 144x at L=6).
    tanh:   1.05e5, 7.53e4, 5.54e4, 4.15e4, 3.16e4, 2.43e4 (below linear, above relu).
    Closest pair, gradient angle / input angle: relu 2.67 -> 6.02, tanh 1.20 -> 2.36, linear 1.
    Penultimate-layer G (only W^L trained): relu 3215 -> 3240, i.e. depth does NOT help it;
    tanh 9.1e4 -> 3.7e4."""
    X = small_angle_data(40, 80, 0.05, seed=0)
    res = depth_study(X, ["relu", "linear", "tanh"], "1..6")
    summ = depth_summary(res)
    c_lin = np.linalg.cond(X @ X.T)
    assert summ["linear"]["constant_in_depth"]
    assert summ["linear"]["condition_number"][0] == pytest.approx(c_lin, rel=1e-8)
    relu = np.array(summ["relu"]["condition_number"])
    tanh = np.array(summ["tanh"]["condition_number"])
    assert summ["relu"]["below_linear"] == [True] * 6
    assert summ["tanh"]["below_linear"] == [True] * 6
    assert summ["relu"]["decreases_with_depth"] and summ["tanh"]["decreases_with_depth"]
    assert relu[0] < c_lin / 10 and relu[-1] < relu[0] / 3
    assert np.all(relu < tanh)
    by = {(r["activation"], r["depth"]): r["angles"] for r in res}
    close = [by["relu", d]["gradient_angle_at_min"] / by["relu", d]["min_input_angle"] for d in range(1, 7)]
    assert close[0] > 2 and np.all(np.diff(close) > 0)
    assert by[("linear", 3)]["ratio_small"] == pytest.approx(1.0, abs=1e-6)
    pen = [actspec.spectrum(penultimate_gram(X, "relu", d)).condition_number for d in (1, 3, 6)]
    assert pen[0] <= pen[1] <= pen[2] < 1.05 * pen[0]


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_depth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png, apng = tmp_path / "d.json", tmp_path / "d.png", tmp_path / "a.png"
    code = run(["depth", "-a", "relu", "-a", "linear", "--depth", "1..3", "--data", "cone", "--n", "20",
                "--dim", "40", "--json", str(js), "--plot", str(png), "--angle-plot", str(apng)])
    out, _ = capsys.readouterr()
    assert code == 0 and "relu" in out and "cond" in out
    d = json.loads(js.read_text())
    assert d["data"]["n"] == 20 and d["settings"]["depths"] == [1, 2, 3]
    assert [(r["activation"], r["depth"]) for r in d["results"]] == [
        ("relu", 1), ("relu", 2), ("relu", 3), ("linear", 1), ("linear", 2), ("linear", 3)]
    X = small_angle_data(20, 40, 0.1, seed=0)
    for r in d["results"]:
        K = deep_ntk(X, r["activation"], r["depth"])
        assert r["condition_number"] == pytest.approx(actspec.spectrum(K).condition_number, rel=1e-9)
        assert len(r["eigenvalues"]) == 20
    assert d["summary"]["relu"]["below_linear"] == [True, True, True]
    for p in (png, apng):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # finite width runs too
    code = run(["depth", "-a", "tanh", "--depth", "2", "--data", "sphere", "--n", "8", "--width", "256",
                "--kernel", "penultimate"])
    capsys.readouterr()
    assert code == 0


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--depth", "0"], "depth"),
        (["--depth", "x"], "depth"),
        (["--kernel", "foo"], "kernel"),
        (["--scaling", "nope"], "scaling"),
        (["-a", "gelu", "--scaling", "he"], "Kaiming"),
        (["--width", "-3"], "width"),
        (["--bias", "-1"], "bias"),
    ],
)
def test_cli_depth_errors(
    args: list[str], msg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js = tmp_path / "e.json"
    code = run(["depth", "--n", "6", *args, "--json", str(js)])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error:") and msg in err
    assert not js.exists() and list(tmp_path.iterdir()) == []
