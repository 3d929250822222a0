"""Restore one video: the whole road from an input file to a finished output file.

``restore_video`` builds the stages from a ``RestoreConfig``, streams the video through them
and publishes the output atomically. The CLI, the batch runner and ``bench`` all call it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import numpy as np

from .errors import InputError, UsageError
from .io.atomic import atomic_output, check_output_path, write_json_atomic
from .io.encoding import aspect_problem
from .io.fingerprint import FileStamp
from .io.probe import VideoInfo
from .io.reader import VideoReader
from .io.trim import Trim
from .io.writer import VideoWriter
from .memory import trim_heap
from .pipeline.runner import StageClock, run_stages
from .settings import RestoreConfig
from .weights import WeightStore

Log = Callable[[str], None]
_TRIM_EVERY = 8  # frames between returning freed heap pages to the OS (see vidrestore.memory)


@dataclass
class RunSummary:
    """What a finished run did.

    Attributes:
        frames: frames written.
        faces: faces restored.
        seconds: wall time from the first decoded frame to the published file.
        stage_seconds: busy seconds per stage (decode, faces, restore, paste, encode), and
            of the face stage's parts as ``faces.detect`` and ``faces.align``.
        report: the face report (tracks, faces per frame), as written with ``--report``.
        notes: lines worth showing the user (detector chosen, streams re-encoded...).
    """

    frames: int
    faces: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one-line summary printed at the end of a run; faces left untouched are counted
        by reason (``too small``, rejected by the verifier), so a run that restores few faces
        says why."""
        untouched = [f"{n} {why}" for why, n in self.report.get("skipped", {}).items()
                     if why != "rejected"]
        untouched += [f"{n} rejected ({why})" for why, n in self.report.get("rejected", {}).items()]
        left = f"; left untouched: {', '.join(untouched)}" if untouched else ""
        return (f"{self.frames} frames, {self.faces} faces restored in {self.seconds:.1f} s "
                f"({self.fps:.2f} fps){left}")


