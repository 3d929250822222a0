"""Resume: compare the planned inputs with the ledger and queue what must be (re)done.

For each input, in this order:

1. held by a live worker (this or another run, any machine) → left alone (*busy*);
   a ``running`` row whose worker is gone (a killed run) → pending again, the interrupted
   attempt not counted;
2. input unreadable → ``failed`` with the reason (a finished output of a vanished input is
   kept ``done``);
3. new input, changed input (content), changed settings, changed output path, or
   ``--no-resume`` → ``pending`` with attempts reset;
4. ``done`` → skipped if its output and report are present and the output matches the
   recorded identity (size + mtime, or failing that size + content hash), else redone;
5. ``failed`` → retried while it has had fewer than ``max_attempts`` attempts, else left
   failed (*given up*);
6. ``pending`` → queued.

Input identities are read outside the transaction (hashing may take a while on a slow
disk); the decisions and writes happen in one ``BEGIN IMMEDIATE`` transaction over fresh rows,
and a finished output is checked there, against the row as it is then (another run on the
same OUTDIR may have finished the file meanwhile: it must not look changed and be redone).

``settle`` is the end of a run: once its own queue is empty, the files it planned that are
still neither done nor failed were held elsewhere (by another live run that claimed them
first, or by a worker killed since); it makes those of dead workers pending again and queues
every pending one for this run, and says which are still held by live workers (to wait for).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .identity import FileStamp, content_digest
from .ledger import Ledger, _event
from .plan import BatchItem


@dataclass
class Prepared:
    """What a run found in the ledger: input keys by what it will do with them."""

    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Seen:
    stamp: FileStamp | None
    content: str | None
    error: str | None
    output_ok: bool


def prepare(ledger: Ledger, items: Sequence[BatchItem], *, settings: str, run: str,
            resume: bool = True, max_attempts: int = 3) -> Prepared:
    """Bring the ledger's rows for ``items`` up to date and queue the work of ``run``."""
    before = ledger.files([i.key for i in items])
    seen = {item.key: _look(ledger, item, before.get(item.key)) for item in items}
    result = Prepared()
    now = time.time()
    with ledger.transaction() as db:
        rows = {r["key"]: r for r in db.execute("SELECT * FROM files").fetchall()}
        alive: dict[int, bool] = {}
        position = 0
        for item in items:
            row, look = rows.get(item.key), seen[item.key]
            if row is not None and row["status"] == "running":
                worker = row["worker"]
                if worker not in alive:
                    alive[worker] = ledger.alive(ledger.worker(worker)) if worker is not None else False
                if alive[worker]:
                    result.busy.append(item.key)
                    continue
                row = _reclaim(db, row["id"], run, now)
            if row is not None and row["status"] == "done":  # as it is now, not as it was read
                look = _Seen(look.stamp, look.content, look.error, _output_ok(ledger, item, row))
            action, why = _decide(ledger, item, row, look, settings=settings, resume=resume,
                                  max_attempts=max_attempts)
            file_id = _write(ledger, item, row, look, action, why, settings, run, now)
            if action in ("queue", "reset"):
                db.execute("INSERT OR IGNORE INTO queue (run, file, position) VALUES (?,?,?)",
                           (run, file_id, position))
                position += 1
                result.queued.append(item.key)
            elif action == "skip":
                result.skipped.append(item.key)
            elif action == "unreadable":
                result.unreadable.append(item.key)
            else:
                result.gave_up.append(item.key)
    return result


def _reclaim(db: sqlite3.Connection, file_id: int, run: str, now: float) -> sqlite3.Row:
    """A ``running`` row whose worker is gone: pending again, the interrupted attempt not
    counted. Returns the row as it is now."""
    db.execute("UPDATE files SET status = 'pending', attempts = MAX(attempts - 1, 0), "
               "interruptions = interruptions + 1, worker = NULL WHERE id = ?", (file_id,))
    _event(db, file_id, run, None, "pending", "interrupted: its worker is gone", now)
    return db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()


@dataclass
class Unsettled:
    """What ``settle`` found among a run's files: keys now on its queue (pending), and the
    rows held by live workers of other runs."""

    queued: list[str] = field(default_factory=list)
    held: list[sqlite3.Row] = field(default_factory=list)


def settle(ledger: Ledger, keys: Sequence[str], *, run: str) -> Unsettled:
    """Bring the run's files that are neither done nor failed back to it (see the module)."""
    result = Unsettled()
    now = time.time()
    wanted = set(keys)
    with ledger.transaction() as db:
        rows = [r for r in db.execute("SELECT * FROM files WHERE status IN ('pending', 'running') "
                                      "ORDER BY key").fetchall() if r["key"] in wanted]
        position = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM queue WHERE run = ?",
                              (run,)).fetchone()[0]
        for row in rows:
            if row["status"] == "running":
                worker = ledger.worker(row["worker"]) if row["worker"] is not None else None
                if ledger.alive(worker):
                    result.held.append(row)
                    continue
                row = _reclaim(db, row["id"], run, now)
            db.execute("INSERT OR IGNORE INTO queue (run, file, position) VALUES (?,?,?)",
                       (run, row["id"], position))
            position += 1
            result.queued.append(row["key"])
    return result


