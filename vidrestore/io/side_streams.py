"""Audio and subtitle streams carried from the input into the output.

Each stream is copied packet for packet when the output container accepts its codec, and
otherwise re-encoded: audio to AAC (Opus for WebM, which takes no AAC), text subtitles to
the container's text format (``mov_text`` for MP4/MOV, SubRip for Matroska, WebVTT for
WebM). Bitmap subtitles that the container cannot hold, and data streams, are left out with
a note; a damaged packet the muxer refuses is dropped and counted.

The input is opened a second time just for these streams, and ``pump(until)`` muxes their
packets up to the video's current time, so audio stays interleaved with video without
buffering anything but one packet.

A restored segment (``--start``) calls ``start_at(t0)`` with the source time of the first
video frame kept: the second input seeks there, packets that start before it are left out
(a subtitle still on screen is kept from ``t0`` on, shortened), and every timestamp is moved
back by ``t0``, so audio and subtitles keep their exact place against the video, which
starts at 0. Audio packets are copied whole, so the audio starts at the first packet at or
after ``t0`` (within one packet, ~21 ms for AAC at 48 kHz).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av

from .atomic import DISK_ERRNOS
from .probe import open_input

ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    b"BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
    b"Effect, Text\n"
)
"""A minimal ASS header: FFmpeg's text subtitle encoders refuse to open without one."""

_TOLERANCE = 1e-4  # seconds: a packet this close before the segment's start counts as at it
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"}
_SUBTITLE_ENCODER = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}


@dataclass
class _Route:
    out: av.stream.Stream
    mode: str  # "copy" or "encode"
    resampler: av.AudioResampler | None = None


