"""Frame geometry for the face transforms: pixel-grid scalings and their composition.

Two places resample a whole frame under the face stage's feet: non-square pixels (the face
stage works on a square-pixel view of an anamorphic frame) and ``--upscale`` (faces are
pasted into an enlarged frame). Both are axis scalings of the pixel grid that keep pixel
centres aligned — ``x' = s·(x + ½) − ½``, the convention of OpenCV's ``resize`` and of
libavfilter's ``scale`` — and both are handled by composing that scaling into a face's
frame → crop affine instead of resampling the crop twice.
"""

from __future__ import annotations

import numpy as np


def grid_scale(sx: float, sy: float) -> np.ndarray:
    """(2, 3) affine of a pixel grid scaled by ``sx`` across and ``sy`` down (centres kept)."""
    return np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)]], dtype=np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine applying ``inner`` then ``outer``."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def inverse(affine: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine."""
    full = np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def map_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) through a (2, 3) affine, as float32."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    return (pts @ np.asarray(affine, np.float64)[:, :2].T + np.asarray(affine, np.float64)[:, 2]).astype(np.float32)


def square_pixel_scale(pixel_aspect: float) -> tuple[float, float]:
    """``(sx, sy)`` turning pixels of width / height ``pixel_aspect`` into square ones by
    enlarging one axis (never shrinking, so no detail is lost): wide pixels stretch across,
    tall ones down."""
    aspect = float(pixel_aspect)
    if aspect <= 0:
        raise ValueError(f"pixel aspect must be > 0, got {pixel_aspect}")
    return (aspect, 1.0) if aspect >= 1 else (1.0, 1.0 / aspect)
