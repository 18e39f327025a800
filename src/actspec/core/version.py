"""The package version (one home: the root package, run metadata and sweeps read it here)."""

__version__ = "0.1.0"
