"""Figure of ``actspec sphere``: the Mercer eigenvalues mu_k on S^{d-1} against the degree k.

matplotlib (Agg) is imported inside the function; the PNG is written atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import activation_colors, legend_outside, pyplot, save_figure

__all__ = ["plot_mercer"]


def plot_mercer(
    results: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """log mu_k against log k, one colour per activation (results of ``SphereSpectrum.to_dict``).

    Dots: resolved, non-vanishing degrees (k >= 1; vanishing degrees are left out, so ReLU shows
    its even degrees and k = 1). Dashed: the slope predicted from the kink class, drawn through
    the fitted curve at the top of the fit range. With a ``"sample"`` entry (the grouped
    eigenvalues of G∞/n): open circles at the group means, bars from the smallest to the largest
    eigenvalue of the group. The legend sits outside the axes.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.2, 4.8))
    colors = activation_colors(str(r["activation"]) for r in results)
    for r in results:
        col = colors[str(r["activation"])]
        k = np.asarray(r["degrees"], dtype=float)
        mu = np.asarray(r["eigenvalues"], dtype=float)
        ok = np.asarray(r["resolved"], dtype=bool) & (k >= 1) & (mu > 0)
        zero = np.zeros(k.size, dtype=bool)
        zero[np.asarray(r.get("zero_degrees", []), dtype=int)] = True
        ok &= ~zero
        decay = r.get("decay") or {}
        label = f"{r['activation']} ({r.get('kink_class', '')})"
        if decay.get("law") == "power" and decay.get("exponent") is not None:
            label += f": k^{decay['exponent']:.2f}"
        elif decay.get("law") == "stretched exponential" and decay.get("stretch") is not None:
            label += f": exp(-{decay['rate']:.2g} k^{decay['stretch']:.2f})"
        elif decay.get("law") == "finite":
            label += ": finite"
        ax.loglog(k[ok], mu[ok], ".", ms=3.5, color=col, label=label)
        pred = decay.get("predicted_exponent")
        rng = decay.get("fit_range")
        if pred is not None and rng and ok.any():
            top = int(rng[1])
            sel = ok & (k <= top)
            if sel.any():
                k1 = k[sel][-1]
                y1 = mu[sel][-1]
                k0 = max(1.0, k1 / 16.0)
                xs = np.array([k0, k1])
                # drawn 4x above the data so that the dots do not hide it: a slope guide
                ax.loglog(xs, 4.0 * y1 * (xs / k1) ** pred, "--", lw=1.0, color=col,
                          label=f"{r['activation']}: predicted slope k^{pred:g}")
        sample = r.get("sample")
        if sample and sample.get("groups"):
            g = [x for x in sample["groups"] if x["degree"] >= 1]
            if g:
                kd = np.array([x["degree"] for x in g], dtype=float)
                mean = np.array([x["mean"] for x in g])
                lo = np.array([x["min"] for x in g])
                hi = np.array([x["max"] for x in g])
                pos = mean > 0
                ax.errorbar(kd[pos], mean[pos],
                            yerr=[np.maximum(mean - lo, 0)[pos], np.maximum(hi - mean, 0)[pos]],
                            fmt="o", mfc="none", ms=6, color=col, elinewidth=0.8, capsize=2,
                            label=f"{r['activation']}: G∞/n, n={sample['n']} points")
    ax.set_xlabel("degree k of the spherical harmonics")
    ax.set_ylabel("eigenvalue μ_k (multiplicity N(d, k))")
    if not title and results:
        r0 = results[0]
        title = (f"Mercer spectrum on S^{r0['dim'] - 1} (d = {r0['dim']}), "
                 f"train={r0.get('train', 'hidden')}, depth {r0.get('depth', 1)}")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    lo_y, hi_y = ax.get_ylim()
    if hi_y / max(lo_y, 1e-300) > 1e60:  # keep tiny resolved values from squashing the rest
        ax.set_ylim(max(lo_y, hi_y * 1e-60), hi_y)
    if math.isfinite(hi_y):
        legend_outside(ax, fontsize=7.5)
    save_figure(fig, path)
