"""The flow warping error of Lai et al. (ECCV 2018, "Learning Blind Video Temporal
Consistency"): how much a processed video changes from frame to frame beyond the motion of
its reference.

For each pair of consecutive frames t, t+1:

1. optical flow F (t → t+1) and B (t+1 → t) between the **reference** frames;
2. the occlusion mask of Ruder et al. (GCPR 2016, "Artistic style transfer for videos"),
   which Lai et al. use: a pixel is occluded where the forward–backward check fails,
   ``|F + B̃|² > 0.01 (|F|² + |B̃|²) + 0.5`` (B̃ = B sampled at x + F(x)), or on a motion
   boundary, ``|∇F_x|² + |∇F_y|² > 0.01 |F|² + 0.002``;
3. the processed frame t+1 warped onto t (sampled at x + F(x), bilinear);
4. the mean squared difference between processed frame t and that warp over the
   non-occluded pixels (and over the pixels of a region, such as the faces, if given),
   on RGB in [0, 1], averaged over channels.

A video that follows its reference exactly scores what the reference scores against itself
(≈ 0 away from lighting changes); flicker adds to it.

Flow: OpenCV's DIS (Kroeger et al., ECCV 2016), ``PRESET_MEDIUM``, on 8-bit luma. Lai et al.
used FlowNet 2, which needs trained weights and a GPU; of what OpenCV ships on a CPU, DIS is
the dense method with variational refinement that keeps motion edges, and Farneback's
polynomial expansion blurs them and is slower at video sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidrestore import imaging

FLOW_METHOD = "OpenCV DIS optical flow (PRESET_MEDIUM) on the reference frames' luma"


@dataclass(frozen=True)
class WarpError:
    """One frame pair's warping error.

    Attributes:
        error: mean squared difference over the non-occluded pixels (None: none are).
        region: the same within the region asked for (None: no region, or none of it visible).
        valid: fraction of the frame's pixels not occluded.
    """

    error: float | None
    region: float | None
    valid: float


class FlowWarpingError:
    """Computes ``WarpError`` for consecutive frame pairs (module doc); keeps one DIS instance."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def flows(self, ref_t: np.ndarray, ref_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward (t → t+1) and backward flow, H×W×2 float32 pixels (x, y)."""
        a, b = _gray(ref_t), _gray(ref_next)
        return self._dis.calc(a, b, None), self._dis.calc(b, a, None)

    def __call__(self, ref_t: np.ndarray, ref_next: np.ndarray, out_t: np.ndarray, out_next: np.ndarray,
                 region: np.ndarray | None = None) -> WarpError:
        """The warping error of ``out_t → out_next`` along the reference's motion.

        Args:
            ref_t, ref_next: reference frames t and t+1 (H×W×3 RGB uint8/uint16).
            out_t, out_next: the processed frames, same size.
            region: optional H×W bool mask (e.g. the faces of frame t).
        """
        forward, backward = self.flows(ref_t, ref_next)
        valid = non_occluded(forward, backward)
        warped = warp(_unit(out_next), forward)
        sq = ((_unit(out_t) - warped) ** 2).mean(axis=2)
        error = float(sq[valid].mean()) if valid.any() else None
        region_error = None
        if region is not None:
            both = valid & region
            region_error = float(sq[both].mean()) if both.any() else None
        return WarpError(error, region_error, float(valid.mean()))


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at x + flow(x) (bilinear, edges replicated): frame t+1 seen from t."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def non_occluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """H×W bool: where the forward–backward check passes and no motion boundary lies
    (Ruder et al.'s thresholds, module doc)."""
    back_at = warp(backward, forward)
    total = forward + back_at
    consistent = (total ** 2).sum(-1) <= 0.01 * ((forward ** 2).sum(-1) + (back_at ** 2).sum(-1)) + 0.5
    gu = np.stack(np.gradient(forward[..., 0]), -1)
    gv = np.stack(np.gradient(forward[..., 1]), -1)
    boundary = (gu ** 2).sum(-1) + (gv ** 2).sum(-1) > 0.01 * (forward ** 2).sum(-1) + 0.002
    return consistent & ~boundary


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(imaging.to_uint8(image), cv2.COLOR_RGB2GRAY)


def _unit(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32) / np.float32(imaging.max_value(image))
