"""Clean sources in every container the reader accepts, and hostile files remuxed from them.

Sources: a generated clip (``testkit.media``: scikit-image's astronaut moving over a
background, with a tone and, where the container takes them, subtitles) encoded for each
container, and the first seconds of iscc-samples' concert video (``demo.*``, shipped in
several containers by the ``iscc-samples`` package) copied packet for packet, so real
encoders' bitstreams are in the mix.

Hostile files (packet-copy remuxes of a source): ``non_utf8_tags`` (container, stream and,
for MPEG-TS, service tags whose bytes are then replaced by invalid UTF-8), ``odd_rotation``
(display matrices of odd or absurd angles where the container stores one, a garbage
``rotate`` tag elsewhere), ``many_streams`` (hundreds to thousands of extra audio or
subtitle streams, as many as FFmpeg writes), ``thousands_of_streams`` (an MP4 or
Matroska track repeated thousands of times, byte for byte).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from . import containers as c
from .media import AudioSpec, face_clip_frames, write_video

CONTAINERS = ("mp4", "mov", "mkv", "webm", "avi", "ts")
EXTENSIONS = {"mp4": ".mp4", "mov": ".mov", "mkv": ".mkv", "webm": ".webm", "avi": ".avi", "ts": ".ts"}
FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi", "ts": "mpegts"}

_GENERATED = {  # container → (video codec, audio codec, subtitles)
    "mp4": ("libx264", "aac", True), "mov": ("libx264", "aac", True), "mkv": ("libx264", "flac", True),
    "webm": ("libvpx-vp9", "libopus", False), "avi": ("mpeg4", "libmp3lame", False), "ts": ("libx264", "mp2", False),
}
_DEMO = {"mp4": "demo.mp4", "mov": "demo.mov", "mkv": "demo.mkv", "webm": "demo.webm", "avi": "demo.avi",
         "ts": "demo.vob"}  # MPEG-2 video and MP2 audio from the DVD file, into a transport stream


@dataclass(frozen=True)
class Source:
    """A clean input: its file, container (a ``CONTAINERS`` name) and where it came from."""

    path: Path
    container: str
    origin: str  # "generated" or "iscc demo"

    @property
    def name(self) -> str:
        return self.path.stem


def demo_folder() -> Path:
    """iscc-samples' video folder."""
    import iscc_samples

    return Path(iscc_samples.__file__).parent / "files" / "video"


def make_sources(folder: Path, *, seconds: float = 1.0) -> list[Source]:
    """A generated clip and the concert video's first ``seconds`` in each container."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    frames = max(2, int(round(24 * seconds)))
    for container in CONTAINERS:
        video, audio, subs = _GENERATED[container]
        path = folder / f"generated{EXTENSIONS[container]}"
        if not path.exists():
            write_video(path, face_clip_frames(frames, 160, 120, face_size=64, seed=1), fps=24, codec=video,
                        audio=AudioSpec(seconds, codec=audio), metadata={"title": "generated clip"},
                        subtitles=[(0.1, 0.6, "a subtitle")] if subs else ())
        sources.append(Source(path, container, "generated"))
    for container in CONTAINERS:
        path = folder / f"demo{EXTENSIONS[container]}"
        if not path.exists():  # the DVD file's frames start late: twice as long a cut
            remux(demo_folder() / _DEMO[container], path, container,
                  seconds=2 * seconds if container == "ts" else seconds)
        sources.append(Source(path, container, "iscc demo"))
    return sources


def remux(src: Path, dst: Path, container: str, *, seconds: float | None = None,
          metadata: dict | None = None, stream_metadata: dict | None = None,
          rotation: float | None = None, copies: int = 0) -> None:
    """Copy ``src``'s video, audio and subtitle packets into ``dst`` (format ``container``):
    its first ``seconds``, with extra tags, a display rotation, and ``copies`` extra streams
    (copies of its audio or subtitle stream, one packet each)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=FORMATS[container]) as out:
        out.metadata.update(metadata or {})
        routes = {}
        for stream in inp.streams:
            if stream.type in ("video", "audio", "subtitle"):
                routes[stream.index] = out.add_stream_from_template(stream)
                if stream.type == "video":
                    routes[stream.index].metadata.update(stream_metadata or {})
                    if rotation is not None:
                        routes[stream.index].set_display_rotation(rotation)
        template = next((s for s in inp.streams if s.type == "audio"), None) or next(
            (s for s in inp.streams if s.type == "subtitle"), None)
        extra = [out.add_stream_from_template(template) for _ in range(copies)] if template else []
        first = None  # (payload, pts, dts, time base) of the template's first packet
        for packet in inp.demux(list(inp.streams)):
            if packet.stream.index not in routes or (packet.dts is None and packet.pts is None):
                continue  # not carried, or a demuxer's flush packet
            at = packet.dts if packet.dts is not None else packet.pts  # Matroska may give no dts
            if seconds is not None and at * packet.time_base > seconds:
                break  # a prefix in decoding order: timestamps stay as the muxer wants them
            if first is None and template is not None and packet.stream.index == template.index:
                first = (bytes(packet), packet.pts, packet.dts, packet.time_base)
            packet.stream = routes[packet.stream.index]
            try:
                out.mux(packet)
            except av.error.FFmpegError:  # timestamps the muxer's time base made equal
                continue
        for stream in extra if first is not None else ():
            copy = av.Packet(first[0])  # a muxed packet is consumed: a new one per stream
            copy.pts, copy.dts, copy.time_base = first[1], first[2], first[3]
            copy.stream = stream
            out.mux(copy)


def _placeholder(rng: random.Random) -> str:
    return "VRFUZZ" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(14))


