"""Training the two-layer net and predicting its loss from the spectrum of G (SCIENCE §1, §2).

The network (all init schemes of :mod:`actspec.inits`, C outputs)::

    f_q(x) = s_a sum_k a_kq phi(w_k . x + b_k),   s_a = 1/sqrt(m) (dzps), 1 (fanin, fanout)

is trained by full-batch gradient descent (or mini-batch SGD with ``batch_size``) on

* ``loss="mse"``: L = 1/2 sum_i ||y_i - f(x_i)||^2 (sum over points, as in the theory), or
* ``loss="ce"``:  L = sum_i -log softmax(f(x_i))_{y_i} (multi-class, paper appendix M.3),

with only W trained (``train="hidden"``, the default) or both layers (``train="both"``); the biases
of fanin/fanout are fixed at their initial values (G has no bias term).

Learning rate units. ``lr`` (eta) is the step of the function-space dynamics in the units of the
G-matrix that :func:`actspec.gram` reports, u <- u - eta K grad_u L with K = G (or G + H), for every
init scheme. The parameter steps are eta * gram_factor(m) / s_a^2 for W and eta / (m s_a^2) for a:
both equal eta for dzps; fanin trains a with eta/m and fanout both layers with eta/m (the paper's
appendix D.1 "eta = 1/m for Init(fanout)"). The steps actually used are recorded in the results.

Memory and speed: weights live in neuron chunks on the torch device; a GD step is, per chunk,
U = X W_c^T + b_c (n x k), E = s_a phi'(U) * (R A_c^T), grad W_c = E^T X, grad A_c = s_a phi(U)^T R
(R = dL/df, n x C): two (n x k x d) matmuls and a few elementwise passes; the n x m x d gradient
is never formed. Pre-activations are cached between steps when they fit (``cache_bytes``).

Prediction (eq. 3 and Theorem 4.6): with K(0) = V diag(lambda) V^T and r0 = u(0) - y,
predicted loss(t) = 1/2 ||(I - eta K)^t r0||^2 = 1/2 sum_j (1 - eta lambda_j)^{2t} (v_j . r0)^2, and
its gradient-flow form 1/2 sum_j exp(-2 eta lambda_j t) (v_j . r0)^2; the same with G∞ (same u(0)).
For SGD and cross-entropy the prediction is the linearised (fixed-kernel) model run in function
space with the same batches: u <- u - eta K[:, B] grad_{u_B} L_B.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..activations.base import Activation
from ..activations.registry import activation
from ..core.devices import check_device
from ..core.errors import ActspecError
from ..core.inits import InitScheme, init_scheme, sample_block
from ..core.validate import check_inputs
from ..finite.empirical import resolve_device
from ..finite.gram import gram
from ..kernels.gram import normalization_constant

__all__ = [
    "train",
    "train_run",
    "TwoLayerNet",
    "Targets",
    "make_targets",
    "kernel",
    "predicted_loss_gd",
    "predicted_loss_flow",
    "predicted_epochs_to_target",
    "linearized_losses",
    "epoch_batches",
    "training_estimate",
    "check_training_budget",
    "log_epochs",
    "LOSSES",
    "TRAINS",
]

LOSSES = ("mse", "ce")
TRAINS = ("hidden", "both")
DIVERGENCE_FACTOR = 1e6  # loss > factor * initial loss (or non-finite) counts as divergence
MAX_WEIGHTS = 2_000_000_000  # m * d above this cannot be held in memory here
EIGH_LIMIT = 2048  # largest kernel eigendecomposed for the mse mode curves of SGD predictions
EIGVALS_LIMIT = 1024  # larger kernels: only lambda_max (Lanczos)


# ----------------------------------------------------------------------------- targets / losses


@dataclass
class Targets:
    """Training targets: ``Y`` (n, C) float64 regression targets (mse) or one-hot (ce),
    ``classes`` (n,) int64 for ce (else None), and the original class values."""

    loss: str
    Y: np.ndarray
    classes: np.ndarray | None
    class_values: list[Any] | None = None
    note: str = ""

    @property
    def n(self) -> int:
        return int(self.Y.shape[0])

    @property
    def C(self) -> int:
        return int(self.Y.shape[1])


def check_label_conflicts(X: np.ndarray, Y: np.ndarray) -> None:
    """Refuse identical input rows with different targets: no network can fit both.

    Duplicate rows with equal targets are allowed (G is then singular, which the spectrum shows).
    Candidates are found with a random projection (O(n d)) and confirmed exactly.
    """
    n = X.shape[0]
    if n < 2:
        return
    proj = X @ np.random.default_rng(0x0D0B).standard_normal(X.shape[1])
    order = np.argsort(proj, kind="stable")
    sp = proj[order]
    starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        if b - a < 2:
            continue
        group = np.sort(order[a:b])
        _, first, inv = np.unique(X[group], axis=0, return_index=True, return_inverse=True)
        for u, k in enumerate(np.asarray(inv).ravel()):
            i, j = int(group[first[k]]), int(group[u])
            if i != j and not np.array_equal(Y[i], Y[j]):
                i, j = min(i, j), max(i, j)
                raise ActspecError(
                    f"rows {i} and {j} of the data are identical but have different labels, so "
                    "no network can fit both and the loss cannot reach its target; remove the "
                    "duplicate rows ('actspec data' lists them) or give them the same label"
                )


def make_targets(y: Any, n: int, loss: str = "mse") -> Targets:
    """Turn labels into training targets.

    mse: float labels (n,) give one output; (n, C) floats give C outputs; integer class labels
    give one-hot targets (C outputs). ce: any labels with at least 2 distinct values, mapped to
    classes 0..C-1 in sorted order (so random +-1 labels become 2 classes).
    """
    if loss not in LOSSES:
        raise ActspecError(f"--loss must be one of {', '.join(LOSSES)} (got {loss!r})")
    if y is None:
        raise ActspecError("training needs labels; use --labels auto/random or a label file")
    try:
        arr = np.asarray(y)
        if arr.dtype == object:
            raise TypeError
        arr = arr.astype(np.float64) if not np.issubdtype(arr.dtype, np.integer) else arr
    except (TypeError, ValueError):
        raise ActspecError("labels must be numeric") from None
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ActspecError(
            f"got {arr.shape[0] if arr.ndim else 0} labels for {n} data rows; give one label per row"
        )
    if arr.ndim > 2:
        raise ActspecError(f"labels must have shape (n,) or (n, C), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ActspecError("labels contain NaN or inf; remove or fix those rows")
    if loss == "mse":
        if arr.ndim == 2:
            if arr.shape[1] == 0:
                raise ActspecError("labels have zero columns")
            return Targets("mse", np.ascontiguousarray(arr, dtype=np.float64), None)
        if np.issubdtype(arr.dtype, np.integer):
            vals, inv = np.unique(arr, return_inverse=True)
            Y = np.zeros((n, vals.size))
            Y[np.arange(n), inv] = 1.0
            return Targets(
                "mse", Y, inv.astype(np.int64), [v.item() for v in vals], "one-hot class targets"
            )
        return Targets("mse", arr.astype(np.float64).reshape(n, 1), None)
    if arr.ndim != 1:
        raise ActspecError("cross-entropy needs one class label per row (shape (n,))")
    if not np.issubdtype(arr.dtype, np.integer) and not np.all(arr == np.round(arr)):
        raise ActspecError("cross-entropy needs class labels (integers); got non-integer values")
    vals, inv = np.unique(arr, return_inverse=True)
    if vals.size < 2:
        raise ActspecError("cross-entropy needs at least 2 classes; the labels have only one value")
    Y = np.zeros((n, vals.size))
    Y[np.arange(n), inv] = 1.0
    return Targets("ce", Y, inv.astype(np.int64), [v.item() for v in vals])


def _diverged(run: dict[str, Any], epoch: int, loss: float, limit: float) -> bool:
    """Mark ``run`` diverged at ``epoch`` when ``loss`` is not finite or above ``limit``."""
    if math.isfinite(loss) and loss <= limit:
        return False
    run["status"] = "diverged"
    run["diverged_at_epoch"] = epoch
    run["loss_at_divergence"] = loss if math.isfinite(loss) else None
    return True


def _loss_and_residual(
    f: torch.Tensor, Y: torch.Tensor, loss: str
) -> tuple[float, torch.Tensor]:
    """Loss (summed over points, float64) and R = dL/df (same dtype as f)."""
    if loss == "mse":
        R = f - Y
        return 0.5 * float(torch.sum(R.double() ** 2)), R
    fd = f.double()
    lse = torch.logsumexp(fd, dim=1)
    val = float(torch.sum(lse - torch.sum(fd * Y.double(), dim=1)))
    R = torch.softmax(fd, dim=1).to(f.dtype) - Y
    return val, R


def _np_loss(F: np.ndarray, Y: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    """Loss and gradient in numpy for (n, C) outputs (function-space predictions)."""
    if loss == "mse":
        R = F - Y
        return 0.5 * float(np.sum(R * R)), R
    mx = np.max(F, axis=1, keepdims=True)
    Z = np.exp(F - mx)
    S = np.sum(Z, axis=1, keepdims=True)
    lse = (mx + np.log(S))[:, 0]
    val = float(np.sum(lse - np.sum(F * Y, axis=1)))
    return val, Z / S - Y


# ----------------------------------------------------------------------------- the network


def output_scale(scheme: InitScheme, m: int) -> float:
    """s_a in f = s_a sum_k a_k phi(w_k . x + b_k)."""
    return 1.0 / math.sqrt(m) if scheme.name == "dzps" else 1.0


def layer_rates(lr: float, scheme: InitScheme, m: int) -> tuple[float, float]:
    """Parameter steps (W, a) that make eta the step of u <- u - eta K grad_u L in gram units."""
    s2 = output_scale(scheme, m) ** 2
    return lr * scheme.gram_factor(m) / s2, lr / (m * s2)


def torch_functions(act: Activation) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                Callable[[torch.Tensor], torch.Tensor]]:
    """(phi, phi') on tensors: the activation's fused torch kernels (relu, leaky_relu, elu and
    tanh have them; the same values as ``act.phi_torch``/``act.dphi_torch``, including
    phi'(0) = phi'(0-)), else its own functions."""
    return act.torch_functions()


def derivative_from_value(act: Activation) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """phi' as a function of the value p = phi(u), where that is exact, else None.

    relu, leaky_relu (alpha >= 0), elu (alpha > 0) and tanh, with the activation's positive
    scale c: their sign of p is the sign of u, and tanh' = c - p^2/c, elu' = p + c alpha for
    u <= 0. A training step that keeps phi(U) between epochs (it is computed for the outputs
    anyway) then needs no second transcendental pass for phi'(U): tanh epochs take about half
    the time. Returns a fresh tensor (never a view of p).
    """
    return act.derivative_from_value()


def _auto_train_chunk(nb: int, d: int, C: int, itemsize: int, m: int) -> int:
    """Neurons per chunk for ``nb`` rows: cache-sized blocks, within a memory bound.

    The elementwise passes of a step (phi, phi', their products) are memory-bound. An (nb, k)
    block of about 1 MiB stays in a core's L2 cache between the passes: at nb = 50, m = 10^6 this
    measured 1.5-5x faster per epoch than 256 MiB chunks (swish 1.03 -> 0.19 s, relu 0.26 ->
    0.14 s, one core). Chunks stay >= 1024 neurons so Python overhead per chunk is negligible,
    and the temporaries (~6 blocks plus the chunk's weights) stay within 256 MiB.
    """
    k_mem = (256 * 2**20) // max(1, (6 * nb + 3 * d + 4 * C) * itemsize)
    k_cache = (1 << 20) // max(1, nb * itemsize)
    return int(max(256, min(m, k_mem, max(1024, k_cache))))


class TwoLayerNet:
    """f(x) = s_a sum_k a_k phi(w_k . x + b_k), weights stored in neuron chunks on a torch device.

    ``W`` (m, d), ``A`` (m, C), ``b`` (m,) or None. Only what the theory needs: forward,
    dL/dW and dL/dA for a given R = dL/df, and an in-place GD step.
    """

    def __init__(
        self,
        W: Any,
        A: Any,
        b: Any,
        *,
        act: Activation,
        scale: float,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = "cpu",
        chunk: int | None = None,
        batch_rows: int | None = None,
    ) -> None:
        self.act = act
        self.phi, self.dphi = torch_functions(act)
        self.dphi_p = derivative_from_value(act)
        self.scale = float(scale)
        self.dtype = dtype
        self.device = resolve_device(device)
        Wt = torch.as_tensor(W)
        At = torch.as_tensor(A)
        if At.ndim == 1:
            At = At[:, None]
        self.m, self.d = int(Wt.shape[0]), int(Wt.shape[1])
        self.C = int(At.shape[1])
        nb = batch_rows or 64
        k = int(chunk) if chunk else _auto_train_chunk(nb, self.d, self.C, dtype.itemsize, self.m)
        self.chunk = k
        bt = None if b is None else torch.as_tensor(b)
        if bt is not None and not bool(torch.any(bt != 0)):
            bt = None
        self.W: list[torch.Tensor] = []
        self.A: list[torch.Tensor] = []
        self.b: list[torch.Tensor] | None = [] if bt is not None else None
        for s in range(0, self.m, k):
            e = min(self.m, s + k)
            self.W.append(Wt[s:e].to(device=self.device, dtype=dtype).clone())
            self.A.append(At[s:e].to(device=self.device, dtype=dtype).clone())
            if self.b is not None and bt is not None:
                self.b.append(bt[s:e].to(device=self.device, dtype=dtype).clone())
        self.W0 = [w.clone() for w in self.W]
        self.A0 = [a.clone() for a in self.A]

    @classmethod
    def initialize(
        cls,
        d: int,
        m: int,
        *,
        act: Activation,
        init: str = "dzps",
        seed: int = 0,
        outputs: int = 1,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = "cpu",
        chunk: int | None = None,
        batch_rows: int | None = None,
    ) -> TwoLayerNet:
        """The network that ``gram(X, act, m, init=init, seed=seed, outputs=outputs)`` describes."""
        scheme = init_scheme(init)
        net = cls.__new__(cls)
        net.act = act
        net.phi, net.dphi = torch_functions(act)
        net.dphi_p = derivative_from_value(act)
        net.scale = output_scale(scheme, m)
        net.dtype = dtype
        net.device = resolve_device(device)
        net.m, net.d, net.C = int(m), int(d), int(outputs)
        nb = batch_rows or 64
        k = int(chunk) if chunk else _auto_train_chunk(nb, d, outputs, dtype.itemsize, m)
        net.chunk = k
        net.W, net.A = [], []
        net.b = [] if scheme.bias_std(m) > 0 else None
        for s in range(0, m, k):
            e = min(m, s + k)
            w, a, b = sample_block(d, m, s, e, scheme, seed, outputs)
            net.W.append(w.to(device=net.device, dtype=dtype))
            net.A.append(a.to(device=net.device, dtype=dtype))
            if net.b is not None:
                net.b.append(b.to(device=net.device, dtype=dtype))
        net.W0 = [w.clone() for w in net.W]
        net.A0 = [a.clone() for a in net.A]
        return net

    # ---- evaluation --------------------------------------------------------------------------
    def preact(self, Xt: torch.Tensor, c: int) -> torch.Tensor:
        if self.b is not None:
            return torch.addmm(self.b[c], Xt, self.W[c].T)
        return Xt @ self.W[c].T

    def forward(
        self, Xt: torch.Tensor, keep: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Outputs f (n, C); with ``keep`` also what each chunk's next gradient needs (``kept``):
        phi(U) where phi' follows from it (:func:`derivative_from_value`), else U."""
        f = torch.zeros(Xt.shape[0], self.C, dtype=self.dtype, device=self.device)
        Us: list[torch.Tensor] | None = [] if keep else None
        for c in range(len(self.W)):
            U = self.preact(Xt, c)
            P = self.phi(U)
            f.addmm_(P, self.A[c])
            if Us is not None:
                Us.append(self.kept(U, P))
        f.mul_(self.scale)
        return f, Us

    def kept(self, U: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        """What to keep of a chunk between steps: P = phi(U) when phi' can be had from it."""
        return P if self.dphi_p is not None else U

    def chunk_gradients(
        self, Xt: torch.Tensor, R: torch.Tensor, c: int, U: torch.Tensor | None = None,
        want_a: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """dL/dW_c (k, d) and dL/dA_c (k, C) for R = dL/df (n, C); ``U`` is the chunk's
        ``kept`` tensor from :meth:`forward` (None: computed here)."""
        P: torch.Tensor | None = None
        dphi_p = self.dphi_p
        if U is None:
            U = self.preact(Xt, c)
        elif dphi_p is not None:
            P = U  # kept is phi(U)
        D = self.dphi(U) if P is None or dphi_p is None else dphi_p(P)  # (n, k), a fresh tensor
        if self.C == 1:
            # grad w_k = s_a a_k sum_i phi'(u_ik) r_i x_i: one matmul, no further (n, k) pass
            gW = ((R * Xt).T @ D).T.mul_(self.A[c] * self.scale)
        else:
            E = D.mul_(R @ self.A[c].T)  # D is a fresh tensor (never aliases U)
            if self.scale != 1.0:
                E.mul_(self.scale)
            gW = E.T @ Xt
        gA = None
        if want_a:
            gA = ((self.phi(U) if P is None else P).T @ R).mul_(self.scale)
        return gW, gA

    def gradients(self, Xt: torch.Tensor, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full dL/dW (m, d) and dL/dA (m, C) (for checks on small nets)."""
        gs = [self.chunk_gradients(Xt, R, c) for c in range(len(self.W))]
        return torch.cat([g[0] for g in gs]), torch.cat([g[1] for g in gs])  # type: ignore[misc]

    def step(
        self,
        Xt: torch.Tensor,
        R: torch.Tensor,
        lr_w: float,
        lr_a: float,
        Us: list[torch.Tensor] | None = None,
        recompute: bool = False,
        keep: bool = False,
    ) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
        """One simultaneous GD step W -= lr_w dL/dW, A -= lr_a dL/dA (lr_a = 0: A fixed).

        With ``recompute`` the outputs at the new weights on the same rows are returned (and
        their pre-activations with ``keep``), at the cost of one more matmul per chunk.
        """
        f = (
            torch.zeros(Xt.shape[0], self.C, dtype=self.dtype, device=self.device)
            if recompute
            else None
        )
        newU: list[torch.Tensor] | None = [] if (recompute and keep) else None
        # a step beyond the dtype's range (e.g. lr = 1e308 in float32) is taken as the largest
        # representable one: the weights overflow to inf and the run is marked diverged (torch
        # refuses an alpha it cannot convert)
        big = float(torch.finfo(self.dtype).max)
        lr_w, lr_a = min(float(lr_w), big), min(float(lr_a), big)
        for c in range(len(self.W)):
            U = Us[c] if Us is not None else None
            gW, gA = self.chunk_gradients(Xt, R, c, U, want_a=lr_a != 0.0)
            self.W[c].add_(gW, alpha=-lr_w)
            if gA is not None:
                self.A[c].add_(gA, alpha=-lr_a)
            del gW, gA
            if f is not None:
                U = self.preact(Xt, c)
                P = self.phi(U)
                f.addmm_(P, self.A[c])
                if newU is not None:
                    newU.append(self.kept(U, P))
            if Us is not None:
                Us[c] = None  # type: ignore[call-overload]
        if f is not None:
            f.mul_(self.scale)
        return f, newU

    # ---- state -------------------------------------------------------------------------------
    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(W (m, d), a (m,) or (m, C), b (m,) or None) as float64 numpy arrays."""
        W = torch.cat(self.W).to(device="cpu", dtype=torch.float64).numpy()
        A = torch.cat(self.A).to(device="cpu", dtype=torch.float64).numpy()
        b = (
            None
            if self.b is None
            else torch.cat(self.b).to(device="cpu", dtype=torch.float64).numpy()
        )
        return W, (A[:, 0] if self.C == 1 else A), b

    def movement(self) -> dict[str, float]:
        """||W(t) - W(0)||_F, ||W(0)||_F, ||A(t) - A(0)||_F, ||A(0)||_F, max_k ||w_k(t) - w_k(0)||."""
        dw = sum(float(torch.sum((w - w0).double() ** 2)) for w, w0 in zip(self.W, self.W0, strict=True))
        nw = sum(float(torch.sum(w0.double() ** 2)) for w0 in self.W0)
        da = sum(float(torch.sum((a - a0).double() ** 2)) for a, a0 in zip(self.A, self.A0, strict=True))
        na = sum(float(torch.sum(a0.double() ** 2)) for a0 in self.A0)
        mx = max(float(torch.max(torch.linalg.vector_norm((w - w0).double(), dim=1)))
                 for w, w0 in zip(self.W, self.W0, strict=True))
        return {
            "W": math.sqrt(dw),
            "W0": math.sqrt(nw),
            "A": math.sqrt(da),
            "A0": math.sqrt(na),
            "max_neuron": mx,
        }


# ----------------------------------------------------------------------------- kernels


def kernel(
    X: np.ndarray,
    net: TwoLayerNet,
    *,
    train: str,
    scheme: InitScheme,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """The kernel K = G (``train="hidden"``) or G + H (``"both"``) of the net's current weights,
    in gram units (nC x nC, grouped by output), float64 — via :func:`actspec.gram`'s finite-width
    code path with explicit weights."""
    from ..finite.empirical import empirical_gram

    W, A, b = net.weights()
    return empirical_gram(
        X,
        net.act,
        net.m,
        train=train,  # type: ignore[arg-type]
        scheme=scheme,
        weights=(W, A) if b is None else (W, A, b),
        outputs=net.C,
        dtype=torch.float64,
        device=device if device is not None else net.device,
    )


def _eigh(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues and eigenvectors of symmetric K (float64 LAPACK through torch, which
    honours torch's thread setting; scipy's threaded BLAS can be very slow on a busy machine)."""
    Kt = torch.from_numpy(np.ascontiguousarray(0.5 * (K + K.T), dtype=np.float64))
    lam, V = torch.linalg.eigh(Kt)
    return lam.numpy(), V.numpy()


def _eigvalsh(K: np.ndarray) -> np.ndarray:
    Kt = torch.from_numpy(np.ascontiguousarray(0.5 * (K + K.T), dtype=np.float64))
    return torch.linalg.eigvalsh(Kt).numpy()


def _extremes(K: np.ndarray) -> tuple[float | None, float]:
    """(lambda_min, lambda_max) of a symmetric K; lambda_min is None for large K (Lanczos for max)."""
    K = 0.5 * (K + K.T)
    if K.shape[0] <= EIGVALS_LIMIT:
        lam = _eigvalsh(K)
        return float(lam[0]), float(lam[-1])
    from scipy.sparse.linalg import eigsh

    top = eigsh(K, k=1, which="LA", return_eigenvectors=False, tol=1e-8)
    return None, float(top[0])


def _flat(R: np.ndarray) -> np.ndarray:
    """(n, C) -> output-major vector (index q*n + i), the ordering of the nC x nC kernel."""
    return np.ascontiguousarray(np.asarray(R, dtype=np.float64).T).reshape(-1)


def _curve_from_modes(
    lam: np.ndarray, c2: np.ndarray, lr: float, epochs: np.ndarray, flow: bool = False
) -> np.ndarray:
    t = np.asarray(epochs, dtype=np.float64)[:, None]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if flow:
            expo = -2.0 * lr * lam[None, :] * t
        else:
            logq = np.log(np.abs(1.0 - lr * lam))[None, :]
            expo = np.where(t == 0, 0.0, 2.0 * t * logq)
        terms = np.exp(np.minimum(expo, 700.0)) * c2[None, :]
        out = 0.5 * np.sum(terms, axis=1)
        out[np.any(expo > 700.0, axis=1) & (np.max(c2) > 0)] = np.inf
    return out


def predicted_loss_gd(K: np.ndarray, r0: np.ndarray, lr: float, epochs: Sequence[int]) -> np.ndarray:
    """1/2 ||(I - lr K)^t r0||^2 at each t in ``epochs`` (from the eigendecomposition of K).

    ``r0``: the initial residual u(0) - y as (n, C) or output-major flat vector. Entries that
    overflow (lr > 2/lambda_max) are inf.
    """
    lam, V = _eigh(np.asarray(K, dtype=np.float64))
    c = V.T @ (_flat(r0) if np.ndim(r0) == 2 else np.asarray(r0, dtype=np.float64))
    return _curve_from_modes(lam, c * c, lr, np.asarray(epochs))


def predicted_loss_flow(K: np.ndarray, r0: np.ndarray, times: Sequence[float]) -> np.ndarray:
    """Gradient flow du/dtau = -K (u - y): 1/2 sum_j exp(-2 lambda_j tau) (v_j . r0)^2."""
    lam, V = _eigh(np.asarray(K, dtype=np.float64))
    c = V.T @ (_flat(r0) if np.ndim(r0) == 2 else np.asarray(r0, dtype=np.float64))
    return _curve_from_modes(lam, c * c, 1.0, np.asarray(times, dtype=np.float64), flow=True)


def _epochs_to_target_modes(
    lam: np.ndarray, c2: np.ndarray, lr: float, target: float, max_epochs: float = 1e15
) -> int | None:
    with np.errstate(over="ignore", invalid="ignore"):
        q = (1.0 - lr * lam) ** 2  # inf for an absurd lr: unstable, as it should be
    scale = float(np.sum(c2)) or 1.0

    def loss_at(t: float) -> float:
        return float(_curve_from_modes(lam, c2, lr, np.array([t]))[0])

    if 0.5 * scale <= target:
        return 0
    unstable = (q > 1.0 + 1e-12) & (c2 > 1e-30 * scale)
    if np.any(unstable):
        # the predicted loss eventually grows: scan the early epochs only
        for t in range(1, 100_001):
            v = loss_at(t)
            if v <= target:
                return t
            if not math.isfinite(v) or v > 1e6 * scale:
                return None
        return None
    hi = 1.0
    while loss_at(hi) > target:
        hi *= 2.0
        if hi > max_epochs:
            return None
    lo = hi / 2.0 if hi > 1 else 0.0
    lo_i, hi_i = int(lo), int(hi)
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) // 2
        if loss_at(mid) <= target:
            hi_i = mid
        else:
            lo_i = mid
    return hi_i


def predicted_epochs_to_target(
    K: np.ndarray, r0: np.ndarray, lr: float, target: float, max_epochs: float = 1e15
) -> int | None:
    """Smallest t with 1/2 ||(I - lr K)^t r0||^2 <= target (None: never, e.g. below the floor
    1/2 ||P_0 r0||^2 left by zero eigenvalues, or divergent)."""
    lam, V = _eigh(np.asarray(K, dtype=np.float64))
    c = V.T @ (_flat(r0) if np.ndim(r0) == 2 else np.asarray(r0, dtype=np.float64))
    return _epochs_to_target_modes(lam, c * c, lr, target, max_epochs)


def epoch_batches(n: int, batch_size: int | None, seed: int, epoch: int) -> list[np.ndarray]:
    """The mini-batches of one epoch (a seeded permutation split into batches); full batch if None."""
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    rng = np.random.default_rng([int(seed), 0x5D6, int(epoch)])
    perm = rng.permutation(n)
    return [np.sort(perm[s : s + batch_size]) for s in range(0, n, batch_size)]


def linearized_losses(
    K: np.ndarray,
    u0: np.ndarray,
    Y: np.ndarray,
    lr: float,
    epochs: int,
    *,
    loss: str = "mse",
    batch_size: int | None = None,
    seed: int = 0,
    blockdiag: bool = False,
    on_epoch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Losses (epochs + 1 values) of the linearised model u <- u - lr K[:, B] grad_{u_B} L_B run in
    function space with the batches of :func:`epoch_batches` (full batch when ``batch_size`` is
    None). ``K``: nC x nC (output-major), or n x n with ``blockdiag`` (K = I_C kron K)."""
    F = np.array(u0, dtype=np.float64)  # (n, C)
    n, C = F.shape
    K = np.asarray(K, dtype=np.float64)
    out = np.full(epochs + 1, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for e in range(epochs + 1):
            val, _ = _np_loss(F, Y, loss)
            if not math.isfinite(val) or (e > 0 and val > DIVERGENCE_FACTOR * max(out[0], 1e-300)):
                break
            out[e] = val
            if e == epochs:
                break
            for idx in epoch_batches(n, batch_size, seed, e):
                _, Rb = _np_loss(F[idx], Y[idx], loss)
                if blockdiag:
                    F -= lr * (K[:, idx] @ Rb)
                else:
                    fi = (np.arange(C)[:, None] * n + idx[None, :]).reshape(-1)
                    F -= lr * (K[:, fi] @ _flat(Rb)).reshape(C, n).T
            if on_epoch is not None:
                on_epoch(e)
    return out


def log_epochs(epochs: int, log_every: int | None) -> list[int]:
    """Logged epochs: 0, k, 2k, ... and the last one (k defaults to epochs // 100)."""
    k = int(log_every) if log_every else max(1, epochs // 100)
    out = list(range(0, epochs + 1, k))
    if out[-1] != epochs:
        out.append(epochs)
    return out


# ----------------------------------------------------------------------------- one run


@dataclass
class _Prediction:
    lam: np.ndarray | None  # eigenvalues and squared projections of r0 (mse)
    c2: np.ndarray | None
    curve: np.ndarray | None = None  # losses at every epoch (simulated predictions)


@dataclass
class RunSetup:
    X: np.ndarray
    targets: Targets
    act: Activation
    label: str
    width: int
    lr: float
    epochs: int
    train: str
    scheme: InitScheme
    loss: str
    batch_size: int | None
    seed: int
    logs: list[int]
    target: float
    dtype: torch.dtype
    device: torch.device
    chunk: int | None
    predict_limit: int
    drift_limit: int
    cache_bytes: int
    K_inf: np.ndarray | None = None  # n x n (block-diagonal over outputs when C > 1)
    drift_idx: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def _to_float_list(a: Any) -> list[float | None]:
    out: list[float | None] = []
    for v in np.asarray(a, dtype=np.float64).tolist():
        out.append(v if math.isfinite(v) else None)
    return out


def _spectrum_summary(lam: np.ndarray) -> dict[str, float]:
    lmax = float(lam[-1])
    res = lam.size * np.finfo(np.float64).eps * max(abs(lmax), 1e-300)
    return {"lambda_max": lmax, "lambda_min": float(lam[0]), "resolution": float(res)}


def train_run(
    s: RunSetup,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train one network (one activation, one seed) and predict its loss; see :func:`train`."""
    warn = on_warning or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=3))
    X, T = s.X, s.targets
    n, d = X.shape
    C = T.C
    full_batch = s.batch_size is None or s.batch_size >= n
    net = TwoLayerNet.initialize(
        d, s.width, act=s.act, init=s.scheme.name, seed=s.seed, outputs=C, dtype=s.dtype,
        device=s.device, chunk=s.chunk, batch_rows=n if full_batch else s.batch_size,
    )
    lr_w, lr_a = layer_rates(s.lr, s.scheme, s.width)
    if s.train == "hidden":
        lr_a = 0.0
    Xt = torch.as_tensor(X, dtype=s.dtype, device=s.device)
    Yt = torch.as_tensor(T.Y, dtype=s.dtype, device=s.device)
    run: dict[str, Any] = {"seed": s.seed, "status": "ok", "lr_hidden": lr_w, "lr_output": lr_a}
    logs = set(s.logs)

    # ---- kernels at initialisation and predictions ------------------------------------------
    t_k = time.perf_counter()
    nC = n * C
    K0 = kernel(X, net, train=s.train, scheme=s.scheme) if nC <= s.predict_limit else None
    Xd = X if s.drift_idx is None else X[s.drift_idx]
    if s.drift_idx is None and K0 is not None:
        Kd0 = K0
    else:
        Kd0 = kernel(Xd, net, train=s.train, scheme=s.scheme)
    kernel_seconds = time.perf_counter() - t_k
    norm_Kd0 = float(np.linalg.norm(Kd0))
    lam_d0 = _eigvalsh(Kd0)

    with torch.no_grad():
        f0, _ = net.forward(Xt)
    u0 = f0.double().cpu().numpy()
    r0 = u0 - T.Y
    L0, _ = _np_loss(u0, T.Y, s.loss)

    preds: dict[str, _Prediction] = {}
    extremes: dict[str, tuple[float | None, float]] = {}
    simulate = s.loss == "ce" or not full_batch
    for key, Kk, blockdiag in (("finite", K0, False), ("inf", s.K_inf, C > 1)):
        if Kk is None:
            continue
        size = Kk.shape[0]
        p = _Prediction(None, None)
        if s.loss == "mse" and (not simulate or size <= EIGH_LIMIT):
            if blockdiag:
                lam_b, V = _eigh(Kk)
                lam = np.tile(lam_b, C)
                c = np.concatenate([V.T @ r0[:, q] for q in range(C)])
            else:
                lam, V = _eigh(Kk)
                c = V.T @ _flat(r0)
            p.lam, p.c2 = lam, c * c
            extremes[key] = (float(lam[0]), float(lam[-1]))
        else:
            extremes[key] = _extremes(Kk)
        if simulate:
            p.curve = linearized_losses(
                Kk, u0, T.Y, s.lr, s.epochs, loss=s.loss, batch_size=s.batch_size, seed=s.seed,
                blockdiag=blockdiag,
            )
        preds[key] = p
    if "finite" in extremes or "inf" in extremes:
        lmin, lmax = extremes.get("finite") or extremes["inf"]
    else:
        lmin, lmax = float(lam_d0[0]), float(lam_d0[-1])
    run["lambda_max"] = lmax
    run["lambda_min"] = lmin
    run["lr_limit"] = 2.0 / lmax if lmax > 0 else None
    if lmax > 0 and s.lr > 2.0 / lmax:
        msg = (
            f"{s.label}: lr={s.lr:g} is above 2/lambda_max = {2.0 / lmax:.4g} of the kernel at "
            f"initialisation: gradient descent will diverge"
            + ("" if full_batch else " (full batch; mini-batches have smaller lambda_max)")
            + "; lower --lr"
        )
        if msg not in s.warnings:
            s.warnings.append(msg)
            warn(msg)
    for key, suffix in (("finite", ""), ("inf", "_inf")):
        p = preds.get(key)  # type: ignore[assignment]
        if p is None:
            continue
        if p.lam is not None and p.c2 is not None:
            res = p.lam.size * np.finfo(np.float64).eps * max(abs(float(p.lam[-1])), 1e-300)
            run["predicted_floor" + suffix] = 0.5 * float(np.sum(p.c2[p.lam <= res]))
        if p.curve is None:
            run["predicted_epochs_to_target" + suffix] = _epochs_to_target_modes(
                p.lam, p.c2, s.lr, s.target  # type: ignore[arg-type]
            )
        else:
            hit = np.nonzero(p.curve <= s.target)[0]
            run["predicted_epochs_to_target" + suffix] = int(hit[0]) if hit.size else None

    def predicted_at(key: str, t: int) -> float | None:
        p = preds.get(key)
        if p is None:
            return None
        if p.curve is not None:
            v = float(p.curve[t])
        else:
            v = float(_curve_from_modes(p.lam, p.c2, s.lr, np.array([t]))[0])  # type: ignore[arg-type]
        return v if math.isfinite(v) else None

    # ---- records -----------------------------------------------------------------------------
    rec: dict[str, list[Any]] = {k: [] for k in (
        "epoch", "loss", "predicted_loss", "predicted_loss_inf", "predicted_loss_flow",
        "gram_drift", "lambda_max_shift", "lambda_min_t", "weight_movement",
        "weight_movement_relative", "max_neuron_movement", "output_weight_movement", "accuracy",
    )}

    def log(t: int, f: torch.Tensor, L: float) -> None:
        nonlocal kernel_seconds
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            Kd = Kd0 if t == 0 else kernel(Xd, net, train=s.train, scheme=s.scheme)
            ok = bool(np.all(np.isfinite(Kd)))
            drift = float(np.linalg.norm(Kd - Kd0)) / norm_Kd0 if ok and norm_Kd0 > 0 else None
            if ok:
                lam_t = _eigvalsh(Kd)
                lshift = (float(lam_t[-1]) - float(lam_d0[-1])) / float(lam_d0[-1])
                lmin_t = float(lam_t[0])
            else:
                lshift = lmin_t = None  # type: ignore[assignment]
        mv = net.movement()
        kernel_seconds += time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": t,
            "loss": L,
            "predicted_loss": predicted_at("finite", t),
            "predicted_loss_inf": predicted_at("inf", t),
            "predicted_loss_flow": None,
            "gram_drift": drift,
            "lambda_max_shift": lshift,
            "lambda_min_t": lmin_t,
            "weight_movement": mv["W"],
            "weight_movement_relative": mv["W"] / mv["W0"] if mv["W0"] > 0 else None,
            "max_neuron_movement": mv["max_neuron"],
            "output_weight_movement": mv["A"],
            "accuracy": None,
        }
        p = preds.get("finite")
        if s.loss == "mse" and p is not None and p.lam is not None and p.c2 is not None:
            v = float(_curve_from_modes(p.lam, p.c2, s.lr, np.array([t]), flow=True)[0])
            row["predicted_loss_flow"] = v
        if T.classes is not None:
            pred = torch.argmax(f, dim=1).cpu().numpy()
            row["accuracy"] = float(np.mean(pred == T.classes))
        for k, v in row.items():  # append all keys together (Ctrl-C safe)
            rec[k].append(v)

    losses_all: list[float] = []
    train_seconds = 0.0
    steps_done = 0
    div_limit = DIVERGENCE_FACTOR * max(L0, 1e-300)
    cache = n * s.width * s.dtype.itemsize <= s.cache_bytes
    t_epoch = 0
    try:
        with torch.no_grad():
            if full_batch:
                f, Us = net.forward(Xt, keep=cache)
                for t in range(s.epochs + 1):
                    t_epoch = t
                    L, R = _loss_and_residual(f, Yt, s.loss)
                    if _diverged(run, t, L, div_limit):
                        break
                    losses_all.append(L)
                    if t in logs:
                        log(t, f, L)
                    if on_progress is not None:
                        on_progress(t, s.epochs)
                    if t == s.epochs:
                        break
                    t0 = time.perf_counter()
                    f_new, Us = net.step(Xt, R, lr_w, lr_a, Us=Us, recompute=True, keep=cache)
                    assert f_new is not None
                    f = f_new
                    if s.device.type == "cuda":
                        torch.cuda.synchronize()
                    train_seconds += time.perf_counter() - t0
                    steps_done += 1
            else:
                bs = int(s.batch_size)  # type: ignore[arg-type]
                bcache = bs * s.width * s.dtype.itemsize <= s.cache_bytes
                for t in range(s.epochs + 1):
                    t_epoch = t
                    if t in logs or t == 0:
                        f, _ = net.forward(Xt)
                        L, _ = _loss_and_residual(f, Yt, s.loss)
                        if _diverged(run, t, L, div_limit):
                            break
                        losses_all.append(L)
                        log(t, f, L)
                    if on_progress is not None:
                        on_progress(t, s.epochs)
                    if t == s.epochs:
                        break
                    t0 = time.perf_counter()
                    bad = False
                    for idx in epoch_batches(n, bs, s.seed, t):
                        it = torch.as_tensor(idx, device=s.device)
                        Xb = Xt.index_select(0, it)
                        fb, Us = net.forward(Xb, keep=bcache)
                        Lb, Rb = _loss_and_residual(fb, Yt.index_select(0, it), s.loss)
                        if not math.isfinite(Lb) or Lb > div_limit:
                            bad = True
                            break
                        net.step(Xb, Rb, lr_w, lr_a, Us=Us)
                    if s.device.type == "cuda":
                        torch.cuda.synchronize()
                    train_seconds += time.perf_counter() - t0
                    steps_done += 1
                    if bad and _diverged(run, t + 1, math.nan, div_limit):
                        break
    except KeyboardInterrupt:
        run["status"] = "interrupted"
        run["interrupted_at_epoch"] = t_epoch

    run.update(rec)
    run["initial_loss"] = L0
    run["final_loss"] = rec["loss"][-1] if rec["loss"] else None
    # measured epochs to target: every epoch for full-batch GD, logged epochs for SGD
    hit_epochs = range(len(losses_all)) if full_batch else rec["epoch"]
    hit_losses = losses_all if full_batch else rec["loss"]
    run["epochs_to_target"] = next(
        (int(e) for e, v in zip(hit_epochs, hit_losses, strict=False) if v <= s.target), None
    )
    run["seconds_per_epoch"] = train_seconds / steps_done if steps_done else None
    run["kernel_seconds"] = kernel_seconds
    run["epochs_done"] = steps_done
    if all(v is None for v in rec["predicted_loss_flow"]):
        run.pop("predicted_loss_flow")
    if T.classes is None:
        run.pop("accuracy")
    if s.train == "hidden":
        run.pop("output_weight_movement")
    run["prediction_kernel"] = (
        "finite" if "finite" in preds else ("inf" if "inf" in preds else None)
    )
    if "finite" not in preds:
        # the contract's predicted_loss: fall back on the infinite-width prediction
        run["predicted_loss"] = list(rec["predicted_loss_inf"])
    pf = preds.get("finite")
    run["_eigenvalues_init"] = np.sort(pf.lam)[::-1] if pf is not None and pf.lam is not None else None
    return run


# ----------------------------------------------------------------------------- several runs

_MEAN_KEYS = (
    "loss", "predicted_loss", "predicted_loss_inf", "predicted_loss_flow", "gram_drift",
    "lambda_max_shift", "lambda_min_t", "weight_movement", "weight_movement_relative",
    "max_neuron_movement", "output_weight_movement", "accuracy",
)


def _nanmean(vals: list[Any]) -> float | None:
    arr = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
    if not np.any(np.isfinite(arr)):
        return None
    return float(np.nanmean(np.where(np.isfinite(arr), arr, np.nan)))


def aggregate_runs(spec_label: str, act: Activation, runs: list[dict[str, Any]]) -> dict[str, Any]:
    common = [e for e in runs[0]["epoch"] if all(e in r["epoch"] for r in runs[1:])]
    pos = [{e: i for i, e in enumerate(r["epoch"])} for r in runs]
    out: dict[str, Any] = {
        "activation": spec_label,
        "name": act.name,
        "kink_class": act.kink_class,
        "epoch": common,
    }
    for key in _MEAN_KEYS:
        if key not in runs[0]:
            continue
        out[key] = [_nanmean([r[key][p[e]] for r, p in zip(runs, pos, strict=True)]) for e in common]
    losses = np.array([[r["loss"][p[e]] for e in common] for r, p in zip(runs, pos, strict=True)])
    if len(runs) > 1 and losses.size:
        out["loss_min"] = losses.min(axis=0).tolist()
        out["loss_max"] = losses.max(axis=0).tolist()
        out["loss_std"] = losses.std(axis=0, ddof=1).tolist()
    statuses = [r["status"] for r in runs]
    out["status"] = next((st for st in ("interrupted", "diverged") if st in statuses), "ok")
    if "diverged" in statuses:
        first = min((r for r in runs if r["status"] == "diverged"),
                    key=lambda r: r["diverged_at_epoch"])
        out["diverged_at_epoch"] = first["diverged_at_epoch"]
        out["loss_at_divergence"] = first.get("loss_at_divergence")
    for key in ("epochs_to_target", "predicted_epochs_to_target", "predicted_epochs_to_target_inf"):
        vals = [r.get(key) for r in runs]
        if key not in runs[0]:
            continue
        out[key] = (
            float(np.mean([float(v) for v in vals if v is not None]))
            if all(v is not None for v in vals)
            else None
        )
        if out[key] is not None and len(runs) == 1:
            out[key] = int(out[key])
    m_, p_ = out.get("epochs_to_target"), out.get("predicted_epochs_to_target")
    out["epochs_ratio"] = (m_ / p_) if (m_ is not None and p_) else None
    for key in ("initial_loss", "final_loss", "lambda_max", "lambda_min", "lr_limit",
                "predicted_floor", "predicted_floor_inf", "seconds_per_epoch", "kernel_seconds"):
        if key in runs[0]:
            out[key] = _nanmean([r.get(key) for r in runs])
    out["lr_hidden"] = runs[0]["lr_hidden"]
    out["lr_output"] = runs[0]["lr_output"]
    out["prediction_kernel"] = runs[0]["prediction_kernel"]
    ev = runs[0].get("_eigenvalues_init")
    if ev is not None and ev.size <= 4096:
        out["eigenvalues_init"] = ev
    out["runs"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]
    return out


def training_estimate(
    n: int, d: int, C: int, m: int, *, epochs: int, logs: int, runs: int = 1, train: str = "hidden",
    dtype: str = "float32", device: str = "cpu", cache_bytes: int = 1 << 30, predict: bool = True,
    drift_rows: int | None = None,
) -> Any:
    """Time and peak memory of :func:`train` (a :class:`actspec.core.resources.Estimate`).

    Memory: the weights and their initial copies (W, A, b: m(2d + 2C + 1) values), the cached
    pre-activations (n m values, at most ``cache_bytes``), 256 MiB of chunk temporaries and the
    dense kernels. Time, per run: every epoch is ~6 n d m + 12 n m C flops (forward, gradients,
    the recomputed outputs and the elementwise passes, at a quarter of the matmul rate: they
    are memory-bound), plus the finite-width kernels at initialisation and at every logged epoch
    (:func:`actspec.core.resources.flops_per_neuron` per neuron).
    """
    from ..core.resources import estimate, flops_per_neuron

    item = 4 if dtype == "float32" else 8
    rows = n if drift_rows is None else drift_rows
    mem = (m * (2 * d + 2 * C + 1) * item + min(n * m * item, cache_bytes) + 256 * 2**20
           + 4 * 8 * (n * C) ** 2)
    per_epoch = 6.0 * n * d * m + 12.0 * n * m * C
    kernels = m * ((flops_per_neuron(n, d, C, train) if predict else 0.0)
                   + logs * flops_per_neuron(rows, d, C, train))
    return estimate(flops=runs * (epochs * per_epoch + kernels), bytes=mem, dtype=dtype,
                    device=device, efficiency=0.25)


def check_training_budget(n: int, d: int, C: int, m: int, **kw: Any) -> Any:
    """Refuse (one line, exit 2 from the CLI) a training run whose memory or time estimate
    (:func:`training_estimate`) does not fit this machine's budget; returns the estimate."""
    from ..core.resources import check_budget

    est = training_estimate(n, d, C, m, **kw)
    runs = kw.get("runs", 1)
    return check_budget(
        est, what=f"training {runs} network(s) of width {m:,} for {kw['epochs']:,} epochs on "
        f"{n} points",
        way_out="lower {-width}, {-epochs} or the number of activations/{-repeats}",
    )


def _check_positive_int(v: Any, name: str, *, minimum: int = 1, maximum: float | None = None) -> int:
    if isinstance(v, bool):
        raise ActspecError(f"{name} must be an integer >= {minimum} (got {v!r})")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ActspecError(f"{name} must be an integer >= {minimum} (got {v!r})") from None
    if not math.isfinite(f) or not f.is_integer() or f < minimum:
        raise ActspecError(f"{name} must be an integer >= {minimum} (got {v!r})")
    if maximum is not None and f > maximum:
        raise ActspecError(f"{name} {v!r} is too large (at most {maximum:g})")
    return int(f)


def train(
    X: Any,
    y: Any,
    activations: Sequence[str | Any] | str | Any = ("relu",),
    *,
    width: int,
    lr: float,
    epochs: int,
    train: str = "hidden",
    init: str = "dzps",
    loss: str = "mse",
    batch_size: int | None = None,
    repeats: int = 1,
    seed: int = 0,
    log_every: int | None = None,
    target_loss: float | None = None,
    normalize: bool = False,
    dtype: str = "float32",
    device: str | None = "cpu",
    chunk: int | None = None,
    infinite: bool = True,
    predict_limit: int = 4096,
    drift_limit: int = 1024,
    cache_bytes: int = 1 << 30,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the two-layer net for each activation and compare with the loss the spectrum predicts.

    Parameters
    ----------
    X, y: inputs (n, d) (rows used as given) and labels (see :func:`make_targets`).
    activations: names or :class:`Activation` objects; all share X, y and the weight seeds.
    width: m. lr: eta in the units of ``gram`` (see the module docstring). epochs: GD epochs
        (one epoch = one pass over the data: one step for full batch, ceil(n/B) for SGD).
    train: ``"hidden"`` (only W) or ``"both"``. init: ``"dzps"``, ``"fanin"`` or ``"fanout"``.
    loss: ``"mse"`` or ``"ce"`` (softmax cross-entropy over the classes of y).
    batch_size: None for full-batch GD, else SGD with seeded reshuffling every epoch.
    repeats: K independent weight draws (seeds seed, seed+1, ...); results are averaged and the
        spread (loss_min/loss_max/loss_std) recorded.
    log_every: log every k-th epoch (default epochs // 100); the kernel G(t) is recomputed at
        every logged epoch for ``gram_drift``.
    target_loss: loss for the epochs-to-target comparison (default: 1% of the loss of the zero
        predictor, 0.01 * 1/2 ||y||^2 for mse, 0.01 * n log C for ce).
    normalize: scale phi to E phi(z)^2 = 1. dtype: training arithmetic (kernels and spectra are
        always float64). device: ``cpu``, ``cuda`` or ``auto``. chunk: neurons per chunk.
    infinite: also predict from G∞. predict_limit: largest nC for the finite-width prediction
        (the nC x nC kernel) and n for G∞. drift_limit: largest nC for the drift kernel; above it
        ``gram_drift`` is measured on a seeded subset of rows (recorded as ``drift_points``).
    on_progress(label, epoch, epochs) after every epoch; on_warning(message) (default:
        ``warnings.warn``).

    Returns a dict with ``settings``, ``results`` (one per activation, the contract keys ``activation,
    epoch, loss, predicted_loss, gram_drift`` plus diagnostics and per-seed ``runs``) and
    ``interrupted`` (True when Ctrl-C stopped the run: finished epochs are kept).
    """
    Xv = check_inputs(X)
    n, d = Xv.shape
    if isinstance(activations, (str, Activation)) or callable(activations):
        activations = [activations]  # type: ignore[list-item]
    acts_in = list(activations)  # type: ignore[arg-type]
    if not acts_in:
        raise ActspecError("give at least one activation")
    if train not in TRAINS:
        raise ActspecError(f"--train must be one of {', '.join(TRAINS)} (got {train!r})")
    scheme = init_scheme(init)
    m = _check_positive_int(width, "--width", maximum=1e8)
    if m * d > MAX_WEIGHTS:
        raise ActspecError(
            f"width {m} x dim {d} = {m * d:.3g} weights does not fit in memory; lower --width"
        )
    epochs = _check_positive_int(epochs, "--epochs", maximum=1e9)
    repeats = _check_positive_int(repeats, "--repeats", maximum=1000)
    try:
        lr_f = float(lr)
    except (TypeError, ValueError):
        raise ActspecError(f"--lr must be a positive number, e.g. --lr 0.1 (got {lr!r})") from None
    if not (math.isfinite(lr_f) and lr_f > 0):
        raise ActspecError(f"--lr must be a positive finite number, e.g. --lr 0.1 (got {lr!r})")
    if batch_size is not None:
        batch_size = _check_positive_int(batch_size, "--batch-size")
        if batch_size > n:
            raise ActspecError(
                f"--batch-size {batch_size} is larger than the number of points n = {n}; use "
                f"--batch-size <= {n}, or leave it out for full-batch GD"
            )
        if batch_size == n:
            batch_size = None
    if log_every is not None:
        log_every = _check_positive_int(log_every, "--log-every")
    tdtype = {"float64": torch.float64, "float32": torch.float32}.get(
        str(dtype).replace("torch.", "")
    )
    if tdtype is None:
        raise ActspecError(f"--dtype must be 'float64' or 'float32' (got {dtype!r})")
    dev = check_device(device)
    T = make_targets(y, n, loss)
    check_label_conflicts(Xv, T.Y)
    if target_loss is None:
        target = 0.01 * (0.5 * float(np.sum(T.Y**2)) if loss == "mse" else n * math.log(T.C))
    else:
        try:
            target = float(target_loss)
        except (TypeError, ValueError):
            raise ActspecError(f"--target-loss must be a positive number (got {target_loss!r})") from None
        if not (math.isfinite(target) and target > 0):
            raise ActspecError(f"--target-loss must be a positive finite number (got {target_loss!r})")
    acts = [activation(a) for a in acts_in]
    if normalize:
        acts = [a.scaled(1.0 / normalization_constant(a)) for a in acts]
    labels = [a.strip() if isinstance(a, str) else b.name for a, b in zip(acts_in, acts, strict=True)]
    logs = log_epochs(epochs, log_every)
    C = T.C
    drift_idx = None
    if n * C > drift_limit:
        k = max(2, drift_limit // C)
        rng = np.random.default_rng([int(seed), 0xD21F7])
        drift_idx = np.sort(rng.choice(n, size=min(n, k), replace=False))
    check_training_budget(
        n, d, C, m, epochs=epochs, logs=len(logs), runs=len(acts) * repeats, train=train,
        dtype=str(tdtype).replace("torch.", ""), device=str(dev), cache_bytes=cache_bytes,
        predict=n * C <= predict_limit, drift_rows=int(drift_idx.size) if drift_idx is not None else n,
    )

    settings = {
        "width": m,
        "lr": lr_f,
        "epochs": epochs,
        "train": train,
        "init": scheme.name,
        "loss": loss,
        "batch_size": batch_size,
        "repeats": repeats,
        "seeds": [int(seed) + r for r in range(repeats)],
        "log_every": logs[1] - logs[0] if len(logs) > 1 else 1,
        "target_loss": target,
        "normalize": bool(normalize),
        "dtype": str(tdtype).replace("torch.", ""),
        "device": str(dev),
        "outputs": C,
        "targets": T.note or ("classes" if loss == "ce" else "labels"),
        "classes": T.class_values,
        "drift_points": int(drift_idx.size) if drift_idx is not None else n,
        "lr_units": "gram (u <- u - lr K grad_u L, K as actspec.gram reports it)",
        "loss_definition": (
            "1/2 sum_i ||y_i - f(x_i)||^2" if loss == "mse" else "sum_i -log softmax(f(x_i))_{y_i}"
        ),
        "prediction": (
            "1/2 ||(I - lr K0)^t r0||^2 from the eigendecomposition of K0"
            if loss == "mse" and batch_size is None
            else "linearised model in function space with the same batches"
        ),
    }
    results: list[dict[str, Any]] = []
    interrupted = False
    all_warnings: list[str] = []
    for label, act in zip(labels, acts, strict=True):
        K_inf = None
        if infinite and n <= predict_limit:
            try:
                K_inf = gram(Xv, act, None, train=train, init=scheme.name)  # type: ignore[arg-type]
            except ActspecError as exc:
                all_warnings.append(f"{label}: no infinite-width prediction ({exc})")
            except KeyboardInterrupt:
                interrupted = True
                break
        runs = []
        run_warnings: list[str] = []
        for r in range(repeats):
            setup = RunSetup(
                X=Xv, targets=T, act=act, label=label, width=m, lr=lr_f, epochs=epochs,
                train=train, scheme=scheme, loss=loss, batch_size=batch_size, seed=int(seed) + r,
                logs=logs, target=target, dtype=tdtype, device=dev, chunk=chunk,
                predict_limit=predict_limit, drift_limit=drift_limit, cache_bytes=cache_bytes,
                K_inf=K_inf, drift_idx=drift_idx, warnings=run_warnings,
            )
            tag = label if repeats == 1 else f"{label} [{r + 1}/{repeats}]"
            prog = None
            if on_progress is not None:
                prog = lambda t, tot, _tag=tag: on_progress(_tag, t, tot)  # noqa: E731
            try:
                run = train_run(setup, on_progress=prog, on_warning=on_warning)
            except KeyboardInterrupt:
                interrupted = True
                break
            runs.append(run)
            if run["status"] == "interrupted":
                interrupted = True
                break
        if runs:
            res = aggregate_runs(label, act, runs)
            res["warnings"] = run_warnings
            all_warnings.extend(run_warnings)
            results.append(res)
        if interrupted:
            break
    ordering = sorted(
        (r for r in results if r.get("epochs_to_target") is not None),
        key=lambda r: r["epochs_to_target"],
    )
    return {
        "settings": settings,
        "results": results,
        "ordering": [r["activation"] for r in ordering],
        "interrupted": interrupted,
        "warnings": all_warnings,
    }
