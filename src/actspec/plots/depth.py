"""Figures of ``actspec depth``: spectrum against depth, gradient angle against input angle.

PNG files written atomically (see :func:`actspec.plots.base.save_figure`)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import activation_colors, legend_outside, pyplot, save_figure

__all__ = ["plot_depth_spectrum", "plot_gradient_angles"]


def _by_activation(results: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        out.setdefault(r["activation"], []).append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["depth"])
    return out


def plot_depth_spectrum(
    results: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Three panels against depth, one line per activation: lambda_min, lambda_max, condition
    number (open markers: lower bounds, lambda_min below float64 resolution)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    panels = (("lambda_min", "λ_min"), ("lambda_max", "λ_max"), ("condition_number", "condition number"))
    groups = _by_activation(results)
    colors = activation_colors(groups)
    for name, rows in groups.items():
        depth = np.array([r["depth"] for r in rows])
        lower = np.array([bool(r["condition_number_is_lower_bound"]) for r in rows])
        for ax, (key, _label) in zip(axes, panels, strict=True):
            y = np.array([np.nan if r[key] is None else float(r[key]) for r in rows])
            y = np.where(y > 0, y, np.nan)
            (line,) = ax.semilogy(depth, y, "-", lw=1.2, color=colors[str(name)], label=name)
            ok = ~lower
            ax.plot(depth[ok], y[ok], "o", ms=4, color=line.get_color())
            if np.any(lower):
                ax.plot(depth[lower], y[lower], "o", ms=5, mfc="none", color=line.get_color())
    for ax, (_, label) in zip(axes, panels, strict=True):
        ax.set_xlabel("depth L (hidden layers)")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title or "Kernel spectrum against depth")
    fig.tight_layout()
    legend_outside(axes[-1])
    save_figure(fig, path)


def plot_gradient_angles(
    results: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Per activation: mean angle between gradients against the angle between inputs, one line
    per depth (binned over the pairs; shaded: min..max in the bin), with the identity line."""
    plt = pyplot()
    groups = _by_activation(results)
    k = max(1, len(groups))
    cols = min(k, 3)
    nrows = math.ceil(k / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 4.0 * nrows), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (name, rows) in zip(axes.ravel(), groups.items(), strict=False):
        dmax = max(r["depth"] for r in rows)
        lo = hi = None
        for r in rows:
            a = r.get("angles") or {}
            x = np.degrees(np.asarray(a.get("input_angle", []), dtype=float))
            if x.size == 0:
                continue
            y = np.degrees(np.asarray(a["gradient_angle_mean"], dtype=float))
            colour = cmap(0.9 * (r["depth"] - 1) / max(1, dmax - 1))
            ax.plot(x, y, "-", color=colour, lw=1.3, label=f"L={r['depth']}")
            if "gradient_angle_min" in a:
                ymin = np.degrees(np.asarray(a["gradient_angle_min"], dtype=float))
                ymax = np.degrees(np.asarray(a["gradient_angle_max"], dtype=float))
                ax.fill_between(x, ymin, ymax, color=colour, alpha=0.08, lw=0)
            lo = float(np.nanmin(x)) if lo is None else min(lo, float(np.nanmin(x)))
            hi = float(np.nanmax(x)) if hi is None else max(hi, float(np.nanmax(x)))
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="input angle")
        ax.set_title(name)
        ax.set_xlabel("angle between inputs (degrees)")
        ax.set_ylabel("angle between gradients (degrees)")
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(title or "Gradient-feature angles (Liu & Hui 2023)")
    fig.tight_layout(h_pad=4.0)
    for ax in axes.ravel()[: len(groups)]:
        legend_outside(ax, "below", fontsize=7, ncol=3)
    save_figure(fig, path)
