"""Damaged and hostile video files, made on purpose, for the fuzz harness and its tests.

Every kind of damage old captures and half-copied files show, each a function
``(data, container, rng) -> (data, detail)`` on a file's bytes:

- ``header_bits`` / ``payload_bits``: bit flips in the container's header (MP4 ``moov``,
  Matroska before the first cluster, AVI ``hdrl``, MPEG-TS PAT/PMT packets) or its payload;
- ``zeroed``: a range of zero bytes; ``truncated``: the end cut off; ``cut_head``: the start
  cut off; ``swapped`` / ``duplicated``: chunks of the file swapped, or repeated elsewhere;
- ``absurd_length``: a box / element / chunk / PES length field set to a huge (or zero)
  value; ``absurd_dimensions``: the frame size the container declares set to 0 or 65535;
- ``rate_field``: the time scale or frame duration fields set to 0 or to huge values (zero
  and huge frame rates), MPEG-TS timestamps all equal or far apart;
- ``rotation_matrix``: the MP4 track's display matrix set to garbage (odd angles, shears,
  zeros).

and, made by remuxing a clean file (``testkit.hostile``): tags that are not valid UTF-8,
odd display rotations, and thousands of streams. ``KINDS`` lists them all.
"""

from __future__ import annotations

import random
import struct
from typing import Callable

from . import containers as c

Damage = Callable[[bytes, str, random.Random], tuple[bytes, str]]


