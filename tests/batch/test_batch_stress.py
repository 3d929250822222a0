"""Exactly once under fire: kill -9 at random moments (a coordinator alone, one worker, a
whole run; --jobs 1 and 2; two runs on one OUTDIR at once), each followed by a re-run, until
every file is done: no file lost, none completed twice, no temporary file left, no worker
outliving its coordinator."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from batch_helpers import PASSTHROUGH, cli, events, leftovers, rows

from testkit.media import gradient_frames, write_video
from vidrestore.batch.identity import process_alive
from vidrestore.io.probe import count_frames

FRAMES = 30


def clips(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True)
    for i in range(count):
        write_video(folder / f"clip{i}.mp4", gradient_frames(FRAMES, 96, 72), fps=24)
    return [f"clip{i}.mp4" for i in range(count)]


def query(out: Path, sql: str, *args) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{out / 'vidrestore-ledger.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql, args).fetchall()
    except sqlite3.Error:  # not made yet
        return []


class Fleet:
    """The ``vidrestore batch`` processes of one test, all on one OUTDIR."""

    def __init__(self, inputs: Path, out: Path) -> None:
        self.inputs, self.out = inputs, out
        self.procs: list[subprocess.Popen] = []
        self.coordinator_killed: dict[int, float] = {}  # pid → when

    def start(self, jobs: int, *extra: str) -> subprocess.Popen:
        proc = cli("batch", self.inputs, "-o", self.out, "--jobs", jobs, "--retries", "1000",
                   *extra, *PASSTHROUGH)
        self.procs.append(proc)
        return proc

    def live(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def workers(self, proc: subprocess.Popen) -> list[int]:
        """The live worker pids of ``proc``'s run."""
        found = query(self.out, "SELECT w.pid, w.pid_started FROM workers w JOIN runs r ON r.id = w.run "
                                "WHERE r.pid = ? AND w.ended_at IS NULL", proc.pid)
        return [pid for pid, started in found if process_alive(pid, started)]

    def spawning(self, proc: subprocess.Popen) -> bool:
        """Whether ``proc`` has started a worker process (that may not have registered yet)."""
        import psutil

        try:
            children = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return False
        return any("spawn_main" in " ".join(_cmdline(c)) for c in children)

    def restoring(self, proc: subprocess.Popen) -> bool:
        """Whether a worker of ``proc``'s run holds a file."""
        return bool(query(self.out, "SELECT 1 FROM files f JOIN runs r ON r.id = f.run "
                                    "WHERE r.pid = ? AND f.status = 'running'", proc.pid))

    def wait(self, condition, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self, proc: subprocess.Popen, what: str) -> str:
        """kill -9 the ``coordinator`` alone, one ``worker`` (as the OOM killer would), or
        the whole ``group``; returns what was killed."""
        if what == "worker":
            pids = self.workers(proc)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                return "worker"
            what = "coordinator"
        if proc.poll() is None:
            if what == "group":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
            self.coordinator_killed[proc.pid] = time.time()
            proc.wait()
        return what

    def finish(self, seconds: float = 600.0) -> tuple[subprocess.Popen, str, str]:
        """A last run, and every run still going, to their ends; returns the last one with
        its stdout and stderr."""
        last = self.start(2, "--json")
        deadline = time.monotonic() + seconds
        outputs = {}
        for proc in self.procs:
            outputs[proc.pid] = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        return (last, *outputs[last.pid])


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []


def check_exactly_once(fleet: Fleet, keys: list[str], finished) -> None:
    last, stdout, stderr = finished
    out = fleet.out
    ledger = rows(out)
    assert {k: (r["status"], r["completions"]) for k, r in ledger.items()} == {k: ("done", 1) for k in keys}
    history = events(out)
    for key in keys:
        assert [e["status"] for e in history if e["key"] == key].count("done") == 1, key
        assert count_frames(out / ledger[key]["output"]) == FRAMES
    assert not leftovers(out)
    assert last.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["counts"] == {"done": len(keys), "failed": 0, "pending": 0, "running": 0}
    status = subprocess.run([*last.args[:3], "batch", "status", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert json.loads(status.stdout)["counts"] == summary["counts"]
    # no worker outlived its coordinator: none claimed or finished a file after it was killed
    for pid, when in fleet.coordinator_killed.items():
        late = query(out, "SELECT f.key, e.status FROM events e JOIN files f ON f.id = e.file "
                          "JOIN runs r ON r.id = e.run WHERE r.pid = ? AND e.worker IS NOT NULL "
                          "AND e.status IN ('running', 'done') AND e.at > ?", pid, when + 1.0)
        assert not late, f"workers of a killed run went on: {late}"
    workers = query(out, "SELECT pid, pid_started FROM workers")
    deadline = time.monotonic() + 30
    while any(process_alive(*w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if process_alive(*w)]


def test_two_runs_on_one_outdir_killed_coordinator_and_worker_still_exactly_once(tmp_path):
    keys = clips(tmp_path / "in", 5)
    fleet = Fleet(tmp_path / "in", tmp_path / "out")
    a, b = fleet.start(1), fleet.start(2)
    fleet.wait(lambda: fleet.spawning(a) or a.poll() is not None, 180)
    # Killed while its worker starts: the orphan must claim nothing (it used to take its
    # parent for the init process and restore a's whole queue behind the other runs' backs).
    fleet.kill(a, "coordinator")
    fleet.wait(lambda: fleet.workers(b) and fleet.restoring(b) or b.poll() is not None, 180)
    fleet.kill(b, "worker")  # as the OOM killer would; b marks the file failed and goes on
    # A re-run at once, while b still works: it must wait for b's files, not exit 0 without them.
    check_exactly_once(fleet, keys, fleet.finish())


@pytest.mark.slow
def test_kill_9_at_random_moments_until_done_exactly_once(tmp_path):
    rng = random.Random(1)
    keys = clips(tmp_path / "in", 5)
    fleet = Fleet(tmp_path / "in", tmp_path / "out")
    # every kind of kill, with one run and with two on the same OUTDIR; the moments and
    # --jobs 1 or 2 at random
    for runs, what in [(1, "coordinator"), (2, "worker"), (1, "group"), (2, "coordinator"), (2, "worker")]:
        while len(fleet.live()) < runs:
            fleet.start(rng.choice([1, 2]))
        victim = rng.choice(fleet.live())
        fleet.wait(lambda: victim.poll() is not None, rng.uniform(0.5, 8.0))
        fleet.kill(victim, what)
    check_exactly_once(fleet, keys, fleet.finish())
