"""Atomic output: whole or nothing at the target, never clobbering, usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from vidrestore.errors import OutputError
from vidrestore.io.atomic import atomic_output, write_text_atomic


def test_success_publishes_with_umask_permissions(tmp_path):
    target = tmp_path / "out.mp4"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".out.")
        tmp.write_bytes(b"video")
    assert target.read_bytes() == b"video"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a video")
            raise RuntimeError("encoder died")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match="appeared"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="--overwrite"):
        with atomic_output(target):
            pass
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_text_files_are_written_atomically(tmp_path):
    target = write_text_atomic(tmp_path / "report.json", "{}\n")
    assert target.read_text() == "{}\n" and len(list(tmp_path.iterdir())) == 1
