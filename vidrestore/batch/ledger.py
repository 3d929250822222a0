"""The batch ledger: one SQLite file in OUTDIR that every worker, shard and run shares.

One row per input (``files``) says what was asked (input identity, settings hash, output
path) and what happened (status, attempts, error, output identity, timings, where it ran).
Workers register in ``workers`` (host, pid, start time, heartbeat) so a later run can tell a
live claim from a dead one; ``events`` logs every status change (the run's progress feed and
the file's history); ``queue`` lists the files each run means to process.

Every status change is one ``BEGIN IMMEDIATE`` transaction. A claim takes the first pending
row of the run's queue and marks it ``running`` under the worker's id in that same
transaction, so two workers (processes, shards, machines) never hold one file.

On a local disk the ledger is in WAL mode (readers never wait for writers). On a network
file system (NFS, SMB, Lustre...), where WAL does not work, it falls back to a rollback
journal; SQLite then relies on the file system's POSIX locks.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from vidrestore.errors import OutputError, VidrestoreError

from .identity import ProcessIdentity, node_id, process_alive

LEDGER_NAME = "vidrestore-ledger.sqlite"
SCHEMA_VERSION = 2
HEARTBEAT_SECONDS = 20.0
LEASE_SECONDS = 300.0
"""A worker on another machine whose heartbeat is older than this is taken for dead."""

STATUSES = ("pending", "running", "done", "failed")


class LedgerDamaged(OutputError):
    """The ledger file is not a readable SQLite database (truncated, overwritten...)."""


def ledger_failure(path: Path, exc: sqlite3.Error) -> OutputError:
    """The one-line error for a ledger SQLite cannot use: damaged (with the way to recover),
    or otherwise unusable (locked past the timeout, an I/O error)."""
    text = str(exc) or type(exc).__name__
    if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
        return LedgerDamaged(
            f"the batch ledger {path} is damaged ({text}); nothing was changed and no finished "
            f"output is lost: 'vidrestore batch recover {path.parent}' sets it aside and rebuilds "
            "it from the records of the finished outputs, then run the batch again")
    return OutputError(f"cannot use the batch ledger {path}: {text}")


@contextlib.contextmanager
def ledger_errors(path: str | Path) -> Iterator[None]:
    """Turn SQLite's errors on the ledger ``path`` into ``ledger_failure``'s one line."""
    try:
        yield
    except sqlite3.Error as exc:
        raise ledger_failure(Path(os.path.abspath(path)), exc) from None


class ClaimLost(VidrestoreError):
    """A worker's claim on a file was taken over (another run judged the worker dead): the
    worker must not publish that file's output or record its outcome."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, host TEXT, pid INTEGER, argv TEXT, settings TEXT,
    started_at REAL, ended_at REAL, outcome TEXT);
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY, run TEXT, host TEXT, node TEXT, pid INTEGER, pid_started REAL,
    started_at REAL, heartbeat REAL, ended_at REAL, fatal TEXT, fatal_code INTEGER);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, content TEXT,
    settings TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT NOT NULL, report TEXT NOT NULL,  -- relative to OUTDIR
    output_size INTEGER, output_mtime_ns INTEGER, output_content TEXT,
    frames INTEGER, faces INTEGER, seconds REAL,
    worker INTEGER REFERENCES workers(id), run TEXT, host TEXT, pid INTEGER,
    started_at REAL, finished_at REAL,
    progress_frames INTEGER, progress_total INTEGER);  -- of the running attempt
CREATE INDEX IF NOT EXISTS files_status ON files(status);
CREATE TABLE IF NOT EXISTS queue (
    run TEXT NOT NULL, file INTEGER NOT NULL REFERENCES files(id), position INTEGER NOT NULL,
    PRIMARY KEY (run, file));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, file INTEGER, run TEXT, worker INTEGER,
    status TEXT NOT NULL, at REAL NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS events_run ON events(run, id);
