"""Restoring a segment: ``--start`` / ``--end`` times and which frames they keep.

Times are seconds (``90``, ``12.5``) or ``[hh:]mm:ss[.fraction]`` (``1:30``, ``01:02:03.250``),
measured from the start of the file, as players and FFmpeg's ``-ss`` count them. The cut
follows libavfilter's ``trim``: a frame is kept when ``start <= t < end``; the reader seeks to
the key frame before ``start`` and decodes forward to the exact frame, and the output starts
at time 0 with the audio and subtitles cut at the same instant.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from vidrestore.errors import UsageError

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")

TOLERANCE = 1e-4
"""Seconds a frame time may fall short of ``start`` and still count as at ``start`` (a typed
``2.002`` for a frame at 60060/30000 s): far below any frame duration."""


def parse_time(text: str, *, option: str = "time") -> float:
    """Seconds from ``90``, ``12.5``, ``1:30`` or ``01:02:03.250``; UsageError otherwise."""
    value = str(text).strip()
    match = _CLOCK.match(value)
    try:
        if match:
            hours, minutes, seconds = match.groups()
            if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
                raise ValueError
            result = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            result = float(value)
    except ValueError:
        result = math.nan
    if not math.isfinite(result) or result < 0:
        raise UsageError(f"{option} must be seconds (12.5) or [hh:]mm:ss[.ms] (1:02:03.5), got {text!r}")
    return result


@dataclass(frozen=True)
class Trim:
    """The segment of a video to restore.

    Attributes:
        start: seconds from the file's start of the first frame kept (None: the beginning).
        end: seconds of the first frame left out (None: to the end).
    """

    start: float | None = None
    end: float | None = None
    option: str = field(default="--start", compare=False)
    """The option that set ``start`` (for messages: ``--start``, or ``--at`` for a preview)."""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise UsageError(f"--{name} must be a time >= 0, got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end:g} s) must come after --start ({self.start:g} s)")

    @property
    def active(self) -> bool:
        """Whether anything is cut (a zero start cuts nothing)."""
        return bool(self.start) or self.end is not None

    def check(self, duration: float | None) -> None:
        """UsageError if the segment lies outside a video of ``duration`` seconds (None:
        unknown; the run then ends with no frames and says so)."""
        if duration is None:
            return
        if self.start is not None and self.start >= duration - TOLERANCE:
            raise UsageError(f"{self.option} {self.start:g} s is past the end of the video ({duration:.3f} s)")

    def keeps(self, t: float) -> bool:
        """Whether a frame at ``t`` seconds (from the file's start) is in the segment."""
        if self.start is not None and t < self.start - TOLERANCE:
            return False
        return self.end is None or t < self.end - TOLERANCE

    def past(self, t: float) -> bool:
        """Whether a frame at ``t`` and every later one are after the segment."""
        return self.end is not None and t >= self.end - TOLERANCE

    def describe(self) -> str:
        start = f"{self.start:g} s" if self.start else "the start"
        end = f"{self.end:g} s" if self.end is not None else "the end"
        return f"from {start} to {end}"
