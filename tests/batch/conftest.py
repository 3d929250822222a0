"""A small archive to run batches over: good clips (faces and none, nested folders, three
containers) and broken files (text named .mp4, audio only, truncated)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from batch_helpers import PASSTHROUGH, write_audio_only

from testkit.media import AudioSpec, face_clip_frames, gradient_frames, write_video
from vidrestore.cli import main


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """``archive/`` with the GOOD and BROKEN files (made once per session; never modified)."""
    root = tmp_path_factory.mktemp("archive") / "archive"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "broken").mkdir()
    write_video(root / "a_face.mp4", face_clip_frames(12, 320, 240), fps=24, audio=AudioSpec(0.5))
    write_video(root / "b_plain.mp4", gradient_frames(12, 64, 48), fps=24)
    write_video(root / "sub" / "c_face.mkv", face_clip_frames(12, 240, 180, seed=1), fps=24)
    write_video(root / "sub" / "deeper" / "d_plain.mov", gradient_frames(12, 64, 48), fps=24)
    (root / "broken" / "notes.mp4").write_text("this is not a video\n")
    write_audio_only(root / "broken" / "tone.mp4")
    data = (root / "a_face.mp4").read_bytes()
    (root / "broken" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture(scope="session")
def first(archive, tmp_path_factory):
    """(OUTDIR, exit code, --json summary) of the archive restored once with --jobs 1: the
    reference other runs are compared with. Read-only: copy OUTDIR to change it."""
    out = tmp_path_factory.mktemp("first") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # a session fixture cannot use capsys
        code = main(["batch", str(archive), "-o", str(out), "--jobs", "1", "--json", *PASSTHROUGH])
    return out, code, json.loads(buffer.getvalue())
