"""``actspec model``'s study: build the user's model per seed, swap activations, compute the eNTK
spectrum at initialisation and the Liu & Hui gradient angles, optionally train and compare with the
loss the eNTK predicts (the engine is :mod:`actspec.finite.entk`)."""


from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..activations.registry import activation as make_activation
from ..core.devices import check_device
from ..core.errors import ActspecError
from ..finite.entk import (
    activation_sites,
    as_dtype,
    as_inputs,
    copy_model,
    cotangents,
    entk,
    select_params,
    swap_activations,
)

FACTORY_ARGS = ("seed", "in_features", "input_shape")
ORIGINAL = "original"
_SUMMARY_KEYS = ("lambda_min", "lambda_max", "condition_number", "effective_rank", "trace",
                 "closest_input_angle_deg", "closest_gradient_angle_deg", "closest_pairs_gradient_angle_deg",
                 "ratio_small", "final_loss", "final_predicted_loss")


def call_factory(factory: Callable[..., Any], *, seed: int, input_shape: Sequence[int],
                 label: str = "build_model") -> nn.Module:
    """``factory(**kw)`` after ``torch.manual_seed(seed)`` (in a forked RNG state), with the
    keywords it accepts among ``seed``, ``in_features`` (= prod(input_shape)) and
    ``input_shape`` (the shape of one input row, a tuple)."""
    shape = tuple(int(s) for s in input_shape)
    values = {"seed": int(seed), "in_features": int(math.prod(shape)), "input_shape": shape}
    kwargs: dict[str, Any] = {}
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        kwargs = {k: v for k, v in values.items() if k in sig.parameters or var_kw}
        missing = [p.name for p in sig.parameters.values()
                   if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                   and p.name not in kwargs]
        if missing:
            raise ActspecError(
                f"{label} needs the argument(s) {', '.join(missing)}; a model factory is called with "
                "the keywords it accepts among seed, in_features and input_shape: give the others "
                "default values"
            )
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = factory(**kwargs)
    except ActspecError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's factory failing
        raise ActspecError(
            f"{label}({shown}) raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ActspecError(f"{label}({shown}) returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _select_outputs(f: torch.Tensor, mode: str, V: torch.Tensor) -> torch.Tensor:
    """The trained outputs (n, C'): all C for trace/blocks, V f for the sum or one index."""
    return f if mode in ("trace", "blocks") else f @ V.T


def train_model(
    model: nn.Module,
    X: Any,
    Y: np.ndarray,
    K: np.ndarray,
    *,
    steps: int,
    lr: float | str = "auto",
    params: Sequence[str] | str | None = None,
    outputs: str | int = "trace",
    batch_size: int | None = None,
    log_every: int | None = None,
    seed: int = 0,
    dtype: Any = torch.float64,
    device: Any = "cpu",
) -> dict[str, Any]:
    """``steps`` steps of GD (SGD with ``batch_size``) on L = ½ Σ_i ||f(x_i) − y_i||² and the loss
    ½ ||(I − η K)^t (u(0) − y)||² the kernel K predicts (:func:`predicted_loss_gd`).

    K is the matching eNTK at initialisation: n x n for one output, the nC x nC blocks
    (output-major) for C outputs. ``lr="auto"``: η = 0.5/λ_max(K) (half the step that is optimal
    for the linearised model: real networks' kernels move, and 1/λ_max often diverges). SGD draws batches from
    ``seed`` and scales the batch gradient by n/B (unbiased for the full-batch gradient, so the
    GD prediction is the expected curve). A copy of ``model`` is trained."""
    from .training import predicted_loss_gd

    dt = as_dtype(dtype)
    dev = check_device(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = copy_model(model, dt, dev)
    Xt = as_inputs(X, dt, dev)
    n = Xt.shape[0]
    chosen = list(select_params(net, params).values())
    with torch.no_grad():
        f0 = net(Xt).reshape(n, -1)
    mode, V = cotangents(outputs, f0.shape[1], dt, dev)
    Yt = torch.as_tensor(np.asarray(Y, dtype=np.float64), dtype=dt, device=dev).reshape(n, -1)
    u0 = _select_outputs(f0, mode, V)
    if u0.shape != Yt.shape:
        raise ActspecError(f"targets have shape {tuple(Yt.shape)}, the trained outputs {tuple(u0.shape)}")
    lam_max = float(np.linalg.eigvalsh(0.5 * (K + K.T))[-1])
    if isinstance(lr, str):
        if lr.strip().lower() != "auto":
            raise ActspecError(f"lr must be a positive number or 'auto' (got {lr!r})")
        eta = 0.5 / lam_max if lam_max > 0 else 1.0
    else:
        eta = float(lr)
        if not (math.isfinite(eta) and eta > 0):
            raise ActspecError(f"lr must be a positive number or 'auto' (got {lr!r})")
    steps = int(steps)
    every = int(log_every) if log_every else max(1, steps // 100)
    log_steps = sorted(set(range(0, steps + 1, every)) | {steps})
    B = None if batch_size is None or int(batch_size) >= n else int(batch_size)
    rng = np.random.default_rng([int(seed), 0xE7C])
    r0 = (u0 - Yt).detach().cpu().numpy()
    L0 = 0.5 * float(np.sum(r0**2))
    losses: list[float] = []
    status = "ok"
    for t in range(steps + 1):
        if t in log_steps or B is None:
            with torch.enable_grad():
                u = _select_outputs(net(Xt).reshape(n, -1), mode, V)
                loss = 0.5 * torch.sum((u - Yt) ** 2)
            val = float(loss.detach())
            if t in log_steps:
                losses.append(val)
            if not math.isfinite(val) or val > 1e6 * max(L0, 1e-300):
                status = "diverged"
                break
        if t == steps:
            break
        if B is not None:
            idx = torch.as_tensor(rng.choice(n, size=B, replace=False), device=dev)
            with torch.enable_grad():
                u = _select_outputs(net(Xt[idx]).reshape(B, -1), mode, V)
                loss = 0.5 * torch.sum((u - Yt[idx]) ** 2) * (n / B)
        grads = torch.autograd.grad(loss, chosen, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(chosen, grads, strict=True):
                if g is not None:
                    p.sub_(eta * g)
    pred = predicted_loss_gd(K, r0, eta, log_steps[: len(losses)] if status == "ok" else log_steps)
    return {
        "lr": eta,
        "lr_rule": "0.5/lambda_max" if isinstance(lr, str) else "given",
        "lambda_max": lam_max,
        "steps": steps,
        "batch_size": B,
        "log_steps": log_steps[: len(losses)],
        "loss": losses,
        "predicted_loss": [float(v) for v in pred[: len(losses)]],
        "predicted_log_steps": log_steps,
        "predicted_loss_all": [float(v) for v in pred],
        "initial_loss": L0,
        "final_loss": losses[-1] if status == "ok" else None,
        "final_predicted_loss": float(pred[-1]),
        "status": status,
    }


def _seeded_targets(n: int, C: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([int(seed), 0x7A26])
    return rng.choice([-1.0, 1.0], size=(n, C))


def _stats(vals: list[Any]) -> dict[str, float | None] | None:
    v = np.array([float(x) for x in vals if x is not None and math.isfinite(float(x))])
    if v.size == 0:
        return None
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "count": int(v.size)}


def _order(rows: list[dict[str, Any]], key: str, reverse: bool = False) -> list[str] | None:
    """Activations sorted by the mean of ``key``; one without a value (diverged) comes last."""
    have = [(r["summary"].get(key), r["activation"]) for r in rows]
    if len(have) < 2 or all(s is None for s, _ in have):
        return None
    last = math.inf if not reverse else -math.inf
    ordered = sorted(have, key=lambda t: last if t[0] is None else t[0]["mean"], reverse=reverse)
    return [name for _, name in ordered]


def model_study(
    factory: Callable[..., Any],
    X: Any,
    y: Any = None,
    activations: Sequence[Any] = (ORIGINAL,),
    *,
    seeds: Sequence[int] = (0,),
    input_shape: Sequence[int] | None = None,
    params: Sequence[str] | str | None = None,
    outputs: str | int = "trace",
    dtype: Any = "float64",
    device: Any = "cpu",
    chunk: int | None = None,
    memory: int | None = None,
    train_steps: int = 0,
    lr: float | str = "auto",
    batch_size: int | None = None,
    log_every: int | None = None,
    data_seed: int = 0,
    label: str = "build_model",
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """eNTK spectrum at initialisation of ``factory``'s model with each activation swapped in.

    For every seed the model is built once (:func:`call_factory`) and each activation of
    ``activations`` (``"original"``: the model as built) is swapped in with the same weights
    (:func:`swap_activations`). Per seed: λ_min, λ_max, condition number, effective rank, trace,
    and the gradient-feature angles of the closest input pairs (Liu & Hui: cos ∠(∇f(x_i), ∇f(x_j))
    = Θ_ij/√(Θ_ii Θ_jj)); with ``train_steps`` the measured GD loss against the eNTK's prediction
    (:func:`train_model`). Returns a JSON-ready dict: ``model``, ``targets``, ``results`` (one per
    activation, with ``per_seed`` and ``summary`` = mean/std/min/max over seeds) and ``ranking``.
    """
    from ..core.validate import check_inputs
    from .depth import pair_angles, pair_indices

    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=np.float64)
    Xv = check_inputs(arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr)
    n, d = Xv.shape
    shape = tuple(int(s) for s in input_shape) if input_shape else (d,)
    if any(s < 1 for s in shape) or math.prod(shape) != d:
        raise ActspecError(
            f"input shape {','.join(map(str, shape))} has {math.prod(shape)} entries but the data "
            f"rows have {d}; give --input-shape whose product is {d}"
        )
    Xin = Xv.reshape(n, *shape)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ActspecError("give at least one seed")
    acts = list(activations) or [ORIGINAL]
    resolved = [None if _is_original(a) else make_activation(a) for a in acts]
    steps = int(train_steps or 0)
    if steps < 0:
        raise ActspecError(f"train_steps must be >= 0 (got {train_steps})")
    pi, pj = pair_indices(n, seed=data_seed)
    pairs = (pi, pj, pair_angles(Xv @ Xv.T, pi, pj))
    rows: list[dict[str, Any]] = [
        {"activation": ORIGINAL if r is None else r.name, "kink_class": None if r is None else r.kink_class,
         "per_seed": []}
        for r in resolved
    ]
    kw = {"params": params, "dtype": dtype, "device": device, "chunk": chunk, "memory": memory}
    model_info: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    Y = None
    for seed in seeds:
        base = call_factory(factory, seed=seed, input_shape=shape, label=label)
        if not model_info:
            model_info = _describe_model(base, Xin, label)
            C = model_info["outputs"]
            mode = cotangents(outputs, C, torch.float64, torch.device("cpu"))[0]
            if steps:
                Y, targets = _targets(y, n, C if mode in ("trace", "blocks") else 1, data_seed)
        for row, act in zip(rows, resolved, strict=True):
            if act is None:
                net, row["sites"] = base, activation_sites(base)
            else:
                net, row["sites"] = swap_activations(base, act, return_sites=True)
            # training C outputs needs the nC x nC kernel; its diagonal blocks sum to the trace
            blocks = bool(steps) and mode == "trace" and C > 1
            info: dict[str, Any] = {}
            t0 = time.perf_counter()
            K_train = entk(net, Xin, outputs="blocks" if blocks else outputs, info=info, **kw)
            rec: dict[str, Any] = {"seed": seed, "seconds": time.perf_counter() - t0}
            K = _trace_of_blocks(K_train, n) if blocks else K_train
            rec.update(_kernel_record(K if mode != "blocks" else _trace_of_blocks(K, n), K, pairs))
            row.setdefault("plan", info.get("plan"))
            if steps:
                assert Y is not None
                tr = train_model(net, Xin, Y, K_train, steps=steps, lr=lr, params=params,
                                 outputs=outputs, batch_size=batch_size, log_every=log_every,
                                 seed=seed, dtype=dtype, device=device)
                rec.update(training=tr, final_loss=tr["final_loss"],
                           final_predicted_loss=tr["final_predicted_loss"])
            row["per_seed"].append(rec)
            if on_result is not None:
                on_result({"activation": row["activation"], **rec})
    for row in rows:
        per = row["per_seed"]
        row["summary"] = {k: _stats([r.get(k) for r in per]) for k in _SUMMARY_KEYS}
        row["condition_number_is_lower_bound"] = any(r.get("condition_number_is_lower_bound") for r in per)
    return {"model": model_info, "input_shape": list(shape), "seeds": seeds, "targets": targets,
            "results": rows, "ranking": _ranking(rows, steps)}


def _is_original(a: Any) -> bool:
    return isinstance(a, str) and a.strip().lower() == ORIGINAL


def _kernel_record(Kn: np.ndarray, K: np.ndarray, pairs: tuple[np.ndarray, ...]) -> dict[str, Any]:
    """Spectrum of K and the gradient angles of the n x n kernel Kn over the input pairs
    (i, j, input angle): at the closest pair, over the 1 % closest pairs, and the binned curve."""
    from .depth import angle_curve, kernel_spectrum, pair_angles

    pi, pj, a_in = pairs
    rec = dict(kernel_spectrum(K, "auto"))
    if not a_in.size:
        return rec
    a_gr = pair_angles(Kn, pi, pj)
    curve = angle_curve(a_in, a_gr)
    close = np.argsort(a_in, kind="stable")[: max(1, math.ceil(0.01 * a_in.size))]
    rec.update(
        closest_input_angle_deg=math.degrees(curve["min_input_angle"]),
        closest_gradient_angle_deg=math.degrees(curve["gradient_angle_at_min"]),
        closest_pairs_input_angle_deg=float(np.degrees(a_in[close].mean())),
        closest_pairs_gradient_angle_deg=float(np.degrees(a_gr[close].mean())),
        ratio_small=curve.get("ratio_small"),
        angles=curve,
    )
    return rec


def _ranking(rows: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "by_condition_number": _order(rows, "condition_number"),
        "by_lambda_min": _order(rows, "lambda_min", reverse=True),
        "by_final_loss": _order(rows, "final_loss") if steps else None,
        "by_predicted_loss": _order(rows, "final_predicted_loss") if steps else None,
    }
    if steps and out["by_final_loss"] and out["by_condition_number"]:
        out["condition_number_ranks_like_training"] = out["by_condition_number"] == out["by_final_loss"]
        out["prediction_ranks_like_training"] = out["by_predicted_loss"] == out["by_final_loss"]
    return out


def _trace_of_blocks(K: np.ndarray, n: int) -> np.ndarray:
    """Σ_c of the diagonal blocks of an output-major (nC x nC) kernel: the trace NTK."""
    out = K[:n, :n].copy()
    for c in range(1, K.shape[0] // n):
        out += K[c * n : (c + 1) * n, c * n : (c + 1) * n]
    return out


def _describe_model(model: nn.Module, Xin: np.ndarray, label: str) -> dict[str, Any]:
    probe = torch.as_tensor(Xin[: min(2, len(Xin))], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = copy_model(model, torch.float64, torch.device("cpu"))
    try:
        with torch.no_grad():
            out = net(probe)
    except Exception as exc:  # noqa: BLE001 - the user's forward on the data's shape
        raise ActspecError(
            f"the model from {label} fails on inputs of shape {tuple(probe.shape)} "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); give --input-shape "
            "(e.g. 3,32,32 for images) or check in_features/input_shape in the factory"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim == 0 or out.shape[0] != probe.shape[0]:
        raise ActspecError(
            f"the model from {label} must return a tensor of shape (batch, ...); got "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
        )
    return {
        "factory": label,
        "class": type(model).__name__,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "outputs": int(out.reshape(probe.shape[0], -1).shape[1]),
        "activation_sites": activation_sites(model),
    }


def _targets(y: Any, n: int, C: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    from .training import make_targets

    if y is not None:
        Y = make_targets(y, n, "mse").Y
        if Y.shape[1] == C:
            return Y, {"source": "data labels", "shape": list(Y.shape)}
        why = f"the labels give {Y.shape[1]} target column(s), the model {C} trained output(s)"
    else:
        why = "the data have no labels"
    return _seeded_targets(n, C, seed), {"source": "seeded random ±1", "shape": [n, C], "why": why}
