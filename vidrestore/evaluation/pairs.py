"""Pairing the frames of a restored video with those of its reference, by timestamp."""

from __future__ import annotations

from typing import Iterator

from vidrestore.errors import InputError
from vidrestore.io.frame import Frame
from vidrestore.io.probe import count_frames
from vidrestore.io.reader import VideoReader


def upright_size(reader: VideoReader) -> tuple[int, int]:
    """``(width, height)`` of a video's frames as decoded (rotation applied)."""
    info = reader.info
    return (info.height, info.width) if info.rotation % 180 else (info.width, info.height)


def check_compatible(restored: VideoReader, reference: VideoReader, limit: int | None = None) -> None:
    """InputError (one line) if the two videos differ in frame size, or in length (counted
    packet by packet, without decoding) unless ``limit`` cuts both short."""
    a, b = upright_size(restored), upright_size(reference)
    if a != b:
        raise InputError(f"the restored video is {a[0]}×{a[1]} but the reference is {b[0]}×{b[1]}: "
                         "compare videos of one size")
    na, nb = count_frames(restored.path), count_frames(reference.path)
    if na != nb and (limit is None or min(na, nb) < limit):
        raise InputError(f"the restored video has {na} frames but the reference has {nb} (frames are "
                         "matched by timestamp; use --max-frames N to compare the first N)")


def paired_frames(restored: VideoReader, reference: VideoReader, *, limit: int | None = None
                  ) -> Iterator[tuple[Frame, Frame]]:
    """``(restored, reference)`` frame pairs in order, matched by presentation time.

    Two frames match when their times differ by less than half the reference's frame
    duration. Raises InputError (one line) at the first frame without a partner: the videos
    have different lengths or timing (a trimmed or re-timed restored video).
    """
    fps = reference.info.fps or 25.0
    tolerance = max(0.5 / fps, 1e-3)
    ours, theirs = restored.frames(limit=limit), reference.frames(limit=limit)
    count = 0
    while True:
        a, b = next(ours, None), next(theirs, None)
        if a is None and b is None:
            return
        if a is None or b is None:
            longer, which = (theirs, "reference") if a is None else (ours, "restored video")
            rest = 1 + sum(1 for _ in longer)
            raise InputError(f"the {which} has {count + rest} frames but the other has {count} "
                             "(frames are matched by timestamp; use --max-frames N to compare the first N)")
        ta = a.time if a.time is not None else a.index / fps
        tb = b.time if b.time is not None else b.index / fps
        if abs(ta - tb) >= tolerance:
            raise InputError(f"frame {count}: the restored video's is at {ta:.3f} s but the reference's "
                             f"at {tb:.3f} s: the videos are not frame-aligned")
        count += 1
        yield a, b
