"""What a batch works on: its input files, the output each one gets, and its shard.

Inputs are files, folders (searched recursively) and manifests (one path per line). The
batch *root* is the deepest folder that holds every input folder and every input file's
folder; each input is known by its path relative to the root (its *key*, ``/``-separated),
and its output is ``OUTDIR/<key's folder>/<name><ext>`` with its face report
``<name>.faces.json`` beside it. ``<name>`` is the input's stem, or its whole file name when
two inputs in one folder share a stem (``a.mp4`` and ``a.mov`` → ``a.mp4.mp4`` and
``a.mov.mov``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from vidrestore.errors import InputNotFoundError, UsageError
from vidrestore.io.encoding import output_suffix

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".wmv", ".asf", ".flv", ".3gp", ".mxf", ".dv", ".vob", ".ogv",
)
"""Files a folder input contributes when no ``--glob`` is given (case-insensitive)."""



@dataclass(frozen=True)
class BatchItem:
    """One input of a batch and where its results go.

    Attributes:
        key: the input's path relative to the batch root, ``/``-separated (the ledger's key).
        source: the input file (absolute).
        output: the restored video.
        report: its face report (JSON).
    """

    key: str
    source: Path
    output: Path
    report: Path


def read_manifest(path: str | Path) -> list[Path]:
    """The paths a manifest lists: one per line; blank lines and ``#`` comments ignored.

    Relative paths are relative to the manifest's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputNotFoundError(f"manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the manifest {path}: {exc}") from None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entry = Path(os.path.expanduser(line))
            entries.append(entry if entry.is_absolute() else path.parent / entry)
    return entries


def collect_inputs(
    inputs: Sequence[str | Path],
    *,
    manifest: str | Path | None = None,
    patterns: Sequence[str] | None = None,
    exclude: Iterable[str | Path] = (),
) -> tuple[Path, list[Path]]:
    """The batch root and every input file, sorted by key.

    Args:
        inputs: files and folders (a path that is not a folder counts as a file, even if
            missing: the batch records it as failed rather than forgetting it).
        manifest: a file listing more inputs (see ``read_manifest``).
        patterns: shell patterns a file found in a folder must match (case-insensitive): on
            its name, or on its path relative to that folder if the pattern holds a ``/``.
            None: ``VIDEO_EXTENSIONS``. Files named directly are always taken.
        exclude: folders never searched (the batch's own output folder).

    Hidden files and folders (``.name``) are skipped while searching.
    """
    named = [Path(p) for p in inputs] + (read_manifest(manifest) if manifest else [])
    if not named:
        raise UsageError("no inputs: give files, folders or --manifest FILE")
    skip = {os.path.abspath(p) for p in exclude}
    folders, files = [], []
    for entry in named:
        absolute = Path(os.path.abspath(entry))
        (folders if absolute.is_dir() else files).append(absolute)
    root = Path(os.path.commonpath([str(f) for f in folders] + [str(f.parent) for f in files]))
    found = list(files)
    for folder in folders:
        found.extend(_search(folder, patterns, skip))
    unique = {str(f): f for f in found}
    return root, sorted(unique.values(), key=lambda f: relative_key(f, root))


def _search(folder: Path, patterns: Sequence[str] | None, skip: set[str]) -> Iterable[Path]:
    wanted = [p.lower() for p in patterns] if patterns else None
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.join(top, d) not in skip)
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(top) / name
            if wanted is None:
                if path.suffix.lower() in VIDEO_EXTENSIONS:
                    yield path
                continue
            rel = path.relative_to(folder).as_posix().lower()
            if any(fnmatch.fnmatchcase(rel if "/" in p else name.lower(), p) for p in wanted):
                yield path


def relative_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, ``/``-separated."""
    return PurePosixPath(*Path(os.path.relpath(path, root)).parts).as_posix()


def plan_outputs(files: Sequence[Path], root: Path, outdir: str | Path, codec: str) -> list[BatchItem]:
    """Each input's output and report under ``outdir``, mirroring the tree below ``root``."""
    outdir = Path(os.path.abspath(outdir))
    keys = [relative_key(f, root) for f in files]
    stems: dict[tuple[str, str], int] = defaultdict(int)
    for key in keys:
        k = PurePosixPath(key)
        stems[(str(k.parent), k.stem.lower())] += 1
    items = []
    for source, key in zip(files, keys):
        k = PurePosixPath(key)
        name = k.name if stems[(str(k.parent), k.stem.lower())] > 1 else k.stem
        folder = outdir.joinpath(*k.parent.parts)
        items.append(BatchItem(
            key=key,
            source=source,
            output=folder / f"{name}{output_suffix(k.suffix, codec)}",
            report=folder / f"{name}.faces.json",
        ))
    _check_outputs(items)
    return items


def _check_outputs(items: Sequence[BatchItem]) -> None:
    seen: dict[str, str] = {}
    sources = {os.path.realpath(i.source) for i in items}
    for item in items:
        for path in (item.output, item.report):
            name = os.path.normcase(str(path)).lower()
            if name in seen:
                raise UsageError(f"inputs {seen[name]} and {item.key} would both write {path}; "
                                 "rename one or restore them in separate batches")
            seen[name] = item.key
        if os.path.realpath(item.output) in sources:
            raise UsageError(f"the output {item.output} would replace an input; "
                             "choose another output folder")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → (K, N) with 0 <= K < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard takes K/N (such as 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return index, count


def shard_of(key: str, count: int) -> int:
    """The shard of an input: a hash of its key, the same on every machine."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) % count


def select_shard(items: Sequence[BatchItem], index: int, count: int) -> list[BatchItem]:
    """The items of shard ``index`` of ``count``."""
    return [item for item in items if shard_of(item.key, count) == index]
