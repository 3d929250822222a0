"""The ledger's claim protocol and the resume rules, without restoring anything."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidrestore.batch import heartbeat as heartbeat_module
from vidrestore.batch.identity import FileStamp, ProcessIdentity, content_digest
from vidrestore.batch.ledger import LEASE_SECONDS, SCHEMA_VERSION, Ledger
from vidrestore.batch.plan import plan_outputs
from vidrestore.batch.resume import prepare
from vidrestore.batch.worker import Heartbeat, WorkerSpec, remove_leftovers, work
from vidrestore.errors import OutputError

ME = ProcessIdentity.current()


def make_items(tmp_path: Path, count: int = 3):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    files = []
    for i in range(count):
        path = src / f"v{i}.mp4"
        path.write_bytes(bytes([i]) * (1000 + i))
        files.append(path)
    return plan_outputs(files, src, tmp_path / "out", "libx264")


def complete(ledger: Ledger, run: str, worker: int) -> list[str]:
    """Claim everything queued for ``run`` and record a fake output for each."""
    done = []
    while (row := ledger.claim(run, worker, ME)) is not None:
        out, report = ledger.absolute(row["output"]), ledger.absolute(row["report"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"restored " + row["key"].encode())
        report.write_text("{}")
        stamp = FileStamp.of(out)
        ledger.finish(row["id"], worker, output=(stamp.size, stamp.mtime_ns, content_digest(out)),
                      frames=1, faces=0, seconds=0.1, host=ME.host, pid=ME.pid)
        done.append(row["key"])
    return done


def fresh_run(ledger: Ledger, items, *, settings="s1", **kwargs):
    run = f"run{time.monotonic_ns()}"
    ledger.begin_run(run, ME, [], settings)
    return run, prepare(ledger, items, settings=settings, run=run, **kwargs)


def test_resume_rules(tmp_path):
    items = make_items(tmp_path)
    ledger = Ledger.in_folder(tmp_path / "out")
    worker = ledger.register_worker("w", ME)
    run, prep = fresh_run(ledger, items)
    assert prep.queued == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert complete(ledger, run, worker) == prep.queued
    ledger.end_run(run, "finished")

    run, prep = fresh_run(ledger, items)
    assert prep.skipped == ["v0.mp4", "v1.mp4", "v2.mp4"] and not prep.queued

    os.utime(items[0].source, ns=(1, 1))  # touched, same content: still done
    items[1].source.write_bytes(b"new content")  # changed: redo
    run, prep = fresh_run(ledger, items)
    assert prep.queued == ["v1.mp4"] and prep.skipped == ["v0.mp4", "v2.mp4"]
    assert ledger.files()["v0.mp4"]["mtime_ns"] == 1
    complete(ledger, run, worker)

    run, prep = fresh_run(ledger, items, settings="s2")  # new settings: redo all
    assert len(prep.queued) == 3
    complete(ledger, run, worker)
    assert {r["completions"] for r in ledger.files().values()} == {1}  # counted per settings

    items[0].output.unlink()  # output gone
    items[1].output.write_bytes(b"corrupt")  # output changed
    items[2].report.unlink()  # report gone
    run, prep = fresh_run(ledger, items, settings="s2")
    assert prep.queued == ["v0.mp4", "v1.mp4", "v2.mp4"]
    complete(ledger, run, worker)

    run, prep = fresh_run(ledger, items, settings="s2", resume=False)
    assert len(prep.queued) == 3
    complete(ledger, run, worker)


def test_an_output_folder_moved_elsewhere_is_still_done(tmp_path):
    items = make_items(tmp_path)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, items)
    complete(ledger, run, ledger.register_worker(run, ME))
    ledger.close()
    shutil.copytree(tmp_path / "out", tmp_path / "moved", copy_function=shutil.copy2)
    moved = Ledger.in_folder(tmp_path / "moved")
    items = plan_outputs([i.source for i in items], tmp_path / "in", tmp_path / "moved", "libx264")
    _, prep = fresh_run(moved, items)
    assert len(prep.skipped) == 3 and not prep.queued


def test_failed_files_are_retried_until_their_attempts_are_spent(tmp_path):
    items = make_items(tmp_path, 1)
    ledger = Ledger.in_folder(tmp_path / "out")
    worker = ledger.register_worker("w", ME)
    for attempt in range(1, 4):
        run, prep = fresh_run(ledger, items, max_attempts=3)
        assert prep.queued == ["v0.mp4"]
        row = ledger.claim(run, worker, ME)
        ledger.fail(row["id"], worker, "not a video file")
        assert ledger.files()["v0.mp4"]["attempts"] == attempt
    _, prep = fresh_run(ledger, items, max_attempts=3)
    assert prep.gave_up == ["v0.mp4"] and not prep.queued
    _, prep = fresh_run(ledger, items, max_attempts=4)  # a larger --retries tries again
    assert prep.queued == ["v0.mp4"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_rows_of_dead_workers_are_reclaimed_and_live_ones_left_alone(tmp_path):
    items = make_items(tmp_path, 4)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, items)
    dead = ProcessIdentity(ME.host, ME.node, dead_pid(), time.time() - 5)
    far_fresh = ProcessIdentity("elsewhere", "other-node", 1234, 0.0)
    far_stale = ProcessIdentity("elsewhere", "other-node", 1235, 0.0)
    holders = [ledger.register_worker(run, who) for who in (ME, dead, far_fresh, far_stale)]
    ledger.db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (time.time() - LEASE_SECONDS - 1, holders[3]))
    for worker, who in zip(holders, (ME, dead, far_fresh, far_stale)):
        assert ledger.claim(run, worker, who) is not None
    _, prep = fresh_run(ledger, items)
    assert prep.busy == ["v0.mp4", "v2.mp4"]  # this process; another machine's fresh heartbeat
    assert prep.queued == ["v1.mp4", "v3.mp4"]  # a dead pid here; a silent machine
    rows = ledger.files()
    assert (rows["v1.mp4"]["status"], rows["v1.mp4"]["attempts"], rows["v1.mp4"]["interruptions"]) == ("pending", 0, 1)


def test_unreadable_inputs_are_failed_without_an_attempt(tmp_path):
    items = make_items(tmp_path, 2)
    items[1].source.unlink()
    ledger = Ledger.in_folder(tmp_path / "out")
    _, prep = fresh_run(ledger, items)
    assert prep.unreadable == ["v1.mp4"] and prep.queued == ["v0.mp4"]
    row = ledger.files()["v1.mp4"]
    assert row["status"] == "failed" and row["error"].startswith("input not found") and row["attempts"] == 0


def _claim_all(path: str, run: str, results) -> None:
    ledger = Ledger(path)
    who = ProcessIdentity.current()
    worker = ledger.register_worker(run, who)
    mine = []
    while (row := ledger.claim(run, worker, who)) is not None:
        mine.append(row["key"])
        ledger.finish(row["id"], worker, output=(1, 1, "x"), frames=1, faces=0, seconds=0.0,
                      host=who.host, pid=who.pid)
    results.put(mine)


def test_parallel_claims_never_take_one_file_twice(tmp_path):
    items = make_items(tmp_path, 60)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, prep = fresh_run(ledger, items)
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(ledger.path), run, results)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [key for _ in procs for key in results.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert sorted(claimed) == sorted(prep.queued)
    assert {(r["attempts"], r["completions"], r["status"]) for r in ledger.files().values()} == {(1, 1, "done")}


def test_leftovers_of_exactly_this_output_are_removed(tmp_path):
    out = tmp_path / "a.mp4"
    names = [".a.k2x_9abc.partial.mp4", ".a.faces.json.0123abcd.tmp",
             ".vidrestore-faces/.a.0123456789abcdef01234567.faces.tmp-xyz"]
    others = [".a.b.k2x_9abc.partial.mp4", ".ab.k2x_9abc.partial.mp4", "a.mp4.partial",
              ".a.k2x_9abc.partial.mkv", ".vidrestore-faces/a.0123456789abcdef01234567.faces"]
    for name in names + others:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        (path.mkdir() if "faces" in name and name.startswith(".vid") else path.write_bytes(b""))
    remove_leftovers(out, tmp_path / "a.faces.json", tmp_path / "in" / "a.mov")
    remaining = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")} - {".vidrestore-faces"}
    assert remaining == set(others)


@pytest.mark.parametrize("journal", ["wal"])
def test_ledger_is_in_wal_mode_on_a_local_disk(tmp_path, journal):
    ledger = Ledger.in_folder(tmp_path)
    assert ledger.journal == journal
    assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == journal
    assert ledger.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_progress_belongs_to_the_claiming_worker_and_resets_with_each_claim(tmp_path):
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, make_items(tmp_path, 2))
    mine, other = ledger.register_worker(run, ME), ledger.register_worker(run, ME)
    row = ledger.claim(run, mine, ME)
    ledger.progress(row["id"], mine, 12, 48)
    ledger.progress(row["id"], other, 40, 48)  # not its claim: ignored
    assert [(r["key"], r["progress_frames"], r["progress_total"]) for r in ledger.running(run)] == [(row["key"], 12, 48)]
    ledger.release(row["id"], mine)
    again = ledger.claim(run, mine, ME, file_id=row["id"])
    assert (again["progress_frames"], again["progress_total"]) == (None, None)
    ledger.fail(again["id"], mine, "broken")
    ledger.progress(again["id"], mine, 1, 2)  # no longer running: ignored
    assert ledger.running(run) == [] and ledger.file(again["id"])["progress_frames"] is None


def test_a_ledger_of_schema_1_is_brought_up_to_date(tmp_path):
    ledger = Ledger.in_folder(tmp_path / "out")
    run, prep = fresh_run(ledger, make_items(tmp_path, 2))
    worker = ledger.register_worker(run, ME)
    done = complete(ledger, run, worker)
    ledger.db.execute("ALTER TABLE files DROP COLUMN progress_frames")
    ledger.db.execute("ALTER TABLE files DROP COLUMN progress_total")
    ledger.db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    ledger.close()
    reopened = Ledger.in_folder(tmp_path / "out")
    assert reopened.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(SCHEMA_VERSION)
    rows = reopened.files()
    assert sorted(done) == sorted(rows) and {r["status"] for r in rows.values()} == {"done"}
    assert {r["progress_frames"] for r in rows.values()} == {None}
    reopened.db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    reopened.close()
    with pytest.raises(OutputError, match="newer vidrestore"):
        Ledger.in_folder(tmp_path / "out")


def test_the_heartbeat_thread_writes_the_reported_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(heartbeat_module, "PROGRESS_SECONDS", 0.0)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, _ = fresh_run(ledger, make_items(tmp_path, 1))
    worker = ledger.register_worker(run, ME)
    row = ledger.claim(run, worker, ME)
    beat = Heartbeat(str(ledger.path), worker, tick=0.01)
    beat.start()
    try:
        beat.report(row["id"], 5, 20)
        deadline = time.monotonic() + 10
        while ledger.file(row["id"])["progress_frames"] != 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (ledger.file(row["id"])["progress_frames"], ledger.file(row["id"])["progress_total"]) == (5, 20)
    finally:
        beat.stop()
        beat.join(5)


def test_a_worker_reports_every_frame_of_every_file_it_restores(tmp_path):
    from batch_helpers import plain_clips

    from vidrestore.config import from_mapping
    from vidrestore.settings import RestoreConfig

    clips = plain_clips(tmp_path / "in", 2, frames=5)
    ledger = Ledger.in_folder(tmp_path / "out")
    run, prep = fresh_run(ledger, plan_outputs(clips, tmp_path / "in", tmp_path / "out", "libx264"))
    worker = ledger.register_worker(run, ME)
    config = from_mapping(RestoreConfig, {"model": "passthrough", "download": False})
    reports = []
    assert work(ledger, WorkerSpec(str(ledger.path), run, config, threads=1), worker, ME,
                report=lambda *args: reports.append(args)) == 2
    ids = {key: row["id"] for key, row in ledger.files().items()}
    assert reports == [(ids[key], n, 5) for key in prep.queued for n in range(1, 6)]
