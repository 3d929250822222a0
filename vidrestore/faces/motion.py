"""Moving a face from one frame to the next by optical flow (frames between detections)."""

from __future__ import annotations

import cv2
import numpy as np

from vidrestore.imaging import to_uint8


def to_gray8(image: np.ndarray) -> np.ndarray:
    """H×W uint8 luma of an RGB uint8/uint16 frame."""
    return cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2GRAY)


def estimate_face_motion(
    prev_gray: np.ndarray, gray: np.ndarray, landmarks: np.ndarray, box: np.ndarray
) -> np.ndarray | None:
    """The similarity transform (2, 3) that moves a face from one frame to the next.

    Tracks the landmarks and a 5×5 grid over the inner box with pyramidal Lucas–Kanade,
    keeps points that pass a forward–backward check and fits a similarity to them (RANSAC).

    Returns:
        The transform, or None if the face was lost (too few consistent points, or an
        implausible scale change).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    size = max(((x2 - x1) * (y2 - y1)) ** 0.5, 1.0) if x2 > x1 and y2 > y1 else 1.0
    gx, gy = np.meshgrid(np.linspace(0.15, 0.85, 5), np.linspace(0.15, 0.85, 5))
    grid = np.stack([x1 + gx.ravel() * (x2 - x1), y1 + gy.ravel() * (y2 - y1)], 1)
    src = np.vstack([np.asarray(landmarks, np.float64).reshape(5, 2), grid]).astype(np.float32)
    win = int(np.clip(size / 4, 9, 31)) | 1
    params = dict(winSize=(win, win), maxLevel=3,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
    dst, ok1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, src.reshape(-1, 1, 2), None, **params)
    if dst is None:
        return None
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, dst, None, **params)
    fb = np.linalg.norm(back.reshape(-1, 2) - src, axis=1)
    good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (fb < max(1.0, 0.04 * size))
    if good.sum() < 6:
        return None
    tol = max(1.0, 0.03 * size)
    m, inliers = cv2.estimateAffinePartial2D(
        src[good], dst.reshape(-1, 2)[good], method=cv2.RANSAC, ransacReprojThreshold=tol
    )
    if m is None or inliers is None or inliers.sum() < 5:
        return None
    if not 0.8 < float(np.hypot(m[0, 0], m[1, 0])) < 1.25:
        return None
    return m


def propagate_face(
    prev_gray: np.ndarray, gray: np.ndarray, landmarks: np.ndarray, box: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Carry a face to the next frame by optical flow (``estimate_face_motion``).

    Returns:
        ``(landmarks (5, 2) float32, box (4,) float32)``, or None if the face was lost.
    """
    m = estimate_face_motion(prev_gray, gray, landmarks, box)
    if m is None:
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    lm = np.asarray(landmarks, np.float64).reshape(5, 2) @ m[:, :2].T + m[:, 2]
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) @ m[:, :2].T + m[:, 2]
    half = np.array([(x2 - x1) / 2, (y2 - y1) / 2]) * scale
    new_box = np.concatenate([centre - half, centre + half])
    return lm.astype(np.float32), new_box.astype(np.float32)
