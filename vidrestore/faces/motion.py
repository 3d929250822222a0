"""Moving a face from one frame to the next by optical flow (frames between detections)."""

from __future__ import annotations

import cv2
import numpy as np

from vidrestore.imaging import to_uint8

_LEVELS = 3  # pyramid levels above the frame: Lucas–Kanade follows motion of up to ~win·2³/2 px


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
    params = dict(winSize=(win, win), maxLevel=_LEVELS,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
    (x0, y0), prev_roi, roi = _flow_region(prev_gray, gray, box, size, win)
    local = (src - np.float32([x0, y0])).reshape(-1, 1, 2)
    dst, ok1, _ = cv2.calcOpticalFlowPyrLK(prev_roi, roi, local, None, **params)
    if dst is None:
        return None
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(roi, prev_roi, dst, None, **params)
    fb = np.linalg.norm(back.reshape(-1, 2) - local.reshape(-1, 2), axis=1)
    dst = dst.reshape(-1, 2) + np.float32([x0, y0])
    good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (fb < max(1.0, 0.04 * size))
    if good.sum() < 6:
        return None
    tol = max(1.0, 0.03 * size)
    m, inliers = cv2.estimateAffinePartial2D(
        src[good], dst[good], method=cv2.RANSAC, ransacReprojThreshold=tol
    )
    if m is None or inliers is None or inliers.sum() < 5:
        return None
    if not 0.8 < float(np.hypot(m[0, 0], m[1, 0])) < 1.25:
        return None
    return m


def _flow_region(
    prev_gray: np.ndarray, gray: np.ndarray, box: np.ndarray, size: float, win: int
) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """The part of both frames that tracking a face in ``box`` can look at: the box grown by
    0.3 of the face's size (its motion) plus what the window reaches at the coarsest pyramid
    level, with the origin on a multiple of 2^levels so that the crop's pyramid samples the
    same pixels as the whole frame's. Both calls of Lucas–Kanade then build their pyramids
    over this region only, not the whole frame: at 1080p with a face a third of the frame's
    height that is a third of the pixels, and far less for the small faces of archival footage.

    Returns:
        ``((x0, y0), prev_crop, crop)``: the region's origin in the frame, and the two crops.
    """
    h, w = gray.shape[:2]
    step = 2 ** _LEVELS
    margin = 0.3 * size + (win // 2 + 4) * step
    x1, y1, x2, y2 = (float(v) for v in box)
    x0 = int(np.clip(x1 - margin, 0, w)) // step * step
    y0 = int(np.clip(y1 - margin, 0, h)) // step * step
    xe = int(np.clip(np.ceil(x2 + margin), 0, w))
    ye = int(np.clip(np.ceil(y2 + margin), 0, h))
    if xe - x0 < step or ye - y0 < step:  # the box is off the frame: track on the whole frame
        return (0, 0), prev_gray, gray
    return (x0, y0), prev_gray[y0:ye, x0:xe], gray[y0:ye, x0:xe]


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