"""

_MIGRATIONS = {
    1: ("ALTER TABLE files ADD COLUMN progress_frames INTEGER",
        "ALTER TABLE files ADD COLUMN progress_total INTEGER"),
}
"""Statements taking a ledger of schema N to N + 1 (older vidrestore versions' OUTDIRs)."""

_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "glusterfs",
               "fuse.glusterfs", "beegfs", "9p", "fuse.sshfs", "afs", "ocfs2", "gfs2", "fuse.cephfs"}


class Ledger:
    """An open ledger (one SQLite connection; open one per thread or process).

    Args:
        path: the database file (``OUTDIR/vidrestore-ledger.sqlite``; see ``in_folder``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(os.path.abspath(path))
        self.outdir = self.path.parent
        try:
            self.db = sqlite3.connect(str(self.path), timeout=120.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise OutputError(f"cannot open the batch ledger {self.path}: {exc}") from None
        self.db.row_factory = sqlite3.Row
        self.journal = "delete" if on_network_fs(self.path) else "wal"
        with ledger_errors(self.path):
            try:
                self.db.execute("PRAGMA busy_timeout = 120000")
                self.db.execute(f"PRAGMA journal_mode = {self.journal}")
                self.db.execute("PRAGMA synchronous = FULL")
                self.db.execute("PRAGMA foreign_keys = ON")
                with self.transaction() as db:
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
                    _migrate(db, self.path)
            except BaseException:
                self.db.close()
                raise

    @classmethod
    def in_folder(cls, outdir: str | Path, *, create: bool = True) -> "Ledger":
        """The ledger of the batch writing to ``outdir``."""
        outdir = Path(os.path.abspath(outdir))
        path = outdir / LEDGER_NAME
        if not create and not path.is_file():
            raise OutputError(f"no batch ledger in {outdir} (no {LEDGER_NAME})")
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {outdir}: {exc.strerror or exc}") from None
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def relative(self, path: str | Path) -> str:
        """An output path as the ledger stores it: relative to OUTDIR (which may move)."""
        return Path(os.path.relpath(path, self.outdir)).as_posix()

    def absolute(self, stored: str) -> Path:
        """A stored output path on this machine."""
        return self.outdir / stored

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any exception)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if self.db.in_transaction:  # SQLite may have rolled back itself (a full disk)
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # runs and workers ------------------------------------------------------------------------

    def begin_run(self, run: str, who: ProcessIdentity, argv: Sequence[str], settings: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO runs (id, host, pid, argv, settings, started_at) VALUES (?,?,?,?,?,?)",
                       (run, who.host, who.pid, " ".join(argv), settings, time.time()))

    def end_run(self, run: str, outcome: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET ended_at = ?, outcome = ? WHERE id = ?", (time.time(), outcome, run))
            db.execute("DELETE FROM queue WHERE run = ?", (run,))

    def register_worker(self, run: str, who: ProcessIdentity) -> int:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO workers (run, host, node, pid, pid_started, started_at, heartbeat) "
                "VALUES (?,?,?,?,?,?,?)", (run, who.host, who.node, who.pid, who.started, now, now))
            return int(cur.lastrowid)

    def heartbeat(self, worker: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (time.time(), worker))

    def end_worker(self, worker: int, *, fatal: str | None = None, code: int | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE workers SET ended_at = ?, fatal = ?, fatal_code = ? WHERE id = ?",
                       (time.time(), fatal, code, worker))

    def worker(self, worker: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM workers WHERE id = ?", (worker,)).fetchone()

    def workers_of_run(self, run: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM workers WHERE run = ?", (run,)).fetchall()

    def alive(self, worker: sqlite3.Row | None, *, now: float | None = None) -> bool:
        """Whether a worker may still be working: its process exists (on a node whose pids
        this process can see) or its heartbeat is fresh (elsewhere)."""
        if worker is None or worker["ended_at"] is not None:
            return False
        if worker["node"] == node_id():
            return process_alive(worker["pid"], worker["pid_started"])
        return (now or time.time()) - (worker["heartbeat"] or 0.0) < LEASE_SECONDS

    # files ------------------------------------------------------------------------------------

    def files(self, keys: Sequence[str] | None = None) -> dict[str, sqlite3.Row]:
        """Rows by key (all of them, or those of ``keys``)."""
        rows = self.db.execute("SELECT * FROM files ORDER BY key").fetchall()
        if keys is None:
            return {r["key"]: r for r in rows}
        wanted = set(keys)
        return {r["key"]: r for r in rows if r["key"] in wanted}

    def file(self, file_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()

    def claim(self, run: str, worker: int, who: ProcessIdentity, file_id: int | None = None) -> sqlite3.Row | None:
        """Take the next pending file of ``run``'s queue (or ``file_id``), or None."""
        now = time.time()
        with self.transaction() as db:
            if file_id is None:
                row = db.execute(
                    "SELECT f.id FROM queue q JOIN files f ON f.id = q.file "
                    "WHERE q.run = ? AND f.status = 'pending' ORDER BY q.position LIMIT 1", (run,)).fetchone()
            else:
                row = db.execute("SELECT id FROM files WHERE id = ? AND status = 'pending'", (file_id,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE files SET status = 'running', attempts = attempts + 1, worker = ?, run = ?, "
                "host = ?, pid = ?, started_at = ?, finished_at = NULL, error = NULL, "
                "progress_frames = NULL, progress_total = NULL WHERE id = ?",
                (worker, run, who.host, who.pid, now, row["id"]))
            _event(db, row["id"], run, worker, "running", None, now)
            return db.execute("SELECT * FROM files WHERE id = ?", (row["id"],)).fetchone()

    def finish(self, file_id: int, worker: int, *, output: tuple[int, int, str], frames: int,
               faces: int, seconds: float, host: str, pid: int) -> bool:
        """Record a published output; False if the claim was no longer this worker's."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE files SET status = 'done', completions = completions + 1, error = NULL, "
                "output_size = ?, output_mtime_ns = ?, output_content = ?, frames = ?, faces = ?, "
                "seconds = ?, host = ?, pid = ?, finished_at = ? "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (*output, frames, faces, seconds, host, pid, now, file_id, worker))
            if cur.rowcount:
                _event(db, file_id, _run_of(db, file_id), worker, "done", f"{frames} frames", now)
            return bool(cur.rowcount)

    def fail(self, file_id: int, worker: int, error: str, *, seconds: float | None = None,
             host: str | None = None, pid: int | None = None) -> bool:
        """Record a failure with its one-line error."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE files SET status = 'failed', error = ?, seconds = ?, finished_at = ?, "
                "host = COALESCE(?, host), pid = COALESCE(?, pid) "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (error, seconds, now, host, pid, file_id, worker))
            if cur.rowcount:
                _event(db, file_id, _run_of(db, file_id), worker, "failed", error, now)
            return bool(cur.rowcount)

    def release(self, file_id: int, worker: int, why: str = "interrupted") -> bool:
        """Give an unfinished claim back (pending again; the attempt does not count)."""
        with self.transaction() as db:
            return _release(db, file_id, worker, why)

    def release_worker(self, worker: int, *, error: str | None = None) -> list[sqlite3.Row]:
        """Every file ``worker`` still holds: failed with ``error`` if given, else pending.
        Returns their rows as they were."""
        with self.transaction() as db:
            rows = db.execute("SELECT * FROM files WHERE worker = ? AND status = 'running'", (worker,)).fetchall()
            for row in rows:
                if error is None:
                    _release(db, row["id"], worker, "interrupted")
                else:
                    db.execute("UPDATE files SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                               (error, time.time(), row["id"]))
                    _event(db, row["id"], _run_of(db, row["id"]), worker, "failed", error, time.time())
            return rows

    def holds(self, file_id: int, worker: int) -> bool:
        """Whether ``worker`` still holds its claim on ``file_id`` (``running`` under it)."""
        return _holds(self.db, file_id, worker)

    @contextlib.contextmanager
    def holding(self, file_id: int, worker: int) -> Iterator[None]:
        """Run the block (publishing an output) while ``worker``'s claim on ``file_id`` is
        sure to stay its own: inside one write transaction, which no takeover can interleave.

        Raises:
            ClaimLost: the claim is no longer ``worker``'s (the block does not run).
        """
        with self.transaction() as db:
            if not _holds(db, file_id, worker):
                raise ClaimLost(f"file {file_id} was taken over by another run; not publishing it")
            yield

    def progress(self, file_id: int, worker: int, frames: int, total: int | None) -> None:
        """How far the claimed file is: ``frames`` written of an expected ``total``."""
        with self.transaction() as db:
            db.execute("UPDATE files SET progress_frames = ?, progress_total = ? "
                       "WHERE id = ? AND status = 'running' AND worker = ?", (frames, total, file_id, worker))

    def running(self, run: str) -> list[sqlite3.Row]:
        """The files ``run``'s workers are restoring now, with their progress."""
        return self.db.execute("SELECT * FROM files WHERE status = 'running' AND run = ?", (run,)).fetchall()

    def has_pending(self, run: str) -> bool:
        """Whether ``run``'s queue still has a file to claim."""
        return self.db.execute(
            "SELECT 1 FROM queue q JOIN files f ON f.id = q.file WHERE q.run = ? AND f.status = 'pending' "
            "LIMIT 1", (run,)).fetchone() is not None

    def events(self, run: str, after: int = 0) -> list[sqlite3.Row]:
        """``run``'s events after id ``after``, with their file's row."""
        return self.db.execute(
            "SELECT e.id AS event, e.status AS event_status, e.worker AS event_worker, e.detail, f.* "
            "FROM events e "
            "JOIN files f ON f.id = e.file WHERE e.run = ? AND e.id > ? ORDER BY e.id",
            (run, after)).fetchall()


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Stamp a new ledger with the schema version; bring an older one up to it."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    version = SCHEMA_VERSION if row is None else int(row[0])
    if version > SCHEMA_VERSION:
        raise OutputError(f"{path} is a ledger of schema {version}, written by a newer vidrestore; "
                          f"this one reads schema {SCHEMA_VERSION} and older")
    for old in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[old]:
            db.execute(statement)
    if row is None or version < SCHEMA_VERSION:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def _holds(db: sqlite3.Connection, file_id: int, worker: int) -> bool:
    row = db.execute("SELECT status, worker FROM files WHERE id = ?", (file_id,)).fetchone()
    return row is not None and row["status"] == "running" and row["worker"] == worker


def _run_of(db: sqlite3.Connection, file_id: int) -> str | None:
    row = db.execute("SELECT run FROM files WHERE id = ?", (file_id,)).fetchone()
    return row["run"] if row else None


def _release(db: sqlite3.Connection, file_id: int, worker: int, why: str) -> bool:
    cur = db.execute(
        "UPDATE files SET status = 'pending', attempts = MAX(attempts - 1, 0), "
        "interruptions = interruptions + 1, worker = NULL "
        "WHERE id = ? AND status = 'running' AND worker = ?", (file_id, worker))
    if cur.rowcount:
        _event(db, file_id, _run_of(db, file_id), worker, "pending", why, time.time())
    return bool(cur.rowcount)


def _event(db: sqlite3.Connection, file_id: int, run: str | None, worker: int | None, status: str,
           detail: str | None, at: float) -> None:
    db.execute("INSERT INTO events (file, run, worker, status, at, detail) VALUES (?,?,?,?,?,?)",
               (file_id, run, worker, status, at, detail))


def on_network_fs(path: str | Path) -> bool:
    """Whether ``path`` is on a network file system (from /proc/mounts; False elsewhere)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    target = os.path.realpath(Path(path).parent)
    best, kind = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, parts[2]
    return kind in _NETWORK_FS


def row_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    """A row as plain data."""
    return dict(row) if row is not None else None
