"""Figures of the data diagnostics: pairwise distances and the singular values of the data."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ["plot_data_diagnostics"]


def plot_data_diagnostics(diag: dict[str, Any], distances_png: str | os.PathLike[str] | None,
                          singular_png: str | os.PathLike[str] | None, *,
                          title: str | None = None) -> None:
    """Figure 2(a) (pairwise-distance histogram) and 2(b) (cumulative normalised sum of squared
    singular values, semilog in k) as PNGs, each written atomically; a None path is skipped."""
    from ..core.io import check_writable
    from .base import legend_outside, pyplot, save_figure

    check_writable(distances_png, "figure")
    check_writable(singular_png, "figure")
    plt = pyplot()

    suffix = f" ({title})" if title else ""
    if distances_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        try:
            h = diag.get("histogram") or {}
            counts, edges = h.get("counts") or [], h.get("edges") or []
            if counts:
                e = np.asarray(edges)
                ax.bar(e[:-1], counts, width=np.diff(e), align="edge", color="tab:blue",
                       edgecolor="none")
            for key, style, label in (("min_distance", "--", "min distance"),
                                      ("delta", ":", "delta (Assumption 2)")):
                v = diag.get(key)
                if v is not None:
                    ax.axvline(v, color="tab:red", ls=style, label=f"{label} = {v:.3g}")
            ax.set_xlim(left=0.0)
            ax.set_xlabel(r"pairwise distance $\|x_i - x_j\|$")
            ax.set_ylabel("number of pairs")
            ax.set_title(f"Pairwise distances, n = {diag.get('n')}{suffix}")
            if diag.get("min_distance") is not None:
                legend_outside(ax)
            fig.tight_layout()
            save_figure(fig, distances_png)
        finally:
            plt.close(fig)
    if singular_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        try:
            cum = np.asarray(diag.get("cumulative_energy") or [], dtype=float)
            k = np.arange(1, cum.size + 1)
            if cum.size:
                ax.semilogx(k, cum, color="tab:blue", lw=1.5)
            sd = diag.get("span_dim")
            if sd:
                ax.axvline(sd, color="tab:gray", ls="--", lw=1,
                           label=f"numerical rank = {sd}")
            n = diag.get("n") or 0
            if n and n > 1:
                ax.axvline(math.log(n), color="tab:red", ls=":", lw=1,
                           label=f"log n = {math.log(n):.2f}")
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("k (number of top singular values)")
            ax.set_ylabel(r"$\sum_{i\leq k}\sigma_i^2 / \sum_i \sigma_i^2$")
            ax.set_title(f"Cumulative normalised squared singular values{suffix}")
            legend_outside(ax)
            ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout()
            save_figure(fig, singular_png)
        finally:
            plt.close(fig)
