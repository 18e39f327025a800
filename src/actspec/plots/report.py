"""The report-card figure of ``actspec analyze`` (theorem checks on one data set)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .base import activation_color, legend_outside, pyplot, save_figure


def plot_report_card(card: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Three panels: Hermite c_a^2 with the fit, the dual kernel, the spectrum (in the
    activation's colour, as in every figure); legends below the panels."""
    plt = pyplot()
    col = activation_color(card["activation"]["name"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    h = card["hermite"]
    dec = h["decay"]
    ax = axes[0]
    c2 = np.asarray(h["fit_coefficients"], dtype=float) ** 2
    a = np.arange(c2.size)
    floor = 1e-28 if dec.get("source", "float64") == "float64" else 1e-90
    keep = c2 > floor * max(float(c2.sum()), 1e-300)  # float64 rounding noise omitted
    ax.loglog(a[keep] + 1, c2[keep], ".", ms=3, color=col, label="c_a²")
    if dec.get("a_range"):
        aa = np.arange(dec["a_range"][0], dec["a_range"][1] + 1, dtype=float)
        if dec["model"] == "power law":
            fit = np.exp(dec["power_log_prefactor"]) * aa ** -dec["power_exponent"]
            label = f"a^-{dec['power_exponent']:.2f}"
        else:
            fit = np.exp(dec["stretched_log_prefactor"] - dec["stretched_rate"] * aa
                         ** dec["stretched_kappa"])
            label = f"exp(-{dec['stretched_rate']:.2g} a^{dec['stretched_kappa']:.2f})"
        ax.loglog(aa + 1, fit, "-", color="0.25", label=f"fit {label} ({dec['subsequence']})")
    ax.set_xlabel("a + 1")
    ax.set_ylabel("c_a²  (Hermite coefficients of φ')")
    ax.set_title(f"{card['activation']['name']}: {card['kinks']['kink_class']}")
    ax.grid(True, which="both", alpha=0.3)
    ax = axes[1]
    dk = card["dual_kernel"]
    ax.plot(dk["rho"], dk["E_dphi_dphi"], "-", color=col)
    ax.set_xlabel("ρ = <x_i, x_j>")
    ax.set_ylabel("E[φ'(u) φ'(v)]")
    ax.set_title("dual kernel (G∞_ij = ρ · this)")
    ax.grid(True, alpha=0.3)
    ax = axes[2]
    s = card["spectrum"]
    ev = np.asarray(s["eigenvalues"], dtype=float)
    res = float(s["resolution"])
    idx = np.arange(1, ev.size + 1)
    shown = np.where(ev > res, ev, np.nan)
    ax.semilogy(idx, shown, ".-", ms=3, color=col, label=f"G∞ ({s.get('precision', 'float64')})")
    low = ev <= res
    if np.any(low):
        ax.semilogy(idx[low], np.full(int(low.sum()), res), "v", ms=4, color=col,
                    label="below resolution")
    s64 = card["spectrum_float64"]
    if s.get("precision") == "high":
        e64 = np.asarray(s64["eigenvalues"], dtype=float)
        ax.semilogy(idx, np.where(e64 > s64["resolution"], e64, np.nan), "x", ms=3,
                    color="0.5", label="float64")
        ax.axhline(s64["resolution"], color="0.5", lw=0.8, ls=":", label="float64 resolution")
    ax.axhline(res, color="k", lw=0.8, ls="--", label="resolution")
    tau = card["settings"]["threshold"] * float(ev[0])
    ax.axhline(tau, color="0.35", lw=0.8, ls="-.", label=f"{card['settings']['threshold']:g}·λ_max")
    d = card["data"]
    ax.set_title(f"spectrum: {d['name']}, n = {d['n']}, d0 = {d['span_dim']}")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    legend_outside(axes[0], "below", ncol=1)
    legend_outside(axes[2], "below", fontsize=7, ncol=2)
    save_figure(fig, path)
