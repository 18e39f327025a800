"""entk: the empirical NTK of any nn.Module, swap_activations, and the ``actspec model`` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actspec
from actspec.cli import run
from actspec.finite.entk import ActivationModule, entk, plan_entk, swap_activations

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread: small GEMMs on a shared 2-core machine are much faster without OpenMP spinning."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# networks whose NTK actspec knows
# ---------------------------------------------------------------------------------------------


class DZPS(nn.Module):
    """f(x) = (1/√m) Σ_k a_k φ(w_k·x), W (m x d) and a (m) as given, no biases (SCIENCE §1)."""

    def __init__(self, W: np.ndarray, a: np.ndarray, act: str) -> None:
        super().__init__()
        self.hidden = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
        with torch.no_grad():
            self.hidden.weight.copy_(torch.as_tensor(W))
        self.a = nn.Parameter(torch.as_tensor(a, dtype=torch.float64))
        self.act = ActivationModule(actspec.activation(act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.hidden(x)) @ self.a / math.sqrt(self.a.shape[0])


class DeepNet(nn.Module):
    """actspec's deep net (finite.deep): h¹ = W¹x + βb¹, x^l = σ_w φ(h^l)/√m, f = a·x^L + βb."""

    def __init__(self, Ws, a, bs, b_out, act: str, weight_var: float, beta: float) -> None:
        super().__init__()
        self.lins = nn.ModuleList()
        for W in Ws:
            lin = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(W))
            self.lins.append(lin)
        self.bs = nn.ParameterList([nn.Parameter(torch.as_tensor(b, dtype=torch.float64)) for b in bs])
        self.out = nn.Linear(len(a), 1, bias=False).double()
        with torch.no_grad():
            self.out.weight.copy_(torch.as_tensor(a).reshape(1, -1))
        self.b_out = nn.Parameter(torch.tensor(float(b_out), dtype=torch.float64))
        self.phi = actspec.activation(act).phi_torch
        self.sw = math.sqrt(weight_var) / math.sqrt(len(a))
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin, b in zip(self.lins, self.bs, strict=True):
            x = self.sw * self.phi(lin(x) + self.beta * b)
        return self.out(x)[:, 0] + self.beta * self.b_out


def _deep_net(act: str, depth: int, m: int, d: int, seed: int, bias: float = 0.0):
    from actspec.finite.deep import layer_weights
    from actspec.kernels.deep import deep_params

    Ws, bs = [], []
    for layer in range(1, depth + 1):
        W, b = layer_weights(seed, layer, m, d if layer == 1 else m)
        Ws.append(W.numpy())
        bs.append(b.numpy())
    a, b_out = layer_weights(seed, 0, m, m)
    params = deep_params(act, "cphi", bias)
    net = DeepNet(Ws, a.numpy().reshape(-1), bs, float(b_out[0]), act, params.weight_var, bias)
    return net, (Ws, a.numpy().reshape(-1), bs, float(b_out[0]))


@pytest.mark.parametrize("act", ["relu", "tanh", "x*sigmoid(x)"])
def test_two_layer_net_equals_gram(act: str) -> None:
    rng = np.random.default_rng(1)
    n, d, m = 25, 6, 300
    X = _unit(rng.standard_normal((n, d)))
    W, a = rng.standard_normal((m, d)), rng.standard_normal(m)
    net = DZPS(W, a, act)
    G = actspec.gram(X, act, width=m, weights=(W, a))
    np.testing.assert_allclose(entk(net, X, params=["hidden.weight"]), G, rtol=0, atol=1e-12)
    GH = actspec.gram(X, act, width=m, weights=(W, a), train="both")
    np.testing.assert_allclose(entk(net, X), GH, rtol=0, atol=1e-12)
    np.testing.assert_allclose(entk(net, X, method="jacobian"), GH, rtol=0, atol=1e-12)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_deep_net_equals_empirical_deep_ntk(act: str) -> None:
    from actspec.finite.deep import empirical_deep_ntk

    rng = np.random.default_rng(2)
    X = _unit(rng.standard_normal((12, 5)))
    for depth in (1, 2, 3):
        net, weights = _deep_net(act, depth, 48, 5, seed=depth, bias=0.3)
        ref = empirical_deep_ntk(X, act, depth, weights=weights, bias=0.3).ntk
        K = entk(net, X)
        np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_entk_approaches_infinite_width_at_rate_one_over_sqrt_m() -> None:
    """‖Θ_m − Θ∞‖/‖Θ∞‖ ~ m^(-1/2): depth 1 over m = 10³..10⁵, depth 2 over m = 128..2048."""
    from actspec.kernels.deep import deep_ntk

    rng = np.random.default_rng(3)
    X = _unit(rng.standard_normal((10, 5)))
    for depth, widths in ((1, (1000, 10_000, 100_000)), (2, (128, 512, 2048))):
        ref = deep_ntk(X, "relu", depth)
        errs = []
        for m in widths:
            e = []
            for seed in range(3):
                net, _ = _deep_net("relu", depth, m, 5, seed=seed)
                e.append(np.linalg.norm(entk(net, X) - ref) / np.linalg.norm(ref))
            errs.append(np.mean(e))
        slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
        assert -0.8 < slope < -0.3, (depth, errs, slope)
        assert errs[-1] < (0.02 if depth == 1 else 0.15), errs


