"""Done records: what the ledger knows of each finished output, kept beside the outputs too.

The ledger is one SQLite file; if it is damaged (truncated by a full disk or a half-finished
copy, overwritten by something else) the batch must not forget what it finished, or the
next run would redo every file and replace every output. So each finished file also gets a
small JSON record in ``OUTDIR/.vidrestore-batch/done/`` (written atomically after the output
and its report are in place, before the ledger records ``done``): its key, input identity,
settings hash, output and report paths and the output's identity.

``recover`` rebuilds a ledger from them: it sets the damaged file aside (renamed, never
deleted), starts a new ledger, and records as done every file whose record still matches
its output (size and mtime, or failing that the content hash) and whose report is present.
The next run then skips those and redoes the rest. A record whose output changed or
vanished is ignored: that file is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from vidrestore.errors import OutputError
from vidrestore.io.atomic import write_json_atomic

from .identity import FileStamp, content_digest
from .ledger import LEDGER_NAME, Ledger, _event

RECORDS = Path(".vidrestore-batch") / "done"
"""Where done records live, below OUTDIR."""

FORMAT = 1


def record_path(outdir: str | Path, key: str) -> Path:
    """The done record of input ``key``."""
    return Path(outdir) / RECORDS / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:20]}.json"


def write_record(outdir: str | Path, row: Mapping[str, Any], *, output: tuple[int, int, str],
                 frames: int, faces: int, seconds: float, host: str, pid: int) -> Path:
    """Write the done record of a claimed ledger ``row`` whose output is in place."""
    return write_json_atomic(record_path(outdir, row["key"]), {
        "format": FORMAT, "key": row["key"], "source": row["source"],
        "input": {"size": row["size"], "mtime_ns": row["mtime_ns"], "content": row["content"]},
        "settings": row["settings"], "output": row["output"], "report": row["report"],
        "output_identity": list(output), "frames": frames, "faces": faces, "seconds": seconds,
        "host": host, "pid": pid, "finished_at": time.time(),
    })


def read_records(outdir: str | Path) -> Iterator[dict]:
    """Every readable done record in ``outdir`` (unreadable ones are skipped)."""
    folder = Path(outdir) / RECORDS
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            record = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("format") == FORMAT:
            yield record


def matches(outdir: Path, record: Mapping[str, Any]) -> bool:
    """Whether ``record``'s output is still the one it describes, with its report present."""
    try:
        size, mtime_ns, content = record["output_identity"]
        output = outdir / record["output"]
        stamp = FileStamp.of(output)
        if not (outdir / record["report"]).is_file() or stamp.size != size:
            return False
        return stamp.mtime_ns == mtime_ns or content_digest(output) == content
    except (OSError, KeyError, TypeError, ValueError):
        return False


@dataclass
class Recovered:
    """What ``recover`` did."""

    ledger: Path
    kept_as: list[Path] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    healthy: bool = False


def ledger_is_healthy(path: Path) -> bool:
    """Whether ``path`` is a readable SQLite ledger that passes SQLite's quick check."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            db.execute("SELECT count(*) FROM files").fetchone()
            return ok
        finally:
            db.close()
    except sqlite3.Error:
        return False


def recover(outdir: str | Path) -> Recovered:
    """Set a damaged ledger of ``outdir`` aside and rebuild it from the done records.

    A healthy ledger is left alone (``healthy``). Raises ``OutputError`` if there is no
    ledger and no record to rebuild from, or the damaged file cannot be moved.
    """
    outdir = Path(os.path.abspath(outdir))
    path = outdir / LEDGER_NAME
    result = Recovered(ledger=path)
    if path.is_file() and ledger_is_healthy(path):
        result.healthy = True
        return result
    records = list(read_records(outdir))
    if not path.exists() and not records:
        raise OutputError(f"no batch ledger and no done records in {outdir}: nothing to recover")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm", "-journal"):
        damaged = path.with_name(path.name + suffix)
        if damaged.exists():
            kept = damaged.with_name(f"{path.name}.damaged-{stamp}{suffix}")
            try:
                os.replace(damaged, kept)
            except OSError as exc:
                raise OutputError(f"cannot set the damaged ledger {damaged} aside: {exc.strerror or exc}") from None
            result.kept_as.append(kept)
    ledger = Ledger(path)
    try:
        with ledger.transaction() as db:
            for record in records:
                if not matches(outdir, record):
                    result.stale.append(record.get("key", "?"))
                    continue
                try:
                    size, mtime_ns, content = record["output_identity"]
                    inputs = record["input"]
                    values = (record["key"], record["source"], inputs["size"], inputs["mtime_ns"],
                              inputs["content"], record["settings"], record["output"], record["report"],
                              size, mtime_ns, content, record["frames"], record["faces"], record["seconds"],
                              record["host"], record["pid"], record["finished_at"])
                except (KeyError, TypeError, ValueError):
                    result.stale.append(str(record.get("key", "?")))
                    continue
                cur = db.execute(
                    "INSERT OR IGNORE INTO files (key, source, size, mtime_ns, content, settings, status, "
                    "attempts, completions, output, report, output_size, output_mtime_ns, output_content, "
                    "frames, faces, seconds, host, pid, finished_at) "
                    "VALUES (?,?,?,?,?,?,'done',1,1,?,?,?,?,?,?,?,?,?,?,?)", values)
                if cur.rowcount:
                    _event(db, cur.lastrowid, None, None, "done", "recovered from its done record", time.time())
                    result.done.append(record["key"])
    finally:
        ledger.close()
    return result


__all__ = ["RECORDS", "Recovered", "ledger_is_healthy", "matches", "read_records", "record_path",
           "recover", "write_record"]
