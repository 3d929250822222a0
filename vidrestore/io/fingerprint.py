"""Who a file is: cheap to check (size and mtime), and by content when that is not enough.

A file's content digest is the sha256 of its size and its first and last MiB: reading 2 MiB
tells a touched but unchanged file from a rewritten one, whatever the file's length. The
face cache and the batch ledger both key their entries by it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

_MIB = 1 << 20


@dataclass(frozen=True)
class FileStamp:
    """What ``os.stat`` says of a file: enough to notice that it may have changed."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> "FileStamp":
        stat = os.stat(path)
        return cls(stat.st_size, stat.st_mtime_ns)


def content_digest(path: str | Path) -> str:
    """Hex sha256 (first 32 digits) of the size and the first and last MiB of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest.update(str(size).encode() + b"\0")
        digest.update(fh.read(_MIB))
        if size > _MIB:
            fh.seek(max(size - _MIB, _MIB))
            digest.update(fh.read(_MIB))
    return digest.hexdigest()[:32]
