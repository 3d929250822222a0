"""Paste restored faces back into the frame, blended through a feathered mask.

Each face is inverse-warped only over the part of the frame its crop covers (its ROI), so a
face in a 4K frame costs what the face costs. The blend ``frame + mask · (restored − frame)``
is done in float32 in the frame's own integer units, then rounded; where the mask is 0 the
frame's pixels come back bit-exact.

The mask comes from a ``masks.FaceMasker`` (see ``masks`` and ``select``).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from vidrestore.faces.face import Face
from vidrestore.imaging import max_value

from .config import INTERPOLATION, PasteConfig
from .masks import FaceMasker, TemplateMasker, restored_crop


def restored_affine(face: Face) -> np.ndarray:
    """Frame → restored-crop transform: ``face.affine``, rescaled when the restorer changed
    the crop's size (pixel centres kept: u' = k·(u + ½) − ½)."""
    affine = np.asarray(face.affine, dtype=np.float64)
    size = restored_crop(face).shape[0]
    crop_size = face.crop.shape[0] if face.crop is not None else size
    if crop_size == size:
        return affine
    k = size / crop_size
    out = affine * k
    out[:, 2] += 0.5 * k - 0.5
    return out


def face_roi(affine: np.ndarray, size: int, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The frame rectangle ``(x0, y0, x1, y1)`` the ``size`` crop covers (+ a 2 px margin for
    interpolation), clipped to the frame; None when it lies outside."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    corners = np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [-0.5, size - 0.5, 1],
                        [size - 0.5, size - 0.5, 1]])
    pts = corners @ inv.T
    h, w = frame_hw
    x0 = max(int(np.floor(pts[:, 0].min())) - 2, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 2, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 3, w)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 3, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_faces(
    image: np.ndarray,
    faces: Sequence[Face],
    masker: FaceMasker | None = None,
    config: PasteConfig | None = None,
) -> list[tuple[int, int, int, int]]:
    """Blend each face's ``restored`` crop back into ``image``, in place.

    Args:
        image: H×W×3 uint8 or uint16 RGB frame, modified in place.
        faces: faces of this frame; those without ``restored`` or ``affine``, or with
            ``skip`` set, are left alone. Later faces are blended over earlier ones. A face
            whose ``restored`` holds NaN or inf is not pasted and gets ``skip`` set saying so.
        masker: gives each face's crop-space mask; default the template mask of ``config``.
        config: interpolation and template-mask settings.

    Returns:
        The boxes ``(x0, y0, x1, y1)`` of ``image`` that were written (for ``Frame.touch``).
    """
    config = config or PasteConfig()
    changed: list[tuple[int, int, int, int]] = []
    masker = masker or TemplateMasker(config)
    top = max_value(image)
    interp = INTERPOLATION[config.interpolation]
    if not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected an H×W×3 frame, got shape {image.shape}")
    for face in faces:
        if face.restored is None or face.affine is None or face.skip:
            continue
        restored = restored_crop(face)
        if not np.isfinite(restored).all():  # e.g. an fp16 engine overflowing: keep the frame
            face.skip = "restored face has NaN or inf"
            continue
        size = restored.shape[0]
        affine = restored_affine(face)
        roi_box = face_roi(affine, size, image.shape[:2])
        if roi_box is None:
            continue
        x0, y0, x1, y1 = roi_box
        # ROI pixel → crop pixel, for warpAffine's WARP_INVERSE_MAP (no matrix inversion).
        to_crop = affine.copy()
        to_crop[:, 2] += affine[:, :2] @ np.array([x0, y0], dtype=np.float64)
        dsize = (x1 - x0, y1 - y0)
        mask = cv2.warpAffine(
            np.ascontiguousarray(masker.mask(face), dtype=np.float32), to_crop, dsize,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        if not mask.any():
            continue
        blend = cv2.warpAffine(
            np.ascontiguousarray(restored, dtype=np.float32) * np.float32(top), to_crop, dsize,
            flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
        roi = image[y0:y1, x0:x1]
        base = roi.astype(np.float32)
        # base + mask · (restored − base), in place. Where the mask is 0 this is base exactly
        # (an integer in float32), so untouched pixels come back bit-exact.
        blend -= base
        blend *= mask[:, :, None]
        blend += base
        np.rint(blend, out=blend)
        np.clip(blend, 0, top, out=blend)
        roi[...] = blend.astype(image.dtype)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        changed.append((x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1))
    return changed
