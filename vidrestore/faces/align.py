"""Alignment of a face to a 5-point template: the FFHQ 512² crop the networks take, and the
ArcFace 112² crop the identity encoders take.

A face is aligned by the similarity transform (rotation, uniform scale, translation) that
takes its 5 landmarks onto the FFHQ template, estimated robustly with LMEDS like the official
CodeFormer / facexlib face helper, so crops made here match the crops the networks were
trained and evaluated on.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from vidrestore.imaging import max_value, to_uint8

FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.19360],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)
"""(5, 2) landmark positions of the FFHQ-aligned 512×512 face: left eye, right eye, nose tip,
left and right mouth corner ("left" = image left)."""

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""(5, 2) landmark positions of an ArcFace-aligned 112×112 face (insightface's ``arcface_dst``)."""

BORDER_VALUE = (135, 133, 132)
"""The grey the official helper fills outside the frame with (8-bit RGB)."""

Border = Literal["constant", "reflect"]


def template(size: int = 512) -> np.ndarray:
    """The FFHQ template scaled to a ``size``×``size`` crop, (5, 2) float64."""
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``src → dst`` (Umeyama without reflection), (2, 3) float64.

    Raises:
        ValueError: the source points all coincide.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s**2).sum()
    if var <= 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    # For a similarity x' = [[a, -b], [b, a]] x + t the normal equations are closed-form.
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    rot = np.array([[a, -b], [b, a]])
    t = mu_d - rot @ mu_s
    return np.hstack([rot, t[:, None]])


def estimate_affine(landmarks: np.ndarray, size: int = 512) -> np.ndarray:
    """Similarity transform frame → aligned crop for one face.

    Args:
        landmarks: (5, 2) pixel coordinates in the frame (our 5-point order).
        size: side of the square crop.

    Returns:
        (2, 3) float64 matrix ``A`` with ``crop_xy = A @ [x, y, 1]``.

    LMEDS (as the official helper) is robust to one bad landmark; if it fails (returns None,
    e.g. nearly collinear points) a deterministic least-squares similarity is used.
    """
    src = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(src).all():
        raise ValueError("landmarks contain NaN or inf")
    dst = template(size)
    affine, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:, :2])) < 1e-12:
        affine = similarity_lstsq(src, dst)
    return affine.astype(np.float64)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine map, (2, 3) float64."""
    full = np.vstack([np.asarray(affine, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_face(
    image: np.ndarray, affine: np.ndarray, size: int = 512, border: Border = "constant"
) -> np.ndarray:
    """Warp a frame into the aligned crop.

    Args:
        image: H×W×3 uint8 or uint16 RGB frame.
        affine: (2, 3) frame → crop transform (``estimate_affine``).
        size: side of the crop.
        border: what fills crop pixels that fall outside the frame. ``constant`` (default)
            is the official helper's grey (135, 133, 132): the networks were evaluated on it,
            and a flat fill is not mistaken for face texture. ``reflect`` mirrors the frame,
            which looks more natural for faces cut by the frame edge but can duplicate
            features (a mirrored eye) that a restorer may then sharpen.

    Returns:
        size×size×3 float32 RGB in [0, 1] (bilinear sampling).
    """
    scale = 1.0 / max_value(image)
    if border == "constant":
        fill = tuple(v / 255.0 / scale for v in BORDER_VALUE)
        mode = cv2.BORDER_CONSTANT
    elif border == "reflect":
        fill, mode = (0, 0, 0), cv2.BORDER_REFLECT_101
    else:
        raise ValueError(f"unknown border {border!r}")
    affine = np.asarray(affine, dtype=np.float64)
    if mode == cv2.BORDER_CONSTANT:
        roi, offset = _source_roi(image, affine, size)
        if roi is None:  # the crop lies wholly outside the frame
            return np.broadcast_to(np.float32(fill) * np.float32(scale), (size, size, 3)).copy()
    else:
        roi, offset = image, (0, 0)
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ np.asarray(offset, dtype=np.float64)
    crop = cv2.warpAffine(
        roi.astype(np.float32), shifted, (size, size),
        flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=fill,
    )
    return np.clip(crop.astype(np.float32) * np.float32(scale), 0.0, 1.0)


def _source_roi(
    image: np.ndarray, affine: np.ndarray, size: int
) -> tuple[np.ndarray | None, tuple[int, int]]:
    """The part of ``image`` the crop samples from (None if none) and its corner ``(x0, y0)``.

    Only this region is converted to float and warped, so aligning a face in a 4K frame
    costs what the face costs, not what the frame costs.
    """
    inv = invert_affine(affine)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    pts = corners @ inv.T
    h, w = image.shape[:2]
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - 2, 0, w))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - 2, 0, h))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + 3, 0, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + 3, 0, h))
    if x1 <= x0 or y1 <= y0:
        return None, (0, 0)
    return image[y0:y1, x0:x1], (x0, y0)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = 512, border: Border = "constant"
) -> tuple[np.ndarray, np.ndarray]:
    """Align one face: ``(crop, affine)`` with crop S×S×3 float32 [0, 1], affine (2, 3)."""
    affine = estimate_affine(landmarks, size)
    return warp_face(image, affine, size, border), affine


def align_arcface(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112×112×3 uint8 RGB ArcFace crop of a face (uint16 frames are scaled to 8 bits),
    by the least-squares similarity onto ``ARCFACE_TEMPLATE_112`` (as insightface's
    ``norm_crop``); black for landmarks that all coincide."""
    try:
        m = similarity_lstsq(np.asarray(landmarks).reshape(5, 2), ARCFACE_TEMPLATE_112)
    except ValueError:
        return np.zeros((112, 112, 3), np.uint8)
    return cv2.warpAffine(to_uint8(image), m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
