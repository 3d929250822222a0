"""Colour conversion between a video's YUV frames and the RGB arrays the stages work on.

Decoding and encoding use the same matrix and range, taken from the stream's tags, so
pixels that no stage touches survive the RGB round trip up to rounding. Untagged streams use
FFmpeg's own default (BT.601) both ways, which is what other FFmpeg tools assume too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import av
import numpy as np

from .probe import VideoInfo

# AVColorSpace (stream tag) → swscale matrix name.
_SWS_MATRIX = {
    1: "itu709",
    4: "fcc",
    5: "itu601",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020",
    10: "bt2020",
}

RANGE_MPEG = 1
RANGE_JPEG = 2

SWS_THREADS = 1
"""swscale threads per conversion. Its automatic slice threading (PyAV's default) is racy
in the FFmpeg that PyAV 18 ships: rgb48le → yuv444p10le now and then left the first 8 pixels
of a slice's first row grey. The pipeline already converts in several threads at once."""


@dataclass(frozen=True)
class ColourModel:
    """How to turn this video's frames into RGB and back.

    Attributes:
        matrix: swscale colour matrix name (``itu709``, ``itu601``, ``bt2020``...).
        full_range: whether the YUV values use the full (JPEG) range.
        high_bit_depth: decode to 16-bit RGB (``rgb48le``) instead of 8-bit.
    """

    matrix: str
    full_range: bool
    high_bit_depth: bool

    @classmethod
    def for_video(cls, info: VideoInfo) -> "ColourModel":
        """The model matching a probed input."""
        full = info.color_range == RANGE_JPEG or info.pix_fmt.startswith("yuvj")
        return cls(
            matrix=_SWS_MATRIX.get(info.colorspace, "itu601"),
            full_range=full,
            high_bit_depth=info.bit_depth > 8,
        )

    @property
    def rgb_format(self) -> str:
        return "rgb48le" if self.high_bit_depth else "rgb24"

    @property
    def yuv_range(self) -> str:
        return "JPEG" if self.full_range else "MPEG"

    def to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Decoded frame → H×W×3 RGB array (uint8, or uint16 for high bit depth)."""
        if frame.format.name.startswith(("rgb", "bgr", "gbr")):
            return frame.reformat(format=self.rgb_format, threads=SWS_THREADS).to_ndarray()
        rgb = frame.reformat(
            format=self.rgb_format,
            src_colorspace=self.matrix,
            dst_colorspace=self.matrix,
            src_color_range=self.yuv_range,
            dst_color_range="JPEG",
            threads=SWS_THREADS,
        )
        return rgb.to_ndarray()

    def from_rgb(self, image: np.ndarray, pix_fmt: str) -> av.VideoFrame:
        """H×W×3 RGB array → frame in the encoder's ``pix_fmt``."""
        fmt = "rgb48le" if image.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        if pix_fmt.startswith(("rgb", "bgr", "gbr")):
            return frame.reformat(format=pix_fmt, threads=SWS_THREADS)
        return frame.reformat(
            format=pix_fmt,
            src_colorspace=self.matrix,
            dst_colorspace=self.matrix,
            src_color_range="JPEG",
            dst_color_range=self.yuv_range,
            threads=SWS_THREADS,
        )


_PLANAR = re.compile(r"^(yuvj?4[0-4][0-4]p|yuv41[01]p|yuv440p|gray)(9|10|12|14|16)?(le)?$")


def keeps_planes(fmt: av.VideoFormat) -> bool:
    """Whether frames of this format can be patched region by region (planar YUV / grey)."""
    return bool(_PLANAR.match(fmt.name)) and not fmt.name.endswith("be")


def patch_regions(
    source: av.VideoFrame,
    rgb: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    colour: ColourModel,
) -> av.VideoFrame:
    """Write the RGB pixels of ``boxes`` into ``source``'s own planes, in place.

    ``rgb`` and ``boxes`` are in the stored orientation. Boxes are widened to whole chroma
    samples, so each chroma sample of a box is computed from pixels of that box only.
    """
    fmt = source.format
    source.make_writable()
    sub_w = 1 << _log2_ratio(source.width, fmt.components[-1].width) if len(fmt.components) > 1 else 1
    sub_h = 1 << _log2_ratio(source.height, fmt.components[-1].height) if len(fmt.components) > 1 else 1
    height, width = rgb.shape[:2]
    dtype = np.uint16 if max(c.bits for c in fmt.components) > 8 else np.uint8
    planes = [_plane_array(p, dtype) for p in source.planes]
    for x0, y0, x1, y1 in boxes:
        x0, y0 = x0 - x0 % sub_w, y0 - y0 % sub_h
        x1, y1 = min(-(-x1 // sub_w) * sub_w, width), min(-(-y1 // sub_h) * sub_h, height)
        if x1 <= x0 or y1 <= y0:
            continue
        patch = colour.from_rgb(rgb[y0:y1, x0:x1], fmt.name)
        for index, (plane, small) in enumerate(zip(planes, patch.planes)):
            sx = 1 if index == 0 else sub_w
            sy = 1 if index == 0 else sub_h
            piece = _plane_array(small, dtype)[: small.height, : small.width]
            plane[y0 // sy : y0 // sy + piece.shape[0], x0 // sx : x0 // sx + piece.shape[1]] = piece
    return source


def _plane_array(plane, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    data = np.frombuffer(plane, dtype=dtype)
    return data.reshape(-1, plane.line_size // itemsize)[: plane.height, : plane.width]


def _log2_ratio(full: int, part: int) -> int:
    ratio = -(-full // max(part, 1))
    return max(ratio.bit_length() - 1, 0) if ratio > 1 else 0
