"""``degrade_video``: a clean clip made a benchmark input, with clip-coherent degradations.

Every frame goes through ``degradation.video.ClipDegradation`` (blur, noise, downsampling,
noise, and JPEG for the ``codeformer`` preset) at the clip's drifting parameters; for the
``vfhq`` preset the small frames are then encoded with x264 at the clip's CRF into a
temporary file and decoded again (the compression a video really goes through, at the small
size, B-frames and all); finally every frame is upsampled back to the input's size and
written with the input's timestamps, colour tags, audio and metadata, losslessly by default
(x264 at CRF 0, the same 4:2:0 chroma as the input), so that the only loss is the
degradation's. The output appears atomically; memory stays flat in the clip's length.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .degradation import ClipDegradation, FrameParams, upsample
from .errors import UsageError
from .io.atomic import atomic_output, check_output_path
from .io.encoding import EncodeSettings
from .io.frame import Frame
from .io.reader import VideoReader
from .io.writer import VideoWriter

Log = Callable[[str], None]

LOSSLESS = EncodeSettings(codec="libx264", crf=0, preset="medium")
"""The output's default encoding: x264 at CRF 0 (lossless in the input's 4:2:0 YUV)."""


@dataclass(frozen=True)
class DegradeSummary:
    """What ``degrade_video`` did: frames written and the clip's parameters at its start."""

    frames: int
    preset: str
    seed: int
    first: FrameParams
    small_size: tuple[int, int]

    def line(self) -> str:
        p = self.first
        parts = [f"blur σ {p.sigma[0]:.2f}/{p.sigma[1]:.2f}", f"down ×{p.scale:.2f} ({self.small_size[0]}×{self.small_size[1]})",
                 f"noise σ {p.noise_sigma:.2f}"]
        if p.jpeg_quality is not None:
            parts.append(f"JPEG q{p.jpeg_quality}")
        if p.crf is not None:
            parts.append(f"x264 CRF {p.crf}")
        return f"{self.frames} frames degraded ({self.preset}, seed {self.seed}: {', '.join(parts)} at the start)"


def degrade_video(source: str | Path, target: str | Path, *, preset: str = "vfhq", seed: int = 0,
                  encode: EncodeSettings = LOSSLESS, overwrite: bool = False, max_frames: int | None = None,
                  log: Log = lambda line: None) -> DegradeSummary:
    """Write ``source`` degraded by ``preset`` (seeded by ``seed``) to ``target`` (module doc).

    Raises:
        InputError, OutputError, UsageError: see ``vidrestore.errors``.
    """
    target = check_output_path(target, overwrite=overwrite)
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {max_frames}")
    reader = VideoReader(source)
    clip = ClipDegradation(preset, seed)
    info = reader.info
    width, height = (info.height, info.width) if info.rotation % 180 else (info.width, info.height)
    size = clip.small_size(width, height)
    fps = info.fps or 25.0

    timing: list[int | None] = []  # the input's pts: the small file's muxer may re-time them

    def small_frames() -> Iterator[Frame]:
        for frame in reader.frames(limit=max_frames):
            timing.append(frame.pts)
            t = frame.time if frame.time is not None else frame.index / fps
            fixed = size if clip.crf is not None else None  # one stream: one size
            yield Frame(frame.index, frame.pts, frame.time_base, clip.degrade_frame(frame.image, frame.index, t, fixed))

    with atomic_output(target, overwrite=overwrite) as tmp:
        if clip.crf is None:
            frames = _write(tmp, reader, encode, _upsampled(small_frames(), width, height, info.bit_depth), log)
        else:
            with tempfile.TemporaryDirectory(prefix=".vidrestore-degrade-", dir=Path(tmp).parent) as work:
                small_path = Path(work) / "small.mp4"
                small_info = dataclasses.replace(info, width=size[0], height=size[1], rotation=0, pix_fmt="yuv420p",
                                                 bit_depth=8)
                compressed = EncodeSettings(codec="libx264", crf=clip.crf, preset="medium", pix_fmt="yuv420p")
                writer = VideoWriter(small_path, small_info, reader.colour, compressed)
                try:
                    for frame in small_frames():
                        writer.write(frame)
                    writer.close()
                except BaseException:
                    writer.abort()
                    raise
                decoded = (dataclasses.replace(f, pts=timing[f.index], time_base=info.time_base)
                           for f in VideoReader(small_path).frames())
                frames = _write(tmp, reader, encode, _upsampled(decoded, width, height, info.bit_depth), log)
                if frames != len(timing):
                    raise RuntimeError(f"the compressed clip gave back {frames} of {len(timing)} frames")
    return DegradeSummary(frames, clip.preset.name, seed, clip.params(0.0), size)


def _upsampled(frames: Iterator[Frame], width: int, height: int, bit_depth: int) -> Iterator[Frame]:
    dtype = np.uint16 if bit_depth > 8 else np.uint8
    for frame in frames:
        image = frame.image if frame.image.dtype == np.uint8 else (frame.image >> 8).astype(np.uint8)
        yield Frame(frame.index, frame.pts, frame.time_base, upsample(image, width, height, dtype))


def _write(tmp: Path, reader: VideoReader, encode: EncodeSettings, frames: Iterator[Frame], log: Log) -> int:
    writer = VideoWriter(tmp, reader.info, reader.colour, encode, source=reader.path, log=log)
    try:
        for frame in frames:
            writer.write(frame)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.frames_written
