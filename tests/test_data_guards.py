"""Issue 18, data bullets: a CSV byte-order mark, out-of-range CIFAR batches, FIFOs.

Each case failed before: the BOM made the first data row a header (n = 2 of 3, silently), CIFAR
labels 17 and pixels -5 / 300 were accepted, and a FIFO hung the reader for ever.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from actspec.core.errors import ActspecError
from actspec.data.datasets import CIFAR10_TRAIN_FILES, load_data, load_labels


def test_csv_with_byte_order_mark_keeps_every_row(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n5,6\n")  # Excel's "CSV UTF-8"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no header: no warning
        ds = load_data(str(p), normalize=False)
    assert ds.n == 3
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])


def test_csv_header_is_detected_by_content_and_announced(tmp_path):
    p = tmp_path / "h.csv"
    p.write_bytes(b"\xef\xbb\xbfa,label\n1,0\n2,1\n")
    with pytest.warns(UserWarning, match=r"first row \('a', 'label'\) is taken as a column header"):
        ds = load_data(str(p), normalize=False)
    assert ds.n == 2 and ds.info["labels"] == "file"
    np.testing.assert_array_equal(ds.y, [0, 1])
    q = tmp_path / "y.csv"
    q.write_bytes(b"\xef\xbb\xbf1\n0\n1\n")
    np.testing.assert_array_equal(load_labels(str(q)), [1, 0, 1])


def _cifar(root, *, labels=None, data=None):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in (*CIFAR10_TRAIN_FILES, "test_batch"):
        d = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        d[:, 0] = 1
        batch = {b"labels": [1, 2, 3], b"data": d}
        if name == "data_batch_3":
            if labels is not None:
                batch[b"labels"] = labels
            if data is not None:
                batch[b"data"] = data
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh)


@pytest.mark.parametrize("labels", [[0, 17, 2], [-1, 0, 1]])
def test_cifar_labels_outside_0_9_refused(tmp_path, labels):
    _cifar(tmp_path, labels=labels)
    with pytest.raises(ActspecError, match=r"data_batch_3.*label -?\d+ \(image \d\) outside 0\.\.9"):
        load_data("cifar10", data_dir=str(tmp_path))


@pytest.mark.parametrize("bad", [-5.0, 300.0, 12.5, float("nan")])
def test_cifar_pixels_outside_0_255_refused(tmp_path, bad):
    data = np.ones((3, 3072), dtype=np.float64)
    data[1, 7] = bad
    _cifar(tmp_path, data=data)
    with pytest.raises(ActspecError, match=r"data_batch_3.*pixel value .*\(image 1, entry 7\)"):
        load_data("cifar10", data_dir=str(tmp_path))
    # wider integer types inside 0..255 are still fine
    _cifar(tmp_path, data=np.full((3, 3072), 255, dtype=np.int64))
    assert load_data("cifar10", data_dir=str(tmp_path), n=4).n == 4


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_fifo_refused_without_blocking(tmp_path, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    out: dict[str, object] = {}

    def load() -> None:
        try:
            load_data(str(fifo))
        except ActspecError as exc:
            out["err"] = str(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert "is a FIFO (named pipe)" in str(out.get("err"))
    with pytest.raises(ActspecError, match="FIFO"):
        load_labels(str(fifo))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_fifo_one_line_exit_2(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "actspec", "data", "--data", str(fifo)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "FIFO" in lines[0]
