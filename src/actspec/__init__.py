"""actspec: how the activation function shapes training.

Compute the G-matrix (the NTK of the trained hidden layer) of two-layer networks for any
activation, at infinite width (closed forms, Hermite expansions, accurate 2x2 Gaussian
expectations) and at finite width (chunked PyTorch), and its spectrum.

>>> import actspec, numpy as np
>>> X = actspec.datasets.circle(10, 10, seed=0)
>>> G = actspec.gram(X, "relu")                 # infinite width
>>> actspec.spectrum(G).lambda_min > 0
True
"""

from __future__ import annotations

import sys as _sys

from .errors import ActspecError, exit_if_command_startup

try:  # these pull in torch and scipy (about a second): Ctrl-C may land here
    from .activations import BUILTIN_NAMES, Activation, activation
    from .gram import gram, normalization_constant
    from .hermite import hermite_coefficients
    from .inits import sample_weights
    from .spectrum import Spectrum, eigenvalues, spectrum
    from .training import train
except KeyboardInterrupt:
    exit_if_command_startup(_sys.argv[0] if _sys.argv else "")
    raise

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy submodules (keeps `import actspec` fast)
    if name in ("datasets", "diagnostics"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'actspec' has no attribute {name!r}")


__all__ = [
    "Activation",
    "ActspecError",
    "BUILTIN_NAMES",
    "Spectrum",
    "activation",
    "datasets",
    "eigenvalues",
    "gram",
    "hermite_coefficients",
    "normalization_constant",
    "sample_weights",
    "spectrum",
    "train",
    "__version__",
]
