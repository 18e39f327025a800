"""actspec.training / ``actspec train``: exact gradients, the spectral prediction of the loss,
lazy-regime diagnostics, divergence, SGD and cross-entropy, reproducibility, the CLI contract."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import circle_points, unit_rows

import actspec
from actspec import ActspecError
from actspec.cli import run as cli_run
from actspec.core.inits import init_scheme
from actspec.core.io import to_jsonable
from actspec.experiments import training as tr


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # the machine is shared with concurrent test runs: one thread is faster than contended two
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.where(np.random.default_rng(seed).standard_normal(n) > 0, 1.0, -1.0)


def _strict(obj: object) -> object:
    text = json.dumps(to_jsonable(obj), allow_nan=False)

    def bad(c: str) -> None:
        raise AssertionError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=bad)


# ----------------------------------------------------------------------------- the network


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "leaky_relu:0.2", "swish"])
def test_fast_torch_functions_match(name: str) -> None:
    act = actspec.activation(name)
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    for a in (act, act.scaled(1.3)):
        phi, dphi = tr.torch_functions(a)
        torch.testing.assert_close(phi(x), a.phi_torch(x), rtol=0, atol=1e-15)
        torch.testing.assert_close(dphi(x), a.dphi_torch(x), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "elu:0.5", "leaky_relu:0.2", "leaky_relu:0"])
def test_derivative_from_value_matches_derivative(name: str) -> None:
    """phi'(u) recovered from p = phi(u) (what a training step keeps) equals phi'(u)."""
    act = actspec.activation(name)
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    for a in (act, act.scaled(1.7), act.scaled(0.4)):
        from_value = tr.derivative_from_value(a)
        assert from_value is not None
        p = a.phi_torch(x)
        d = from_value(p)
        assert d.data_ptr() != p.data_ptr()
        torch.testing.assert_close(d, a.dphi_torch(x), rtol=1e-12, atol=1e-12)
    for other in ("swish", "gelu", "softplus", "leaky_relu:-0.5"):
        assert tr.derivative_from_value(actspec.activation(other)) is None


@pytest.mark.parametrize("name", ["tanh", "relu", "elu", "swish"])
def test_training_with_kept_values_equals_recomputation(name: str) -> None:
    """Keeping phi(U) (or U) between steps changes nothing: the same loss curve as recomputing."""
    X = actspec.datasets.circle(12, 5, seed=1)
    y = np.sign(np.random.default_rng(0).standard_normal(12))
    kw = dict(width=300, lr=0.2, epochs=30, log_every=10, dtype="float64", seed=3)
    for train in ("hidden", "both"):
        kept = tr.train(X, y, [name], train=train, **kw)["results"][0]["runs"][0]["loss"]
        fresh = tr.train(X, y, [name], train=train, cache_bytes=0, **kw)["results"][0]["runs"][0]["loss"]
        np.testing.assert_allclose(kept, fresh, rtol=1e-12)


@pytest.mark.parametrize("init", ["dzps", "fanin", "fanout"])
@pytest.mark.parametrize("train", ["hidden", "both"])
def test_initial_kernel_is_gram(init: str, train: str) -> None:
    X = circle_points(9, 6, seed=2)
    for outputs in (1, 3):
        net = tr.TwoLayerNet.initialize(6, 700, act=actspec.activation("elu"), init=init, seed=5,
                                        outputs=outputs, chunk=128)
        K = tr.kernel(X, net, train=train, scheme=init_scheme(init))
        G = actspec.gram(X, "elu", 700, train=train, init=init, seed=5, outputs=outputs)
        np.testing.assert_allclose(K, G, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("init", ["dzps", "fanin"])
def test_gradient_and_step_match_autograd(loss: str, init: str) -> None:
    rng = np.random.default_rng(0)
    X = unit_rows(rng.standard_normal((7, 5)))
    C = 3
    act = actspec.activation("swish")
    net = tr.TwoLayerNet.initialize(5, 37, act=act, init=init, seed=1, outputs=C, chunk=10)
    W, A, b = net.weights()
    Wt = torch.tensor(W, requires_grad=True)
    At = torch.tensor(A, requires_grad=True)
    bt = torch.zeros(37, dtype=torch.float64) if b is None else torch.tensor(b)
    Xt = torch.tensor(X)
    f = net.scale * act.phi_torch(Xt @ Wt.T + bt) @ At
    if loss == "mse":
        Y = torch.tensor(rng.standard_normal((7, C)))
        L = 0.5 * torch.sum((f - Y) ** 2)
    else:
        cls = torch.tensor([0, 1, 2, 1, 0, 2, 2])
        Y = torch.nn.functional.one_hot(cls, C).double()
        L = torch.nn.functional.cross_entropy(f, cls, reduction="sum")
    L.backward()
    f_net, _ = net.forward(Xt)
    torch.testing.assert_close(f_net, f.detach(), rtol=0, atol=1e-13)
    val, R = tr._loss_and_residual(f_net, Y, loss)
    assert val == pytest.approx(L.item(), rel=1e-13)
    gW, gA = net.gradients(Xt, R)
    torch.testing.assert_close(gW, Wt.grad, rtol=0, atol=1e-13)
    torch.testing.assert_close(gA, At.grad, rtol=0, atol=1e-13)
    # one simultaneous GD step, with the outputs at the new weights
    f1, _ = net.step(Xt, R, 0.3, 0.2, recompute=True)
    W1, A1, _ = net.weights()
    np.testing.assert_allclose(W1, W - 0.3 * Wt.grad.numpy(), atol=1e-14)
    np.testing.assert_allclose(A1, A - 0.2 * At.grad.numpy(), atol=1e-14)
    torch.testing.assert_close(f1, net.forward(Xt)[0], rtol=0, atol=1e-13)


def test_step_is_eta_kernel_in_function_space() -> None:
    """For every init the parameter steps are scaled so that u(1) - u(0) = -eta K r0 + O(eta^2)."""
    X = circle_points(12, 8, seed=1)
    y = _labels(12)[:, None]
    for init in ("dzps", "fanin", "fanout"):
        for train in ("hidden", "both"):
            sch = init_scheme(init)
            net = tr.TwoLayerNet.initialize(8, 1500, act=actspec.activation("tanh"), init=init, seed=2)
            Xt = torch.tensor(X)
            f0, _ = net.forward(Xt)
            K = tr.kernel(X, net, train=train, scheme=sch)
            lw, la = tr.layer_rates(1e-6, sch, 1500)
            f1, _ = net.step(Xt, f0 - torch.tensor(y), lw, la if train == "both" else 0.0, recompute=True)
            du = (f1 - f0).numpy()[:, 0]
            pred = -1e-6 * K @ (f0.numpy()[:, 0] - y[:, 0])
            assert np.max(np.abs(du - pred)) < 1e-6 * np.max(np.abs(pred))


# ----------------------------------------------------------------------------- predictions


def test_predicted_curve_is_matrix_power_and_flow_is_expm() -> None:
    import scipy.linalg

    rng = np.random.default_rng(3)
    B = rng.standard_normal((6, 6))
    K = B @ B.T / 6
    r0 = rng.standard_normal(6)
    lr = 0.9 / np.linalg.eigvalsh(K)[-1]
    ts = [0, 1, 2, 5, 17, 40]
    direct = [0.5 * float(np.sum((np.linalg.matrix_power(np.eye(6) - lr * K, t) @ r0) ** 2)) for t in ts]
    np.testing.assert_allclose(tr.predicted_loss_gd(K, r0, lr, ts), direct, rtol=1e-11)
    flow = [0.5 * float(np.sum((scipy.linalg.expm(-tau * K) @ r0) ** 2)) for tau in (0.0, 0.3, 2.0)]
    np.testing.assert_allclose(tr.predicted_loss_flow(K, r0, [0.0, 0.3, 2.0]), flow, rtol=1e-10)
    # the function-space simulation (full batch, mse) is the same curve
    u0 = rng.standard_normal((6, 1))
    Y = u0 - r0[:, None]
    sim = tr.linearized_losses(K, u0, Y, lr, 40)
    np.testing.assert_allclose(sim[ts], direct, rtol=1e-10)
    # epochs to target: first epoch at or below the target
    target = direct[3] * 0.999
    t = tr.predicted_epochs_to_target(K, r0, lr, target)
    curve = tr.predicted_loss_gd(K, r0, lr, range(60))
    assert curve[t] <= target < curve[t - 1]
    # below the floor left by a zero eigenvalue: never
    K0 = K.copy()
    lam, V = np.linalg.eigh(K0)
    lam[0] = 0.0
    K0 = (V * lam) @ V.T
    floor = 0.5 * float(V[:, 0] @ r0) ** 2
    assert tr.predicted_epochs_to_target(K0, r0, lr, 0.5 * floor) is None
    # lr above 2/lambda_max: the prediction overflows to inf, not NaN
    big = tr.predicted_loss_gd(K, r0, 3.0 / np.linalg.eigvalsh(K)[-1], [0, 10, 10_000])
    assert big[1] > big[0] and math.isinf(big[2])


def test_sgd_prediction_is_the_linearised_model() -> None:
    rng = np.random.default_rng(4)
    n, C = 9, 2
    B = rng.standard_normal((n * C, n * C))
    K = B @ B.T / (n * C)
    u0 = rng.standard_normal((n, C))
    Y = rng.standard_normal((n, C))
    lr, bs = 0.05, 4
    F = u0.copy()
    expect = []
    for e in range(4):
        expect.append(0.5 * float(np.sum((F - Y) ** 2)))
        for idx in tr.epoch_batches(n, bs, 7, e):
            g = np.zeros((n, C))
            g[idx] = F[idx] - Y[idx]
            F = F - lr * (K @ g.T.reshape(-1)).reshape(C, n).T
    got = tr.linearized_losses(K, u0, Y, lr, 3, batch_size=bs, seed=7)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    batches = tr.epoch_batches(n, bs, 7, 0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))


def test_linear_activation_follows_linear_regression() -> None:
    """phi(z) = z: f(x) = beta . x with beta = W^T a / sqrt(m); GD on W moves beta by
    -eta (|a|^2/m) X^T r exactly, and G = (|a|^2/m) X X^T never changes."""
    X = circle_points(8, 5, seed=3)
    y = _labels(8, 1)
    m, lr, T = 64, 0.2, 30
    out = tr.train(X, y, "linear", width=m, lr=lr, epochs=T, log_every=1, dtype="float64")
    r = out["results"][0]
    W, a, _ = actspec.sample_weights(5, m, seed=0)
    beta = W.T @ a / math.sqrt(m)
    c = float(a @ a) / m
    losses = []
    for _ in range(T + 1):
        res = X @ beta - y
        losses.append(0.5 * float(res @ res))
        beta = beta - lr * c * X.T @ res
    np.testing.assert_allclose(r["loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(r["predicted_loss"], losses, rtol=1e-9)
    assert max(r["gram_drift"]) < 1e-12


def test_wide_relu_measured_matches_predicted() -> None:
    """m = 1e5 on the 10-point circle: measured and predicted loss within a few percent."""
    X = actspec.datasets.circle(10, 10, seed=0)
    y = _labels(10)
    out = tr.train(X, y, "relu", width=100_000, lr=0.1, epochs=120, log_every=40, dtype="float32")
    r = out["results"][0]
    loss, pred = np.array(r["loss"]), np.array(r["predicted_loss"])
    assert loss[-1] < 0.6 * loss[0]
    assert np.max(np.abs(loss / pred - 1)) < 0.03
    assert np.max(np.abs(np.array(r["predicted_loss_inf"]) / pred - 1)) < 0.05
    assert r["gram_drift"][0] == 0.0 and max(r["gram_drift"]) < 0.01
    assert r["prediction_kernel"] == "finite" and r["status"] == "ok"


def test_smooth_activation_prediction_tight_and_epochs_to_target() -> None:
    X = actspec.datasets.load_data("circle", n=10, seed=0, preprocess="paper").X
    y = _labels(10)
    out = tr.train(X, y, ["tanh"], width=20_000, lr=0.2, epochs=150, log_every=50,
                   target_loss=2.0, dtype="float64")
    r = out["results"][0]
    np.testing.assert_allclose(r["loss"], r["predicted_loss"], rtol=5e-3)
    assert r["epochs_to_target"] is not None and r["predicted_epochs_to_target"] is not None
    assert abs(r["epochs_ratio"] - 1) < 0.05
    assert out["ordering"] == ["tanh"]


def test_drift_larger_for_narrow_nets() -> None:
    X = actspec.datasets.circle(10, 10, seed=0)
    y = _labels(10)
    drift = {}
    for m in (50, 5000):
        out = tr.train(X, y, "relu", width=m, lr=0.2, epochs=60, log_every=30, dtype="float64")
        r = out["results"][0]
        drift[m] = r["gram_drift"][-1]
        assert r["weight_movement"][0] == 0.0 and r["weight_movement"][-1] > 0
    assert drift[50] > 4 * drift[5000]


# ----------------------------------------------------------------------------- divergence etc.


def test_divergence_is_reported_not_nan() -> None:
    X = circle_points(10, 6, seed=0)
    y = _labels(10)
    lam_max = actspec.eigenvalues(actspec.gram(X, "relu", 300, seed=0))[0]
    warned: list[str] = []
    out = tr.train(X, y, "relu", width=300, lr=5.0 / lam_max, epochs=200, dtype="float64",
                   on_warning=warned.append)
    r = out["results"][0]
    assert r["status"] == "diverged" and r["diverged_at_epoch"] < 200
    assert warned and "2/lambda_max" in warned[0] and r["warnings"] == warned
    assert all(math.isfinite(v) for v in r["loss"])
    assert r["lr_limit"] == pytest.approx(2 / lam_max, rel=1e-8)
    d = _strict(out)
    assert d["results"][0]["status"] == "diverged"  # type: ignore[index]


def test_sgd_cross_entropy_on_digits_lowers_loss() -> None:
    ds = actspec.datasets.load_data("digits", n=150, seed=0)
    out = tr.train(ds.X, ds.y, ["relu"], width=400, lr=0.008, epochs=6, train="both", loss="ce",
                   batch_size=16, log_every=3)
    r = out["results"][0]
    assert out["settings"]["outputs"] == 10 and out["settings"]["drift_points"] < 150
    assert r["status"] == "ok" and r["epoch"] == [0, 3, 6]
    assert r["loss"][-1] < 0.95 * r["loss"][0] and r["loss"][1] < r["loss"][0]
    assert r["accuracy"][-1] > r["accuracy"][0]
    assert r["predicted_loss"][-1] < r["predicted_loss"][0]
    assert r["gram_drift"][-1] > 0 and r["output_weight_movement"][-1] > 0
    _strict(out)


def test_seeds_reproduce_and_repeats_band() -> None:
    X = circle_points(8, 6, seed=1)
    y = _labels(8)
    kw = dict(width=300, lr=0.1, epochs=20, log_every=10, dtype="float64")
    a = tr.train(X, y, ["relu", "tanh"], seed=3, **kw)
    b = tr.train(X, y, ["relu", "tanh"], seed=3, **kw)
    c = tr.train(X, y, ["relu"], seed=4, **kw)
    for ra, rb in zip(a["results"], b["results"], strict=True):
        assert ra["loss"] == rb["loss"] and ra["gram_drift"] == rb["gram_drift"]
    assert a["results"][0]["loss"][0] != c["results"][0]["loss"][0]
    rep = tr.train(X, y, ["relu"], seed=3, repeats=2, **kw)
    r = rep["results"][0]
    assert [run["seed"] for run in r["runs"]] == [3, 4]
    assert r["runs"][0]["loss"] == a["results"][0]["loss"]
    assert r["runs"][1]["loss"] == c["results"][0]["loss"]
    lo, mid, hi = map(np.array, (r["loss_min"], r["loss"], r["loss_max"]))
    assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12) and np.any(hi > lo)


def test_interrupt_keeps_finished_epochs() -> None:
    X = circle_points(8, 6, seed=1)
    y = _labels(8)

    def prog(label: str, t: int, total: int) -> None:
        if label == "tanh" and t == 7:
            raise KeyboardInterrupt

    out = tr.train(X, y, ["relu", "tanh", "elu"], width=200, lr=0.1, epochs=20, log_every=2,
                   on_progress=prog)
    assert out["interrupted"] is True
    assert [r["activation"] for r in out["results"]] == ["relu", "tanh"]
    assert out["results"][0]["status"] == "ok" and out["results"][0]["epoch"][-1] == 20
    r = out["results"][1]
    assert r["status"] == "interrupted" and r["epoch"] == [0, 2, 4, 6]
    assert len(r["loss"]) == len(r["predicted_loss"]) == len(r["gram_drift"]) == 4


def test_targets_and_bad_inputs() -> None:
    t = tr.make_targets(np.array([1.0, -1.0, 1.0]), 3, "ce")
    assert t.C == 2 and t.classes.tolist() == [1, 0, 1]
    t = tr.make_targets(np.array([0, 2, 1, 2]), 4, "mse")
    assert t.Y.shape == (4, 3) and t.Y.sum() == 4
    X = circle_points(6, 4)
    y = _labels(6)
    bad = [
        dict(width=0), dict(width=2.5), dict(lr=0.0), dict(lr=-1.0), dict(lr=float("nan")),
        dict(epochs=0), dict(epochs=-3), dict(batch_size=0), dict(batch_size=7), dict(repeats=0),
        dict(loss="hinge"), dict(train="output"), dict(init="xavier"), dict(dtype="float16"),
        dict(target_loss=-1.0), dict(log_every=0),
    ]
    for kw in bad:
        args = dict(width=10, lr=0.1, epochs=2)
        args.update(kw)
        with pytest.raises(ActspecError):
            tr.train(X, y, "relu", **args)
    with pytest.raises(ActspecError, match="labels"):
        tr.train(X, y[:4], "relu", width=10, lr=0.1, epochs=2)
    with pytest.raises(ActspecError, match="2 classes"):
        tr.train(X, np.ones(6), "relu", width=10, lr=0.1, epochs=2, loss="ce")
    with pytest.raises(ActspecError):
        tr.train(np.full((6, 4), np.nan), y, "relu", width=10, lr=0.1, epochs=2)


# ----------------------------------------------------------------------------- CLI


def test_cli_train_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png = tmp_path / "t.json", tmp_path / "t.png"
    code = cli_run(["train", "-a", "relu", "--activation", "tanh", "--data", "circle", "--n", "10",
                    "--width", "2000", "--lr", "0.1", "--epochs", "30", "--log-every", "10",
                    "--repeats", "2", "--json", str(js), "--plot", str(png)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "relu" in out and "tanh" in out
    d = _strict(json.loads(js.read_text()))
    assert isinstance(d, dict)
    assert d["data"]["n"] == 10 and d["settings"]["width"] == 2000 and d["settings"]["repeats"] == 2
    assert [r["activation"] for r in d["results"]] == ["relu", "tanh"]
    for r in d["results"]:
        assert r["epoch"] == [0, 10, 20, 30]
        for key in ("loss", "predicted_loss", "gram_drift"):
            assert len(r[key]) == 4 and all(isinstance(v, float) for v in r[key])
        assert r["gram_drift"][0] == 0.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--lr", "0"],
        ["--lr", "-0.1"],
        ["--width", "0"],
        ["--width", "inf"],
        ["--epochs", "0"],
        ["--batch-size", "0"],
        ["-a", "nope"],
        ["--loss", "hinge"],
        ["--train", "output"],
        ["--dtype", "float16"],
        ["--data", "no_such_file.npy"],
    ],
)
def test_cli_bad_inputs_exit_2(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "bad.json"
    code = cli_run(["train", "--n", "6", "--width", "20", "--epochs", "2", *args, "--json", str(js)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not js.exists() and not list(tmp_path.iterdir())


def test_cli_interrupt_writes_finished_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tr.train_run

    def interrupted_run(setup, *, on_progress=None, on_warning=None):  # type: ignore[no-untyped-def]
        def prog(t: int, total: int) -> None:
            if t == 5:
                raise KeyboardInterrupt

        return real(setup, on_progress=prog, on_warning=on_warning)

    monkeypatch.setattr(tr, "train_run", interrupted_run)
    js = tmp_path / "t.json"
    code = cli_run(["train", "-a", "relu", "-a", "tanh", "--n", "8", "--width", "100", "--epochs", "50",
                    "--log-every", "1", "--json", str(js)])
    _, err = capsys.readouterr()
    assert code == 130 and "interrupted" in err
    d = json.loads(js.read_text())
    assert d["interrupted"] is True and len(d["results"]) == 1
    assert d["results"][0]["status"] == "interrupted" and d["results"][0]["epoch"] == [0, 1, 2, 3, 4, 5]