# ---------------------------------------------------------------------------------------------
# any module: every path against a per-sample autograd loop
# ---------------------------------------------------------------------------------------------


class Mixed(nn.Module):
    """Conv2d + batch norm + Conv1d + a Linear called twice + a tied weight + a bare parameter,
    functional activations, an in-place op on a conv output, C = 3 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.c1d = nn.Conv1d(5, 3, 2, dilation=2)
        self.twice = nn.Linear(4, 4)
        self.fc = nn.Linear(12, 3)
        self.tied = nn.Linear(3, 3, bias=False)
        self.tied2 = nn.Linear(3, 3, bias=False)
        self.tied2.weight = self.tied.weight
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        h += 0.1  # in place on a structured layer's output
        x = torch.relu(self.bn(h))
        x = F.gelu(self.c2(x)).flatten(2)  # (b, 5, 16)
        x = torch.tanh(self.c1d(x))[:, :, :4]  # (b, 3, 4)
        x = torch.tanh(self.twice(torch.tanh(self.twice(x))))  # the same Linear twice
        x = self.fc(x.reshape(x.shape[0], -1))
        return (self.tied(x) + self.tied2(torch.sin(x))) * self.scale


def _reference(net: nn.Module, X: torch.Tensor, mode) -> np.ndarray:
    """Θ from per-sample, per-output autograd gradients (the definition)."""
    net = net.eval()
    ps = list(net.parameters())
    rows = []
    for i in range(X.shape[0]):
        f = net(X[i : i + 1]).reshape(-1)
        rows.append([torch.cat([g.reshape(-1) for g in torch.autograd.grad(f[c], ps, retain_graph=True)])
                     for c in range(f.shape[0])])
    J = torch.stack([torch.stack(r) for r in rows])  # (n, C, P)
    n, C, _ = J.shape
    if mode == "trace":
        K = sum(J[:, c] @ J[:, c].T for c in range(C))
    elif mode == "blocks":
        Jb = J.transpose(0, 1).reshape(C * n, -1)
        K = Jb @ Jb.T
    elif mode == "sum":
        Js = J.sum(1)
        K = Js @ Js.T
    else:
        K = J[:, mode] @ J[:, mode].T
    return K.detach().numpy()


def test_every_method_matches_the_definition() -> None:
    torch.manual_seed(0)
    net = Mixed().double()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    X = torch.randn(9, 3, 8, 8, dtype=torch.float64)
    for mode in ("trace", "blocks", "sum", 2):
        ref = _reference(net, X, mode)
        tol = 1e-12 * np.abs(ref).max()
        for method in ("auto", "factored", "explicit", "jacobian"):
            for memory, chunk in ((None, None), (2**20, 4)):
                info: dict = {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    K = entk(net, X, outputs=mode, method=method, memory=memory, chunk=chunk, info=info)
                np.testing.assert_allclose(K, ref, rtol=0, atol=tol, err_msg=f"{mode} {method} {memory}")
                assert np.array_equal(K, K.T)
    plan = info["plan"]
    # the tied weight and the in-place-modified conv output go through torch.func
    assert "tied.weight" in plan["generic"] and "c1.weight" in plan["generic"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kinds = {ly["module"]: ly for ly in plan_entk(net, X).layers}
    assert kinds["twice"]["positions"] == 6  # two calls on (b, 3, 4): 3 positions each
    assert kinds["c2"]["kind"] == "conv2d" and kinds["c1d"]["kind"] == "conv1d"


def test_column_split_passes_and_float32() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(10, 120), nn.Tanh(), nn.Linear(120, 80), nn.ReLU(), nn.Linear(80, 2))
    net = net.double()
    X = torch.randn(40, 10, dtype=torch.float64)
    ref = entk(net, X, method="jacobian")
    plan = plan_entk(net, X, method="explicit", memory=2**20)
    assert plan.passes > 1 and plan.group_columns < 120 * 80  # the big weight is split by columns
    K = entk(net, X, method="explicit", memory=2**20)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * ref.max())
    K32 = entk(net, X, dtype="float32")
    assert K32.dtype == np.float64
    np.testing.assert_allclose(K32, ref, rtol=0, atol=2e-5 * ref.max())


def test_stores_hold_no_autograd_graph() -> None:
    """Regression: torch.func rows of some parameters, with the others still requiring grad,
    were written into the Jacobian store with their autograd graph attached (one chunk's
    forward pass kept alive per chunk: 6 GB for a 24k-parameter CNN at n = 2000)."""
    from actspec.finite.entk import _Engine, _plan, _Stores, copy_model, select_params

    torch.manual_seed(5)
    net = copy_model(nn.Sequential(nn.Linear(5, 30), nn.Tanh(), nn.Linear(30, 3)), torch.float64,
                      torch.device("cpu"))
    X = torch.randn(20, 5, dtype=torch.float64)
    eng = _Engine(net, X, select_params(net, None), "trace", "jacobian")
    passes, b, _ = _plan(eng, 2**20, 4, "jacobian")
    stores = _Stores(eng, passes[0])
    stores.fill(0, 4)
    assert stores.J is not None and not stores.J.requires_grad and stores.J.grad_fn is None
    eng.close()


def test_the_users_model_is_left_alone() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    X = np.random.default_rng(0).standard_normal((6, 4))
    with pytest.warns(UserWarning, match="eval mode"):
        K = entk(net, X)
    assert np.all(np.linalg.eigvalsh(K) > -1e-10)
    assert net.training and next(net.parameters()).dtype == torch.float32
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_resume_from_checkpoint_is_bit_identical(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 400), nn.Tanh(), nn.Linear(400, 1)).double()
    X = torch.randn(60, 6, dtype=torch.float64)
    kw = dict(method="explicit", memory=2**20, chunk=8)
    plain = entk(net, X, **kw)
    ck = tmp_path / "k.ckpt.npz"

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        entk(net, X, checkpoint=ck, checkpoint_every=0, progress=stop, **kw)
    assert ck.exists()
    seen: list[int] = []
    K = entk(net, X, checkpoint=ck, progress=lambda d, t: seen.append(d), **kw)
    assert seen[0] == 2 and np.array_equal(K, plain) and not ck.exists()
    entk(net, X, checkpoint=ck, keep_checkpoint=True, **kw)
    with pytest.raises(actspec.ActspecError, match="different settings"):
        entk(net, X[:-1], checkpoint=ck, **kw)


def test_memory_stays_bounded_for_a_large_model() -> None:
    """n = 400 rows and a 6-million-parameter MLP: the Jacobian would take 19 GB; with a 256 MiB
    budget the planner's peak stays within it beside Θ, and the process under 1 GiB (measured in a
    subprocess: the model, its float64 copy, torch itself)."""
    code = textwrap.dedent("""
        import resource, torch
        torch.set_num_threads(1)
        from torch import nn
        from actspec.finite.entk import entk, plan_entk
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(1000, 2000), nn.ReLU(), nn.Linear(2000, 2000), nn.ReLU(),
                            nn.Linear(2000, 1))
        X = torch.randn(400, 1000)
        plan = plan_entk(net, X, memory=2**28)
        K = entk(net, X, memory=2**28)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(plan.parameters, plan.jacobian_bytes, plan.peak_bytes, plan.kernel_bytes, plan.store_bytes,
              rss, K.shape[0])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    P, jac, peak, kernel, store, rss, n = (int(v) for v in out.stdout.split())
    assert P > 6_000_000 and n == 400 and jac > 19e9
    assert peak <= kernel + 1.25 * 2**28 and store < 64e6, (peak, kernel, store)
    assert rss < 2**30, rss


