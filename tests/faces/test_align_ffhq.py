"""Alignment to the FFHQ template: the transform, its inverse, the warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from vidrestore.faces.align import (
    BORDER_VALUE,
    FFHQ_TEMPLATE_512,
    align_face,
    estimate_affine,
    invert_affine,
    template,
    warp_face,
)

# The astronaut's 5 landmarks (MTCNN on skimage's astronaut, rounded).
ASTRONAUT_LANDMARKS = np.array(
    [[204.4, 100.3], [247.1, 103.1], [224.8, 128.6], [201.7, 138.7], [244.9, 142.0]]
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ affine[:, :2].T + affine[:, 2]


def test_template_is_the_official_one_and_scales():
    assert FFHQ_TEMPLATE_512[0].tolist() == pytest.approx([192.98, 239.95], abs=0.01)
    assert FFHQ_TEMPLATE_512[4].tolist() == pytest.approx([313.09, 371.15], abs=0.01)
    np.testing.assert_allclose(template(256), FFHQ_TEMPLATE_512 / 2)


@pytest.mark.parametrize("angle,scale,size", [(0, 0.3, 512), (25, 0.5, 512), (-40, 2.0, 256)])
def test_estimate_affine_recovers_a_known_similarity(angle, scale, size):
    # Landmarks made by moving the template with a known similarity: the estimate must undo it.
    frame_to_template = _similarity(angle, scale, 40.0, -12.0)
    landmarks = _apply(invert_affine(frame_to_template), template(size))
    affine = estimate_affine(landmarks, size)
    assert affine.shape == (2, 3) and affine.dtype == np.float64
    np.testing.assert_allclose(_apply(affine, landmarks), template(size), atol=1e-6)


def test_estimate_affine_is_a_similarity_robust_to_one_outlier():
    landmarks = _apply(invert_affine(_similarity(10, 0.4, 0, 0)), FFHQ_TEMPLATE_512)
    noisy = landmarks.copy()
    noisy[3] += [15.0, -9.0]  # one mouth corner far off
    affine = estimate_affine(noisy)
    a, b = affine[0, 0], affine[1, 0]
    np.testing.assert_allclose(affine[:, :2], [[a, -b], [b, a]], atol=1e-9)  # no shear
    # LMEDS keeps the four good points on the template (least squares would spread the error).
    good = [0, 1, 2, 4]
    assert np.abs(_apply(affine, noisy)[good] - FFHQ_TEMPLATE_512[good]).max() < 1.0


def test_degenerate_landmarks_fall_back_or_fail_clearly():
    # All on one line: LMEDS may give up; the least-squares fallback still returns a similarity.
    line = np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0]], dtype=float)
    affine = estimate_affine(line)
    assert np.isfinite(affine).all()
    with pytest.raises(ValueError):
        estimate_affine(np.full((5, 2), 3.0))
    with pytest.raises(ValueError):
        estimate_affine(np.full((5, 2), np.nan))


def test_invert_affine_round_trips():
    affine = _similarity(33, 1.7, 5, 9)
    inv = invert_affine(affine)
    pts = np.random.default_rng(0).uniform(-100, 100, (20, 2))
    np.testing.assert_allclose(_apply(inv, _apply(affine, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(invert_affine(inv), affine, atol=1e-12)


def test_align_astronaut_puts_eyes_on_the_template():
    image = data.astronaut()
    crop, affine = align_face(image, ASTRONAUT_LANDMARKS)
    assert crop.shape == (512, 512, 3) and crop.dtype == np.float32
    assert 0.0 <= crop.min() and crop.max() <= 1.0
    # The warp is the same as OpenCV's full-frame warp (we only warp the face's ROI).
    full = cv2.warpAffine(image.astype(np.float32), affine, (512, 512), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_VALUE) / 255.0
    assert np.abs(crop - full).max() < 1e-4
    # The eyes are dark: the template's eye points are darker than the cheeks below them.
    gray = crop.mean(2)
    for x, y in FFHQ_TEMPLATE_512[:2]:
        eye = gray[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5].mean()
        cheek = gray[int(y) + 40 : int(y) + 49, int(x) - 4 : int(x) + 5].mean()
        assert eye < cheek - 0.1


def test_warp_uint16_matches_uint8_and_fills_outside_with_grey():
    image = data.astronaut()
    affine = estimate_affine(ASTRONAUT_LANDMARKS - [180, 60])  # face near the top-left corner
    shifted = image[60:, 180:]
    c8 = warp_face(np.ascontiguousarray(shifted), affine)
    c16 = warp_face(np.ascontiguousarray(shifted).astype(np.uint16) * 257, affine)
    assert np.abs(c8 - c16).max() < 1e-5
    grey = np.array(BORDER_VALUE) / 255.0
    np.testing.assert_allclose(c8[0, 0], grey, atol=1e-6)  # top-left of the crop is off-frame
    reflect = warp_face(np.ascontiguousarray(shifted), affine, border="reflect")
    assert not np.allclose(reflect[0, 0], grey, atol=1e-3)
    # A crop wholly outside the frame is all grey, not an error.
    away = warp_face(image, estimate_affine(ASTRONAUT_LANDMARKS + 5000))
    np.testing.assert_allclose(away, np.broadcast_to(grey, away.shape), atol=1e-6)


def test_warp_rejects_float_images():
    with pytest.raises(TypeError):
        warp_face(np.zeros((8, 8, 3), np.float32), np.eye(2, 3))
