"""The output writer never destroys what it writes into (issues 17, 18).

* special files (``/dev/null``, FIFOs, devices, ``/dev/stdout``) are written in place, never
  replaced by a regular file; a symbolic link to a regular file is kept and its target replaced;
* the files written get ``0o666 & ~umask``, not 0600;
* ``~`` is expanded by both the early check and the writer;
* a write is durable (file and directory fsynced) when the writer returns, and the checkpoint of
  a G-matrix run is deleted only after that.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actspec.cli import run
from actspec.core.errors import ActspecError
from actspec.core.io import atomic_path, check_writable, current_umask, write_json
from actspec.finite.checkpoint import Checkpoint

ROOT_ONLY = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (mknod, writing /dev)"
)
PAYLOAD = {"a": 1, "b": [1.5, None]}


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


# ---- 1. special files are written in place -------------------------------------------------


def test_fifo_is_written_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    got: list[bytes] = []
    # the reader end is opened first (non-blocking, so nothing here can hang); the writer's
    # open then succeeds at once and a reader thread collects the bytes until the writer closes
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(rfd, True)
    try:
        write_json(fifo, PAYLOAD)
        reader = threading.Thread(target=lambda: got.append(_read_all(rfd)), daemon=True)
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive()
    finally:
        os.close(rfd)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0]) == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.json"]  # no temporary left


def test_pipe_through_proc_fd_like_dev_stdout(tmp_path: Path) -> None:
    """``--json /dev/stdout | jq``: /dev/stdout -> /proc/self/fd/1 -> a pipe."""
    r, w = os.pipe()
    try:
        write_json(f"/proc/self/fd/{w}", PAYLOAD)
        os.set_blocking(r, False)
        assert json.loads(_read_all(r)) == PAYLOAD
        assert stat.S_ISFIFO(os.fstat(w).st_mode)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_descriptor_of_a_regular_file_is_written_in_place(tmp_path: Path) -> None:
    """``--json /dev/stdout > out.txt``: the open file itself receives the JSON (same inode)."""
    target = tmp_path / "out.txt"
    with open(target, "w") as fh:
        ino = os.fstat(fh.fileno()).st_ino
        write_json(f"/proc/self/fd/{fh.fileno()}", PAYLOAD)
        assert os.fstat(fh.fileno()).st_nlink == 1  # still the file, not an unlinked one
    assert target.stat().st_ino == ino
    assert json.loads(target.read_text()) == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@ROOT_ONLY
def test_character_device_is_written_not_replaced(tmp_path: Path) -> None:
    dev = tmp_path / "null"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(dev, 0o666)  # mknod applies the umask
    write_json(dev, PAYLOAD)
    st = os.stat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_failure_never_deletes_a_special_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(RuntimeError), atomic_path(fifo) as tmp:
        assert tmp == fifo  # written directly
        raise RuntimeError("the command failed")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_spool_hands_a_regular_file_and_copies_it_into_the_special_one(tmp_path: Path) -> None:
    """For writers that delete and recreate their file (DuckDB's COPY in sweep/store.py)."""
    fifo = tmp_path / "rows.parquet"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(rfd, True)
    try:
        with atomic_path(fifo, spool=True) as tmp:
            assert tmp != fifo and tmp.parent != tmp_path and tmp.is_file()
            tmp.unlink()
            tmp.write_bytes(b"PAR1 rows PAR1")
        got = _read_all(rfd)
    finally:
        os.close(rfd)
    assert got == b"PAR1 rows PAR1" and not tmp.exists()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(RuntimeError), atomic_path(fifo, spool=True) as tmp:
        raise RuntimeError("the export failed")
    assert not tmp.exists() and stat.S_ISFIFO(os.stat(fifo).st_mode)  # nothing opened the FIFO
    reg = tmp_path / "r.parquet"
    with atomic_path(reg, spool=True) as tmp:  # a regular target: atomic as usual
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert reg.read_bytes() == b"x"


@pytest.fixture
def dev_null_guard() -> Iterator[None]:
    """Restore /dev/null should a broken writer replace it (this test runs as root)."""
    yield
    try:
        st = os.lstat("/dev/null")
        broken = not (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3))
    except FileNotFoundError:
        broken = True
    if broken:
        Path("/dev/null").unlink(missing_ok=True)
        os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod("/dev/null", 0o666)


