"""Mercer spectrum on the sphere (actspec.spectra.sphere, ``actspec sphere``) against independent truths:
mpmath quadrature of ReLU's closed form, the Funk-Hecke coefficients of monomials, the trace
identity, the decay exponents of Bietti & Mairal / Bietti & Bach, and eigenvalues of G∞/n."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import mpmath as mp
import numpy as np
import pytest
import torch

import actspec
from actspec.cli import run
from actspec.core.errors import ActspecError
from actspec.experiments.sphere import sample_spectrum, sphere_part
from actspec.spectra.sphere import (
    kernel_on_sphere,
    monomial_coefficients,
    multiplicity,
    predicted_exponent,
    sphere_spectrum,
    trace_identity,
)


def _relu_mu_mpmath(k: int, dps: int = 30) -> mp.mpf:
    """mu_k of ReLU's G∞ on S^2: (1/2) int_{-1}^{1} t (pi - arccos t)/(2 pi) P_k(t) dt, by mpmath
    (tanh-sinh on [-1, 1] cut into 2k + 2 pieces, Legendre polynomials from mpmath)."""
    with mp.workdps(dps):
        def f(t: mp.mpf) -> mp.mpf:
            return t * (mp.pi - mp.acos(t)) / (2 * mp.pi) * mp.legendre(k, t)

        return mp.quad(f, mp.linspace(-1, 1, 2 * k + 3)) / 2


@pytest.fixture(scope="module")
def relu_truth() -> dict[int, mp.mpf]:
    return {k: _relu_mu_mpmath(k) for k in (0, 1, 2, 10, 60)}


def test_relu_d3_extended_precision_matches_mpmath(relu_truth: dict[int, mp.mpf]) -> None:
    r = sphere_spectrum("relu", 3, 60, precision="high")
    assert r.digits is not None and r.digits >= 30
    assert r.eigenvalues_text is not None
    with mp.workdps(30):
        for k, v in relu_truth.items():
            got = mp.mpf(r.eigenvalues_text[k])
            assert abs(got - v) <= 1e-12 * abs(v), (k, got, v)
            assert abs(got - v) <= 1e-18 * abs(v), (k, got, v)  # the text keeps 20 digits
    assert abs(r.eigenvalues[1] - 1 / 12) < 1e-15 and abs(r.eigenvalues[0] - 1 / 16) < 1e-16


def test_relu_d3_double_is_within_its_error_estimate(relu_truth: dict[int, mp.mpf]) -> None:
    r = sphere_spectrum("relu", 3, 60)
    for k, v in relu_truth.items():
        err = abs(r.eigenvalues[k] - float(v))
        assert err <= r.errors[k], (k, err, r.errors[k])
        assert err <= 1e-10 * float(v)  # float64 quadrature floor: ~1e-17 absolute
    odd = np.abs(r.eigenvalues[3::2])
    assert np.all(odd < 1e-14 * r.eigenvalues[0])
    assert r.zero_degrees == list(range(3, 61, 2)) and r.zero_pattern == "odd k ≥ 3"


def test_relu_kernel_is_the_gram_convention() -> None:
    kappa, source, _ = kernel_on_sphere("relu", 3)
    theta = np.array([0.0, 0.3, 1.7, np.pi])
    t = np.cos(theta)
    assert source == "closed form"
    np.testing.assert_allclose(kappa(theta), t * (np.pi - theta) / (2 * np.pi), rtol=0, atol=3e-16)
    X = np.array([[1.0, 0.0, 0.0], [np.cos(1.7), np.sin(1.7), 0.0]])
    G = actspec.gram(X, "relu")  # G∞_ij = E[phi'(u) phi'(v)] <x_i, x_j>
    assert abs(G[0, 1] - kappa(np.array([1.7]))[0]) < 1e-15


def test_relu_exponent_d3_and_d10() -> None:
    r = sphere_spectrum("relu", 3, 400, fit_range=(20, 400))
    law = r.decay
    assert law is not None and law.law == "power" and law.parity == "even k"
    assert abs(law.exponent + 3) < 0.05 and abs(law.local_exponent + 3) < 0.05
    assert law.predicted_exponent == -3.0
    # d = 10: mu_k ~ 1e-19 mu_0 at k = 200, below the float64 quadrature floor: extended precision
    h = sphere_spectrum("relu", 10, 400, precision="high", fit_range=(200, 400))
    assert h.decay is not None and h.decay.fit_range == [200, 400]
    assert abs(h.decay.exponent + 10) < 0.2 and abs(h.decay.local_exponent + 10) < 0.2
    assert h.decay.predicted_exponent == -10.0


def test_trace_identity() -> None:
    r = sphere_spectrum("relu", 3, 400)
    tr = trace_identity(r)
    assert tr["kappa_one"] == 0.5
    assert 1e-4 < tr["tail_estimate"] < 1e-3  # N(3, k) mu_k ~ k^-2: the tail matters
    assert abs(tr["relative_residual"]) < 1e-10
    s = sphere_spectrum("tanh", 3, 120)
    assert abs(trace_identity(s)["relative_residual"]) < 1e-12


def test_sample_eigenvalues_approach_mu() -> None:
    r = sphere_spectrum("relu", 3, 10)
    smp = sample_spectrum("relu", 3, 3000, seed=0, spectrum=r, top=9)
    groups = smp["groups"]
    assert [(g["degree"], g["multiplicity"]) for g in groups] == [(1, 3), (0, 1), (2, 5)]
    for g in groups:
        assert abs(g["relative_error"]) < 0.05  # block means: 0.2-0.4 %
        assert abs(g["max"] / g["mu"] - 1) < 0.1 and abs(g["min"] / g["mu"] - 1) < 0.1
    ev = smp["eigenvalues"]
    assert len(ev) == 9 and np.all(np.diff(ev) <= 0)


def test_smooth_activations_decay_faster_than_any_power() -> None:
    k = np.arange(61)
    for name in ("tanh", "swish"):
        r = sphere_spectrum(name, 3, 60)
        assert r.method == "Hermite series" and r.decay is not None
        assert r.decay.law == "stretched exponential"
        sel = r.resolved & ~r.zero & (k >= 30) & (np.abs(r.eigenvalues) > 0)
        slope = np.polyfit(np.log(k[sel]), np.log(np.abs(r.eigenvalues[sel])), 1)[0]
        assert slope < -8, (name, slope)
        top = int(k[sel].max())
        mu1 = abs(r.eigenvalues[1])
        assert abs(r.eigenvalues[top]) < mu1 * top**-8.0


def test_elu_steeper_than_relu_by_two() -> None:
    relu = sphere_spectrum("relu", 3, 200, fit_range=(20, 200)).decay
    elu = sphere_spectrum("elu", 3, 200, fit_range=(20, 200)).decay
    assert relu is not None and elu is not None
    assert elu.predicted_exponent == -5.0 and relu.predicted_exponent == -3.0
    assert elu.parity == "odd k" and elu.parities is not None  # even k decay faster still
    diff = relu.exponent - elu.exponent
    assert abs(diff - 2.0) < 0.05, diff
    # the local slopes approach the asymptote from below for ELU: the gap closes with k
    assert elu.local_exponent < -4.9


def test_monomial_coefficients_closed_form() -> None:
    # d = 3: t^2 = P_0/3 + 2 P_2/3, so mu_0 = 1/3, mu_2 = (2/3) ||P_2||^2 = 2/15
    mu, _ = monomial_coefficients(np.array([0.0, 0.0, 1.0]), 4, 3)
    np.testing.assert_allclose(mu, [1 / 3, 0, 2 / 15, 0, 0], atol=1e-16)
    # d = 2 (circle, P_k = cos k theta): mean of cos^n theta cos k theta = C(n, (n-k)/2) / 2^n
    b = np.zeros(8)
    b[7] = 1.0
    mu, _ = monomial_coefficients(b, 7, 2)
    want = [math.comb(7, (7 - k) // 2) / 2**7 if k % 2 else 0.0 for k in range(8)]
    np.testing.assert_allclose(mu, want, rtol=1e-15, atol=1e-18)
    # high powers: no mass lost to underflow (mu_K(t^K) ~ 2^-K): sum_k N(d, k) mu_k(t^n) = 1^n
    for n, dim in ((1200, 3), (1501, 10)):
        mu, _ = monomial_coefficients(np.eye(n + 1)[n], n, dim)
        total = math.fsum(multiplicity(dim, k) * float(m) for k, m in enumerate(mu) if m)
        assert abs(total - 1.0) < 1e-12, (n, dim, total)


def test_multiplicities_are_exact_integers() -> None:
    assert [multiplicity(3, k) for k in range(5)] == [1, 3, 5, 7, 9]
    assert [multiplicity(2, k) for k in range(4)] == [1, 2, 2, 2]
    N = multiplicity(100, 1000)
    assert isinstance(N, int) and N == (2000 + 98) * math.comb(1097, 98) // 1000
    r = sphere_spectrum("quadratic", 4, 6)  # kappa = 4 t^2: trace shares of degrees 0, 2
    assert r.decay is not None and r.decay.law == "finite" and r.decay.last_nonzero == 2
    np.testing.assert_allclose(r.trace_share.sum(), 1.0, rtol=1e-14)
    assert r.multiplicities == [1, 4, 9, 16, 25, 36, 49]


def test_high_precision_agrees_with_double_for_elu_and_tanh() -> None:
    for name in ("elu", "tanh"):
        d = sphere_spectrum(name, 3, 24)
        h = sphere_spectrum(name, 3, 24, precision="high", digits=20)
        ok = d.resolved & ~d.zero
        assert np.all(np.abs(d.eigenvalues - h.eigenvalues)[ok] <= d.errors[ok] + 1e-20), name
        big = ok & (np.abs(h.eigenvalues) > 1e-6)
        assert np.all(np.abs(d.eigenvalues - h.eigenvalues)[big] <= 1e-10 * np.abs(h.eigenvalues[big]))


def test_user_activations_and_options() -> None:
    user = actspec.activation(lambda x: torch.clamp(x, min=0.0), kinks=(0.0,), kink_order=1, name="myrelu")
    u = sphere_spectrum(user, 3, 30)
    r = sphere_spectrum("relu", 3, 30)
    assert u.method == "theta quadrature"
    np.testing.assert_allclose(u.eigenvalues, r.eigenvalues, rtol=0, atol=1e-13)
    e = sphere_spectrum("x*sigmoid(x)", 3, 30)
    s = sphere_spectrum("swish", 3, 30)
    assert np.all(np.abs(e.eigenvalues - s.eigenvalues) <= e.errors + s.errors)
    np.testing.assert_allclose(e.eigenvalues[:20], s.eigenvalues[:20], rtol=1e-12, atol=1e-30)
    # H∞ of ReLU: (1 - t)^(3/2) at t = 1, predicted k^(-d-2)
    o = sphere_spectrum("relu", 3, 200, train="output", fit_range=(20, 200))
    assert o.decay is not None and o.decay.predicted_exponent == -5.0
    assert abs(o.decay.exponent + 5) < 0.05
    assert predicted_exponent("tanh", 3) is None and predicted_exponent("elu", 7) == -9.0
    # deep ReLU NTK: same k^-d (Bietti & Bach 2021)
    deep = sphere_spectrum("relu", 3, 120, train="both", depth=3, fit_range=(30, 120))
    assert deep.decay is not None and abs(deep.decay.exponent + 3) < 0.1
    norm = sphere_spectrum("tanh", 3, 10, normalize=True)
    raw = sphere_spectrum("tanh", 3, 10)
    c2 = actspec.normalization_constant(actspec.activation("tanh")) ** 2
    np.testing.assert_allclose(norm.eigenvalues[1::2], raw.eigenvalues[1::2] / c2, rtol=1e-12)


def test_bad_inputs_raise() -> None:
    for kwargs in ({"dim": 1}, {"degree": -1}, {"train": "both-ways"}, {"precision": "quad"},
                   {"depth": 0}, {"init": "xavier"}, {"depth": 2, "init": "fanin"}):
        args = {"dim": 3, "degree": 5} | kwargs
        with pytest.raises(ActspecError):
            sphere_spectrum("relu", **args)
    with pytest.raises(ActspecError, match="depth 1"):
        sphere_spectrum("relu", 3, 5, precision="high", depth=2)
    with pytest.raises(ActspecError, match="not available"):
        sphere_spectrum(actspec.activation(lambda x: torch.abs(x), kinks=(0.0,)), 3, 5, precision="high")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_plot_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png = tmp_path / "m.json", tmp_path / "m.png"
    code, out, _ = _run(["sphere", "-a", "relu", "-a", "tanh", "--dim", "3", "--degree", "40",
                         "--sample", "300", "--plot", str(png), "--json", str(js)], capsys)
    assert code == 0 and "relu" in out and "k^-3" in out
    d = json.loads(js.read_text())
    assert set(d) == {"settings", "results", "meta"}
    for r in d["results"]:
        assert {"activation", "dim", "degrees", "eigenvalues", "multiplicities", "decay",
                "zero_degrees", "sample"} <= set(r)
        assert {"law", "exponent", "exponent_error", "predicted_exponent"} <= set(r["decay"])
        assert len(r["eigenvalues"]) == 41 and r["dim"] == 3
        assert r["sample"]["n"] == 300 and r["sample"]["groups"]
        assert "seconds" not in r  # wall-clock times only with --timings
    assert d["results"][0]["decay"]["predicted_exponent"] == -3.0
    assert png.stat().st_size > 10_000
    for bad, flag in ((["--dim", "1"], "--dim"), (["--degree", "-1"], "--degree"),
                      (["--precision", "high", "--depth", "2"], "--precision high"),
                      (["-a", "relu", "--sample", "1"], "--sample"), (["-a", "nope"], "nope"),
                      (["-a", "selu", "--precision", "high", "--train", "both"], "--train hidden"),
                      (["--digits", "30"], "--digits")):
        out_js = tmp_path / "bad.json"
        code, _, err = _run(["sphere", *bad, "--json", str(out_js)], capsys)
        assert code == 2, bad
        assert err.startswith("error: ") and err.count("\n") == 1 and flag in err
        assert not out_js.exists()


def test_reproduce_part_quick(tmp_path: Path) -> None:
    ctx = SimpleNamespace(quick=True, seed=0, fig=lambda name: tmp_path / name)
    got = sphere_part(ctx)
    assert {c["status"] for c in got["claims"]} == {"holds"}, got["claims"]
    assert (tmp_path / got["figures"][0]).exists()
