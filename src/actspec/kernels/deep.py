"""Deep fully-connected networks at infinite width: NNGP kernels, NTK, penultimate-layer G.

The network (depth L = number of hidden layers; L = 1 is the two-layer net of :mod:`actspec.gram`)::

    h^1     = W^1 x + beta b^1                       W^1: m x d, entries N(0, 1)
    x^l     = (sigma_w / sqrt(m)) phi(h^l)           l = 1..L
    h^{l+1} = W^{l+1} x^l + beta b^{l+1}             W^{l+1}: m x m, entries N(0, 1)
    f(x)    = a . x^L + beta b_out                   a, b: entries N(0, 1)

Every parameter is trained for the NTK. At infinite width (SCIENCE §5), with the 2x2 covariance
Lambda_ij = [[S_ii, S_ij], [S_ij, S_jj]] of S = Sigma^{l-1}::

    Sigma^0     = X X^T + beta^2
    Sigma^l     = sigma_w^2 E[phi(u) phi(v)] + beta^2         (u, v) ~ N(0, Lambda)
    Sigmadot^l  = sigma_w^2 E[phi'(u) phi'(v)]
    Theta^0     = Sigma^0,   Theta^l = Sigma^l + Theta^{l-1} (.) Sigmadot^l

Theta^L is the NTK of the depth-L net, Sigma^L its NNGP (output) covariance. The penultimate-layer
G of the activation paper (appendix J: only the last hidden layer W^L trained) is
``G = (Sigma^{L-1} - beta^2) (.) Sigmadot^L``: the Gram matrix of the layer-(L-1) features times
the derivative kernel (for L = 1 it is the core's G∞; with ``scaling="cphi"`` it includes the
factor c^2 = 1/E phi(z)^2 of the normalised phi).

``sigma_w^2`` (the ``scaling``): ``"cphi"`` (default) is the paper's c_phi normalisation,
sigma_w^2 = 1/E phi(z)^2 (= 2 for ReLU: He scaling); ``"he"`` is PyTorch's Kaiming gain squared
(relu 2, leaky_relu 2/(1+alpha^2), tanh 25/9, linear and sigmoid 1); ``"raw"`` is 1 (then depth 1
with beta = 0 is exactly ``gram(X, act, train="both")``); a number sets sigma_w^2 directly.

Evaluation. Each layer needs E[phi phi] and E[phi' phi'] at every entry: closed forms where they
exist (relu, leaky_relu, linear, quadratic, cubic, erf), otherwise the verified theta-tables of
:mod:`actspec.kernels.dual` (piecewise Chebyshev in theta = arccos rho, 1e-13), evaluated here in
cache-sized chunks over the upper triangle on a thread pool (about 20x faster than evaluating a
whole n x n matrix at once). Rows are grouped by their variance S_ii (one table pair per pair of
groups); unit-norm rows without bias and ``scaling="cphi"`` keep S_ii = 1 at every layer, so one
table pair serves the whole recursion. Variances that agree to 1e-12 (relative) share a group,
and every diagonal entry is evaluated at rho = 1 exactly (near rho = 1 a kinked dual moves like
sqrt(1 - rho), so rounding rho would cost 1e-8).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..activations.base import Activation
from ..activations.registry import activation
from ..core.errors import ActspecError
from ..core.validate import check_inputs
from .dual import MAX_VARIANCE_GROUPS, closed_form_dual, dual, dual_table, gaussian_mean, quantize

__all__ = [
    "DeepParams",
    "DeepLayer",
    "DeepKernels",
    "SCALINGS",
    "KERNELS",
    "deep_params",
    "iter_deep_kernels",
    "deep_kernels",
    "deep_ntk",
    "nngp_kernel",
    "penultimate_gram",
    "deep_kernel",
]

SCALINGS = ("cphi", "he", "raw")
KERNELS = ("ntk", "penultimate", "nngp")
Kernel = Literal["ntk", "penultimate", "nngp"]

_CHUNK = 16384  # entries per evaluation chunk (fits the temporaries in cache)
_QUAD_SECONDS_PER_ENTRY = 2.5e-3  # per-entry 2-D quadrature cost (fallback path)
_QUAD_BUDGET_S = 30.0  # per layer


# ---------------------------------------------------------------------------------------------
# parametrisation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepParams:
    """Activation (raw phi) and the variances of the deep net: sigma_w^2 and beta^2."""

    act: Activation
    weight_var: float
    bias_var: float
    scaling: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "activation": self.act.name,
            "scaling": self.scaling,
            "weight_var": self.weight_var,
            "bias": math.sqrt(self.bias_var),
        }


def _second_moment(act: Activation) -> float:
    val = gaussian_mean(lambda x: act.phi(x) ** 2, act.kinks)
    if not (val > 0 and math.isfinite(val)):
        raise ActspecError(f"cannot normalise {act.name}: E phi(z)^2 = {val!r}; use --scaling raw")
    return val


def deep_params(
    act: Activation | str | Callable[..., Any],
    scaling: str | float = "cphi",
    bias: float = 0.0,
) -> DeepParams:
    """Resolve ``scaling`` ("cphi" | "he" | "raw" | sigma_w^2 as a number) and the bias std beta."""
    a = activation(act)
    try:
        beta = float(bias)
    except (TypeError, ValueError):
        raise ActspecError(f"--bias must be a number >= 0 (got {bias!r})") from None
    if not math.isfinite(beta) or beta < 0:
        raise ActspecError(f"--bias must be a finite number >= 0 (got {bias!r})")
    label: str
    if isinstance(scaling, (int, float)) and not isinstance(scaling, bool):
        w2, label = float(scaling), "custom"
    else:
        key = str(scaling).strip().lower()
        if key in ("cphi", "c_phi", "paper", "normalize", "normalise"):
            w2, label = 1.0 / _second_moment(a), "cphi"
        elif key in ("he", "kaiming"):
            if a.kaiming_gain2 is not None and a.builtin:
                w2 = a.kaiming_gain2
            else:
                raise ActspecError(
                    f"no He/Kaiming gain is defined for {a.name!r} (only relu, leaky_relu, tanh, "
                    "linear, sigmoid); use --scaling cphi or give sigma_w^2 as a number"
                )
            label = "he"
        elif key == "raw":
            w2, label = 1.0, "raw"
        else:
            try:
                w2, label = float(key), "custom"
            except ValueError:
                raise ActspecError(
                    f"unknown --scaling {scaling!r}: use cphi (1/E phi^2, the paper's), he, raw, "
                    "or a number sigma_w^2 > 0"
                ) from None
    if not (math.isfinite(w2) and w2 > 0):
        raise ActspecError(f"--scaling sigma_w^2 must be a positive finite number (got {scaling!r})")
    return DeepParams(a, w2, beta * beta, label)


# ---------------------------------------------------------------------------------------------
# chunked evaluation of the dual functions
# ---------------------------------------------------------------------------------------------


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(16, cpus))


class _Pair:
    """Activation and derivative tables of one pair of variances (s1 rows, s2 columns)."""

    def __init__(self, act: Activation, s1: float, s2: float) -> None:
        self.inv_sd = 1.0 / math.sqrt(s1 * s2)
        if s1 == s2:
            self.inv_sd = 1.0 / s1  # rho = c / s exactly
        self.ta = dual_table(act, "activation", s1, s2)
        self.td = dual_table(act, "derivative", s1, s2)
        self.Ca = self.ta._coeffs_by_degree()
        self.Cd = self.td._coeffs_by_degree()

    def __call__(self, c: np.ndarray, diag_offset: int | None) -> tuple[np.ndarray, np.ndarray]:
        rho = c * self.inv_sd
        np.clip(rho, -1.0, 1.0, out=rho)
        theta = np.arccos(rho, out=rho)
        if diag_offset is not None:  # entries (i, i + diag_offset) are diagonal entries of S
            r = theta.shape[0]
            i = np.arange(r)
            j = i + diag_offset
            ok = (j >= 0) & (j < theta.shape[1])
            theta[i[ok], j[ok]] = 0.0
        return self.ta.evaluate_theta(theta, ct=self.Ca), self.td.evaluate_theta(theta, ct=self.Cd)


class _LayerMap:
    """S = Sigma^{l-1}  ->  (E[phi phi], E[phi' phi']) for all entries, symmetric, float64."""

    def __init__(self, params: DeepParams) -> None:
        self.p = params
        self.act = params.act
        probe = np.ones(1)
        self.closed = closed_form_dual(self.act, probe, probe, probe, "activation") is not None
        self._reps: dict[int, float] = {}  # group key -> representative variance
        self._pairs: dict[tuple[float, float], _Pair] = {}
        self.last_qs: np.ndarray | None = None
        self._is_odd: bool | None = None

    # ---- variance groups ------------------------------------------------------------------
    def _snap(self, q: np.ndarray) -> np.ndarray:
        """Each variance replaced by its group's representative: the grouping rule of
        :func:`actspec.kernels.dual.quantize` (equal to ~12 digits), representatives kept across
        layers so their tables are reused."""
        vals, inv = np.unique(q, return_inverse=True)
        reps = np.array([self._reps.setdefault(int(k), float(v))
                         for v, k in zip(vals, quantize(vals), strict=True)])
        return reps[inv.ravel()]

    def _pair(self, s1: float, s2: float) -> _Pair:
        # E[f(u) f(v)] is symmetric in (s1, s2): one table pair per unordered pair of groups
        return self._pairs[(s1, s2) if s1 <= s2 else (s2, s1)]

    # ---- one layer ------------------------------------------------------------------------
    def __call__(
        self, S: np.ndarray, Theta: np.ndarray | None, pool: ThreadPoolExecutor | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Sigma^l, Sigmadot^l and (when Theta = Theta^{l-1} is given) Theta^l."""
        n = S.shape[0]
        q = np.diag(S).copy()
        if np.any(q <= 0) or not np.all(np.isfinite(q)):
            bad = int(np.argmin(np.where(np.isfinite(q), q, -np.inf)))
            raise ActspecError(
                f"pre-activation variance of row {bad} is {q[bad]!r} (not positive and finite): "
                "remove zero rows, add a bias (--bias), or use another scaling"
            )
        w2, b2 = self.p.weight_var, self.p.bias_var
        Sig = np.empty((n, n))
        Dot = np.empty((n, n))
        Th = np.empty((n, n)) if Theta is not None else None

        self.last_qs = None  # snapped variances of this layer (None: closed form or quadrature)
        if self.closed:
            evaluate = self._closed_evaluator(q)
            order = np.arange(n)
        else:
            qs = self._snap(q)
            groups = np.unique(qs)
            if len(groups) > MAX_VARIANCE_GROUPS:
                return self._quadrature_layer(S, q, Theta)
            self.last_qs = qs
            order = np.argsort(qs, kind="stable")
            evaluate = self._table_evaluator(qs, order, pool)
        # work in the order that makes variance groups contiguous (identity for one group)
        ident = bool(np.all(order == np.arange(n)))
        if not ident:
            Sp = S[np.ix_(order, order)]
            Tp = Theta[np.ix_(order, order)] if Theta is not None else None
        else:
            Sp, Tp = S, Theta

        def task(r0: int, r1: int) -> None:
            # rows r0:r1, columns r0:n, in sub-chunks of about _CHUNK entries
            ncol = n - r0
            step = max(1, _CHUNK // max(1, ncol))
            for i0 in range(r0, r1, step):
                i1 = min(r1, i0 + step)
                ea, ed = evaluate(Sp, i0, i1, r0)
                s = Sig[i0:i1, r0:]
                np.multiply(ea, w2, out=s)
                if b2:
                    s += b2
                np.multiply(ed, w2, out=Dot[i0:i1, r0:])
                if Th is not None and Tp is not None:
                    t = Th[i0:i1, r0:]
                    np.multiply(Tp[i0:i1, r0:], Dot[i0:i1, r0:], out=t)
                    t += s

        blocks = _row_blocks(n)
        _run(pool, task, blocks)
        mats = [Sig, Dot] + ([Th] if Th is not None else [])
        def mirror(r0: int, r1: int) -> None:
            for M in mats:
                _mirror_block(M, r0, r1)

        _run(pool, mirror, blocks)
        if not ident:
            inv = np.empty_like(order)
            inv[order] = np.arange(n)
            Sig = Sig[np.ix_(inv, inv)]
            Dot = Dot[np.ix_(inv, inv)]
            if Th is not None:
                Th = Th[np.ix_(inv, inv)]
        return Sig, Dot, Th

    # ---- error estimate -----------------------------------------------------------------------
    def propagate_error(
        self, S: np.ndarray, Sig: np.ndarray, Dot: np.ndarray, Theta: np.ndarray | None,
        prev: dict[str, float],
    ) -> dict[str, float]:
        """First-order entry-error estimate of this layer's kernels (see ``DeepLayer.error``).

        e_Sigma^l = max|Sigmadot^l| e_Sigma^{l-1} + w2 eval_a + rounding (Price's theorem: the
        slope of Sigma^l in Sigma^{l-1}_ij is Sigmadot^l_ij, largest on the diagonal);
        e_Sigmadot^l = w2 eval_d + slope_d e_Sigma^{l-1} (slope_d: the largest slope of the
        derivative dual in the covariance, measured on the table away from rho = +-1; infinite
        there for kinked activations, so this part is an estimate); e_Theta^l = e_Sigma^l +
        max|Theta^{l-1}| e_Sigmadot^l + max|Sigmadot^l| e_Theta^{l-1}.
        """
        eps = float(np.finfo(np.float64).eps)
        w2 = self.p.weight_var
        dmax = float(np.max(np.abs(np.diag(Dot))))
        smax = float(np.max(np.abs(Sig)))
        ev_a, ev_d, slope_d = self._evaluation_errors(S)
        e_s_prev = prev.get("nngp", 0.0)
        e_s = dmax * e_s_prev + w2 * ev_a + 4 * eps * smax
        e_d = w2 * ev_d + slope_d * e_s_prev + 4 * eps * float(np.max(np.abs(Dot)))
        out = {"nngp": e_s, "sigma_dot": e_d}
        pmax = float(np.max(np.abs(S)))
        out["penultimate"] = e_s_prev * float(np.max(np.abs(Dot))) + pmax * e_d
        if Theta is not None:
            tmax = float(np.max(np.abs(Theta)))
            out["ntk"] = (e_s + tmax * e_d + dmax * prev.get("ntk", 0.0)
                          + 4 * eps * (smax + tmax * float(np.max(np.abs(Dot)))))
        return out

    def _evaluation_errors(self, S: np.ndarray) -> tuple[float, float, float]:
        """(activation dual error, derivative dual error, slope of the derivative dual)."""
        eps = float(np.finfo(np.float64).eps)
        q = np.diag(S)
        if self.closed:
            grid = np.linspace(0.05, math.pi - 0.05, 64)
            s = float(np.max(q))
            ones = np.ones(grid.size)
            d = self.act.closed_form_dual(s * ones, s * ones, s * np.cos(grid), "derivative",
                                          theta=grid)
            a = self.act.closed_form_dual(s * ones, s * ones, s * np.cos(grid), "activation",
                                          theta=grid)
            assert d is not None and a is not None
            slope = _slope(np.asarray(d), s * np.cos(grid))
            return (8 * eps * float(np.max(np.abs(a))), 8 * eps * float(np.max(np.abs(d))), slope)
        if self.last_qs is None:  # direct quadrature: about 1e-15 relative (no table check)
            return (1e-14 * float(np.max(np.abs(q))), 1e-14, 0.0)
        ea = ed = slope = 0.0
        grid = np.linspace(0.05, math.pi - 0.05, 64)
        for (s1, s2), pair in self._pairs.items():
            # check_error bounds the per-interval table; the interval centred on pi/2 (up to
            # 2e-15 of the scale more) is never used here: every chunk holds diagonal entries
            ea = max(ea, pair.ta.check_error)
            ed = max(ed, pair.td.check_error)
            d = pair.td.evaluate_theta(grid.copy(), ct=pair.Cd)
            slope = max(slope, _slope(d, math.sqrt(s1 * s2) * np.cos(grid)))
        return ea, ed, self.p.weight_var * slope

    # ---- close pairs ------------------------------------------------------------------------
    def close_pairs(
        self, S: np.ndarray, Sig: np.ndarray, Dot: np.ndarray, Th: np.ndarray | None,
        Theta: np.ndarray | None, close: _Close | None,
    ) -> _Close | None:
        """Re-evaluate the close pairs of this layer at their accurate angles and return the
        accurate angles of the next layer's close pairs (issue 17).

        Near rho = +-1 a kinked (J_1) dual moves like sqrt(1 -+ rho): from arccos of a rounded
        correlation the angle keeps only half its digits (1e-16 in rho is 1e-8 in theta). The
        angles of layer 1 come from the rows; each layer's duals of a tracked pair are evaluated
        at its angle (closed form with ``theta``, or the theta-table), and the next angle comes
        from 1 -+ rho' = sigma_w^2 D / Sigma'_ii without cancellation, with (Price's theorem,
        equal variances s) D = k(0) - k(theta) = s int_0^theta kdot(t) sin t dt for nearly equal
        rows and k(theta) - k(pi) = s int_theta^pi kdot(t) sin t dt for nearly opposite rows
        (kdot the derivative dual; k(pi) = -k(0) exactly for odd phi). Pairs whose two variances
        fall in different groups, and layers evaluated by direct quadrature, keep arccos.
        Updates Sig, Dot, Th in place (both triangles).
        """
        n = S.shape[0]
        q = np.diag(S)
        w2, b2 = self.p.weight_var, self.p.bias_var
        fixable = self.closed or self.last_qs is not None
        if close is not None and close.i.size and fixable:
            i, j, th = close.i, close.j, close.theta
            ea, ed = self._duals_at(q, S, i, j, th)
            sv = w2 * ea + b2
            dv = w2 * ed
            Sig[i, j] = Sig[j, i] = sv
            Dot[i, j] = Dot[j, i] = dv
            if Th is not None and Theta is not None:
                Th[i, j] = Th[j, i] = sv + Theta[i, j] * dv
        # the next layer's close pairs: from the matrix, tracked ones with their accurate angle
        qn = np.diag(Sig).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(qn)
        iu, ju = _close_in(Sig, sd)
        if iu.size == 0:
            return None
        rho = np.clip(Sig[iu, ju] / (sd[iu] * sd[ju]), -1.0, 1.0)
        theta = np.arccos(rho)
        if close is not None and close.i.size and fixable:
            same = self._same_group(q, close.i, close.j)
            i, j, th = close.i[same], close.j[same], close.theta[same]
            if i.size:
                nxt = self._next_angles(q, Sig, i, j, th)
                lin = iu.astype(np.int64) * n + ju  # sorted (row-major scan)
                want = i.astype(np.int64) * n + j
                k = np.searchsorted(lin, want)
                k = np.minimum(k, lin.size - 1)
                hit = lin[k] == want
                theta[k[hit]] = nxt[hit]
        return _Close(iu, ju, theta)

    def _same_group(self, q: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        keys = quantize(q)
        return keys[i] == keys[j]

    def _by_tables(self, i: np.ndarray, j: np.ndarray) -> Iterator[tuple[np.ndarray, _Pair]]:
        """(selection, table pair) for the pairs (i, j), grouped by their variance groups."""
        assert self.last_qs is not None
        a, b = self.last_qs[i], self.last_qs[j]
        keys = np.stack([a, b], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        for k, (sa, sb) in enumerate(uniq):
            yield inv == k, self._pair(float(sa), float(sb))

    def _duals_at(
        self, q: np.ndarray, S: np.ndarray, i: np.ndarray, j: np.ndarray, th: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """E[phi phi], E[phi' phi'] of the pairs (i, j) at angles th."""
        if self.closed:
            ea = self.act.closed_form_dual(q[i], q[j], S[i, j], "activation", theta=th)
            ed = self.act.closed_form_dual(q[i], q[j], S[i, j], "derivative", theta=th)
            assert ea is not None and ed is not None
            return np.asarray(ea, dtype=np.float64), np.asarray(ed, dtype=np.float64)
        ea = np.empty(i.size)
        ed = np.empty(i.size)
        for sel, pair in self._by_tables(i, j):
            t = np.ascontiguousarray(th[sel])
            ea[sel] = pair.ta.evaluate_theta(t, ct=pair.Ca)
            ed[sel] = pair.td.evaluate_theta(t, ct=pair.Cd)
        return ea, ed

    def _kdot(self, q: np.ndarray, i: np.ndarray, j: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The derivative dual of the pairs (i, j) (one per row of t) at the angles t."""
        if self.closed:
            s1 = np.broadcast_to(q[i][:, None], t.shape)
            s2 = np.broadcast_to(q[j][:, None], t.shape)
            out = self.act.closed_form_dual(s1, s2, np.sqrt(s1 * s2) * np.cos(t), "derivative",
                                            theta=t)
            assert out is not None
            return np.asarray(out, dtype=np.float64)
        out = np.empty(t.shape)
        for sel, pair in self._by_tables(i, j):
            out[sel] = pair.td.evaluate_theta(np.ascontiguousarray(t[sel]), ct=pair.Cd)
        return out

    def _ends(self, q: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """k(0) + k(pi) of the activation dual at the pairs' variances (0 for odd phi)."""
        if self._odd():
            return np.zeros(i.size)
        t = np.broadcast_to(np.array([0.0, math.pi]), (i.size, 2))
        if self.closed:
            s1 = np.broadcast_to(q[i][:, None], t.shape)
            s2 = np.broadcast_to(q[j][:, None], t.shape)
            sd = np.sqrt(s1 * s2)
            v = self.act.closed_form_dual(s1, s2, np.stack([sd[:, 0], -sd[:, 1]], axis=1),
                                          "activation", theta=t)
            assert v is not None
            return np.sum(np.asarray(v, dtype=np.float64), axis=1)
        out = np.empty(i.size)
        for sel, pair in self._by_tables(i, j):
            out[sel] = float(np.sum(pair.ta.evaluate_theta(np.array([0.0, math.pi]), ct=pair.Ca)))
        return out

    def _next_angles(
        self, q: np.ndarray, Sig: np.ndarray, i: np.ndarray, j: np.ndarray, th: np.ndarray
    ) -> np.ndarray:
        """Accurate angles of layer l from those of layer l - 1 (see :meth:`close_pairs`)."""
        w2, b2 = self.p.weight_var, self.p.bias_var
        x, w = _GL
        s = np.sqrt(q[i] * q[j])
        diag = 0.5 * (Sig[i, i] + Sig[j, j])
        out = np.empty(i.size)
        near = th <= 0.5 * math.pi
        if np.any(near):  # nearly equal rows: 1 - rho' = w2 D / Sigma'_ii
            t = th[near]
            nodes = 0.5 * t[:, None] * (x[None, :] + 1.0)
            kd = self._kdot(q, i[near], j[near], nodes)
            D = s[near] * 0.5 * t * np.sum(w * kd * np.sin(nodes), axis=1)
            one_minus = np.clip(w2 * D / diag[near], 0.0, 2.0)
            out[near] = 2.0 * np.arcsin(np.minimum(1.0, np.sqrt(one_minus / 2.0)))
        far = ~near
        if np.any(far):  # nearly opposite rows: 1 + rho' = (w2 (A + k(0) + k(pi)) + 2 b2) / Sigma'_ii
            t = th[far]
            span = math.pi - t
            nodes = t[:, None] + 0.5 * span[:, None] * (x[None, :] + 1.0)
            kd = self._kdot(q, i[far], j[far], nodes)
            A = s[far] * 0.5 * span * np.sum(w * kd * np.sin(nodes), axis=1)
            one_plus = np.clip((w2 * (A + self._ends(q, i[far], j[far])) + 2.0 * b2) / diag[far],
                               0.0, 2.0)
            out[far] = math.pi - 2.0 * np.arcsin(np.minimum(1.0, np.sqrt(one_plus / 2.0)))
        return out

    def _odd(self) -> bool:
        if self._is_odd is None:
            x = np.linspace(0.01, 6.0, 41)
            with np.errstate(all="ignore"):
                self._is_odd = bool(np.array_equal(self.act.phi(-x), -self.act.phi(x)))
        return self._is_odd

    def _closed_evaluator(
        self, q: np.ndarray
    ) -> Callable[[np.ndarray, int, int, int], tuple[np.ndarray, np.ndarray]]:
        act = self.act

        def evaluate(Sp: np.ndarray, i0: int, i1: int, c0: int) -> tuple[np.ndarray, np.ndarray]:
            c = Sp[i0:i1, c0:]
            s1 = q[i0:i1, None]
            s2 = q[None, c0:]
            ea = closed_form_dual(act, s1, s2, c, "activation")
            ed = closed_form_dual(act, s1, s2, c, "derivative")
            assert ea is not None and ed is not None
            return ea, ed

        return evaluate

    def _table_evaluator(
        self, qs: np.ndarray, order: np.ndarray, pool: ThreadPoolExecutor | None
    ) -> Callable[[np.ndarray, int, int, int], tuple[np.ndarray, np.ndarray]]:
        qo = qs[order]
        # contiguous ranges of equal variance (in the working order)
        cuts = np.flatnonzero(np.diff(qo)) + 1
        starts = np.concatenate([[0], cuts])
        stops = np.concatenate([cuts, [qo.size]])
        ranges = [(int(a), int(b), float(qo[a])) for a, b in zip(starts, stops, strict=True)]
        # build the tables up front, in parallel: one per unordered pair (ranges ascend in s)
        needed = [(sa, sb) for k, (_, _, sa) in enumerate(ranges) for (_, _, sb) in ranges[k:]]
        missing = [key for key in needed if key not in self._pairs]
        tables = [(w, sa, sb) for sa, sb in missing for w in ("activation", "derivative")]
        if pool is not None and len(tables) > 1:  # dual_table caches what it builds
            list(pool.map(lambda key: dual_table(self.act, *key), tables))
        built = [_Pair(self.act, *key) for key in missing]
        if len(self._pairs) + len(built) > 64:
            self._pairs.clear()
        self._pairs.update(zip(missing, built, strict=True))

        def group_of(i: int) -> tuple[int, int, float]:
            for r in ranges:
                if r[0] <= i < r[1]:
                    return r
            raise AssertionError(i)  # pragma: no cover

        def evaluate(Sp: np.ndarray, i0: int, i1: int, c0: int) -> tuple[np.ndarray, np.ndarray]:
            ncol = Sp.shape[0] - c0
            ea = np.empty((i1 - i0, ncol))
            ed = np.empty((i1 - i0, ncol))
            a = i0
            while a < i1:  # split rows at group boundaries
                _, gstop, sa = group_of(a)
                b = min(i1, gstop)
                for cs, ce, sb in ranges:
                    lo, hi = max(cs, c0), ce
                    if lo >= hi:
                        continue
                    block = np.array(Sp[a:b, lo:hi])  # contiguous copy
                    va, vd = self._pair(sa, sb)(block, a - lo)
                    ea[a - i0 : b - i0, lo - c0 : hi - c0] = va
                    ed[a - i0 : b - i0, lo - c0 : hi - c0] = vd
                a = b
            return ea, ed

        return evaluate

    def _quadrature_layer(
        self, S: np.ndarray, q: np.ndarray, Theta: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Many distinct row variances and no closed form: per-entry 2-D quadrature."""
        n = S.shape[0]
        entries = n * (n + 1) // 2
        est = 2 * entries * _QUAD_SECONDS_PER_ENTRY
        if est > _QUAD_BUDGET_S:
            groups = len(np.unique(self._snap(q)))
            raise ActspecError(
                f"the rows have {groups} distinct pre-activation variances (inputs of different "
                f"norms): the deep kernel of {self.act.name} then needs a 2-D quadrature per entry "
                f"(about {est / 60:.0f} min per layer for n={n}); normalise the rows "
                "(--normalize-inputs), use n <= 100, or an activation with a closed form "
                "(relu, leaky_relu, linear, erf)"
            )
        iu = np.triu_indices(n)
        s1, s2, c = q[iu[0]], q[iu[1]], S[iu]
        # exact rho = 1 on the diagonal: the quadrature forms c / (sqrt(s1) sqrt(s2)) itself
        diag = iu[0] == iu[1]
        c[diag] = np.sqrt(s1[diag]) * np.sqrt(s2[diag])
        ea = dual(self.act, s1, s2, c, "activation", method="quadrature")
        ed = dual(self.act, s1, s2, c, "derivative", method="quadrature")
        Sig = np.empty((n, n))
        Dot = np.empty((n, n))
        Sig[iu] = self.p.weight_var * ea + self.p.bias_var
        Dot[iu] = self.p.weight_var * ed
        Sig.T[iu] = Sig[iu]
        Dot.T[iu] = Dot[iu]
        Th = Sig + Theta * Dot if Theta is not None else None
        return Sig, Dot, Th


def _slope(vals: np.ndarray, c: np.ndarray) -> float:
    """Largest |d vals / d c| by differences on a grid (c decreasing with the angle)."""
    dv = np.abs(np.diff(np.asarray(vals, dtype=np.float64)))
    dc = np.abs(np.diff(c))
    return float(np.max(dv / dc)) if dv.size else 0.0


_CLOSE = 1e-4  # |rho| above 1 - _CLOSE: the pair's angle is tracked accurately
_GL = np.polynomial.legendre.leggauss(12)


@dataclass
class _Close:
    """Upper-triangle pairs (i < j) with |rho| near 1 and their accurate angles."""

    i: np.ndarray
    j: np.ndarray
    theta: np.ndarray


def _close_in(S: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle (i < j) entries of S with |S_ij| / (sd_i sd_j) > 1 - _CLOSE."""
    n = S.shape[0]
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    step = max(1, (1 << 18) // max(1, n))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.abs(S[r0:r1]) / (sd[r0:r1, None] * sd[None, :])
        a, b = np.nonzero(rho > 1.0 - _CLOSE)
        a = a + r0
        keep = b > a
        out_i.append(a[keep])
        out_j.append(b[keep])
    return np.concatenate(out_i), np.concatenate(out_j)


def _row_angles(X: np.ndarray, bias_var: float, S: np.ndarray) -> _Close | None:
    """Layer-0 close pairs with the angle between the rows (x, beta) themselves:
    theta = 2 atan2(|a - b|, |a + b|) for the unit vectors a, b (accurate near 0 and pi)."""
    sd = np.sqrt(np.diag(S))
    i, j = _close_in(S, sd)
    if i.size == 0:
        return None
    beta = math.sqrt(bias_var)
    U = np.concatenate([X, np.full((X.shape[0], 1), beta)], axis=1)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    theta = np.empty(i.size)
    step = max(1, (1 << 20) // U.shape[1])  # pairs per chunk: bounded temporaries
    for a in range(0, i.size, step):
        A, B = U[i[a : a + step]], U[j[a : a + step]]
        dn = np.sqrt(np.einsum("ij,ij->i", A - B, A - B))
        sn = np.sqrt(np.einsum("ij,ij->i", A + B, A + B))
        theta[a : a + step] = 2.0 * np.arctan2(dn, sn)
    return _Close(i, j, theta)


def _row_blocks(n: int) -> list[tuple[int, int]]:
    """Row blocks of the upper triangle with roughly equal work (rows near the top are longer)."""
    nb = max(1, min(64, n // 32))
    # equal-area cut points of the triangle: rows r with (n - r)^2 decreasing linearly
    edges = sorted({int(round(n - n * math.sqrt(1 - k / nb))) for k in range(nb + 1)})
    edges[0], edges[-1] = 0, n
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _mirror_block(M: np.ndarray, r0: int, r1: int) -> None:
    """Copy the upper triangle of rows r0:r1 to the lower triangle (exact symmetry)."""
    sq = M[r0:r1, r0:r1]
    il = np.tril_indices(r1 - r0, -1)
    sq[il] = sq.T[il]
    if r1 < M.shape[0]:
        M[r1:, r0:r1] = M[r0:r1, r1:].T


def _run(
    pool: ThreadPoolExecutor | None, fn: Callable[[int, int], Any], blocks: list[tuple[int, int]]
) -> None:
    if pool is None or len(blocks) == 1:
        for r0, r1 in blocks:
            fn(r0, r1)
        return
    futures = [pool.submit(fn, r0, r1) for r0, r1 in blocks]
    for f in futures:
        f.result()


# ---------------------------------------------------------------------------------------------
# public API: the recursion
# ---------------------------------------------------------------------------------------------


@dataclass
class DeepLayer:
    """Kernels after hidden layer ``depth``: Sigma^l, Sigmadot^l, Theta^l (n x n float64)."""

    depth: int
    sigma: np.ndarray = field(repr=False)
    sigma_dot: np.ndarray = field(repr=False)
    ntk: np.ndarray = field(repr=False)
    prev_sigma: np.ndarray = field(repr=False)
    bias_var: float = 0.0
    #: estimated bound on the absolute error of every entry, per kernel ("ntk", "nngp",
    #: "sigma_dot", "penultimate"): the evaluation error of each layer (the theta-tables'
    #: verified check error, or rounding for closed forms) propagated through the recursion to
    #: first order with the layer's slopes (Price's theorem: d Sigma^l / d Sigma^{l-1}_ij =
    #: Sigmadot^l_ij). Not the float64 resolution of the eigensolver: compare eigenvalues with
    #: n * error (issue 19 item 4).
    error: dict[str, float] = field(default_factory=dict)

    @property
    def nngp(self) -> np.ndarray:
        """Sigma^l: covariance of the outputs of the depth-l net (its NNGP kernel)."""
        return self.sigma

    def penultimate(self) -> np.ndarray:
        """The paper's penultimate-layer G: (Sigma^{l-1} - beta^2) (.) Sigmadot^l (only W^l trained)."""
        feat = self.prev_sigma - self.bias_var if self.bias_var else self.prev_sigma
        return feat * self.sigma_dot

    def kernel_error(self, which: Kernel = "ntk") -> float:
        """Estimated bound on the absolute entry error of :meth:`kernel` (see ``error``)."""
        return float(self.error.get(which, 0.0))

    def kernel(self, which: Kernel = "ntk") -> np.ndarray:
        if which == "ntk":
            return self.ntk
        if which == "nngp":
            return self.sigma
        if which == "penultimate":
            return self.penultimate()
        raise ActspecError(f"kernel must be one of {', '.join(KERNELS)} (got {which!r})")


def check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or int(depth) < 1:
        raise ActspecError(f"--depth values must be integers >= 1 (got {depth!r}); e.g. --depth 1..8")
    if int(depth) > 1000:
        raise ActspecError(f"--depth {depth} is too large (max 1000 hidden layers)")
    return int(depth)


def input_covariance(X: np.ndarray, bias_var: float) -> np.ndarray:
    S = X @ X.T
    S = 0.5 * (S + S.T)
    if bias_var:
        S += bias_var
    return S


def iter_deep_kernels(
    X: Any,
    act: DeepParams | Activation | str | Callable[..., Any],
    depth: int,
    *,
    scaling: str | float = "cphi",
    bias: float = 0.0,
    ntk: bool = True,
    threads: int | None = None,
) -> Iterator[DeepLayer]:
    """Yield :class:`DeepLayer` for l = 1..depth (each layer's arrays are new, never mutated).

    Memory: about five n x n float64 arrays at a time (n = 4000: 0.64 GB).
    ``ntk=False`` skips Theta (then ``layer.ntk`` is None): NNGP and penultimate G only.
    """
    Xv = check_inputs(X)
    L = check_depth(depth)
    params = act if isinstance(act, DeepParams) else deep_params(act, scaling, bias)
    fmap = _LayerMap(params)
    S = input_covariance(Xv, params.bias_var)
    Theta = S if ntk else None
    close = _row_angles(Xv, params.bias_var, S)
    eps = float(np.finfo(np.float64).eps)
    e0 = 2 * eps * float(np.max(np.abs(S)))  # rounding of X X^T
    errs: dict[str, float] = {"nngp": e0, "ntk": e0, "sigma_dot": 0.0, "penultimate": 0.0}
    nw = _workers() if threads is None else max(1, int(threads))
    pool = ThreadPoolExecutor(max_workers=nw, thread_name_prefix="actspec-deep") if nw > 1 else None
    try:
        for ell in range(1, L + 1):
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
                Sig, Dot, Th = fmap(S, Theta, pool)
                if np.all(np.isfinite(np.diag(Sig))):
                    close = fmap.close_pairs(S, Sig, Dot, Th, Theta, close)
            if not (np.all(np.isfinite(np.diag(Sig))) and np.all(np.isfinite(np.diag(Dot)))):
                raise ActspecError(
                    f"the layer-{ell} kernel of {params.act.name} overflowed (variances grow "
                    "with depth under this scaling); use --scaling cphi or a smaller sigma_w^2"
                )
            errs.update(fmap.propagate_error(S, Sig, Dot, Theta, errs))
            yield DeepLayer(ell, Sig, Dot, Th, S, params.bias_var,  # type: ignore[arg-type]
                            error=dict(errs))
            S, Theta = Sig, Th
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


@dataclass
class DeepKernels:
    """All layers' kernels: ``sigma[l]`` (l = 0..L), ``sigma_dot[l]`` (l = 1..L; index 0 None),
    ``ntk[l]`` (Theta^l, l = 0..L)."""

    params: DeepParams
    sigma: list[np.ndarray] = field(repr=False)
    sigma_dot: list[np.ndarray | None] = field(repr=False)
    ntk: list[np.ndarray] = field(repr=False)

    @property
    def depth(self) -> int:
        return len(self.sigma) - 1

    def penultimate(self, depth: int | None = None) -> np.ndarray:
        L = self.depth if depth is None else int(depth)
        if not 1 <= L <= self.depth:
            raise ActspecError(f"depth must be in 1..{self.depth} (got {depth})")
        dot = self.sigma_dot[L]
        assert dot is not None
        return (self.sigma[L - 1] - self.params.bias_var) * dot


def deep_kernels(
    X: Any,
    act: Activation | str | Callable[..., Any],
    depth: int,
    *,
    scaling: str | float = "cphi",
    bias: float = 0.0,
) -> DeepKernels:
    """Sigma^l, Sigmadot^l and Theta^l for every l = 0..depth (keeps all: for moderate n)."""
    Xv = check_inputs(X)
    params = deep_params(act, scaling, bias)
    S0 = input_covariance(Xv, params.bias_var)
    sig: list[np.ndarray] = [S0]
    dot: list[np.ndarray | None] = [None]
    th: list[np.ndarray] = [S0]
    for layer in iter_deep_kernels(Xv, params, depth):
        sig.append(layer.sigma)
        dot.append(layer.sigma_dot)
        th.append(layer.ntk)
    return DeepKernels(params, sig, dot, th)


def deep_kernel(
    X: Any,
    act: Activation | str | Callable[..., Any],
    depth: int,
    *,
    kernel: Kernel = "ntk",
    scaling: str | float = "cphi",
    bias: float = 0.0,
) -> np.ndarray:
    """One kernel of the depth-L net: ``"ntk"`` Theta^L, ``"nngp"`` Sigma^L, ``"penultimate"`` G."""
    if kernel not in KERNELS:
        raise ActspecError(f"kernel must be one of {', '.join(KERNELS)} (got {kernel!r})")
    last: DeepLayer | None = None
    for layer in iter_deep_kernels(X, act, depth, scaling=scaling, bias=bias, ntk=kernel == "ntk"):
        last = layer
    assert last is not None
    return last.kernel(kernel)


def deep_ntk(X: Any, act: Any, depth: int, *, scaling: str | float = "cphi", bias: float = 0.0) -> np.ndarray:
    """Theta^L, the infinite-width NTK of the depth-L net (all layers trained)."""
    return deep_kernel(X, act, depth, kernel="ntk", scaling=scaling, bias=bias)


def nngp_kernel(
    X: Any, act: Any, depth: int, *, scaling: str | float = "cphi", bias: float = 0.0
) -> np.ndarray:
    """Sigma^L, the NNGP covariance of the depth-L net's output."""
    return deep_kernel(X, act, depth, kernel="nngp", scaling=scaling, bias=bias)


def penultimate_gram(
    X: Any, act: Any, depth: int, *, scaling: str | float = "cphi", bias: float = 0.0
) -> np.ndarray:
    """The activation paper's penultimate-layer G of the depth-L net (appendix J, Thm 4.8)."""
    return deep_kernel(X, act, depth, kernel="penultimate", scaling=scaling, bias=bias)


# ---------------------------------------------------------------------------------------------
# gradient-feature geometry (Liu & Hui 2023)
# ---------------------------------------------------------------------------------------------














# ---------------------------------------------------------------------------------------------
# data with small angles between points (the Liu & Hui setting)
# ---------------------------------------------------------------------------------------------




# ---------------------------------------------------------------------------------------------
# spectra of large kernels, and the depth study behind ``actspec depth``
# ---------------------------------------------------------------------------------------------