@ROOT_ONLY
def test_cli_json_to_dev_null_keeps_the_device(
    dev_null_guard: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = os.stat("/dev/null")
    code = run(["hermite", "relu", "--degree", "3", "--json", "/dev/null"])
    capsys.readouterr()
    after = os.stat("/dev/null")
    assert code == 0
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == os.makedev(1, 3)
    assert after.st_ino == before.st_ino and stat.S_IMODE(after.st_mode) == 0o666


def test_symlink_to_a_regular_file_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = real_dir / "real.json"
    real.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_json(link, PAYLOAD)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text()) == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "store"]
    assert sorted(p.name for p in real_dir.iterdir()) == ["real.json"]  # temp was made there


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to("new.json")  # relative, not there yet
    assert check_writable(link) == link
    write_json(link, PAYLOAD)
    assert link.is_symlink()
    assert json.loads((tmp_path / "new.json").read_text()) == PAYLOAD


def test_check_writable_of_a_special_file_asks_the_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o600)
    assert check_writable(fifo) == fifo
    if os.geteuid() != 0:  # root may write anything
        os.chmod(fifo, 0o400)
        with pytest.raises(ActspecError, match="not writable"):
            check_writable(fifo)


# ---- 2. the umask decides the mode ---------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[Any]:
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path: Path, umask: Any, mask: int, mode: int) -> None:
    umask(mask)
    assert current_umask() == mask
    assert current_umask() == mask  # reading it leaves it alone
    new = tmp_path / "new.json"
    write_json(new, PAYLOAD)
    assert stat.S_IMODE(new.stat().st_mode) == mode
    old = tmp_path / "old.json"
    old.write_text("x")
    os.chmod(old, 0o600)
    write_json(old, PAYLOAD)  # overwriting gives the same mode as a new file
    assert stat.S_IMODE(old.stat().st_mode) == mode
    npy = tmp_path / "G.npy"
    with atomic_path(npy) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.eye(2))
    assert stat.S_IMODE(npy.stat().st_mode) == mode


# ---- 3. ~ is expanded by the check and the writer alike ------------------------------------


def test_tilde_is_expanded_by_check_and_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert check_writable("~/t.json", "--json") == home / "t.json"
    write_json("~/t.json", PAYLOAD)
    assert json.loads((home / "t.json").read_text()) == PAYLOAD
    with atomic_path("~/f.png") as tmp:
        tmp.write_bytes(b"png")
    assert (home / "f.png").read_bytes() == b"png"
    assert list(cwd.iterdir()) == []  # no literal '~' directory


def test_cli_json_with_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = run(["hermite", "relu", "--degree", "3", "--json", "~/h.json"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert isinstance(json.loads((tmp_path / "h.json").read_text()), dict)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.json"]


# ---- 4. durable writes; the checkpoint goes only after the result is durable ---------------


def test_atomic_write_fsyncs_file_then_renames_then_fsyncs_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, Any]] = []
    fsync, replace = os.fsync, os.replace

    def rec_fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(("fsync-dir" if stat.S_ISDIR(st.st_mode) else "fsync-file", st.st_ino))
        fsync(fd)

    def rec_replace(src: Any, dst: Any) -> None:
        events.append(("replace", os.stat(src).st_ino))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", rec_fsync)
    monkeypatch.setattr(os, "replace", rec_replace)
    out = tmp_path / "r.json"
    write_json(out, PAYLOAD)
    kinds = [k for k, _ in events]
    assert kinds == ["fsync-file", "replace", "fsync-dir"]
    assert events[0][1] == events[1][1] == out.stat().st_ino
    assert events[2][1] == tmp_path.stat().st_ino


