"""Restore still images: one photo, or every image of a folder (``--aligned``: aligned faces).

``restore_images(source, target, config)`` is the still-image twin of ``restore_video``: the
same model, engine and identity options (``pipeline.build``), then each image through
``pipeline.still.StillRestorer``. A folder's images (found recursively, hidden files and
folders and the output folder skipped) go to the same relative paths under the output
folder, each written atomically. Videos in a folder are left to ``vidrestore batch``.
An image that cannot be restored (unreadable, not square with ``--aligned``) is skipped with
one line; the others are still written, and the run then ends with an ``InputError``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError, InputNotFoundError, OutputError, UsageError
from .io.atomic import check_output_path, write_json_atomic
from .io.image import IMAGE_SUFFIXES, is_image_path, read_image, write_image
from .restore_video import Notes, RunSummary
from .settings import RestoreConfig
from .weights import WeightStore

Log = Callable[[str], None]
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts",
                            ".flv", ".wmv", ".3gp", ".mts", ".m2ts", ".vob", ".dv"})


def image_pairs(source: Path, target: Path) -> tuple[list[tuple[Path, Path]], int]:
    """``([(input image, output path)...], videos skipped)`` of a folder run (sorted)."""
    pairs, videos = [], 0
    target_resolved = target.resolve()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.resolve().is_relative_to(target_resolved):
            continue
        if is_image_path(path):
            pairs.append((path, target / relative))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            videos += 1
    return pairs, videos


def restore_images(
    source: str | Path,
    target: str | Path,
    config: RestoreConfig,
    *,
    aligned: bool = False,
    overwrite: bool = False,
    report_path: str | Path | None = None,
    log: Log = lambda line: None,
    restorer=None,
) -> RunSummary:
    """Restore the image ``source`` into the image ``target``, or every image of the folder
    ``source`` into the folder ``target`` (see module doc).

    Raises:
        InputError, OutputError, UsageError, WeightsError: see ``vidrestore.errors``; an
        ``InputError`` also after a folder run where some images could not be restored.
    """
    from .pipeline.build import build_restorer, resolve_device
    from .pipeline.still import StillRestorer

    source, target = Path(source), Path(target)
    pairs = _plan(source, target, overwrite, log)
    device = resolve_device(config.device)
    store = WeightStore(config.weights_dir, allow_download=config.download)
    notes = Notes(log)
    references = {r.name: _reference_photo(r.name, r.path) for r in config.references}
    if restorer is None:
        restorer = build_restorer(config, store, device, log=notes)
    still = StillRestorer(config, store, device, restorer, aligned=aligned, references=references, log=notes)
    started = time.perf_counter()
    entries, failed, faces = [], [], 0
    for src, dst in pairs:
        try:
            result = still.restore(read_image(src))
        except InputError as exc:
            if not source.is_dir():
                raise
            failed.append(str(exc))
            notes(f"skipped {src}: {exc}")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_image(dst, result.image, overwrite=overwrite)
        faces += result.restored
        entries.append({"input": str(src), "output": str(dst), "faces": result.faces})
    report = {"mode": "aligned" if aligned else "images", "summary": still.summary,
              "references": list(references), "images": entries, "failed": failed}
    if report_path is not None:
        write_json_atomic(report_path, report)
    if failed:
        raise InputError(f"{len(failed)} of {len(pairs)} images could not be restored "
                         f"(the others were written); first: {failed[0]}")
    return RunSummary(frames=len(entries), faces=faces, seconds=time.perf_counter() - started,
                      report=report, notes=notes.lines)


def _plan(source: Path, target: Path, overwrite: bool, log: Log) -> list[tuple[Path, Path]]:
    """The (input, output) pairs, every output checked before any work."""
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise OutputError(f"the output of a folder must be a folder: {target} is a file")
        if not target.parent.is_dir():
            raise OutputError(f"output folder's parent does not exist: {target.parent}")
        pairs, videos = image_pairs(source, target)
        if videos:
            log(f"{videos} video(s) in {source} left alone: restore videos with `vidrestore batch {source} -o OUTDIR`")
        if not pairs:
            hint = " (it holds videos: use `vidrestore batch`)" if videos else ""
            raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}{hint}")
        existing = [dst for _, dst in pairs if dst.exists()]
        if existing and not overwrite:
            raise OutputError(f"{len(existing)} output image(s) exist, e.g. {existing[0]} "
                              "(use --overwrite to replace them)")
        target.mkdir(exist_ok=True)
        return pairs
    if not source.exists():
        raise InputNotFoundError(f"input not found: {source}")
    if not is_image_path(target):
        raise UsageError(f"the output of an image must be an image ({', '.join(sorted(IMAGE_SUFFIXES))}), "
                         f"got {target.name!r}")
    check_output_path(target, overwrite=overwrite)
    return [(source, target)]


def _reference_photo(name: str, path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except InputError as exc:
        raise InputError(f"reference {name!r}: {exc}") from None