def _not_utf8(length: int, rng: random.Random) -> bytes:
    pool = [b"\xff", b"\xfe", b"\xc0", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28", b"\x80", b"\xed\xa0\x80"]
    out = b""
    while len(out) < length:
        out += rng.choice(pool)
    return out[:length]


def non_utf8_tags(source: Source, dst: Path, rng: random.Random) -> str:
    tags = {key: _placeholder(rng) for key in ("title", "comment", "artist")}
    if source.container == "ts":
        tags.update(service_name=_placeholder(rng), service_provider=_placeholder(rng))
    stream_tags = {"title": _placeholder(rng), "language": "eng"}
    remux(source.path, dst, source.container, metadata=tags, stream_metadata=stream_tags)
    data = dst.read_bytes()
    found = 0
    for value in [*tags.values(), stream_tags["title"]]:
        marker = value.encode()
        found += data.count(marker)
        data = data.replace(marker, _not_utf8(len(marker), rng))
    dst.write_bytes(data)
    return f"{found} tags made invalid UTF-8"


def odd_rotation(source: Source, dst: Path, rng: random.Random) -> str:
    angle = rng.choice([37.0, -45.5, 91.0, 1087.0, 1e12, -0.001])
    if source.container in ("mp4", "mov", "mkv"):
        remux(source.path, dst, source.container, rotation=angle)
        return f"display rotation {angle}"
    tag = rng.choice([str(angle), "banana", "-2147483649", "90\x00"])
    remux(source.path, dst, source.container, stream_metadata={"rotate": tag}, metadata={"rotate": tag})
    return f"rotate tag {tag!r}"


def many_streams(source: Source, dst: Path, rng: random.Random, copies: int | None = None) -> str:
    """Hundreds of extra streams (PyAV writes at most FFmpeg's default of 1000 streams), or
    as many as the container's header holds (AVI, MPEG-TS hold fewer)."""
    copies = copies or rng.choice([300, 990])
    while True:
        try:
            remux(source.path, dst, source.container, copies=copies)
            return f"{copies} extra streams"
        except (av.error.FFmpegError, ValueError, OverflowError):
            if copies <= 50:
                raise
            copies //= 2


def thousands_of_streams(source: Source, dst: Path, rng: random.Random) -> str:
    """Thousands of tracks, beyond what FFmpeg's muxers write: the file's last track
    (MP4 ``trak``, Matroska ``TrackEntry``) repeated with new track numbers; MPEG-TS and
    AVI, whose headers cannot hold that many, get ``many_streams``' most instead."""
    copies = rng.choice([1500, 3000, 6000])
    data = source.path.read_bytes()
    if source.container in ("mp4", "mov"):
        out = _mp4_track_copies(data, copies)
    elif source.container in ("mkv", "webm"):
        out = _mkv_track_copies(data, copies)
    else:
        return many_streams(source, dst, rng, copies=990)
    dst.write_bytes(out)
    return f"{copies} extra tracks"


def _mp4_track_copies(data: bytes, copies: int) -> bytes:
    """``copies`` more copies of the last ``trak`` of a file whose ``moov`` is its last box."""
    moov = next(b for b in c.mp4_boxes(data) if b.kind == b"moov")
    traks = [b for b in c.mp4_boxes(data) if b.kind == b"trak"]
    last = traks[-1]
    tkhd = next(b for b in c.mp4_boxes(data, last.body, last.offset + last.size) if b.kind == b"tkhd")
    at = tkhd.body + (20 if data[tkhd.body] == 1 else 12) - last.offset  # track_ID within the trak
    trak = bytearray(data[last.offset:last.offset + last.size])
    added = bytearray()
    for i in range(copies):
        struct.pack_into(">I", trak, at, 1000 + i)
        added += trak
    body = data[moov.body:moov.offset + moov.size] + bytes(added)
    return data[:moov.offset] + struct.pack(">I4s", 8 + len(body), b"moov") + body


def _ebml_size(value: int) -> bytes:
    return bytes([0x01]) + value.to_bytes(7, "big")


def _ebml_uint(ident: bytes, value: int) -> bytes:
    return ident + bytes([0x84]) + value.to_bytes(4, "big")


def _mkv_track_copies(data: bytes, copies: int) -> bytes:
    """``copies`` more copies of the last ``TrackEntry``, the Segment made of unknown size."""
    elements = list(c.ebml_elements(data))
    segment = next(e for e in elements if e.ident == 0x18538067)
    tracks = next(e for e in elements if e.ident == 0x1654AE6B)
    entry = [e for e in elements if e.ident == 0xAE][-1]
    children = [e for e in c.ebml_elements(data, entry.data, entry.data + entry.size, depth=7)]
    kept = b"".join(data[e.offset:e.data + e.size] for e in children if e.ident not in (0xD7, 0x73C5))
    added = bytearray()
    for i in range(copies):
        body = _ebml_uint(b"\xd7", 1000 + i) + _ebml_uint(b"\x73\xc5", 7_000_000 + i) + kept
        added += b"\xae" + _ebml_size(len(body)) + body
    body = data[tracks.data:tracks.data + tracks.size] + bytes(added)
    out = bytearray(data[:tracks.offset] + b"\x16\x54\xae\x6b" + _ebml_size(len(body)) + body
                    + data[tracks.data + tracks.size:])
    width = segment.size_width  # "unknown size": the Segment's length changed
    out[segment.size_at:segment.size_at + width] = bytes([0xFF >> (width - 1)]) + b"\xff" * (width - 1)
    return bytes(out)


REMUXERS = {"non_utf8_tags": non_utf8_tags, "odd_rotation": odd_rotation, "many_streams": many_streams,
            "thousands_of_streams": thousands_of_streams}

__all__ = ["CONTAINERS", "EXTENSIONS", "REMUXERS", "Source", "demo_folder", "make_sources", "remux"]
