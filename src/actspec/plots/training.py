"""Figures of ``actspec train``: measured vs predicted loss, and the lazy-regime diagnostics.

Left panel: loss against epoch (log scale; the axis says which loss: ½Σ‖f − y‖² or summed
cross-entropy), one colour per activation (the same in every figure), measured solid (with the
min-max band over repeats), predicted from the spectrum of G(0) dashed, from G∞ dotted; the
target loss as a grey line; divergent runs end with a cross. Right panel: the relative change of
the G-matrix ||G(t) - G(0)||_F / ||G(0)||_F (solid) and the relative weight movement
||W(t) - W(0)||_F / ||W(0)||_F (dotted). Legends sit below the panels. PNGs are written
atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import activation_colors, legend_outside, loss_label, pyplot, save_figure

__all__ = ["plot_training"]


def _arr(values: Sequence[Any] | None) -> np.ndarray:
    if values is None:
        return np.array([], dtype=float)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _positive(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, np.nan)


def plot_training(
    results: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    target_loss: float | None = None,
    show_infinite: bool = True,
    loss: str | None = None,
) -> None:
    """Two-panel figure from the ``results`` of :func:`actspec.experiments.training.train`;
    ``loss`` (``"mse"`` or ``"ce"``, the run's ``settings["loss"]``) names the loss on the axis
    (default: a row's ``"loss_kind"``, else both definitions)."""
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    colors = activation_colors(str(r.get("activation")) for r in results)
    if loss is None:
        loss = next((r["loss_kind"] for r in results if r.get("loss_kind")), None)
    ylabel = loss_label(loss)
    for r in results:
        col = colors[str(r.get("activation"))]
        ep = _arr(r.get("epoch"))
        if ep.size == 0:
            continue
        measured = _positive(_arr(r.get("loss")))
        label = str(r.get("activation"))
        status = r.get("status", "ok")
        if status != "ok":
            label += f" ({status})"
        ax.plot(ep, measured, "-", color=col, lw=1.8, label=f"{label}: measured")
        if r.get("loss_min") is not None and r.get("loss_max") is not None:
            ax.fill_between(
                ep, _positive(_arr(r["loss_min"])), _positive(_arr(r["loss_max"])),
                color=col, alpha=0.18, lw=0,
            )
        pred = _positive(_arr(r.get("predicted_loss")))
        if pred.size and np.any(np.isfinite(pred)):
            kind = "G∞" if r.get("prediction_kernel") == "inf" else "G(0)"
            ax.plot(ep, pred, "--", color=col, lw=1.2, label=f"{r.get('activation')}: predicted ({kind})")
        if show_infinite and r.get("prediction_kernel") == "finite":
            pinf = _positive(_arr(r.get("predicted_loss_inf")))
            if pinf.size and np.any(np.isfinite(pinf)):
                ax.plot(ep, pinf, ":", color=col, lw=1.0, alpha=0.8)
        if status == "diverged":
            t_div, l_div = r.get("diverged_at_epoch"), r.get("loss_at_divergence")
            if t_div is not None and l_div is not None and np.isfinite(l_div):
                ax.plot([ep[-1], t_div], [measured[-1], l_div], ":", color=col, lw=1.0)
                ax.plot([t_div], [l_div], "x", color=col, ms=9, mew=2)
            else:
                ax.plot(ep[-1:], measured[-1:], "x", color=col, ms=9, mew=2)
        drift = _positive(_arr(r.get("gram_drift")))
        if drift.size and np.any(np.isfinite(drift)):
            ax2.plot(ep, drift, "-", color=col, marker=".", ms=3, label=f"{r.get('activation')}: G drift")
        mv = _positive(_arr(r.get("weight_movement_relative")))
        if mv.size and np.any(np.isfinite(mv)):
            ax2.plot(ep, mv, ":", color=col, lw=1.0, label=f"{r.get('activation')}: W movement")
    if target_loss is not None and target_loss > 0:
        ax.axhline(target_loss, color="0.5", lw=0.8, ls="-.", label="target loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Training loss: measured (solid) vs spectrum prediction (dashed)")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, "below", fontsize=7, ncol=2 if len(results) <= 4 else 3)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("relative change")
    ax2.set_title("||G(t)-G(0)||/||G(0)|| (solid), ||W(t)-W(0)||/||W(0)|| (dotted)", fontsize=9)
    ax2.grid(True, which="both", alpha=0.3)
    legend_outside(ax2, "below", fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)
