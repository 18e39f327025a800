from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest
import torch
from hypothesis import settings

torch.set_num_threads(2)

# The on-disk kernel-table cache (kernels/table_cache.py) goes to a fresh directory of this process
# (each xdist worker imports this file: one directory per worker), never to ~/.cache, so no run
# depends on files an earlier run left. Set in os.environ: CLI subprocesses inherit it.
_TABLE_CACHE_DIR = tempfile.mkdtemp(prefix="actspec-test-cache-")
os.environ["ACTSPEC_CACHE_DIR"] = _TABLE_CACHE_DIR
atexit.register(shutil.rmtree, _TABLE_CACHE_DIR, True)



_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_THREAD_ENV_AT_START = {k: os.environ.get(k) for k in _THREAD_ENV}


@pytest.fixture(autouse=True)
def _same_threads_for_every_test():
    """Every test starts with torch on 2 threads and the thread variables of the environment as
    they were, whatever an earlier test in this process did: an in-process sweep worker sets torch
    to 1 thread, and Dask's nanny writes OMP/MKL/OPENBLAS_NUM_THREADS=1 into os.environ, which CLI
    subprocesses inherit. float32 GEMMs then sum in another order: a golden float32 output
    differed at 5e-7 depending on which tests had run before in the same xdist worker."""
    torch.set_num_threads(2)
    for k, v in _THREAD_ENV_AT_START.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    yield


# The suite must give the same verdict on every run and every clone: hypothesis draws its examples
# from a fixed seed (derandomize) and keeps no example database (no .hypothesis/ replays).
settings.register_profile("actspec", derandomize=True, database=None, print_blob=True)
settings.load_profile("actspec")


def unit_rows(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def circle_points(n: int, dim: int = 10, seed: int = 0) -> np.ndarray:
    """n equally spaced points on a circle, lifted to R^dim by a random orthonormal map."""
    rng = np.random.default_rng(seed)
    th = 2 * np.pi * np.arange(n) / n
    Q, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    return np.stack([np.cos(th), np.sin(th)], axis=1) @ Q.T


def subspace_points(n: int, dim: int, span: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((dim, span)))
    return unit_rows(rng.standard_normal((n, span)) @ Q.T)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
