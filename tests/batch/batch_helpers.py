"""Helpers for the batch tests: test media, ledger readers, the CLI in a subprocess."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

from testkit.media import gradient_frames, write_video

PASSTHROUGH = ["--model", "passthrough", "--offline", "--quiet"]
GOOD = {"a_face.mp4": 12, "b_plain.mp4": 12, "sub/c_face.mkv": 12, "sub/deeper/d_plain.mov": 12}
BROKEN = {
    "broken/notes.mp4": "not a video file",
    "broken/tone.mp4": "no video stream",
    "broken/truncated.mp4": "not a video file",
}


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


def plain_clips(folder: Path, count: int, frames: int = 6) -> list[Path]:
    """``count`` tiny face-less clips (fast to restore)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip{i:02d}.mp4"
        write_video(path, gradient_frames(frames, 64, 48), fps=24)
        paths.append(path)
    return paths


def rows(outdir: Path) -> dict[str, dict]:
    """The ledger's file rows by key (read-only)."""
    with sqlite3.connect(f"file:{outdir / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return {r["key"]: dict(r) for r in db.execute("SELECT * FROM files")}


def events(outdir: Path) -> list[dict]:
    with sqlite3.connect(f"file:{outdir / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT e.*, f.key FROM events e JOIN files f ON f.id = e.file ORDER BY e.id")]


def outcome(outdir: Path) -> dict[str, tuple]:
    """What must not depend on how a batch ran: per key, status, error, frames, faces,
    attempts, completions."""
    return {k: (r["status"], r["error"], r["frames"], r["faces"], r["attempts"], r["completions"])
            for k, r in rows(outdir).items()}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of any kind under ``folder``."""
    return [p for p in folder.rglob("*") if ".partial" in p.name or p.name.endswith(".tmp")
            or ".tmp-" in p.name]


def cli(*args, **kwargs) -> subprocess.Popen:
    """``vidrestore`` in its own process group (so a test can kill the whole batch)."""
    return subprocess.Popen([sys.executable, "-m", "vidrestore.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def copy_outdir(source: Path, target: Path) -> Path:
    """A copy of a batch's output folder, mtimes kept (an archive moved to another disk)."""
    shutil.copytree(source, target, copy_function=shutil.copy2)
    return target
