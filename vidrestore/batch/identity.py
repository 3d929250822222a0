"""Who is who: the identity of a file, of a run's settings, and of a worker process.

A file's identity is ``vidrestore.io.fingerprint``'s: its stamp (size, mtime) and, when that
changed, its content digest.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from vidrestore.io.fingerprint import FileStamp, content_digest

__all__ = ["FileStamp", "ProcessIdentity", "content_digest", "node_id", "process_alive", "settings_digest"]


def settings_digest(config) -> str:
    """The hash of everything that changes a batch's outputs.

    ``RestoreConfig.fingerprint()`` names files by path; the identity of the ``--weights``
    checkpoint and the ``--reference`` photo is added by content, so a retrained checkpoint
    saved over the same path redoes the batch.
    """
    digest = hashlib.sha256(config.fingerprint().encode())
    files = [("weights", getattr(config, "weights", None))]
    files += [(f"reference {r.name}", r.path) for r in getattr(config, "references", ())]
    for name, path in files:
        if path is not None:
            digest.update(f"\0{name}\0".encode())
            digest.update(content_digest(path).encode() if Path(path).is_file() else b"missing")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, named so that another process can tell whether it is still alive.

    Attributes:
        host: the machine's name (for people).
        node: boot id + pid namespace: equal only for processes that can see each other's pids
            (two containers on one machine share the host name but not this).
        pid: the process id.
        started: the process's start time (s since the epoch), which tells a reused pid apart.
    """

    host: str
    node: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> "ProcessIdentity":
        import psutil

        pid = os.getpid()
        return cls(socket.gethostname(), node_id(), pid, psutil.Process(pid).create_time())


def node_id() -> str:
    """An id shared by exactly the processes whose pids this process can check."""
    parts = [socket.gethostname()]
    try:  # Linux: the boot, and the pid namespace (a container has its own)
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def process_alive(pid: int, started: float) -> bool:
    """Whether process ``pid`` on this node is the one that started at ``started``."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # it exists; assume the worst (alive) rather than run twice
        return True