def test_failed_fsync_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.json"
    out.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_json(out, PAYLOAD)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_checkpoint_removal_is_a_separate_step(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    path.write_bytes(b"state")
    ck = Checkpoint(path, defer_removal=True)
    ck.run_finished()  # the computation is done, the result not yet written: keep the state
    assert path.exists()
    ck.finish()  # the result is durable
    assert not path.exists()
    ck.finish()  # idempotent

    path.write_bytes(b"state")
    Checkpoint(path).run_finished()  # library call, result in memory: delete as before
    assert not path.exists()

    path.write_bytes(b"state")
    kept = Checkpoint(path, keep=True, defer_removal=True)
    kept.run_finished()
    kept.finish()
    assert path.exists() and kept.info()["kept"] is True


def _sphere(n: int = 24, d: int = 6) -> np.ndarray:
    X = np.random.default_rng(5).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_gram_job_keeps_the_checkpoint_when_writing_G_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actspec.experiments import gram_job as job

    X, out, ck = _sphere(), tmp_path / "G.npy", tmp_path / "G.ckpt.npz"
    save = job._save_npy

    def full_disk(path: Path, G: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(job, "_save_npy", full_disk)
    with pytest.raises(OSError, match="No space"):
        job.gram_job(X, "tanh", 300, out, chunk=100, checkpoint=ck, checkpoint_every=0,
                     device="cpu")
    assert ck.exists() and not out.exists()  # the work of the run is not lost
    monkeypatch.setattr(job, "_save_npy", save)
    res = job.gram_job(X, "tanh", 300, out, chunk=100, checkpoint=ck, checkpoint_every=0,
                       device="cpu")
    assert res["checkpoint"]["resumed_from"] > 0
    assert out.exists() and not ck.exists()


# ---- output collisions and outputs written as a group (issue 18) --------------------------------

from actspec.core.errors import Interrupted  # noqa: E402
from actspec.core.io import check_distinct_paths, output_group  # noqa: E402
from actspec.core.validate import ParameterError  # noqa: E402


def _error_line(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("args, flags", [
    (["hermite", "relu", "-k", "3", "--json", "{p}", "--plot", "{p}"], ("--plot", "--json")),
    (["gram", "-a", "relu", "--n", "4", "--out", "{p}", "--json", "{p}"], ("--out", "--json")),
    (["gram", "-a", "relu", "--n", "4", "--width", "10", "--out", "{p}", "--checkpoint", "{p}"],
     ("--out", "--checkpoint")),
    (["results", "{db}", "--parquet", "{p}", "--json", "{p}"], ("--parquet", "--json")),
    (["spectrum", "--n", "4", "--plot", "{p}", "--json", "{p}"], ("--plot", "--json")),
])
def test_outputs_naming_one_file_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], flags: tuple[str, str]
) -> None:
    p = tmp_path / "same.out"
    line = _error_line(run([a.format(p=p, db=tmp_path / "s.duckdb") for a in args]),
                       capsys.readouterr().err)
    assert "both name" in line and str(p) in line
    assert f"{flags[0]} and {flags[1]}" in line or f"{flags[1]} and {flags[0]}" in line
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_collision_after_tilde_expansion_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "t.json", tmp_path / "link.json")
    for plot in ("~/t.json", str(tmp_path / "sub" / ".." / "t.json"), str(tmp_path / "link.json")):
        line = _error_line(run(["hermite", "relu", "-k", "2", "--json", str(tmp_path / "t.json"),
                                "--plot", plot]), capsys.readouterr().err)
        assert "--json and --plot both name" in line, plot
    assert not (tmp_path / "t.json").exists()


def test_output_over_an_input_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.eye(3))
    before = data.read_bytes()
    line = _error_line(run(["spectrum", "--data", str(data), "--json", str(data)]),
                       capsys.readouterr().err)
    assert "--json names the input file of --data" in line
    assert data.read_bytes() == before


def test_special_files_may_be_shared() -> None:
    check_distinct_paths({"json_path": "/dev/null", "plot": "/dev/null"})  # no error
    with pytest.raises(ParameterError) as info:
        check_distinct_paths({"json_path": "a.json", "plot": "./a.json"})
    assert info.value.params == ("json_path", "plot")


def test_output_group_renames_all_or_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with output_group([a, b]):
        write_json(a, PAYLOAD)
        assert not a.exists()  # waits for the group
        write_json(b, PAYLOAD)
    assert json.loads(a.read_text()) == json.loads(b.read_text()) == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]

    c, d = tmp_path / "c.json", tmp_path / "d.json"
    with pytest.raises(OSError), output_group([c, d]):
        write_json(c, PAYLOAD)
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no c, no temps

    e = tmp_path / "e.json"  # a command that stops on Ctrl-C keeps what it finished on purpose
    with pytest.raises(Interrupted), output_group([e]):
        write_json(e, PAYLOAD)
        raise Interrupted("interrupted; kept e.json")
    assert e.exists()


def test_full_disk_on_json_after_plot_leaves_no_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import actspec.core.io as io

    real = io._fsync_path

    def full_on_json(path: Path) -> None:
        if str(path).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(io, "_fsync_path", full_on_json)
    png, js = tmp_path / "h.png", tmp_path / "h.json"
    line = _error_line(run(["hermite", "relu", "-k", "3", "--plot", str(png), "--json", str(js)]),
                       capsys.readouterr().err)
    assert "No space left" in line
    assert list(tmp_path.iterdir()) == []  # neither the PNG nor a temporary file
    monkeypatch.setattr(io, "_fsync_path", real)
    assert run(["hermite", "relu", "-k", "3", "--plot", str(png), "--json", str(js)]) == 0
    capsys.readouterr()
    assert png.stat().st_size > 0 and json.loads(js.read_text())["activation"] == "relu"
