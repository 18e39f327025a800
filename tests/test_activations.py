"""Activations: values, derivatives, kink classes, parameters, user callables, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actspec
from actspec import ActspecError, activation

X = np.linspace(-4, 4, 801)
X = X[np.abs(X) > 1e-3]  # derivatives are compared away from the kink at 0


@pytest.mark.parametrize("name", actspec.BUILTIN_NAMES)
def test_derivative_matches_autograd(name: str) -> None:
    act = activation(name)
    t = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(act.phi_torch(t).sum(), t)
    np.testing.assert_allclose(act.dphi(X), g.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(act.phi(X), act.phi_torch(torch.tensor(X)).numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "name,order",
    [("relu", 1), ("leaky_relu", 1), ("leaky_relu:0.2", 1), ("selu", 1), ("elu", 2), ("elu:1.0", 2),
     ("elu:0.5", 1), ("tanh", None), ("swish", None), ("silu", None), ("gelu", None),
     ("softplus", None), ("sigmoid", None), ("erf", None), ("linear", None), ("cubic", None)],
)
def test_kink_order_as_in_the_paper(name: str, order: int | None) -> None:
    assert activation(name).kink_order == order


def test_kink_order_is_the_first_jumping_derivative() -> None:
    # independent check by one-sided finite differences at the kink
    h = 1e-6
    for name in ["relu", "leaky_relu:0.2", "selu", "elu", "elu:0.5"]:
        act = activation(name)
        d1_jump = act.dphi(np.array([h]))[0] - act.dphi(np.array([-h]))[0]
        d2_left = (act.dphi(np.array([-h]))[0] - act.dphi(np.array([-2 * h]))[0]) / h
        d2_right = (act.dphi(np.array([2 * h]))[0] - act.dphi(np.array([h]))[0]) / h
        expected = 1 if abs(d1_jump) > 1e-3 else (2 if abs(d2_right - d2_left) > 1e-3 else None)
        assert act.kink_order == expected, name


def test_known_values() -> None:
    assert activation("relu").phi(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert activation("leaky_relu:0.2").phi(np.array([-1.0]))[0] == pytest.approx(-0.2)
    assert activation("leaky_relu").params["alpha"] == 0.01
    assert activation("elu:2").phi(np.array([-1.0]))[0] == pytest.approx(2 * (math.exp(-1) - 1))
    assert activation("selu").phi(np.array([1.0]))[0] == pytest.approx(1.0507009873554805)
    assert activation("gelu").phi(np.array([1.0]))[0] == pytest.approx(0.8413447460685429)
    assert activation("swish").phi(np.array([1.0]))[0] == pytest.approx(1 / (1 + math.exp(-1)))
    assert activation("softplus").phi(np.array([800.0]))[0] == pytest.approx(800.0)  # no overflow
    assert activation("erf").dphi(np.array([0.0]))[0] == pytest.approx(2 / math.sqrt(math.pi))
    assert activation("cubic").dphi(np.array([2.0]))[0] == 12.0


def test_aliases_and_names() -> None:
    assert activation("silu").name == "swish"
    assert activation("elu").name == "elu"
    assert activation("elu:0.5").name == "elu:0.5"
    assert activation("leaky_relu:1").kink_order is None  # slope 1 is linear
    assert activation(" ReLU ").name == "relu"


def test_user_callable_autograd_derivative() -> None:
    act = activation(lambda x: x * torch.tanh(x), name="xtanh")
    x = np.linspace(-3, 3, 13)
    expected = np.tanh(x) + x * (1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(act.dphi(x), expected, atol=1e-14)
    assert act.kink_class == "unknown"
    assert not act.builtin


def test_user_callable_with_kinks_and_dphi() -> None:
    act = activation(lambda x: np.maximum(x, 0) ** 2, dphi=lambda x: 2 * np.maximum(x, 0),
                     kinks=[0.0], kink_order=2, name="relu2")
    assert act.kink_class == "J_2"
    np.testing.assert_allclose(act.dphi(np.array([-1.0, 3.0])), [0.0, 6.0])


@pytest.mark.parametrize(
    "spec,fragment",
    [("rleu", "Did you mean 'relu'"), ("tahn", "tanh"), ("relu:0.3", "takes no parameter"),
     ("leaky_relu:abc", "bad parameter"), ("elu:-1", ">= 0"), ("leaky_relu:nan", "finite"),
     ("", "unknown activation")],
)
def test_bad_names(spec: str, fragment: str) -> None:
    with pytest.raises(ActspecError, match=fragment):
        activation(spec)


def test_non_callable_rejected() -> None:
    with pytest.raises(ActspecError):
        activation(3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, pole",
    [("1/x", 0.0), ("1/(x-1.3)", 1.3), ("x**4 + 1/x", 0.0), ("1/x**2", 0.0),
     ("x*sigmoid(x) + 1/(x+3.7)", -3.7)],
)
def test_poles_between_grid_points_are_refused(text: str, pole: float) -> None:
    """A pole that the check grid steps over is still found, and located."""
    from actspec.activations.registry import expression_activation

    with pytest.raises(ActspecError, match="singularity near x = ") as exc:
        expression_activation(text)
    where = float(str(exc.value).split("near x = ")[1].split(":")[0])
    assert abs(where - pole) < 1e-2


@pytest.mark.parametrize(
    "text", ["x/(x**2 + 0.0001)", "tanh(1000*x)", "sin(50*x)", "sqrt(abs(x))", "max(x, 0)", "0*x",
             "min(max(x, -1), 1)", "exp(x)", "x**3"],
)
def test_steep_or_kinked_but_finite_activations_pass_the_check(text: str) -> None:
    from actspec.activations.registry import expression_activation

    assert expression_activation(text, detect_kinks=False).name == text


@pytest.mark.parametrize("spec", ["relu", "tanh", "elu", "x*sigmoid(x)", "where(x > 0, x, 0.1*x)"])
def test_phi_on_tensors_returns_tensors(spec: str) -> None:
    """Issue 17 item 9: act.phi(torch tensor) is a tensor (its dtype), numpy in gives numpy out,
    with the same values."""
    import torch

    act = activation(spec)
    x = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
    for fn in (act.phi, act.dphi):
        out = fn(x)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
        ref = fn(x.numpy())
        assert isinstance(ref, np.ndarray)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-15, atol=1e-15)
    assert act.phi(x.float()).dtype == torch.float32


def test_phi_on_tensors_for_callables() -> None:
    import torch

    act = activation(lambda t: torch.tanh(t) * t, kinks=())
    x = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    assert isinstance(act.phi(x), torch.Tensor) and isinstance(act.dphi(x), torch.Tensor)
    np.testing.assert_allclose(act.dphi(x).numpy(), act.dphi(x.numpy()), rtol=1e-14)


@pytest.mark.parametrize("spec, reason", [
    ("sqrt(abs(x))", "not square-integrable"),
    ("abs(x)**0.25", "not square-integrable"),
    ("abs(x-0.37)**0.3", "not square-integrable"),
    ("abs(x)/x", "phi jumps at x = 0"),
    ("where(x > 0, 1, 0)", "phi jumps at x = 0"),
    ("x*1e-200", "underflow"),
])
def test_ill_defined_activations_refused(spec: str, reason: str) -> None:
    """Issue 18: E phi'^2 = infinity got a finite G∞, a jump in phi gave G = 0, x*1e-200 an
    internal error; all are refused at construction with the reason."""
    with pytest.raises(ActspecError, match=reason):
        activation(spec)


def test_user_function_faults_are_one_line_errors(tmp_path, monkeypatch) -> None:
    """A module:function returning complex values, and sys:exit, give one error line, exit 2."""
    import subprocess
    import sys

    (tmp_path / "cplxmod.py").write_text("import torch\ndef f(x):\n    return torch.complex(x, x)\n")
    for spec, msg in (("cplxmod:f", "complex values"), ("sys:exit", "sys.exit")):
        proc = subprocess.run([sys.executable, "-m", "actspec", "spectrum", "-a", spec, "--n", "8"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], proc.stderr
