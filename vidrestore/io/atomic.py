"""Outputs that appear whole or not at all.

``atomic_output(target)`` yields a temporary path beside the target (same folder, same
extension, so the container format is guessed the same way). On success the temporary file
is renamed onto the target; on any exception, Ctrl-C or SIGTERM it is deleted, so nothing
half-written is ever left at the target path. An existing target is never replaced unless
``overwrite`` is set; without it the final step is a hard link, which fails rather than
clobbering a file that appeared meanwhile.

A caller may pass a ``guard``: a context manager the final rename happens inside (the batch
holds its claim on the file there, and checks that the input did not change while it was
read); if entering it raises, nothing is published. A rename that fails (the output folder
was removed while the file was being written) is an ``OutputError``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from vidrestore.errors import OutputError


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
"""Errors of the disk an output is written to (full, over quota or file size limit, failing,
read-only), as opposed to errors of the data being written."""


def disk_failure(exc: BaseException, folder: str | Path, what: str) -> OutputError | None:
    """The one-line ``OutputError`` for ``exc`` if it is a failure of the disk holding
    ``folder`` (see ``DISK_ERRNOS``), else None. ``what`` says when (``at frame 12``)."""
    code = getattr(exc, "errno", None)
    if not isinstance(exc, OSError) or code not in DISK_ERRNOS:
        return None
    why = "the disk is full" if code in (errno.ENOSPC, errno.EDQUOT) else os.strerror(code)
    return OutputError(f"cannot write to {folder} {what}: {why} ({os.strerror(code)}); "
                       "nothing was saved")


def check_output_path(target: str | Path, *, overwrite: bool) -> Path:
    """Fail early, before any work, if ``target`` cannot be written."""
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"output is a folder: {target}")
    if target.exists() and not overwrite:
        raise OutputError(f"output exists: {target} (use --overwrite to replace it)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {folder}")
    return target


@contextlib.contextmanager
def atomic_output(target: str | Path, *, overwrite: bool = False,
                  guard: Callable[[], ContextManager] | None = None) -> Iterator[Path]:
    """Yield a temporary path; move it onto ``target`` only if the block succeeds (and, with
    ``guard``, inside ``guard()``)."""
    target = check_output_path(target, overwrite=overwrite)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{target.stem}.", suffix=f".partial{target.suffix}")
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, _default_mode())  # mkstemp makes 0600; outputs get the usual umask mode
    try:
        yield tmp
        with guard() if guard is not None else contextlib.nullcontext():
            publish(tmp, target, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move a finished file onto ``target`` in one step.

    Raises:
        OutputError: ``target`` appeared meanwhile (without ``overwrite``), or the rename
            failed (the folder was removed, the disk went read-only...).
    """
    try:
        if overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise OutputError(f"output exists: {target} (it appeared while working; "
                              "use --overwrite to replace it)") from None
        except OSError:
            if not tmp.exists() or not tmp.parent.is_dir():
                raise  # not a file system without hard links: the file or its folder is gone
            # No hard links on this filesystem: check, then rename (a small race remains).
            if target.exists():
                raise OutputError(f"output exists: {target} (use --overwrite to replace it)") from None
            os.replace(tmp, target)
            return
        tmp.unlink()
    except OutputError:
        raise
    except OSError as exc:
        raise _publish_failure(tmp, target, exc) from None


def _publish_failure(tmp: Path, target: Path, exc: OSError) -> OutputError:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        return OutputError(f"the output folder {folder} was removed while {target.name} was "
                           "being written; nothing was saved")
    if not tmp.exists():
        return OutputError(f"the finished file for {target} was removed before it could be "
                           "renamed into place; nothing was saved")
    return OutputError(f"cannot move the finished file onto {target}: {exc.strerror or exc}")


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write a small text file (a report, a ledger export) atomically: through a temporary file
    beside it and a rename, so readers see the old file or the new one, never half of one.
    Missing parent folders are made; a failure is an ``OutputError``."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.chmod(name, _default_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(name, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        Path(name).unlink(missing_ok=True)
    return target


def write_json_atomic(target: str | Path, data: Any) -> Path:
    """``write_text_atomic`` of ``data`` as indented JSON (numpy values and paths as plain
    JSON); data that is not JSON raises TypeError before anything is written."""
    return write_text_atomic(target, json.dumps(data, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
