"""Kill -9 mid-batch, then run it again: nothing lost, nothing done twice, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from batch_helpers import PASSTHROUGH, cli, events, leftovers, rows

from testkit.media import face_clip_frames, write_video
from vidrestore.batch.identity import process_alive
from vidrestore.cli import main
from vidrestore.io.probe import count_frames

FRAMES = 36


def face_clips(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True)
    for i in range(count):
        write_video(folder / f"tape{i}.mp4", face_clip_frames(FRAMES, 240, 180, seed=i), fps=24)
    return [f"tape{i}.mp4" for i in range(count)]


def statuses(out: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(f"file:{out / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
    except sqlite3.Error:
        return {}


def wait_for(condition, proc, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the batch never got there"
        time.sleep(0.05)


def wait_until_workers_died(out: Path) -> None:
    """SIGKILL is delivered, not yet done: wait until the killed workers are really gone."""
    with sqlite3.connect(f"file:{out / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True, timeout=5) as db:
        workers = db.execute("SELECT pid, pid_started FROM workers").fetchall()
    deadline = time.monotonic() + 30
    while any(process_alive(*w) for w in workers):
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume_loses_and_repeats_nothing(tmp_path, capsys):
    keys = face_clips(tmp_path / "in", 4)
    out = tmp_path / "out"
    proc = cli("batch", tmp_path / "in", "-o", out, "--jobs", "1", *PASSTHROUGH)
    # at least one file done, another one running and half-written
    wait_for(lambda: statuses(out).get("done", 0) >= 1 and statuses(out).get("running", 0) >= 1
             and any(".partial" in p.name for p in out.iterdir()), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until_workers_died(out)
    at_kill = {k: r["status"] for k, r in rows(out).items()}
    assert leftovers(out), "the kill should have hit a file being written"

    capsys.readouterr()
    assert main(["batch", "status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    stale = [f for f in status["files"] if f["status"] == "running"]
    assert stale and not any(f["live"] for f in stale)

    assert main(["batch", str(tmp_path / "in"), "-o", str(out), *PASSTHROUGH]) == 0
    ledger = rows(out)
    assert {(r["status"], r["completions"]) for r in ledger.values()} == {("done", 1)}
    history = events(out)
    for key in keys:
        assert [e["status"] for e in history if e["key"] == key].count("done") == 1
        claims = [e for e in history if e["key"] == key and e["status"] == "running"]
        assert len(claims) == (2 if at_kill.get(key) == "running" else 1)  # only the killed one twice
        assert count_frames(out / ledger[key]["output"]) == FRAMES
    assert sum(r["interruptions"] for r in ledger.values()) >= 1
    assert not leftovers(out)


@pytest.mark.slow
def test_killed_coordinator_its_worker_gives_its_file_back(tmp_path):
    face_clips(tmp_path / "in", 2)
    out = tmp_path / "out"
    proc = cli("batch", tmp_path / "in", "-o", out, "--jobs", "1", *PASSTHROUGH)
    wait_for(lambda: statuses(out).get("running", 0) >= 1, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the coordinator only: its worker is orphaned
    proc.wait()
    deadline = time.monotonic() + 60
    while statuses(out).get("running", 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses(out).get("running", 0) == 0  # released, not left for the next run to find
    assert not leftovers(out)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_file_and_the_batch_goes_on(tmp_path):
    keys = face_clips(tmp_path / "in", 3)
    out = tmp_path / "out"
    proc = cli("batch", tmp_path / "in", "-o", out, "--jobs", "1", "--json", *PASSTHROUGH)
    wait_for(lambda: statuses(out).get("running", 0) >= 1 and any(".partial" in p.name for p in out.iterdir()), proc)
    with sqlite3.connect(f"file:{out / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True, timeout=5) as db:
        victim, pid = db.execute("SELECT f.key, w.pid FROM files f JOIN workers w ON w.id = f.worker "
                                 "WHERE f.status = 'running'").fetchone()
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 5, stderr
    ledger = rows(out)
    assert ledger[victim]["status"] == "failed" and "died (signal SIGKILL)" in ledger[victim]["error"]
    assert all(ledger[k]["status"] == "done" for k in keys if k != victim)  # a new worker took over
    assert not leftovers(out)
    # the next run redoes the killed file (its attempt counts: one that always kills its
    # worker is given up after --retries)
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), *PASSTHROUGH]) == 0
    again = rows(out)
    assert (again[victim]["status"], again[victim]["attempts"], again[victim]["completions"]) == ("done", 2, 1)
    assert count_frames(out / again[victim]["output"]) == FRAMES
