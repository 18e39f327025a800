"""Figure of ``actspec model``: the eNTK spectrum per activation, its condition number over seeds,
and (with training) the measured loss against the loss the eNTK predicts. PNG, written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_model"]


def plot_model(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = "",
               steps: int = 0) -> None:
    """Panels: eigenvalues of Θ (first seed, descending); condition number per activation (mean,
    with each seed as a dot); measured (solid) and predicted (dashed) loss of the first seed when
    ``steps`` > 0, else the gradient angle against the input angle (binned means)."""
    from .base import activation_colors, legend_outside, loss_label, pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax_s, ax_c, ax_t = axes
    names = [r["activation"] for r in rows]
    colors = activation_colors(names)
    for r in rows:
        first = r["per_seed"][0]
        ev = first.get("eigenvalues")
        res = float(first.get("resolution") or 0.0)
        if ev is not None:
            ev = np.asarray(ev, dtype=float)
            ax_s.semilogy(np.arange(1, ev.size + 1), np.where(ev > res, ev, np.nan), "-", lw=1.2,
                          color=colors[r["activation"]], label=r["activation"])
        else:
            ax_s.semilogy([1], [first["lambda_max"]], "o", color=colors[r["activation"]],
                          label=r["activation"])
    ax_s.set_xlabel("eigenvalue index (descending)")
    ax_s.set_ylabel("eigenvalue of Θ")
    ax_s.set_title("eNTK spectrum at initialisation (first seed)")
    ax_s.grid(True, which="both", alpha=0.3)
    legend_outside(ax_s, "below")

    x = np.arange(len(rows))
    for k, r in enumerate(rows):
        conds = [p["condition_number"] for p in r["per_seed"] if p.get("condition_number")]
        if conds:
            ax_c.bar(k, float(np.mean(conds)), color=colors[r["activation"]], alpha=0.5)
            ax_c.plot([k] * len(conds), conds, "o", ms=4, color=colors[r["activation"]])
    ax_c.set_yscale("log")
    ax_c.set_xticks(x, names, rotation=20)
    ax_c.set_ylabel("condition number λ_max/λ_min")
    ax_c.set_title("condition number (bars: mean, dots: seeds)")
    ax_c.grid(True, which="both", axis="y", alpha=0.3)

    if steps:
        for r in rows:
            tr = r["per_seed"][0].get("training")
            if not tr:
                continue
            c = colors[r["activation"]]
            measured = np.maximum(tr["loss"], 1e-300)
            predicted = np.maximum(tr["predicted_loss_all"], 1e-300)
            ax_t.semilogy(tr["log_steps"], measured, "-", color=c, label=r["activation"])
            ax_t.semilogy(tr["predicted_log_steps"], predicted, "--", color=c)
        ax_t.set_xlabel("step")
        ax_t.set_ylabel(loss_label("mse"))
        ax_t.set_title("measured (solid) vs predicted by the eNTK (dashed), first seed")
    else:
        for r in rows:
            ang = r["per_seed"][0].get("angles") or {}
            if not len(ang.get("input_angle", [])):
                continue
            ax_t.plot(np.degrees(np.asarray(ang["input_angle"], dtype=float)),
                      np.degrees(np.asarray(ang["gradient_angle_mean"], dtype=float)), "o-", ms=3,
                      color=colors[r["activation"]], label=r["activation"])
        lim = ax_t.get_xlim()
        ax_t.plot(lim, lim, ":", color="0.5", lw=0.8, label="gradient angle = input angle")
        ax_t.set_xlabel("angle between inputs (deg)")
        ax_t.set_ylabel("angle between gradients ∇f (deg)")
        ax_t.set_title("gradient-feature angles (Liu & Hui), first seed")
    ax_t.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    legend_outside(ax_t, "below")
    save_figure(fig, path)