# ---------------------------------------------------------------------------------------------
# swap_activations
# ---------------------------------------------------------------------------------------------


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(3, 5), nn.Linear(5, 2)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(F.relu(self.act(self.l1(x))).tanh())


def test_swap_keeps_weights_and_replaces_modules_and_functional_calls() -> None:
    torch.manual_seed(4)
    net = Functional()
    swapped, sites = swap_activations(net, "x*sigmoid(x)", return_sites=True)
    assert len(sites) == 3  # nn.GELU, F.relu, .tanh()
    a, b = net.state_dict(), swapped.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert all(type(m) is ActivationModule for n_, m in swapped.named_modules() if "act" in n_ and n_)
    assert isinstance(net.act, nn.GELU)  # the original is untouched
    x = torch.randn(4, 3)
    s = lambda t: t * torch.sigmoid(t)  # noqa: E731
    torch.testing.assert_close(swapped(x), net.l2(s(s(s(net.l1(x))))))
    # a module without functional calls keeps its class; a callable works as well
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    out = swap_activations(seq, torch.sin)
    assert isinstance(out, nn.Sequential) and isinstance(out[1], ActivationModule)
    torch.testing.assert_close(out(x[:, :2]), seq[2](torch.sin(seq[0](x[:, :2]))))


def test_swap_errors_and_warnings() -> None:
    with pytest.raises(actspec.ActspecError, match="no activation module"):
        swap_activations(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)), "tanh")

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.act = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                return self.act(F.relu(self.lin(x)))
            return self.act(self.lin(x))

    with pytest.warns(UserWarning, match="not swapped"):
        out = swap_activations(Branchy(), "gelu")
    assert isinstance(out.act, ActivationModule)


