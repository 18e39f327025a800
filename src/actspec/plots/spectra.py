"""Figures (matplotlib, Agg backend): eigenvalue spectra and Hermite decay.

Every function writes a PNG atomically (temporary file, then rename)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import activation_colors, legend_outside, pyplot, save_figure

__all__ = ["plot_spectra", "plot_hermite"]


def plot_spectra(
    curves: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Log-scale eigenvalues (descending) per curve: dicts with label, eigenvalues, resolution,
    and optionally ``index`` (1-based eigenvalue indices, when only some are known) and
    ``activation`` (its colour; default: the label's). The legend sits right of the axes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = activation_colors(c.get("activation", c["label"]) for c in curves)
    floor = None
    for c in curves:
        col = colors[str(c.get("activation", c["label"]))]
        ev = np.asarray(c["eigenvalues"], dtype=float)
        res = float(c.get("resolution", 0.0))
        shown = np.where(ev > res, ev, np.nan)
        style = "--" if c.get("dashed") else "-"
        if "index" in c:  # only some eigenvalues known (iterative): points at their indices
            style = "none"
        idx = np.asarray(c.get("index", np.arange(1, ev.size + 1)))
        ax.semilogy(idx, shown, style, marker=".", ms=3, color=col, label=c["label"])
        floor = res if floor is None else max(floor, res)
    if floor:
        ax.axhline(floor, color="0.5", lw=0.8, ls=":", label="float64 resolution")
    ax.set_xlabel("eigenvalue index (descending)")
    ax.set_ylabel("eigenvalue of G")
    ax.set_title(title or "Spectrum of the G-matrix")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def plot_hermite(
    coeffs: dict[str, np.ndarray], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """c_a^2 against a on log-log axes (zeros omitted), one colour per activation; the legend
    sits right of the axes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = activation_colors(coeffs)
    for label, c in coeffs.items():
        c2 = np.asarray(c, dtype=float) ** 2
        a = np.arange(c2.size)
        keep = c2 > 1e-32
        ax.loglog(a[keep] + 1, c2[keep], ".", ms=3, color=colors[str(label)], label=label)
    ax.set_xlabel("a + 1  (Hermite degree + 1)")
    ax.set_ylabel("c_a^2")
    ax.set_title(title or "Hermite coefficients of phi' (orthonormal basis)")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)