class SideStreams:
    """Copies or re-encodes the input's audio and subtitle streams into ``output``.

    Args:
        source: the input file.
        output: the output container, before anything was muxed into it.
        log: receives one line per stream that is re-encoded or dropped.
    """

    def __init__(
        self,
        source: str | Path,
        output: av.container.OutputContainer,
        *,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._input = open_input(source)
        self._output = output
        self._log = log
        self._routes: dict[int, _Route] = {}
        self._dropped: dict[int, int] = {}  # input stream index → damaged packets left out
        for stream in self._input.streams:
            route = self._plan(stream)
            if route is not None:
                self._routes[stream.index] = route
        self._packets: Iterator[av.Packet] | None = None
        self._held: tuple[av.Packet, float] | None = None  # the next packet and its time
        self._start = 0.0
        if self._routes:
            self._packets = self._demux()

    def _demux(self) -> Iterator[av.Packet]:
        return iter(self._input.demux([self._input.streams[i] for i in self._routes]))

    def start_at(self, t0: float) -> None:
        """Carry the streams from ``t0`` seconds (source time) on, moved back to start at 0
        (see the module doc). Call before the first ``pump``."""
        self._start = float(t0)
        if self._packets is None or t0 <= 0:
            return
        try:
            self._input.seek(int(t0 * av.time_base), backward=True)
        except av.error.FFmpegError:
            pass  # not seekable: the packets before t0 are read and left out
        self._packets = self._demux()
        self._held = None

    @property
    def summary(self) -> list[str]:
        """One entry per carried stream: ``audio aac (copy)``..."""
        return [
            f"{r.out.type} {r.out.codec_context.name} ({r.mode})" for r in self._routes.values()
        ]

    def pump(self, until: float | None) -> None:
        """Mux every packet that starts at or before ``until`` seconds (None: all the rest)."""
        if self._packets is None:
            return
        while True:
            held, self._held = self._held, None
            if held is not None:
                packet, t = held
            else:
                try:
                    packet = next(self._packets, None)
                except av.error.FFmpegError as exc:  # a damaged tail: end the side streams here
                    self._log(f"audio / subtitles end early: the input is damaged ({exc})")
                    packet = None
                except IndexError:  # PyAV's final flush when streams appeared mid-file: all read
                    packet = None
                if packet is None:
                    self._finish()
                    self._packets = None
                    return
                if packet.dts is None and packet.pts is None:
                    continue  # FFmpeg's flush packets
                t = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base) - self._start
                if self._start and not self._shift(packet, t):
                    continue
                t = max(t, 0.0)
            if until is not None and t > until:
                self._held = (packet, t)
                return
            self._route(packet)

    def _shift(self, packet: av.Packet, t: float) -> bool:
        """Move a packet back by the segment's start; False if it lies before it (a subtitle
        still showing at the start is kept, from 0, shortened)."""
        tb = packet.time_base
        offset = int(round(self._start / tb))
        if t < -_TOLERANCE:
            end = t + float((packet.duration or 0) * tb)
            if packet.stream.type != "subtitle" or end <= _TOLERANCE:
                return False
            cut = -int(round(t / tb))
            packet.duration = max(int(packet.duration) - cut, 1)
            packet.pts = packet.dts = offset
        if packet.pts is not None:
            packet.pts = max(packet.pts - offset, 0)
        if packet.dts is not None:
            packet.dts = max(packet.dts - offset, 0)
        return True

    def end(self, at: float | None = None) -> None:
        """Mux what is left up to ``at`` seconds (None: everything) and flush the encoders."""
        if at is None or self._packets is None:
            self.pump(None)
            return
        self.pump(at)
        self._finish()
        self._packets = None

    def close(self) -> None:
        """Release the second input handle (muxing is over or abandoned)."""
        self._input.close()

    # -- planning ----------------------------------------------------------------------

    def _plan(self, stream) -> _Route | None:
        if stream.type not in ("audio", "subtitle"):
            if stream.type != "video" and stream.type != "attachment":
                self._log(f"left out {stream.type} stream #{stream.index} ({_codec_name(stream)})")
            return None
        if stream.codec_context is None:  # a damaged header: FFmpeg knows no codec for it
            self._log(f"left out {stream.type} stream #{stream.index} (its codec is unknown)")
            return None
        if muxer_accepts(self._output.format.name, stream):
            out = self._output.add_stream_from_template(stream)
            _copy_metadata(stream, out)
            return _Route(out, "copy")
        if stream.type == "audio":
            return self._plan_audio(stream)
        return self._plan_text_subtitles(stream)

    def _plan_audio(self, stream) -> _Route:
        ctx = stream.codec_context
        encoder = "aac" if "aac" in self._output.supported_codecs else "libopus"
        rates, layouts, sample_format = _AUDIO_ENCODERS[encoder]
        rate = ctx.sample_rate if ctx.sample_rate in rates else 48000
        out = self._output.add_stream(encoder, rate=rate)
        named = ctx.layout.name if ctx.layout else ""
        if named in layouts:
            layout = named
        else:
            layout = "mono" if ctx.channels == 1 else "stereo"
        out.layout = layout
        out.bit_rate = 192_000 if ctx.channels >= 2 else 128_000
        _copy_metadata(stream, out)
        self._log(f"re-encoding audio stream #{stream.index} ({ctx.name}) to {out.codec_context.name}: "
                  f"{self._output.format.name} cannot hold {ctx.name}")
        return _Route(out, "encode", av.AudioResampler(format=sample_format, layout=layout, rate=rate))

    def _plan_text_subtitles(self, stream) -> _Route | None:
        name = stream.codec_context.name
        target = _SUBTITLE_ENCODER.get(self._output.format.name.split(",")[0])
        if name not in _TEXT_SUBTITLES or target is None or target not in self._output.supported_codecs:
            self._log(f"left out subtitle stream #{stream.index} ({name}): "
                      f"{self._output.format.name} cannot hold it")
            return None
        out = self._output.add_stream(target)
        out.codec_context.time_base = out.time_base = Fraction(1, 1000)
        out.codec_context.subtitle_header = stream.codec_context.subtitle_header or ASS_HEADER
        _copy_metadata(stream, out)
        self._log(f"converting subtitle stream #{stream.index} from {name} to {target}")
        return _Route(out, "encode")

    # -- muxing ------------------------------------------------------------------------

    def _route(self, packet: av.Packet) -> None:
        """Mux one input packet; a damaged one (timestamps going back, undecodable) is
        dropped and counted instead of failing the whole output."""
        index = packet.stream.index
        try:
            self._route_packet(packet, self._routes[index])
        except av.error.FFmpegError as exc:
            if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                raise  # the output's disk, not this packet (the writer says so)
            self._dropped[index] = self._dropped.get(index, 0) + 1

    def _route_packet(self, packet: av.Packet, route: _Route) -> None:
        if route.mode == "copy":
            packet.stream = route.out
            self._output.mux(packet)
        elif route.out.type == "audio":
            for frame in packet.decode():
                for converted in route.resampler.resample(frame):
                    self._output.mux(route.out.encode(converted))
        else:
            self._encode_subtitle(packet, route)

    def _encode_subtitle(self, packet: av.Packet, route: _Route) -> None:
        from av.subtitles.subtitle import SubtitleSet

        start = packet.pts if packet.pts is not None else packet.dts
        duration_ms = int(round((packet.duration or 0) * packet.time_base * 1000))
        for rect in packet.decode():
            event = getattr(rect, "ass", None)
            if not event:
                continue  # a bitmap or empty cue
            cue = SubtitleSet.create(text=bytes(event), start=0, end=duration_ms)
            encoded = route.out.codec_context.encode_subtitle(cue)
            encoded.stream = route.out
            encoded.time_base = Fraction(1, 1000)
            encoded.pts = encoded.dts = int(round(start * packet.time_base * 1000))
            encoded.duration = duration_ms
            self._output.mux(encoded)

    def _finish(self) -> None:
        for index, count in self._dropped.items():
            self._log(f"dropped {count} damaged packet(s) of {self._input.streams[index].type} "
                      f"stream #{index}")
        for route in self._routes.values():
            if route.mode == "encode" and route.out.type == "audio":
                for frame in route.resampler.resample(None):
                    self._output.mux(route.out.encode(frame))
                self._output.mux(route.out.encode(None))


