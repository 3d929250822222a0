"""Streaming decode: a generator of upright RGB frames with their real timestamps.

Frames are decoded, passed through libavfilter where they need preparing (deinterlacing with
bwdif / yadif, square pixels with scale + setsar: ``io.interlace``, ``io.filters``), cut to a
segment (``io.trim``) and converted to RGB. Nothing is held beyond the frame being yielded
(and the two or three a deinterlacer looks at), so memory does not grow with the video.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vidrestore.errors import InputError, UsageError

from .colour import ColourModel, keeps_planes
from .decoding import DecodeSettings
from .filters import frame_filter
from .frame import Frame
from .interlace import FieldScan, plan_fields, scan_fields
from .probe import VideoInfo, open_input, probe, video_stream
from .trim import Trim

_PAST = object()


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise) to a stored image."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo ``upright``: back to the orientation the stream stores."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


def stored_box(box: tuple[int, int, int, int], width: int, height: int, rotation: int):
    """Map a box of the upright image (``width``×``height``) into the stored orientation."""
    x0, y0, x1, y1 = box
    k = (rotation // 90) % 4
    if k == 0:
        return box
    if k == 1:  # upright = stored turned 90° counter-clockwise
        return (height - y1, x0, height - y0, x1)
    if k == 2:
        return (width - x1, height - y1, width - x0, height - y0)
    return (y0, width - x1, y1, width - x0)


class VideoReader:
    """Decodes a video file frame by frame, through libavfilter where frames need preparing.

    Args:
        path: the input file.
        threads: decoder threads (0 lets FFmpeg choose).
        decode: deinterlacing and square pixels (``DecodeSettings``; default: deinterlace
            what is interlaced, keep the pixels' shape).
        trim: restore only this segment (``Trim``); UsageError here already if it starts
            past the end.

    Attributes:
        info: what ``probe`` found (the file as it is).
        output: the video as the reader delivers it: size after ``square_pixels``, time
            base and rate after deinterlacing (a deinterlacer halves the time base; field
            rate doubles the frame rate), field order, sample aspect ratio, and duration and
            frame count of the segment. The writer mirrors this.
        fields: what is done about interlacing (``io.interlace.FieldPlan``), with ``scan``,
            what the first frames said.
        colour: how frames are converted to RGB (the writer converts back the same way).
        notes: lines for the run's log (deinterlacing chosen, pixels resampled...).
        damaged_packets: packets of the last ``frames()`` run that could not be decoded and
            were skipped (old footage is often damaged here and there; the rest still counts).
    """

    def __init__(self, path: str | Path, *, threads: int = 0, decode: DecodeSettings | None = None,
                 trim: Trim | None = None) -> None:
        self.path = Path(path)
        self.info: VideoInfo = probe(self.path)
        self.decode = decode or DecodeSettings()
        self.trim = trim or Trim()
        self.trim.check(self.info.duration)
        self.colour = ColourModel.for_video(self.info)
        self.threads = threads
        self.damaged_packets = 0
        self._error: av.error.FFmpegError | None = None
        self._decoded = 0
        self.scan = self._scan()
        self.fields = plan_fields(self.decode, self.scan)
        self._square = square_size(self.info) if self.decode.square_pixels else None
        self.output = self._output_info()
        self.notes = [line for line in (self.fields.reason, self._square_note()) if line]

    @property
    def chain(self) -> list[tuple[str, str]]:
        """The libavfilter chain frames go through (empty: none)."""
        chain = self.fields.chain()
        if self._square is not None:
            width, height = self._square
            interlaced = self.fields.keep_interlaced and height != self.info.height
            chain += [("scale", f"w={width}:h={height}:flags=lanczos" + (":interl=1" if interlaced else "")),
                      ("setsar", "1")]
        return chain

    def frames(self, *, limit: int | None = None) -> Iterator[Frame]:
        """Yield every frame of the segment in presentation order (or the first ``limit``)."""
        index = 0
        self._decoded = 0
        with open_input(self.path) as container:
            stream = video_stream(container, self.path)
            self._prepare(container, stream)
            self.damaged_packets, self._error = 0, None
            for av_frame in self._filtered(container, stream):
                kept = self._deliver(av_frame, stream.time_base, index)
                if kept is _PAST:
                    break
                if kept is not None:
                    yield kept
                    index += 1
                    if limit is not None and index >= limit:
                        return
        if index == 0:
            if self._decoded and self.trim.active:
                raise UsageError(f"no frames {self.trim.describe()} in {self.path.name}")
            if self._error is not None:
                raise InputError(f"cannot decode {self.path}: {self._error}")
            raise InputError(f"no decodable video frames in {self.path}")

    def _filtered(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decoded frames through the libavfilter chain (made at the first frame, so it fits
        what the decoder gives), flushed at the end."""
        chain = self.chain
        flt = None
        for av_frame in self._timestamped(container, stream):
            self._decoded += 1
            if not chain:
                yield av_frame
                continue
            if flt is None:
                flt = frame_filter(chain, av_frame, time_base=stream.time_base,
                                   sample_aspect_ratio=self.info.sample_aspect_ratio)
            yield from flt.push(av_frame)
        if flt is not None:
            yield from flt.flush()

    def _deliver(self, av_frame: av.VideoFrame, stream_time_base: Fraction, index: int):
        """The pipeline's ``Frame`` for a decoded (or filtered) frame, None if it lies before
        the segment, ``_PAST`` once frames are after it."""
        time_base = av_frame.time_base or stream_time_base
        t = float(av_frame.pts * time_base) - self.info.start_time
        if self.trim.past(t):
            return _PAST
        if not self.trim.keeps(t):
            return None
        image = upright(self.colour.to_rgb(av_frame), self.info.rotation)
        source = av_frame if keeps_planes(av_frame.format) else None
        return Frame(index=index, pts=av_frame.pts, time_base=time_base, image=image, source=source)

    def _prepare(self, container, stream) -> None:
        stream.thread_type = "AUTO"
        if self.threads:
            stream.codec_context.thread_count = self.threads
        if self.trim.start:  # to the key frame before it; decoding goes on to the exact frame
            target = int((self.info.start_time + self.trim.start) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                container.seek(0)  # not seekable (a raw stream): decode from the start

    def _timestamped(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decoded frames, each with a pts (raw elementary streams carry none)."""
        last_pts = None
        step = _nominal_step(stream)
        for av_frame in self._decode(container, stream):
            if av_frame.pts is None:
                av_frame.pts = 0 if last_pts is None else last_pts + step
            last_pts = av_frame.pts
            yield av_frame

    def _decode(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decoded frames, packet by packet: an undecodable packet is counted and skipped and
        decoding goes on, as players do; a container that cannot be read any further (a
        truncated file) ends the stream. The last error is kept for the message if nothing
        decodes at all."""
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self._error = exc
                return
            except IndexError:
                # PyAV's demux fails in its final flush when streams appeared while the file
                # was read (MPEG-TS may add them): every packet was read; flush the decoder.
                yield from _flush(stream)
                return
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                self.damaged_packets += 1
                self._error = exc
                continue
            yield from frames

    def _scan(self) -> FieldScan:
        """What the first frames (of the segment) say about interlacing."""
        with open_input(self.path) as container:
            stream = video_stream(container, self.path)
            self._prepare(container, stream)
            frames = self._timestamped(container, stream)
            scan = scan_fields(frames, time_base=stream.time_base, stream_order=self.info.field_order)
        self.damaged_packets, self._error = 0, None
        return scan

    def _output_info(self) -> VideoInfo:
        info, factor = self.info, self.fields.rate_factor
        width, height = self._square or (info.width, info.height)
        sar = Fraction(1) if self._square else info.sample_aspect_ratio
        time_base = info.time_base / 2 if self.fields.filter else info.time_base
        rate = info.rate * factor if info.rate else None
        duration = info.duration
        if duration is not None and self.trim.active:
            end = min(duration, self.trim.end) if self.trim.end is not None else duration
            duration = max(end - (self.trim.start or 0.0), 0.0)
        fps = float(rate) if rate else None
        frames = info.frames * factor if info.frames and not self.trim.active else (
            int(round(duration * fps)) if duration is not None and fps else None)
        if self.fields.filter or self.fields.keep_interlaced or self.scan.flagged_interlaced:
            order = self.fields.output_order  # progressive unless fields are kept woven
        else:
            order = info.field_order
        return dataclasses.replace(info, width=width, height=height, sample_aspect_ratio=sar, time_base=time_base,
                                   rate=rate, fps=fps, duration=duration, frames=frames, field_order=order)

    def _square_note(self) -> str:
        if self._square is None:
            return ""
        width, height = self._square
        return (f"resampling {self.info.width}×{self.info.height} pixels of aspect "
                f"{self.info.sample_aspect_ratio} to square pixels: {width}×{height} (--square-pixels)")

def square_size(info: VideoInfo) -> tuple[int, int] | None:
    """The stored size that shows ``info``'s picture with square pixels, enlarging one side
    (never shrinking: no detail is lost), even for 4:2:0 chroma; None if already square."""
    sar = info.sample_aspect_ratio
    if not sar or sar == 1:
        return None
    width, height = info.width, info.height
    if sar > 1:
        width = 2 * int(round(width * sar / 2))
    else:
        height = 2 * int(round(height / sar / 2))
    return width, height


def _flush(stream) -> Iterator[av.VideoFrame]:
    """The frames a decoder still holds at the end of its packets."""
    try:
        yield from stream.codec_context.decode(None)
    except av.error.FFmpegError:
        return


def _nominal_step(stream) -> int:
    rate = stream.average_rate or stream.guessed_rate
    if rate and stream.time_base:
        return max(int(round(1 / (rate * stream.time_base))), 1)
    return 1
