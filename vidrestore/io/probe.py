"""What a video file holds: streams, codecs, rate, duration, rotation, frame count.

``open_input`` is the one place that turns PyAV's failures to open a file into vidrestore's
typed input errors, so every command reports a bad input the same way.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidrestore.errors import InputError, InputNotFoundError

from .interlace import FIELD_ORDERS


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, or raise InputError saying why in one line."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"input not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a folder, not a video: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input is not readable (permission denied): {path}")
    try:
        # Tags that are not valid UTF-8 (old muxers, damaged headers) are read with
        # replacement characters rather than failing the whole file.
        return av.open(str(path), "r", metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise InputError(f"not a video file PyAV/FFmpeg can read: {path} ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if text else type(exc).__name__


def video_stream(container: av.container.InputContainer, path: str | Path = "") -> av.video.stream.VideoStream:
    """The main video stream (the default one, else the first), or InputError if none.

    Attached pictures (cover art in audio files) do not count as video.
    """
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise InputError(f"no video stream in {path or container.name}")
    streams = [s for s in streams if s.codec_context is not None]
    if not streams:
        raise InputError(f"no decodable video stream in {path or container.name} (its codec is unknown: "
                         "the header is damaged)")
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0]


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file, as ``vidrestore probe`` reports it."""

    index: int
    type: str
    codec: str
    language: str | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VideoInfo:
    """The facts about an input that the pipeline and ``probe`` need.

    Attributes:
        path: the file.
        container: format name (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``...).
        width, height: coded size of the video stream (before rotation).
        pix_fmt: decoder pixel format (``yuv420p``, ``yuv420p10le``, ``gray``...).
        bit_depth: bits per component of ``pix_fmt``.
        fps: average frame rate, if known.
        rate: the same as an exact fraction (what the encoder is given).
        time_base: the video stream's time base.
        duration: seconds, if known.
        frames: frame count from the container, or an estimate from duration × fps, if known.
        rotation: display rotation in degrees counter-clockwise (0, 90, 180, 270).
        color_range, colorspace, color_primaries, color_trc: FFmpeg enum values (0/2 = unset).
        streams: every stream of the file.
        sample_aspect_ratio: the shape of a stored pixel, width / height (16/15 for PAL 4:3
            DV, 32/27 for NTSC 16:9...; 1 for square pixels or when nothing says otherwise):
            the container's value, else the bitstream's.
        field_order: ``progressive``, ``tt``, ``bb``, ``tb``, ``bt`` or ``unknown``, as the
            header and the first decoded frame say (``io.interlace``).
        start_time: seconds of the file's start (``--start`` / ``--end`` count from here).
    """

    path: str
    container: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    fps: float | None
    rate: Fraction | None
    time_base: Fraction
    duration: float | None
    frames: int | None
    rotation: int
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    streams: tuple[StreamInfo, ...]
    sample_aspect_ratio: Fraction = Fraction(1)
    field_order: str = "unknown"
    start_time: float = 0.0

    @property
    def display_aspect_ratio(self) -> Fraction:
        """Width / height of the picture as shown (before rotation)."""
        return Fraction(self.width, max(self.height, 1)) * self.sample_aspect_ratio

    def to_json(self) -> dict:
        """Plain data for ``vidrestore probe``."""
        data = asdict(self)
        data["time_base"] = str(self.time_base)
        data["sample_aspect_ratio"] = str(self.sample_aspect_ratio)
        data["display_aspect_ratio"] = str(self.display_aspect_ratio)
        data["rate"] = str(self.rate) if self.rate else None
        data["streams"] = [asdict(s) for s in self.streams]
        return data


def probe(path: str | Path) -> VideoInfo:
    """Read the header (and the first frame, for rotation) of a video file."""
    with open_input(path) as container:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        pix_fmt = ctx.pix_fmt or (ctx.format.name if ctx.format else "unknown")
        rotation = _stream_rotation(container, stream)
        rate = stream.average_rate or stream.guessed_rate or None
        fps = float(rate) if rate else None
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = stream.frames or (int(round(duration * fps)) if duration and fps else None)
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        start = container.start_time / av.time_base if container.start_time is not None else (
            float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0)
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=pix_fmt,
            bit_depth=pix_fmt_bit_depth(pix_fmt),
            fps=fps,
            rate=Fraction(rate) if rate else None,
            time_base=stream.time_base or Fraction(1, 1000),
            duration=duration,
            frames=frames,
            rotation=rotation,
            color_range=int(ctx.color_range or 0),
            colorspace=int(ctx.colorspace or 2),
            color_primaries=int(ctx.color_primaries or 2),
            color_trc=int(ctx.color_trc or 2),
            streams=tuple(_stream_info(s) for s in container.streams),
            sample_aspect_ratio=Fraction(sar) if sar and sar > 0 else Fraction(1),
            field_order=FIELD_ORDERS.get(int(ctx.field_order or 0), "unknown"),
            start_time=start,
        )


def pix_fmt_bit_depth(pix_fmt: str) -> int:
    """Bits per component of an FFmpeg pixel format name (8 when unknown)."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return 8
    depths = [c.bits for c in fmt.components]
    return max(depths) if depths else 8


def _stream_rotation(container, stream) -> int:
    """Rotation from the first decoded frame's display matrix, normalised to 0..270."""
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation / 90.0)) * 90 % 360
    except av.error.FFmpegError:
        return 0
    return 0


def _stream_info(stream) -> StreamInfo:
    ctx = stream.codec_context
    details: dict = {}
    if ctx is None:  # a stream whose codec FFmpeg does not know (a damaged header)
        pass
    elif stream.type == "video":
        details = {"width": ctx.width, "height": ctx.height, "pix_fmt": ctx.pix_fmt}
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        if sar and sar != 1:
            details["sample_aspect_ratio"] = str(sar)
        if ctx.field_order:
            details["field_order"] = FIELD_ORDERS.get(int(ctx.field_order), "unknown")
        if stream.average_rate:
            details["fps"] = float(stream.average_rate)
    elif stream.type == "audio":
        details = {"sample_rate": ctx.sample_rate, "channels": ctx.channels,
                   "layout": ctx.layout.name if ctx.layout else None}
    if stream.duration is not None and stream.time_base:
        details["duration"] = float(stream.duration * stream.time_base)
    return StreamInfo(
        index=stream.index,
        type=stream.type,
        codec=ctx.name if ctx else "unknown",
        language=stream.metadata.get("language"),
        details=details,
    )


def count_frames(path: str | Path) -> int:
    """The exact number of video frames, by demuxing every packet (no decoding); a file that
    cannot be read any further is counted up to there, as ``VideoReader`` reads it."""
    with open_input(path) as container:
        stream = video_stream(container, path)
        count = 0
        try:
            for packet in container.demux(stream):
                count += bool(packet.size)
        except IndexError:  # PyAV's final flush when streams appeared mid-file: all counted
            pass
        except av.error.FFmpegError:  # unreadable from here on: the reader stops here too
            pass
        return count
