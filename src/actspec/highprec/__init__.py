"""Extended precision (``--precision high``): G∞ entries, Hermite coefficients and eigenvalues with
mpmath/python-flint, for the tiny eigenvalues that smooth activations produce."""

from .kernels import (
    MAX_N,
    HighPrecCoefficients,
    HighPrecGram,
    HighPrecSpectrum,
    circulant_eigenvalues,
    eigvalsh_highprec,
    flint_available,
    gram_highprec,
    hermite_coefficients_highprec,
    rho_highprec,
    run_spectrum_high,
    spectrum_highprec,
)

__all__ = [
    "MAX_N",
    "HighPrecCoefficients",
    "HighPrecGram",
    "HighPrecSpectrum",
    "circulant_eigenvalues",
    "eigvalsh_highprec",
    "flint_available",
    "gram_highprec",
    "hermite_coefficients_highprec",
    "rho_highprec",
    "run_spectrum_high",
    "spectrum_highprec",
]