def muxer_accepts(format_name: str, stream) -> bool:
    """Whether a container format takes ``stream`` as it is (packets copied, no re-encode).

    ``supported_codecs`` is not the whole truth (MOV lists FLAC and Opus, then refuses them
    when writing its header), so the header is written once into memory to find out.
    """
    codec = stream.codec_context.name
    base = format_name.split(",")[0]
    if base == "mp4" and codec.startswith("pcm_"):
        return False  # header passes, packets fail on channel layouts
    buffer = io.BytesIO()
    try:
        with av.logging.Capture(), av.open(buffer, "w", format=base) as probe:
            if codec not in probe.supported_codecs:
                return False
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


# Encoder → (sample rates, channel layouts it takes as they are, sample format).
_AUDIO_ENCODERS = {
    "aac": ({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000},
            {"mono", "stereo", "2.1", "3.0", "4.0", "5.0", "5.1", "5.0(side)", "5.1(side)", "6.1",
             "7.1", "7.1(wide)"}, "fltp"),
    "libopus": ({48000, 24000, 16000, 12000, 8000}, {"mono", "stereo", "5.1", "5.1(side)", "7.1"}, "flt"),
}


def _codec_name(stream) -> str:
    return stream.codec_context.name if stream.codec_context is not None else "unknown codec"


def _copy_metadata(src, dst) -> None:
    for key, value in src.metadata.items():
        if key.lower() not in ("encoder", "duration", "handler_name", "vendor_id"):
            dst.metadata[key] = value
    if src.language:
        dst.metadata["language"] = src.language
    dst.disposition = src.disposition