def _look(ledger: Ledger, item: BatchItem, row: sqlite3.Row | None) -> _Seen:
    """Read the input's identity (reusing the recorded hash if size and mtime are the same)
    and check a finished output."""
    try:
        stamp = FileStamp.of(item.source)
        if item.source.is_dir():
            return _Seen(None, None, f"input is a folder, not a video: {item.source}", False)
        if row is not None and row["content"] and (row["size"], row["mtime_ns"]) == (stamp.size, stamp.mtime_ns):
            content = row["content"]
        else:
            content = content_digest(item.source)
    except FileNotFoundError:
        return _Seen(None, None, f"input not found: {item.source}", _output_ok(ledger, item, row))
    except OSError as exc:
        return _Seen(None, None, f"input is not readable: {item.source} ({exc.strerror or exc})",
                     _output_ok(ledger, item, row))
    return _Seen(stamp, content, None, _output_ok(ledger, item, row))


def _output_ok(ledger: Ledger, item: BatchItem, row: sqlite3.Row | None) -> bool:
    if row is None or row["status"] != "done" or row["output"] != ledger.relative(item.output):
        return False
    return output_matches(item.output, row) and item.report.is_file()


def output_matches(path: Path, row: sqlite3.Row) -> bool:
    """Whether ``path`` is the output the ledger recorded (size + mtime, else content)."""
    try:
        stamp = FileStamp.of(path)
        if stamp.size != row["output_size"]:
            return False
        if stamp.mtime_ns == row["output_mtime_ns"]:
            return True
        return content_digest(path) == row["output_content"]
    except OSError:
        return False


def _decide(ledger: Ledger, item: BatchItem, row: sqlite3.Row | None, look: _Seen, *, settings: str, resume: bool,
            max_attempts: int) -> tuple[str, str]:
    """(action, why): queue | reset | skip | gave_up | unreadable."""
    if look.error is not None:
        if row is not None and row["status"] == "done" and look.output_ok and resume:
            return "skip", "done; input no longer readable"
        return "unreadable", look.error
    if row is None:
        return "reset", "new"
    output = (ledger.relative(item.output), ledger.relative(item.report))
    changes = [why for why, changed in (
        ("input changed", row["content"] != look.content),
        ("settings changed", row["settings"] != settings),
        ("output path changed", (row["output"], row["report"]) != output),
        ("--no-resume", not resume),
    ) if changed]
    if changes:
        return "reset", ", ".join(changes)
    if row["status"] == "done":
        return ("skip", "done") if look.output_ok else ("reset", "output missing or changed")
    if row["status"] == "failed":
        if row["attempts"] < max_attempts:
            return "queue", f"retry {row['attempts'] + 1} of {max_attempts}"
        return "gave_up", f"failed {row['attempts']} times"
    return "queue", "pending"


def _write(ledger: Ledger, item: BatchItem, row: sqlite3.Row | None, look: _Seen, action: str,
           why: str, settings: str, run: str, now: float) -> int:
    db = ledger.db
    output, report = ledger.relative(item.output), ledger.relative(item.report)
    stamp = look.stamp
    size, mtime = (stamp.size, stamp.mtime_ns) if stamp else (None, None)
    if row is None:
        cur = db.execute(
            "INSERT INTO files (key, source, size, mtime_ns, content, settings, status, error, output, report) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (item.key, str(item.source), size, mtime, look.content, settings,
             "failed" if action == "unreadable" else "pending", look.error, output, report))
        _event(db, cur.lastrowid, run, None, "failed" if action == "unreadable" else "pending",
               look.error or why, now)
        return int(cur.lastrowid)
    file_id = row["id"]
    if action == "unreadable":
        db.execute("UPDATE files SET status = 'failed', error = ?, size = NULL, mtime_ns = NULL, "
                   "content = NULL, finished_at = ? WHERE id = ?", (look.error, now, file_id))
        if row["status"] != "failed" or row["error"] != look.error:
            _event(db, file_id, run, None, "failed", look.error, now)
    elif action == "reset":
        db.execute(
            "UPDATE files SET source = ?, size = ?, mtime_ns = ?, content = ?, settings = ?, "
            "status = 'pending', attempts = 0, completions = 0, error = NULL, output = ?, report = ?, "
            "output_size = NULL, output_mtime_ns = NULL, output_content = NULL WHERE id = ?",
            (str(item.source), size, mtime, look.content, settings, output, report, file_id))
        _event(db, file_id, run, None, "pending", why, now)
    elif stamp is not None:  # same content: refresh a touched or moved file's stamp and path
        db.execute("UPDATE files SET source = ?, size = ?, mtime_ns = ? WHERE id = ?",
                   (str(item.source), size, mtime, file_id))
        if action == "queue" and row["status"] == "failed":
            db.execute("UPDATE files SET status = 'pending' WHERE id = ?", (file_id,))
            _event(db, file_id, run, None, "pending", why, now)
    return file_id
