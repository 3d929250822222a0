"""The batch display: a line per finished file, the bar, the summary."""

from __future__ import annotations

import io

from vidrestore.batch.progress import BatchProgress, file_line, status_text


def event(status: str, key: str, worker: int | None = 1, **row) -> dict:
    base = {"id": key, "event_status": status, "status": status, "key": key, "event_worker": worker,
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
    assert "1.0/3 files" in text and "frames=10" in text and "done    a.mp4" in text


def test_quiet_shows_nothing():
    out = io.StringIO()
    progress = BatchProgress(1, stream=out, quiet=True, bar=True)
    progress.event(event("done", "a.mp4", frames=10, seconds=1.0, faces=0))
    progress.close()
    assert out.getvalue() == "" and progress.frames == 10


def test_file_line_without_timings():
    assert file_line(event("done", "x.mkv", frames=0, seconds=0.0, faces=0)) == \
        "done    x.mkv  0 frames  0.0 s  0.0 fps  0 faces"


def running(key: str, frames: int | None, total: int | None) -> dict:
    return {"id": key, "progress_frames": frames, "progress_total": total}


def test_the_bar_moves_within_files_being_restored():
    out = io.StringIO()
    progress = BatchProgress(4, stream=out, bar=True)
    progress.running([running("a.mp4", 30, 120), running("b.mp4", 10, None), running("c.mp4", None, None)])
    assert (progress.position, progress.frames_now) == (0.25, 40)  # b's length is unknown: no share
    progress.running([running("a.mp4", 150, 120), running("b.mp4", 20, None)])  # a ran past its estimate
    assert (progress.position, progress.frames_now) == (1.0, 170)
    progress.event(event("done", "a.mp4", frames=151, seconds=3.0, faces=1))
    assert (progress.finished, progress.position, progress.frames_now) == (1, 1.0, 171)  # b: 20 still counted
    progress.running([])
    assert (progress.position, progress.frames_now) == (1.0, 151)
    progress.close()
    text = out.getvalue()
    assert "0.2/4 files" in text and "frames=40" in text and "1.0/4 files" in text


def test_status_shows_how_far_running_files_are():
    row = {"id": 1, "key": "tape.mp4", "status": "running", "attempts": 1, "frames": None,
           "seconds": None, "error": None, "host": "h", "pid": 7, "progress_frames": 240,
           "progress_total": 1000}
    text = status_text([row, {**row, "id": 2, "key": "new.mp4", "progress_frames": None}], {1: True, 2: True}, "L")
    lines = text.splitlines()
    assert lines[1].endswith("tape.mp4  on h pid 7, 240 of 1000 frames")
    assert lines[2].endswith("new.mp4   on h pid 7")  # no progress written yet
