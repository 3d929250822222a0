"""Just enough of five container formats' structure to damage them where it hurts.

Each parser walks a file's bytes and lists its structural fields: where its header ends and
its payload begins, where its length fields are, where frame sizes, time scales and display
matrices sit. Only what ``testkit.damage`` needs, and tolerant: a parser stops quietly at
bytes it cannot read (the file may already be damaged). The layouts are those of ISO/IEC
14496-12 (MP4 / QuickTime boxes), the Matroska / EBML specification (RFC 8794 and
matroska.org's element table), Microsoft's RIFF / AVI headers and ISO/IEC 13818-1 (MPEG-TS
packets, PES headers).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

# -- ISO base media (MP4, MOV) --------------------------------------------------------------

MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex",
                  b"ilst", b"meta"}


@dataclass(frozen=True)
class Box:
    """An MP4 box: where it starts, its size field's width, its type, where its body starts."""

    offset: int
    size: int
    kind: bytes
    body: int
    size_width: int  # 4, or 8 for a 64-bit "largesize"


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Iterator[Box]:
    """Every box of ``data[start:end]``, descending into the boxes that hold boxes."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end and depth < 8:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, width = pos + 8, 4
        if size == 1 and pos + 16 <= end:
            size, body, width = struct.unpack(">Q", data[pos + 8:pos + 16])[0], pos + 16, 8
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end or not kind.isalnum() and kind[:1] != b"\xa9":
            return
        yield Box(pos, size, kind, body, width)
        if kind in MP4_CONTAINERS:
            inner = body + (4 if kind == b"meta" else 0)  # meta is a full box: version + flags
            yield from mp4_boxes(data, inner, pos + size, depth + 1)
        pos += size


def mp4_find(data: bytes, kind: bytes) -> list[Box]:
    return [b for b in mp4_boxes(data) if b.kind == kind]


# -- Matroska / WebM (EBML) -----------------------------------------------------------------

EBML_MASTERS = {0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x1549A966, 0x1654AE6B, 0xAE, 0xE0,
                0xE1, 0x1254C367, 0x7373, 0x63C0, 0x67C8, 0x1C53BB6B, 0x1043A770, 0x1941A469}
"""Master elements descended into (EBML header, Segment, SeekHead, Seek, Info, Tracks,
TrackEntry, Video, Audio, Tags, Tag, Targets, SimpleTag, Cues, Chapters, Attachments);
Clusters are payload and are not entered."""

CLUSTER = 0x1F43B675
PIXEL_WIDTH, PIXEL_HEIGHT = 0xB0, 0xBA
DEFAULT_DURATION, TIMESTAMP_SCALE = 0x23E383, 0x2AD7B1


@dataclass(frozen=True)
class Element:
    """An EBML element: its id, where its size field is (and how wide), where its data is."""

    offset: int
    ident: int
    size_at: int
    size_width: int
    size: int
    data: int


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    if pos >= len(data) or data[pos] == 0:
        return None
    width = 8 - data[pos].bit_length() + 1
    if pos + width > len(data):
        return None
    value = int.from_bytes(data[pos:pos + width], "big")
    if not keep_marker:
        value &= (1 << (7 * width)) - 1
    return value, width


def ebml_elements(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Iterator[Element]:
    """Every element of ``data[start:end]``, descending into ``EBML_MASTERS``."""
    end = len(data) if end is None else end
    pos = start
    while pos < end and depth < 8:
        ident = _vint(data, pos, keep_marker=True)
        if ident is None:
            return
        size = _vint(data, pos + ident[1], keep_marker=False)
        if size is None:
            return
        data_at = pos + ident[1] + size[1]
        length = size[0]
        if length == (1 << (7 * size[1])) - 1:  # "unknown size": to the end of the parent
            length = end - data_at
        if data_at + length > end:
            length = end - data_at
        yield Element(pos, ident[0], pos + ident[1], size[1], length, data_at)
        if ident[0] in EBML_MASTERS:
            yield from ebml_elements(data, data_at, data_at + length, depth + 1)
        pos = data_at + length


# -- RIFF (AVI) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """A RIFF chunk: its four-character code (a LIST's list type), size field and data."""

    offset: int
    fourcc: bytes
    size: int
    data: int


def riff_chunks(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Iterator[Chunk]:
    """Every chunk, descending into RIFF and LIST chunks."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end and depth < 6:
        fourcc, size = struct.unpack("<4sI", data[pos:pos + 8])
        if pos + 8 + size > end:
            size = end - pos - 8
        if fourcc in (b"RIFF", b"LIST") and size >= 4:
            kind = data[pos + 8:pos + 12]
            yield Chunk(pos, kind, size, pos + 12)
            if kind != b"movi":  # the payload
                yield from riff_chunks(data, pos + 12, pos + 8 + size, depth + 1)
        else:
            yield Chunk(pos, fourcc, size, pos + 8)
        pos += 8 + size + (size & 1)


# -- MPEG transport stream -------------------------------------------------------------------

TS_PACKET = 188


def ts_packets(data: bytes) -> Iterator[tuple[int, int, bool]]:
    """(offset, PID, payload unit start) of every 188-byte packet that starts with 0x47."""
    for pos in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
        if data[pos] != 0x47:
            continue
        pid = ((data[pos + 1] & 0x1F) << 8) | data[pos + 2]
        yield pos, pid, bool(data[pos + 1] & 0x40)


def ts_table_pids(data: bytes) -> set[int]:
    """The PIDs of the PAT (0) and of every PMT the PAT names."""
    pids = {0}
    for pos, pid, start in ts_packets(data):
        if pid == 0 and start:
            body = pos + 4 + 1 + data[pos + 4]  # adaptation field assumed absent; skip pointer
            length = ((data[body + 1] & 0x0F) << 8) | data[body + 2]
            for entry in range(body + 8, min(body + 3 + length - 4, pos + TS_PACKET - 4), 4):
                number = (data[entry] << 8) | data[entry + 1]
                if number:
                    pids.add(((data[entry + 2] & 0x1F) << 8) | data[entry + 3])
            break
    return pids


def ts_pes_starts(data: bytes) -> Iterator[int]:
    """Offsets of PES headers (``00 00 01 <stream id>``) at the start of packets' payloads."""
    tables = ts_table_pids(data)
    for pos, pid, start in ts_packets(data):
        if not start or pid in tables:
            continue
        body = pos + 4
        if data[pos + 3] & 0x20:  # adaptation field
            body += 1 + data[body]
        if body + 14 <= pos + TS_PACKET and data[body:body + 3] == b"\x00\x00\x01":
            yield body


__all__ = ["Box", "Chunk", "Element", "TS_PACKET", "ebml_elements", "mp4_boxes", "mp4_find", "riff_chunks",
           "ts_packets", "ts_pes_starts", "ts_table_pids"]