def test_bad_inputs() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    X = np.ones((5, 3))
    with pytest.raises(actspec.ActspecError, match="not a parameter"):
        entk(net, X, params=["nope"])
    with pytest.raises(actspec.ActspecError, match="2 output"):
        entk(net, X, outputs=2)
    with pytest.raises(actspec.ActspecError, match="forward failed"):
        entk(net, np.ones((5, 4)))

    class Mixing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x - x.mean(0))

    with pytest.raises(actspec.ActspecError, match="other rows"):
        entk(Mixing(), np.random.default_rng(0).standard_normal((4, 3)))


# ---------------------------------------------------------------------------------------------
# actspec model
# ---------------------------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_model_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, png = tmp_path / "m.json", tmp_path / "m.png"
    code, out, _ = _run(["model", f"{EXAMPLES / 'mlp.py'}:build_model", "--data", "sphere", "--dim", "8",
                         "--n", "30", "-a", "relu", "-a", "tanh", "--seeds", "2", "--train-steps", "5",
                         "--json", str(js), "--plot", str(png)], capsys)
    assert code == 0, out
    assert "relu" in out and "cond" in out
    d = json.loads(js.read_text())
    assert {"settings", "data", "model", "results", "ranking", "meta"} <= set(d)
    assert d["model"]["parameters"] == 8 * 512 + 512 + 2 * (512 * 512 + 512) + 513
    for r in d["results"]:
        assert len(r["per_seed"]) == 2 and r["summary"]["condition_number"]["count"] == 2
        first = r["per_seed"][0]
        assert first["lambda_min"] > 0 and len(first["eigenvalues"]) == 30
        assert len(first["training"]["loss"]) == len(first["training"]["predicted_loss"])
    assert set(d["ranking"]["by_condition_number"]) == {"relu", "tanh"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same command gives the same JSON (timings left out)
    js2 = tmp_path / "m2.json"
    _run(["model", f"{EXAMPLES / 'mlp.py'}:build_model", "--data", "sphere", "--dim", "8", "--n", "30",
          "-a", "relu", "-a", "tanh", "--seeds", "2", "--train-steps", "5", "--json", str(js2)], capsys)
    a, b = json.loads(js.read_text()), json.loads(js2.read_text())
    a.pop("meta"), b.pop("meta")
    assert a == b


def test_model_command_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "c.json"
    code, out, err = _run(["model", str(EXAMPLES / "resnet_block.py"), "--data", "sphere", "--dim", "192",
                           "--n", "12", "--input-shape", "3,8,8", "-a", "original", "-a", "tanh",
                           "--seeds", "1", "--json", str(js)], capsys)
    assert code == 0, err
    assert "eval mode" in err
    d = json.loads(js.read_text())
    assert d["model"]["outputs"] == 10
    assert any("relu" in s for s in d["results"][1]["sites"])  # the functional F.relu was swapped too


@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("missing.py:build_model", [], "does not exist"),
        ("{tmp}/m.py:nothing", [], "has no function 'nothing'"),
        ("{tmp}/m.py:raises", [], "raises(seed=0) raised RuntimeError: boom"),
        ("{tmp}/m.py:needs", [], "needs the argument"),
        ("{cnn}:build_model", [], "--input-shape"),
        ("{cnn}:build_model", ["--input-shape", "3,4,4"], "has 48 entries"),
        ("{tmp}/m.py:build_model", ["--input-shape", "2,3"], "fails on inputs of shape"),
    ],
)
def test_model_command_bad_input(spec: str, extra: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.py").write_text(textwrap.dedent("""
        from torch import nn
        def build_model(in_features):
            return nn.Sequential(nn.Linear(in_features, 4), nn.ReLU(), nn.Linear(4, 1))
        def raises(seed):
            raise RuntimeError("boom")
        def needs(seed, hidden):
            return None
    """))
    js = tmp_path / "out.json"
    spec = spec.format(tmp=tmp_path, cnn=EXAMPLES / "cnn.py")
    code, _, err = _run(["model", spec, "--data", "sphere", "--dim", "6", "--n", "8", "--seeds", "1",
                         "-a", "relu", "--json", str(js), *extra], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert not js.exists()
