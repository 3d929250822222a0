"""The batch display: a line per finished file, the bar, the summary."""

from __future__ import annotations

import io

from vidrestore.batch.progress import BatchProgress, file_line


def event(status: str, key: str, worker: int | None = 1, **row) -> dict:
    base = {"event_status": status, "status": status, "key": key, "event_worker": worker,
            "frames": None, "seconds": None, "faces": None, "error": None}
    return {**base, **row}


def test_a_line_per_finished_file_and_nothing_for_planning_events():
    out = io.StringIO()
    progress = BatchProgress(2, stream=out, bar=False)
    progress.event(event("running", "a.mp4"))
    progress.event(event("done", "a.mp4", frames=48, seconds=2.0, faces=3))
    progress.event(event("failed", "b.mp4", error="no video stream in b.mp4"))
    progress.event(event("failed", "gone.mp4", worker=None, error="input not found"))  # found while planning
    progress.close()
    assert out.getvalue().splitlines() == [
        "done    a.mp4  48 frames  2.0 s  24.0 fps  3 faces",
        "failed  b.mp4  no video stream in b.mp4",
    ]
    assert (progress.finished, progress.frames) == (2, 48)


def test_the_bar_counts_files_and_frames():
    out = io.StringIO()
    progress = BatchProgress(3, stream=out, bar=True)
    progress.event(event("done", "a.mp4", frames=10, seconds=1.0, faces=0))
    progress.close()
    text = out.getvalue()
    assert "1/3" in text and "frames=10" in text and "done    a.mp4" in text


def test_quiet_shows_nothing():
    out = io.StringIO()
    progress = BatchProgress(1, stream=out, quiet=True, bar=True)
    progress.event(event("done", "a.mp4", frames=10, seconds=1.0, faces=0))
    progress.close()
    assert out.getvalue() == "" and progress.frames == 10


def test_file_line_without_timings():
    assert file_line(event("done", "x.mkv", frames=0, seconds=0.0, faces=0)) == \
        "done    x.mkv  0 frames  0.0 s  0.0 fps  0 faces"