class Notes:
    """A ``log`` that also keeps its lines (set-up notes of a run, for its summary)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.log(line)


def restore_video(
    source: str | Path,
    target: str | Path,
    config: RestoreConfig,
    *,
    overwrite: bool = False,
    report_path: str | Path | None = None,
    progress: bool = False,
    log: Log = lambda line: None,
    max_frames: int | None = None,
    restorer=None,
    clock: StageClock | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    trim: Trim | None = None,
    publish_guard: Callable[[], ContextManager] | None = None,
) -> RunSummary:
    """Restore every face of ``source`` and write the result to ``target``.

    Args:
        source: input video.
        target: output video; appears only when complete (see ``io.atomic``).
        config: the run's settings.
        overwrite: replace an existing ``target``.
        report_path: write the face report (JSON) here.
        progress: show a tqdm bar (frames, fps, ETA) on stderr.
        log: receives notes as the run is set up.
        max_frames: stop after this many frames (benchmarks, previews).
        restorer: a ready ``Restorer`` to use instead of building ``config.model`` (any
            object with the protocol plugs in here).
        clock: collects the stage timings (``bench`` passes one that records latencies).
        on_frame: called from the encoder's thread after each frame is written, with the
            frames written so far and the expected total (None when the container does not
            say); batch workers report their progress through it.
        trim: restore only this segment (``--start`` / ``--end``); the output starts at 0,
            with audio and subtitles cut at the same instants. No face cache is kept.
        publish_guard: a context manager the output is renamed into place inside (a batch
            worker holds its claim on the file there); if it raises, nothing is published.

    The input must not change while it is read: a file still being written or copied (its
    size or mtime differ at the end from the start) is refused with an ``InputError`` and
    nothing is published, rather than a restoration of part of it.

    Raises:
        InputError, OutputError, UsageError, WeightsError: see ``vidrestore.errors``.
    """
    from .pipeline.build import build_restorer, build_stages, build_upscaler, resolve_device

    target = _check_request(target, overwrite, max_frames)
    trim = trim or Trim()
    reader = VideoReader(source, decode=config.decode, trim=trim)
    _check_geometry(reader, config, target)
    stamp = _stamp(source)
    device = resolve_device(config.device)
    store = WeightStore(config.weights_dir, allow_download=config.download)
    notes = Notes(log)
    for line in reader.notes:
        notes(line)
    references = {r.name: _read_reference(r.name, r.path) for r in config.references}
    if restorer is None:
        restorer = build_restorer(config, store, device, log=notes)
    upscaler = build_upscaler(config, store, device, frame_size=upright_size(reader.output), log=notes)
    stages = build_stages(
        config, store, device, restorer, source=source, references=references, log=notes,
        cache_dir=_face_cache_dir(target) if config.face_cache and not trim.active else None,
        pixel_aspect=upright_pixel_aspect(reader.output), frames_key=frames_key(reader), upscaler=upscaler)
    faces, restore = stages.faces, stages.restore

    clock = clock if clock is not None else StageClock()
    started = time.perf_counter()
    expected = _expected_frames(reader, max_frames)
    bar = _progress_bar(expected) if progress else None
    written = 0

    def sink(job) -> None:
        nonlocal written
        written += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(faces=restore.faces_restored, refresh=False)
        if on_frame is not None:
            on_frame(written, expected)

    try:
        guard = lambda: _publishing(source, stamp, publish_guard)  # noqa: E731
        with atomic_output(target, overwrite=overwrite, guard=guard) as tmp:
            frames = _encode(tmp, reader, config, list(stages), clock, sink,
                             max_frames=max_frames, log=notes, gpu=device.type == "cuda")
    except BaseException:
        faces.close(success=False)  # whatever failed, and wherever: no face cache half-written
        raise
    finally:
        if bar is not None:
            bar.close()
    faces.close(whole_video=not _stopped_early(frames, max_frames) and not trim.active)
    if reader.damaged_packets:
        notes(f"skipped {reader.damaged_packets} undecodable video packet(s) of {Path(source).name}")
    seconds = time.perf_counter() - started
    report = faces.report()
    if report_path is not None:
        write_json_atomic(report_path, report)
    return RunSummary(
        frames=frames,
        faces=restore.faces_restored,
        seconds=seconds,
        stage_seconds={**clock.busy, **{f"faces.{k}": v for k, v in getattr(faces, "seconds", {}).items()}},
        report=report,
        notes=notes.lines,
    )


def _encode(tmp: Path, reader: VideoReader, config: RestoreConfig, stages, clock: StageClock,
            on_frame: Callable, *, max_frames: int | None, log: Log, gpu: bool = False) -> int:
    """Stream the video through ``stages`` into ``tmp``; the writer is aborted on any failure."""
    info = reader.output
    factor = config.upscale.factor
    if factor != 1:
        info = dataclasses.replace(info, width=info.width * factor, height=info.height * factor)
    writer = VideoWriter(tmp, info, reader.colour, config.encode, source=reader.path, log=log, gpu=gpu,
                         rebase=bool(reader.trim.start))

    def sink(job) -> None:
        writer.write(job.frame)
        if writer.frames_written % _TRIM_EVERY == 0:
            trim_heap()
        on_frame(job)

    try:
        frames = run_stages(reader.frames(limit=max_frames), stages, sink,
                            queue_size=config.queue_size, clock=clock)
        cut = _stopped_early(frames, max_frames) or reader.trim.end is not None
        writer.close(side_streams_until=writer.end_time if cut else None)
    except BaseException:
        writer.abort()
        raise
    return frames


def _stamp(source: str | Path) -> FileStamp:
    try:
        return FileStamp.of(source)
    except OSError as exc:
        raise InputError(f"input is not readable: {source} ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _publishing(source: str | Path, stamp: FileStamp,
                guard: Callable[[], ContextManager] | None) -> Iterator[None]:
    """Where the output is renamed into place: only if the input is the file that was read
    (and inside the caller's ``guard``)."""
    try:
        now = FileStamp.of(source)
    except OSError:
        now = None
    if now != stamp:
        what = "removed" if now is None else ("truncated" if now.size < stamp.size else "changed")
        raise InputError(f"the input {source} was {what} while it was being read (a file still "
                         "being written or copied?); nothing was saved: run again once it is complete")
    with guard() if guard is not None else contextlib.nullcontext():
        yield


def _check_request(target: str | Path, overwrite: bool, max_frames: int | None) -> Path:
    """What can be refused before any work: the output path and the frame limit."""
    target = check_output_path(target, overwrite=overwrite)
    if not target.suffix:
        raise UsageError(f"cannot tell the container format of {target.name!r}: give OUTPUT an "
                         "extension such as .mp4, .mkv, .mov or .webm")
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {max_frames}")
    return target


def _stopped_early(frames: int, max_frames: int | None) -> bool:
    """Whether a run ended at ``max_frames`` rather than at the end of the video."""
    return max_frames is not None and frames >= max_frames


def _face_cache_dir(target: Path) -> Path:
    return target.parent


def _read_reference(name: str, path: Path) -> np.ndarray:
    from .io.image import read_image

    try:
        return read_image(path)
    except InputError as exc:
        raise InputError(f"reference {name!r}: {exc}") from None


def _check_geometry(reader: VideoReader, config: RestoreConfig, target: Path) -> None:
    """What cannot be done with these frames, refused before any work."""
    if (problem := aspect_problem(target, config.encode.codec, reader.output.sample_aspect_ratio)) is not None:
        raise UsageError(problem)
    if config.upscale.factor != 1 and reader.fields.keep_interlaced:
        raise UsageError("--upscale on an interlaced video kept interlaced (--deinterlace off) would "
                         "scale across its fields; deinterlace it (--deinterlace auto) or keep --upscale 1")


def upright_size(info: VideoInfo) -> tuple[int, int]:
    """(height, width) of the upright frames of ``info``."""
    if info.rotation in (90, 270):
        return info.width, info.height
    return info.height, info.width


def upright_pixel_aspect(info: VideoInfo) -> float:
    """Width / height of an upright frame's pixel (a rotation by 90° turns it over)."""
    sar = float(info.sample_aspect_ratio or 1)
    return 1.0 / sar if info.rotation in (90, 270) else sar


def frames_key(reader: VideoReader) -> str:
    """What the delivered frames depend on beyond the file ("" when they are as decoded)."""
    parts = []
    if reader.fields.filter:
        parts.append(reader.fields.key())
    if reader.output.width != reader.info.width or reader.output.height != reader.info.height:
        parts.append(f"{reader.output.width}x{reader.output.height}")
    return "/".join(parts)


def _expected_frames(reader: VideoReader, max_frames: int | None) -> int | None:
    total = reader.output.frames
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    return total or None


def _progress_bar(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, leave=False)
