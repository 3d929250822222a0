"""Still images in and out: what ``vidrestore photo.jpg -o out.png`` and image folders read
and write, with OpenCV's codecs.

Images are H×W×3 RGB, ``uint8`` or, for 16-bit PNG / TIFF files, ``uint16`` (full 16-bit
scale, as video frames of high bit depth). Reading applies the EXIF orientation (OpenCV's
default), so a phone photo comes in upright; an alpha channel is not kept. Writing picks the
format from the file's extension and is atomic (``io.atomic``): a failed or interrupted
write leaves nothing at the target.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidrestore.errors import InputError, InputNotFoundError, OutputError
from vidrestore.imaging import to_uint8

from .atomic import atomic_output

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions read and written as still images (case-insensitive)."""

_EIGHT_BIT_ONLY = frozenset({".jpg", ".jpeg", ".bmp", ".webp"})
_WRITE_PARAMS = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
                 ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95], ".png": [cv2.IMWRITE_PNG_COMPRESSION, 3]}


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` names a still image by its extension."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as H×W×3 RGB ``uint8`` / ``uint16``, upright (EXIF applied).

    Raises:
        InputNotFoundError: no such file.
        InputError: not an image OpenCV can decode, or samples that are not 8 or 16 bits.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"image not found: {path}")
    data = np.fromfile(str(path), np.uint8)  # imread would log decoder errors to stderr
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if image is None:
        raise InputError(f"cannot read {path}: not an image OpenCV can decode")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"cannot restore {path}: {image.dtype} samples (8- or 16-bit images only)")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """``image`` (H×W×3 RGB uint8 / uint16) encoded as a ``suffix`` file (``.png``...);
    16-bit images become 8-bit for formats that only hold 8 bits (JPEG, WebP, BMP)."""
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(f"cannot write a {suffix or 'suffix-less'} image: use one of "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))}")
    if image.dtype == np.uint16 and suffix in _EIGHT_BIT_ONLY:
        image = to_uint8(image)
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _WRITE_PARAMS.get(suffix, []))
    if not ok:
        raise OutputError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


def write_image(target: str | Path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write ``image`` to ``target`` atomically (format from its extension); returns the path."""
    target = Path(target)
    data = encode_image(image, target.suffix)
    with atomic_output(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return target
