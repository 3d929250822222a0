"""libavfilter chains over decoded frames, through PyAV's filter graph.

``FrameFilter`` runs a linear chain (``bwdif`` → ``scale`` → ``setsar``, ``idet``,
``setfield``...) between a ``buffer`` source described like the stream and a ``buffersink``.
Frames go in as decoded and come out as the filters made them: with their own timestamps
and time base (a deinterlacer halves the time base; ``mode=send_field`` gives two frames per
input frame), their pixel format and their flags.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import av

from vidrestore.errors import InputError


class FrameFilter:
    """One filter chain for frames of one geometry.

    Args:
        chain: ``(filter name, options string)`` in order, e.g. ``[("bwdif", "mode=send_field")]``.
        width, height, pix_fmt: the frames pushed in.
        time_base: their timestamps' unit.
        sample_aspect_ratio: their pixels' shape (width / height of one pixel).
        colorspace, color_range: their FFmpeg colour tags (0 / unknown: not said).
    """

    def __init__(self, chain: Sequence[tuple[str, str]], *, width: int, height: int, pix_fmt: str,
                 time_base: Fraction, sample_aspect_ratio: Fraction = Fraction(1),
                 colorspace: int = 2, color_range: int = 0) -> None:
        self.chain = tuple(chain)
        graph = av.filter.Graph()
        sar = sample_aspect_ratio or Fraction(1)
        options = dict(video_size=f"{width}x{height}", pix_fmt=str(int(av.VideoFormat(pix_fmt))),
                       time_base=str(time_base), pixel_aspect=f"{sar.numerator}/{sar.denominator}")
        if colorspace not in (None, 2):  # 2: unspecified
            options["colorspace"] = str(int(colorspace))
        if color_range:
            options["range"] = str(int(color_range))
        try:
            node = graph.add("buffer", **options)
            for name, args in self.chain:
                following = graph.add(name, args) if args else graph.add(name)
                node.link_to(following)
                node = following
            node.link_to(graph.add("buffersink"))
            graph.configure()
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"libavfilter cannot run {self.describe()} on {pix_fmt} "
                             f"{width}×{height} frames: {exc}") from None
        self._graph = graph
        self._ended = False

    def describe(self) -> str:
        """The chain as FFmpeg writes it: ``bwdif=mode=send_field,setsar=1``."""
        return ",".join(f"{name}={args}" if args else name for name, args in self.chain) or "null"

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Filter one frame; returns the frames now ready (none while a filter waits for the
        next frame, two for a deinterlacer in field mode)."""
        try:
            self._graph.vpush(frame)
        except av.error.FFmpegError as exc:
            raise InputError(f"libavfilter ({self.describe()}) refused a frame: {exc}") from None
        return self._pull()

    def flush(self) -> list[av.VideoFrame]:
        """The stream ended: the frames the filters still held."""
        if self._ended:
            return []
        self._ended = True
        self._graph.vpush(None)
        return self._pull()

    def _pull(self) -> list[av.VideoFrame]:
        out = []
        while True:
            try:
                out.append(self._graph.vpull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return out


def frame_filter(chain: Sequence[tuple[str, str]], frame: av.VideoFrame, *, time_base: Fraction,
                 sample_aspect_ratio: Fraction = Fraction(1)) -> FrameFilter:
    """A ``FrameFilter`` for frames like ``frame`` (size, pixel format, colour tags), made
    when the first frame is decoded (the decoder, not the header, has the last word)."""
    return FrameFilter(chain, width=frame.width, height=frame.height, pix_fmt=frame.format.name,
                       time_base=time_base, sample_aspect_ratio=sample_aspect_ratio,
                       colorspace=int(frame.colorspace or 2), color_range=int(frame.color_range or 0))
