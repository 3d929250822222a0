"""Paste-back: an unchanged face must come back unchanged, seams must not show, and nothing
outside the face may move.

Round-trip PSNR over the face box with the passthrough restorer (restored = crop), measured
(``python tests/faces/test_paste_roundtrip.py`` prints the first two): astronaut uint8 47.2 dB,
the same frame as uint16 47.4 dB, at half size in a 720p frame 50.2 dB, with the face cut by
the frame edge 46.7 dB (uint16 46.9). Not bit-exact: the crop is a bilinear resampling of the
frame and the paste resamples the crop again between its pixels; cubic for the paste gives
47.2 dB where bilinear gives 43.1 and Lanczos 46.7. The thresholds sit 1.5–2 dB under the
measured values: room for float differences between machines, yet far above what a
misplaced paste gives (the astronaut shifted by half a pixel scores 30.7 dB).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
from skimage import data

from vidrestore.faces.align import align_face
from vidrestore.faces.face import Face
from vidrestore.faces.paste import PasteConfig, face_roi, paste_faces, template_mask
from vidrestore.imaging import psnr

ASTRONAUT_LANDMARKS = np.array(
    [[204.4, 100.3], [247.1, 103.1], [224.8, 128.6], [201.7, 138.7], [244.9, 142.0]]
)
ASTRONAUT_BOX = np.array([179.1, 58.5, 267.4, 173.6])


@functools.lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    return data.astronaut()


def _aligned(image: np.ndarray, landmarks: np.ndarray, box: np.ndarray) -> Face:
    face = Face(box=box.astype(np.float32), landmarks=landmarks.astype(np.float32), score=1.0)
    face.crop, face.affine = align_face(image, landmarks)
    face.restored = face.crop.copy()
    return face


def _box_psnr(before: np.ndarray, after: np.ndarray, box: np.ndarray, top: float) -> float:
    h, w = before.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    return psnr(before[y1:y2, x1:x2], after[y1:y2, x1:x2], top)


def _round_trip(image: np.ndarray, landmarks: np.ndarray, box: np.ndarray, **config) -> np.ndarray:
    out = image.copy()
    paste_faces(out, [_aligned(image, landmarks, box)], config=PasteConfig(mask="template", **config))
    return out


def test_passthrough_uint8_round_trip():
    out = _round_trip(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    assert _box_psnr(astronaut(), out, ASTRONAUT_BOX, 255) > 45.0
    # The interpolation choice matters and cubic is the better one.
    linear = _round_trip(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX, interpolation="linear")
    assert _box_psnr(astronaut(), linear, ASTRONAUT_BOX, 255) < _box_psnr(
        astronaut(), out, ASTRONAUT_BOX, 255) - 2.0


def test_passthrough_uint16_round_trip():
    frame = astronaut().astype(np.uint16) * 257
    out = _round_trip(frame, ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    assert out.dtype == np.uint16
    assert _box_psnr(frame, out, ASTRONAUT_BOX, 65535) > 45.0
    # uint16 keeps precision the uint8 path cannot: errors are not multiples of 257.
    assert np.any((out.astype(np.int64) - frame) % 257 != 0)


def test_passthrough_small_face_in_a_large_frame():
    small = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[300:556, 900:1156] = small
    offset = np.array([900, 300])
    landmarks = (ASTRONAUT_LANDMARKS + 0.5) * 0.5 - 0.5 + offset
    box = ASTRONAUT_BOX * 0.5 + np.tile(offset, 2)
    out = _round_trip(frame, landmarks, box)
    assert _box_psnr(frame, out, box, 255) > 48.0
    # Far from the face nothing moved at all.
    x0, y0, x1, y1 = face_roi(_aligned(frame, landmarks, box).affine, 512, frame.shape[:2])
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], frame[outside])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_face_half_outside_the_frame(dtype):
    # Cut the frame through the face: its left half (and the crop's corner) fall outside.
    top = 255 if dtype == np.uint8 else 65535
    frame = np.ascontiguousarray(astronaut()[30:, 215:]).astype(dtype) * (top // 255)
    shift = np.array([215, 30])
    landmarks, box = ASTRONAUT_LANDMARKS - shift, ASTRONAUT_BOX - np.tile(shift, 2)
    out = _round_trip(frame, landmarks, box)
    assert _box_psnr(frame, out, box, top) > 45.0


def test_restored_at_another_size_is_pasted_in_place():
    face = _aligned(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    face.restored = cv2.resize(face.crop, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    out = astronaut().copy()
    paste_faces(out, [face])
    assert _box_psnr(astronaut(), out, ASTRONAUT_BOX, 255) > 45.0  # measured 47.4


def test_faces_without_restored_skipped_off_frame_or_broken_leave_the_frame_alone():
    unrestored = _aligned(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    unrestored.restored = None
    skipped = _aligned(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    skipped.restored = np.zeros_like(skipped.crop)
    skipped.skip = "too small"
    away = _aligned(astronaut(), ASTRONAUT_LANDMARKS + 3000, ASTRONAUT_BOX + 3000)
    away.restored = np.zeros_like(away.crop)
    broken = _aligned(astronaut(), ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    broken.restored[100, 100, 1] = np.nan
    out = astronaut().copy()
    paste_faces(out, [unrestored, skipped, away, broken])
    assert np.array_equal(out, astronaut())
    assert broken.skip == "restored face has NaN or inf"


def test_seam_is_smooth_and_outside_is_exact():
    # A restorer that shifts the colour by 0.1 (25.5 levels): the change must fade in over the
    # feather, never step, and pixels outside the mask must be bit-exact.
    image = astronaut()
    face = _aligned(image, ASTRONAUT_LANDMARKS, ASTRONAUT_BOX)
    passthrough = image.copy()
    paste_faces(passthrough, [face])
    face.restored = np.clip(face.crop + 0.1, 0, 1)
    shifted = image.copy()
    paste_faces(shifted, [face])

    change = shifted.astype(np.float32) - passthrough.astype(np.float32)  # = mask · 25.5
    # The mask as seen in the frame, for locating its core and its border band.
    ones = Face(box=face.box, landmarks=face.landmarks, score=1.0, affine=face.affine,
                crop=face.crop, restored=np.ones_like(face.crop))
    canvas = np.zeros((512, 512, 3), np.uint16)
    paste_faces(canvas, [ones])
    mask = canvas[..., 0] / 65535.0

    core = mask > 0.999
    band = (mask > 0.02) & (mask < 0.98)
    assert core.sum() > 10_000 and band.sum() > 2_000
    # Inside: the full shift (where the face is not already clipped at white).
    not_clipped = core & (face_max(image) < 220)
    assert abs(np.median(change[not_clipped]) - 25.5) <= 1.0
    # Across the border: a hard paste steps 25.5 levels in one pixel (18 levels/px by
    # np.gradient's central differences); the feather's steepest slope is 25.5 · max|∇mask|
    # = 3.0 levels/px here (σ ≈ 3.8 frame px), plus ≤ 1 level of rounding: measured 4.0.
    gy, gx = np.gradient(change.mean(2))
    seam = np.hypot(gx, gy)[band].max()
    assert seam < 5.0
    # The seam against the original frame: the output's gradient across the band is no steeper
    # than the frame's own gradient plus that feather step (measured p99 3.0; hard paste 12.8).
    def grad(img):
        y, x = np.gradient(img.astype(np.float32).mean(2))
        return np.hypot(x, y)
    excess = (grad(shifted) - grad(image))[band]
    assert np.percentile(excess, 99) < 4.0
    # Outside the mask: untouched, bit for bit.
    assert np.array_equal(shifted[mask == 0], image[mask == 0])
    assert (mask == 0).sum() > 0.7 * mask.size


def face_max(image: np.ndarray) -> np.ndarray:
    return image.max(2)


if __name__ == "__main__":  # print the measured round-trip numbers
    a16 = astronaut().astype(np.uint16) * 257
    for name, img, top in (("uint8", astronaut(), 255), ("uint16", a16, 65535)):
        for interp in ("linear", "cubic", "lanczos"):
            out = _round_trip(img, ASTRONAUT_LANDMARKS, ASTRONAUT_BOX, interpolation=interp)
            print(f"{name:6s} {interp:8s} {_box_psnr(img, out, ASTRONAUT_BOX, top):.1f} dB")


def test_only_the_face_roi_is_warped(monkeypatch):
    # A 4K frame with one small face: the inverse warp must work on the face's ROI only.
    frame = np.full((2160, 3840, 3), 50, np.uint8)
    frame[1000:1512, 2000:2512] = astronaut()
    offset = np.array([2000, 1000])
    face = _aligned(frame, ASTRONAUT_LANDMARKS + offset, ASTRONAUT_BOX + np.tile(offset, 2))
    sizes = []
    real = cv2.warpAffine

    def spy(src, m, dsize, *args, **kwargs):
        sizes.append(tuple(dsize))
        return real(src, m, dsize, *args, **kwargs)

    monkeypatch.setattr(cv2, "warpAffine", spy)
    paste_faces(frame, [face])
    assert sizes and all(w * h < 300 * 300 for w, h in sizes), sizes


def test_template_mask_is_zero_on_the_crop_border_and_one_inside():
    for config in (PasteConfig(), PasteConfig(shape="ellipse"), PasteConfig(erode=0.0, blur=0.05)):
        mask = template_mask(512, config)
        assert mask.shape == (512, 512) and mask.dtype == np.float32
        assert mask.min() == 0.0 and mask.max() == pytest.approx(1.0, abs=1e-6)
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert np.all(border == 0.0)
        assert mask[256, 256] == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(mask, mask[:, ::-1], atol=1e-6)  # left-right symmetric
    assert template_mask(512, PasteConfig(shape="ellipse")).sum() < template_mask(512).sum()
    # The feather widens with blur.
    soft, hard = template_mask(512, PasteConfig(blur=0.04)), template_mask(512, PasteConfig(blur=0.005))
    assert ((soft > 0.01) & (soft < 0.99)).sum() > 3 * ((hard > 0.01) & (hard < 0.99)).sum()


def test_paste_config_rejects_bad_values():
    from vidrestore.errors import UsageError

    for bad in ({"mask": "fancy"}, {"shape": "circle"}, {"erode": 0.5}, {"interpolation": "area"}):
        with pytest.raises(UsageError):
            PasteConfig(**bad)
