"""The parts of exactly-once, one at a time: a worker dies with its coordinator, a claim
taken over is never published, and a run ends only when each of its files is done or
failed (waiting for other runs, taking back what dead workers held)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from batch_helpers import leftovers, plain_clips
from test_ledger import ME, dead_pid, fresh_run, make_items

from vidrestore.batch import runner as runner_module
from vidrestore.batch.heartbeat import Heartbeat
from vidrestore.batch.identity import ProcessIdentity
from vidrestore.batch.ledger import ClaimLost, Ledger
from vidrestore.batch.plan import plan_outputs
from vidrestore.batch.resume import settle
from vidrestore.batch.runner import EXIT_INCOMPLETE, BatchOptions, BatchResult, run_batch
from vidrestore.batch.worker import WorkerSpec, work
from vidrestore.config import from_mapping
from vidrestore.settings import RestoreConfig

PASSTHROUGH = from_mapping(RestoreConfig, {"model": "passthrough", "download": False})


def test_a_worker_gets_sigterm_when_its_parent_is_killed(tmp_path):
    """PR_SET_PDEATHSIG: the parent (a shell standing in for the coordinator) is killed -9;
    the child, sleeping, is sent SIGTERM by the kernel at once."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    pidfile = tmp_path / "child.pid"
    child = textwrap.dedent(f"""
        import os, signal, sys, time
        from vidrestore.batch.lifeline import die_with_parent
        assert die_with_parent(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', sys.argv[1]]); time.sleep(60)"),
        child])
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _exists(pid), "the child outlived its parent"


def _exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_worker_whose_coordinator_is_already_gone_claims_nothing(tmp_path):
    """Started after its coordinator died, the worker's parent is not the coordinator: it
    exits 130 before it registers or claims (it used to restore the whole queue)."""
    ledger = Ledger.in_folder(tmp_path / "out")
    run, prep = fresh_run(ledger, make_items(tmp_path, 2))
    spec = WorkerSpec(str(ledger.path), run, None, threads=1, coordinator=dead_pid())
    code = subprocess.run([sys.executable, "-c", (
        "import pickle, sys; from vidrestore.batch.worker import worker_main; "
        "worker_main(pickle.loads(bytes.fromhex(sys.argv[1])))"), __import__("pickle").dumps(spec).hex()],
        timeout=120).returncode
    assert code == 130
    assert ledger.workers_of_run(run) == []
    assert {r["status"] for r in ledger.files().values()} == {"pending"}


def _claimed_file(tmp_path, frames: int = 40):
    clips = plain_clips(tmp_path / "in", 1, frames=frames)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, plan_outputs(clips, tmp_path / "in", tmp_path / "out", "libx264"))
    return ledger, run


def _take_over(ledger_path, file_id: int, run: str) -> None:
    """What another run does to a claim it judges dead: pending, then its own claim."""
    other = Ledger(ledger_path)
    thief = other.register_worker(run, ProcessIdentity("elsewhere", "other-node", 4321, 0.0))
    other.db.execute("UPDATE files SET status = 'pending', worker = NULL WHERE id = ?", (file_id,))
    assert other.claim(run, thief, ProcessIdentity("elsewhere", "other-node", 4321, 0.0), file_id) is not None
    other.close()


@pytest.mark.parametrize("when", ["mid-file", "at the last frame"])
def test_a_claim_taken_over_is_never_published_or_recorded(tmp_path, when):
    ledger, run = _claimed_file(tmp_path)
    worker = ledger.register_worker(run, ME)
    beat = Heartbeat(str(ledger.path), worker, tick=0.01)
    beat.start()
    seen = []

    def report(file_id, frames, total):
        seen.append(frames)
        if frames == (5 if when == "mid-file" else total):
            _take_over(ledger.path, file_id, run)
            if when == "mid-file":
                deadline = time.monotonic() + 10
                while not beat.lost(file_id) and time.monotonic() < deadline:
                    time.sleep(0.01)

    try:
        done = work(ledger, WorkerSpec(str(ledger.path), run, PASSTHROUGH, threads=1), worker, ME,
                    report=report, beat=beat)
    finally:
        beat.stop()
        beat.join(5)
    row = next(iter(ledger.files().values()))
    assert done == 0 and (row["status"], row["completions"]) == ("running", 0)
    assert row["worker"] != worker  # still the new holder's
    assert not ledger.absolute(row["output"]).exists(), "published under a claim it no longer had"
    assert not leftovers(ledger.outdir)
    if when == "mid-file":
        assert max(seen) < 40  # stopped, not restored to the end


def test_holding_refuses_a_claim_that_is_not_the_workers(tmp_path):
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, make_items(tmp_path, 1))
    worker = ledger.register_worker(run, ME)
    row = ledger.claim(run, worker, ME)
    with ledger.holding(row["id"], worker):
        pass
    ledger.release(row["id"], worker)
    with pytest.raises(ClaimLost), ledger.holding(row["id"], worker):
        raise AssertionError("the block must not run")


def test_settle_takes_back_dead_claims_queues_pending_and_names_live_holders(tmp_path):
    items = make_items(tmp_path, 5)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, items)
    dead = ProcessIdentity(ME.host, ME.node, dead_pid(), time.time() - 5)
    live, gone = ledger.register_worker(run, ME), ledger.register_worker(run, dead)
    assert ledger.claim(run, live, ME)["key"] == "v0.mp4"
    assert ledger.claim(run, gone, dead)["key"] == "v1.mp4"
    done = ledger.claim(run, live, ME)
    ledger.finish(done["id"], live, output=(1, 1, "x"), frames=1, faces=0, seconds=0.1, host="h", pid=1)
    failed = ledger.claim(run, live, ME)
    ledger.fail(failed["id"], live, "bad input")
    later = "later"  # a second run on the same files, at its end
    ledger.begin_run(later, ME, [], "s1")
    state = settle(ledger, [i.key for i in items], run=later)
    assert [r["key"] for r in state.held] == ["v0.mp4"]
    assert state.queued == ["v1.mp4", "v4.mp4"]
    rows = ledger.files()
    assert (rows["v1.mp4"]["status"], rows["v1.mp4"]["attempts"], rows["v1.mp4"]["interruptions"]) == ("pending", 0, 1)
    assert ledger.has_pending(later)
    assert (rows["v2.mp4"]["status"], rows["v3.mp4"]["status"]) == ("done", "failed")


def _in_process_execute(ledger, options, run, settings, queued, progress, log):
    """``runner._execute`` without worker processes (the settle logic is what is tested)."""
    who = ProcessIdentity.current()
    mine = Ledger(ledger.path)
    worker = mine.register_worker(run, who)
    work(mine, WorkerSpec(str(ledger.path), run, options.config, threads=1), worker, who)
    mine.end_worker(worker)
    mine.close()


def test_a_run_waits_for_a_file_another_live_run_holds_then_takes_it_back(tmp_path, monkeypatch):
    """The reported loss: a re-run found a file held by a still-running worker, left it, and
    exited 0 while the file ended pending. Now it waits, and restores it once it is back."""
    clips = plain_clips(tmp_path / "in", 3, frames=4)
    out = tmp_path / "out"
    monkeypatch.setattr(runner_module, "_execute", _in_process_execute)
    monkeypatch.setattr(runner_module, "WAIT_SECONDS", 0.05)
    options = BatchOptions(inputs=(tmp_path / "in",), outdir=out, config=PASSTHROUGH, quiet=True)
    assert run_batch(options).exit_code == 0
    for clip in clips:  # new content: every file is to be redone
        clip.write_bytes(clip.read_bytes() + b"\0")
    # Another live run (this very process stands in for it) plans and claims clip01.
    ledger = Ledger.in_folder(out)
    other, _ = fresh_run(ledger, plan_outputs(clips, tmp_path / "in", out, "libx264"),
                         settings=runner_module.settings_digest(PASSTHROUGH))
    holder = ledger.register_worker(other, ME)
    held = ledger.claim(other, holder, ME, ledger.files()["clip01.mp4"]["id"])
    released = threading.Event()

    def give_back():  # ... and gives it back (SIGTERM) while this run waits for it
        time.sleep(1.0)
        Ledger(ledger.path).release(held["id"], holder)
        released.set()

    threading.Thread(target=give_back, daemon=True).start()
    result = run_batch(options)
    assert released.is_set()
    assert result.exit_code == 0, result.counts()
    assert result.counts() == {"done": 3, "failed": 0, "pending": 0, "running": 0}
    assert sorted(result.restored) == ["clip00.mp4", "clip01.mp4", "clip02.mp4"]
    assert {r["completions"] for r in ledger.files().values()} == {1}


def test_a_run_left_with_a_pending_file_does_not_exit_0():
    row = {"status": "done"}
    result = BatchResult(run="r", ledger=None, settings="s", rows=[row, {"status": "pending"}])
    assert result.exit_code == EXIT_INCOMPLETE
    result.rows = [row, {"status": "running"}, {"status": "failed"}]
    assert result.exit_code == EXIT_INCOMPLETE
    result.rows = [row, {"status": "failed"}]
    assert result.exit_code == 5
