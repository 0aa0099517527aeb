"""Unit tests of the shared file helpers: sha256 of a file and atomic writes."""

import hashlib
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import fileio


@given(data=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=4096))
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_sha256_file_matches_hashlib_for_any_chunk_size(tmp_path, data, chunk):
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert fileio.sha256_file(str(path), chunk=chunk) == hashlib.sha256(data).hexdigest()


def test_sha256_file_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        fileio.sha256_file(str(tmp_path / "missing"))


@given(old=st.binary(max_size=2000), new=st.one_of(st.binary(max_size=2000), st.text(max_size=500)))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_atomic_write_round_trip(tmp_path, old, new):
    path = tmp_path / "file"
    path.write_bytes(old)
    fileio.atomic_write(str(path), new)
    expected = new.encode("utf-8") if isinstance(new, str) else new
    assert path.read_bytes() == expected
    assert sorted(os.listdir(str(tmp_path))) == ["file"]


def test_atomic_write_sets_the_mode_whatever_the_umask(tmp_path):
    path = str(tmp_path / "file")
    old_umask = os.umask(0o077)
    try:
        fileio.atomic_write(path, b"x", mode=0o644)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        fileio.atomic_write(path, b"y", mode=0o600)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_atomic_write_creates_missing_directories_with_dir_mode(tmp_path):
    path = str(tmp_path / "a" / "b" / "file")
    old_umask = os.umask(0o022)
    try:
        fileio.atomic_write(path, "text\n", dir_mode=0o750)
    finally:
        os.umask(old_umask)
    assert open(path, "rb").read() == b"text\n"
    assert stat.S_IMODE(os.stat(str(tmp_path / "a" / "b")).st_mode) == 0o750


def test_atomic_write_flushes_the_directory_unless_told_not_to(tmp_path, monkeypatch):
    flushed = []
    monkeypatch.setattr(fileio, "fsync_path", flushed.append)
    fileio.atomic_write(str(tmp_path / "f"), b"1")
    fileio.atomic_write(str(tmp_path / "g"), b"2", sync_dir=False)
    assert flushed == [str(tmp_path)]


@pytest.mark.parametrize("step", ["write", "fsync", "fchmod", "replace"])
def test_a_failure_midway_keeps_the_old_content_and_no_temp_file(tmp_path, monkeypatch, step):
    path = tmp_path / "file"
    path.write_bytes(b"old content")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, step, broken)
    with pytest.raises(OSError, match="No space left"):
        fileio.atomic_write(str(path), b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old content"
    assert os.listdir(str(tmp_path)) == ["file"]


def test_an_interrupt_midway_also_removes_the_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "file"
    path.write_bytes(b"old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(str(path), b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(str(tmp_path)) == ["file"]


def test_fsync_path_flushes_files_and_directories(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fileio.fsync_path(str(path))
    fileio.fsync_path(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        fileio.fsync_path(str(tmp_path / "missing"))
