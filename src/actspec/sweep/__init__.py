"""Sweeps: parameter grids over the commands, run locally or on a Dask cluster, with results kept in
a DuckDB store (resumable, crash-safe)."""
