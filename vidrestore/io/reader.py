"""Streaming decode: a generator of upright RGB frames with their real timestamps.

Nothing is held beyond the frame being yielded, so memory does not grow with the video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vidrestore.errors import InputError

from .colour import ColourModel, keeps_planes
from .frame import Frame
from .probe import VideoInfo, open_input, probe, video_stream


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
    """Decodes a video file frame by frame.

    Args:
        path: the input file.
        threads: decoder threads (0 lets FFmpeg choose).

    Attributes:
        info: what ``probe`` found.
        colour: how frames are converted to RGB (the writer converts back the same way).
        damaged_packets: packets of the last ``frames()`` run that could not be decoded and
            were skipped (old footage is often damaged here and there; the rest still counts).
    """

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        self.path = Path(path)
        self.info: VideoInfo = probe(self.path)
        self.colour = ColourModel.for_video(self.info)
        self.threads = threads
        self.damaged_packets = 0
        self._error: av.error.FFmpegError | None = None

    def frames(self, *, limit: int | None = None) -> Iterator[Frame]:
        """Yield every frame in presentation order (or the first ``limit``)."""
        with open_input(self.path) as container:
            stream = video_stream(container, self.path)
            stream.thread_type = "AUTO"
            if self.threads:
                stream.codec_context.thread_count = self.threads
            index = 0
            last_pts = None
            step = _nominal_step(stream)
            self.damaged_packets, self._error = 0, None
            for av_frame in self._decode(container, stream):
                pts = av_frame.pts
                if pts is None:  # raw elementary streams carry no timestamps
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                image = upright(self.colour.to_rgb(av_frame), self.info.rotation)
                source = av_frame if keeps_planes(av_frame.format) else None
                yield Frame(index=index, pts=pts, time_base=stream.time_base, image=image,
                            source=source)
                index += 1
                if limit is not None and index >= limit:
                    return
        if index == 0:
            if self._error is not None:
                raise InputError(f"cannot decode {self.path}: {self._error}")
            raise InputError(f"no decodable video frames in {self.path}")

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
