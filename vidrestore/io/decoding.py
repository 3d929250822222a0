"""How frames are prepared after decoding: deinterlacing and square pixels (``DecodeSettings``).

Kept free of I/O, like ``encoding``; the work is done by libavfilter (``io.filters``) as the
reader decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidrestore.errors import UsageError
from vidrestore.names import DeinterlaceName, choices


@dataclass(frozen=True)
class DecodeSettings:
    """What the reader does to each decoded frame before the stages see it.

    Attributes:
        deinterlace: ``auto`` (default): deinterlace with bwdif when the stream is interlaced
            (its field order, the frames' flags, or libavfilter's ``idet`` finding combing in
            the first frames of a capture flagged progressive); ``off``: keep the fields
            woven and the output interlaced with the same field order; ``bwdif`` / ``yadif``:
            deinterlace every frame with that filter.
        field_rate: output one frame per field (50i → 50p), twice the frame rate, for
            smoother motion; otherwise one frame per frame.
        square_pixels: resample non-square pixels (a sample aspect ratio such as 16:15 or
            32:27) to square ones, so the output is stored at its display aspect ratio;
            otherwise the output keeps the input's storage size and sample aspect ratio.
    """

    deinterlace: DeinterlaceName = "auto"
    field_rate: bool = False
    square_pixels: bool = False

    def __post_init__(self) -> None:
        if self.deinterlace not in choices(DeinterlaceName):
            raise UsageError(f"--deinterlace must be one of {', '.join(choices(DeinterlaceName))}, "
                             f"not {self.deinterlace!r}")
        if self.field_rate and self.deinterlace == "off":
            raise UsageError("--field-rate makes one frame per field, which needs deinterlacing; "
                             "it cannot go with --deinterlace off")