def regions(data: bytes, container: str) -> tuple[list[range], list[range]]:
    """(header ranges, payload ranges) of a file: where its structure is, where its media is."""
    header: list[range] = []
    payload: list[range] = []
    if container in ("mp4", "mov"):
        for box in c.mp4_boxes(data):
            if box.kind in (b"moov", b"ftyp"):
                header.append(range(box.offset, box.offset + box.size))
            elif box.kind == b"mdat":
                payload.append(range(box.body, box.offset + box.size))
    elif container in ("mkv", "webm"):
        clusters = [e for e in c.ebml_elements(data) if e.ident == c.CLUSTER]
        first = clusters[0].offset if clusters else min(len(data), 4096)
        header.append(range(0, first))
        payload.append(range(first, len(data)))
    elif container == "avi":
        for chunk in c.riff_chunks(data):
            if chunk.fourcc == b"hdrl":
                header.append(range(chunk.offset, chunk.data + chunk.size - 4))
            elif chunk.fourcc == b"movi":
                payload.append(range(chunk.data, chunk.data + chunk.size - 4))
    elif container == "ts":
        tables = c.ts_table_pids(data)
        for pos, pid, _ in c.ts_packets(data):
            (header if pid in tables else payload).append(range(pos, pos + c.TS_PACKET))
    header = [r for r in header if len(r)] or [range(0, min(len(data), max(64, len(data) // 10)))]
    payload = [r for r in payload if len(r)] or [range(header[-1].stop, len(data))]
    return header, payload


def _position(ranges: list[range], rng: random.Random) -> int:
    ranges = [r for r in ranges if len(r)]
    total = sum(len(r) for r in ranges)
    pick = rng.randrange(total)
    for r in ranges:
        if pick < len(r):
            return r.start + pick
        pick -= len(r)
    raise AssertionError("unreachable")


def _flip(data: bytes, ranges: list[range], rng: random.Random, most: int) -> tuple[bytes, str]:
    out = bytearray(data)
    count = rng.randint(1, most)
    spots = []
    for _ in range(count):
        pos = _position(ranges, rng)
        out[pos] ^= 1 << rng.randrange(8)
        spots.append(pos)
    return bytes(out), f"{count} bits at {sorted(spots)[:4]}{'...' if count > 4 else ''}"


def header_bits(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    return _flip(data, regions(data, container)[0], rng, 16)


def payload_bits(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    return _flip(data, regions(data, container)[1], rng, 64)


def _length(data: bytes, rng: random.Random, most: float = 0.2) -> int:
    return max(1, min(int(len(data) * most), int(2 ** rng.uniform(4, 16))))


def zeroed(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    length = _length(data, rng)
    start = rng.randrange(0, max(1, len(data) - length))
    return data[:start] + bytes(length) + data[start + length:], f"{length} bytes at {start}"


def truncated(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    keep = rng.randrange(0, 512) if rng.random() < 0.15 else int(len(data) * rng.uniform(0.05, 0.98))
    return data[:keep], f"kept {keep} of {len(data)} bytes"


def cut_head(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randint(1, 64) if rng.random() < 0.3 else int(len(data) * rng.uniform(0.01, 0.6))
    return data[cut:], f"first {cut} bytes cut"


def swapped(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    length = min(_length(data, rng, 0.15), len(data) // 3)
    a = rng.randrange(0, len(data) - 2 * length)
    b = rng.randrange(a + length, len(data) - length + 1)
    out = data[:a] + data[b:b + length] + data[a + length:b] + data[a:a + length] + data[b + length:]
    return out, f"{length} bytes at {a} and {b} swapped"


def duplicated(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    length = _length(data, rng, 0.3)
    start = rng.randrange(0, max(1, len(data) - length))
    at = rng.randrange(0, len(data))
    return data[:at] + data[start:start + length] + data[at:], f"{length} bytes from {start} repeated at {at}"


_HUGE32 = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0)


def absurd_length(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    fields: list[tuple[int, int]] = []  # (offset, width)
    if container in ("mp4", "mov"):
        fields = [(b.offset, 4) for b in c.mp4_boxes(data)]
    elif container in ("mkv", "webm"):
        fields = [(e.size_at, e.size_width) for e in c.ebml_elements(data)]
    elif container == "avi":
        fields = [(ch.offset + 4, 4) for ch in c.riff_chunks(data)]
    elif container == "ts":
        fields = [(pes + 4, 2) for pes in c.ts_pes_starts(data)]
    if not fields:
        return zeroed(data, container, rng)
    offset, width = rng.choice(fields)
    if container in ("mkv", "webm"):
        value = rng.choice([(1 << (8 * width)) - 2, (1 << (8 * width - width)) | 1])
        out[offset:offset + width] = value.to_bytes(width, "big")  # keeps the width marker bit
    elif width == 2:
        out[offset:offset + 2] = rng.choice([b"\xff\xff", b"\x00\x01"])
    else:
        value = rng.choice(_HUGE32)
        out[offset:offset + 4] = struct.pack("<I" if container == "avi" else ">I", value)
    return bytes(out), f"length field at {offset} set to a huge or zero value"


def absurd_dimensions(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    value = rng.choice([0, 1, 65535, 32768])
    spots = []
    if container in ("mp4", "mov"):
        for box in c.mp4_boxes(data):
            if box.kind == b"tkhd":  # 16.16 fixed-point width, height: the last 8 bytes
                end = box.offset + box.size
                out[end - 8:end] = struct.pack(">II", value << 16, value << 16)
                spots.append(end - 8)
            elif box.kind == b"stsd" and box.body + 48 <= len(data):
                entry = box.body + 8  # version/flags, entry count; then the sample entry
                out[entry + 32:entry + 36] = struct.pack(">HH", value, value)  # width, height
                spots.append(entry + 32)
    elif container in ("mkv", "webm"):
        for e in c.ebml_elements(data):
            if e.ident in (c.PIXEL_WIDTH, c.PIXEL_HEIGHT) and e.size:
                out[e.data:e.data + e.size] = min(value, (1 << (8 * e.size)) - 1).to_bytes(e.size, "big")
                spots.append(e.data)
    elif container == "avi":
        for ch in c.riff_chunks(data):
            if ch.fourcc == b"avih":  # dwWidth, dwHeight at 32, 36
                out[ch.data + 32:ch.data + 40] = struct.pack("<II", value, value)
                spots.append(ch.data + 32)
            elif ch.fourcc == b"strf" and ch.size >= 40:  # BITMAPINFOHEADER biWidth, biHeight
                out[ch.data + 4:ch.data + 12] = struct.pack("<ii", value, -value if rng.random() < 0.3 else value)
                spots.append(ch.data + 4)
    # MPEG-1/2 sequence headers (TS, and any stream that carries them): 12-bit width, height
    pos = data.find(b"\x00\x00\x01\xb3")
    while pos != -1 and len(spots) < 64:
        v = min(value, 4095)
        out[pos + 4:pos + 7] = bytes([v >> 4, ((v & 0xF) << 4) | (v >> 8), v & 0xFF])
        spots.append(pos + 4)
        pos = data.find(b"\x00\x00\x01\xb3", pos + 4)
    if not spots:
        return absurd_length(data, container, rng)
    return bytes(out), f"declared frame size {value}x{value} at {spots[:4]}"


def _pts_bytes(prefix: int, value: int) -> bytes:
    value &= (1 << 33) - 1
    return bytes([(prefix << 4) | ((value >> 29) & 0x0E) | 1, (value >> 22) & 0xFF,
                  ((value >> 14) & 0xFE) | 1, (value >> 7) & 0xFF, ((value << 1) & 0xFE) | 1])


def rate_field(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    zero = rng.random() < 0.5
    what = "zero" if zero else "huge"
    spots = []
    if container in ("mp4", "mov"):
        for box in c.mp4_boxes(data):
            if box.kind in (b"mdhd", b"mvhd"):
                at = box.body + (20 if data[box.body] == 1 else 12)
                out[at:at + 4] = struct.pack(">I", 0 if zero else 0xFFFFFFFF)
                spots.append(at)
            elif box.kind == b"stts":
                count = struct.unpack(">I", data[box.body + 4:box.body + 8])[0]
                for i in range(min(count, 64)):
                    at = box.body + 8 + 8 * i + 4
                    out[at:at + 4] = struct.pack(">I", 0 if zero else 0x7FFFFFFF)
                    spots.append(at)
    elif container in ("mkv", "webm"):
        for e in c.ebml_elements(data):
            if e.ident in (c.DEFAULT_DURATION, c.TIMESTAMP_SCALE) and e.size:
                out[e.data:e.data + e.size] = (0 if zero else (1 << (8 * e.size)) - 1).to_bytes(e.size, "big")
                spots.append(e.data)
    elif container == "avi":
        for ch in c.riff_chunks(data):
            if ch.fourcc == b"avih":
                out[ch.data:ch.data + 4] = struct.pack("<I", 0 if zero else 0xFFFFFFFF)
                spots.append(ch.data)
            elif ch.fourcc == b"strh" and data[ch.data:ch.data + 4] == b"vids":  # dwScale, dwRate
                out[ch.data + 20:ch.data + 28] = struct.pack("<II", 1 if not zero else 0, 0 if zero else 0xFFFFFFFF)
                spots.append(ch.data + 20)
    elif container == "ts":
        for i, pes in enumerate(c.ts_pes_starts(data)):
            if data[pes + 7] & 0x80:  # a PTS follows at +9
                value = 900000 if zero else i * 90000 * 3600
                out[pes + 9:pes + 14] = _pts_bytes(data[pes + 9] >> 4, value)
                if data[pes + 7] & 0x40:
                    out[pes + 14:pes + 19] = _pts_bytes(data[pes + 14] >> 4, value)
                spots.append(pes + 9)
    if not spots:
        return zeroed(data, container, rng)
    return bytes(out), f"{what} frame rate: {len(spots)} timing fields"


def rotation_matrix(data: bytes, container: str, rng: random.Random) -> tuple[bytes, str]:
    if container not in ("mp4", "mov"):
        return header_bits(data, container, rng)
    out = bytearray(data)
    choice = rng.choice(["random", "zeros", "37 degrees", "shear"])
    if choice == "random":
        matrix = bytes(rng.randrange(256) for _ in range(36))
    elif choice == "zeros":
        matrix = bytes(36)
    else:
        import math

        a = math.radians(37) if choice == "37 degrees" else 0.0
        fixed = lambda v: int(v * 65536) & 0xFFFFFFFF  # noqa: E731 - 16.16
        shear = 0.7 if choice == "shear" else 0.0
        matrix = struct.pack(">9I", fixed(math.cos(a)), fixed(math.sin(a) + shear), 0,
                             fixed(-math.sin(a)), fixed(math.cos(a)), 0, 0, 0, 1 << 30)
    spots = []
    for box in c.mp4_boxes(data):
        if box.kind == b"tkhd":
            at = box.body + (52 if data[box.body] == 1 else 40)
            out[at:at + 36] = matrix
            spots.append(at)
    if not spots:
        return header_bits(data, container, rng)
    return bytes(out), f"display matrix: {choice}"


BYTE_DAMAGES: dict[str, Damage] = {
    "header_bits": header_bits, "payload_bits": payload_bits, "zeroed": zeroed, "truncated": truncated,
    "cut_head": cut_head, "swapped": swapped, "duplicated": duplicated, "absurd_length": absurd_length,
    "absurd_dimensions": absurd_dimensions, "rate_field": rate_field, "rotation_matrix": rotation_matrix,
}
"""Damages done to a file's bytes."""

REMUX_DAMAGES = ("non_utf8_tags", "odd_rotation", "many_streams", "thousands_of_streams")
"""Hostile files made by remuxing a clean one (``testkit.hostile``)."""

KINDS = tuple(BYTE_DAMAGES) + REMUX_DAMAGES
"""Every kind of damage, in the order the fuzz harness cycles through them."""

__all__ = ["BYTE_DAMAGES", "KINDS", "REMUX_DAMAGES", "regions", *BYTE_DAMAGES]
