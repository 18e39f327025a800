"""Sweeps: parameter grids over the commands, run locally or on a Dask cluster, with results kept in
a DuckDB store (resumable, crash-safe).

Modules: ``grid`` (task kinds, tasks, grids, config files), ``tasks`` (the built-in task kinds),
``runner`` (execution on Dask), ``store`` (the DuckDB results), ``query`` (tables, aggregates,
plot series and exports of the results)."""

from . import tasks  # noqa: F401  (registers the built-in task kinds)
