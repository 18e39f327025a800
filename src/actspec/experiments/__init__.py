"""Experiments: each builds settings, calls the kernels/spectra/training layers and returns a
JSON-ready dict; none prints. The CLI renders what they return."""
