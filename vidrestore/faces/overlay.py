"""Debug overlay: boxes, landmarks, track ids and scores drawn onto frames."""

from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np

from .face import Face

LANDMARK_COLOURS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))
"""RGB per landmark: left eye red, right eye blue, nose green, mouth corners magenta / cyan."""


REJECTED_COLOUR = (150, 150, 150)
"""RGB of detections the verifier rejected (left untouched)."""


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour (0–255) per track id, stable across frames; grey when untracked."""
    if track_id < 0:
        return (200, 200, 200)
    hue = (track_id * 0.618033988749895) % 1.0  # golden ratio: neighbours differ most
    r, g, b = colorsys.hsv_to_rgb(hue, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_overlay(image: np.ndarray, faces: Sequence[Face]) -> None:
    """Draw each face's box, 5 landmarks and ``#track_id score`` onto ``image``, in place.

    Args:
        image: H×W×3 uint8 or uint16 RGB frame (colours are scaled to the dtype).
        faces: faces of this frame; skipped faces are drawn with a thin box, and faces the
            verifier rejected in grey, labelled ``rejected``.
    """
    if image.dtype == np.uint8:
        unit = 1
    elif image.dtype == np.uint16:
        unit = 257
    else:
        raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")
    if not image.flags.c_contiguous:  # cv2 would draw on a copy: draw there, copy back
        canvas = np.ascontiguousarray(image)
        draw_overlay(canvas, faces)
        image[...] = canvas
        return
    h, w = image.shape[:2]
    thick = max(1, round(min(h, w) / 360))
    font = 0.4 * thick
    for face in faces:
        colour = tuple(c * unit for c in (REJECTED_COLOUR if face.rejected else track_colour(face.track_id)))
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1 if face.skip else thick, cv2.LINE_8)
        for (x, y), c in zip(np.asarray(face.landmarks, dtype=np.float64), LANDMARK_COLOURS):
            cv2.circle(image, (int(round(x)), int(round(y))), thick + 1,
                       tuple(v * unit for v in c), -1, cv2.LINE_AA)
        label = f"#{face.track_id} {face.score:.2f}" if face.track_id >= 0 else f"{face.score:.2f}"
        if face.rejected:
            label = f"#{face.track_id} rejected"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = y1 - base - 2 if y1 - th - base - 2 >= 0 else y2 + th + 2
        _put_text(image, label, (x1, ty), font, thick, colour)


def _put_text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int,
              colour: tuple[int, ...]) -> None:
    # OpenCV 5 draws text on 8-bit images only: render an 8-bit coverage mask, blend it in.
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = thick + 1
    x0, y0 = org[0] - pad, org[1] - th - pad
    cover = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(cover, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    h, w = image.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + cover.shape[1], w), min(y0 + cover.shape[0], h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    alpha = cover[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None].astype(np.float32) / 255.0
    region = image[cy0:cy1, cx0:cx1]
    blended = region + alpha * (np.asarray(colour, np.float32) - region)
    region[...] = np.rint(blended).astype(image.dtype)
