"""The runtime's metrics against independent computations: PSNR of a known noise level, Y of
BT.601, the flow warp of a known motion, the occlusion check, and the warping error of a
still against a flickering clip."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vidrestore.metrics import FlowWarpingError, luma, non_occluded, psnr_rgb, psnr_y, ssim, warp


def texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def test_psnr_of_a_known_noise_level():
    rng = np.random.default_rng(1)
    clean = np.full((200, 200, 3), 128, np.uint8)
    noisy = np.clip(128 + np.round(rng.normal(0, 5, clean.shape)), 0, 255).astype(np.uint8)
    mse = float(np.mean((noisy.astype(float) - 128) ** 2))
    assert psnr_rgb(noisy, clean) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert psnr_rgb(noisy, clean) == pytest.approx(20 * math.log10(255 / 5), abs=0.1)
    assert psnr_rgb(clean, clean) == 100.0


def test_y_is_bt601_studio_range():
    white, black = np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)
    assert luma(white) == pytest.approx(235.0) and luma(black) == pytest.approx(16.0)
    assert luma(np.full((1, 1, 3), 65535, np.uint16)) == pytest.approx(235.0)
    a = texture()
    b = a.copy()
    b[..., 2] = 255 - b[..., 2]  # blue matters little to Y
    assert psnr_y(a, b) > psnr_rgb(a, b) + 5


def test_ssim_is_one_for_identical_images():
    a = texture()
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, texture(seed=2)) < 0.5


def test_warp_follows_a_known_translation():
    image = texture().astype(np.float32)
    flow = np.zeros(image.shape[:2] + (2,), np.float32)
    flow[..., 0] = 3.0  # x + 3
    warped = warp(image, flow)
    assert np.allclose(warped[:, :-3], image[:, 3:])


def test_occlusion_mask_passes_consistent_flows_only():
    h, w = 40, 50
    forward = np.zeros((h, w, 2), np.float32)
    forward[..., 0] = 2.0
    assert non_occluded(forward, -forward).mean() > 0.95
    bad = -forward.copy()
    bad[:, : w // 2] = 5.0  # the backward flow disagrees on the left half
    mask = non_occluded(forward, bad)
    assert mask[:, : w // 2 - 3].mean() < 0.05 and mask[:, w // 2 + 3 :].mean() > 0.95


def shifted(image: np.ndarray, dx: int) -> np.ndarray:
    return np.roll(image, dx, axis=1)


def test_warping_error_of_a_still_against_a_flickering_clip():
    frames = [shifted(texture(), 2 * t) for t in range(4)]   # the reference pans 2 px a frame
    measure = FlowWarpingError()
    rng = np.random.default_rng(3)
    follows, flickers = [], []
    for t in range(3):
        follows.append(measure(frames[t], frames[t + 1], frames[t], frames[t + 1]).error)
        noisy = np.clip(frames[t + 1] + rng.normal(0, 8, frames[t].shape), 0, 255).astype(np.uint8)
        flickers.append(measure(frames[t], frames[t + 1], frames[t], noisy).error)
    assert max(follows) < 2e-4
    expected = (8 / 255) ** 2  # the flicker's own variance, in [0, 1]²
    assert np.mean(flickers) == pytest.approx(expected, rel=0.35)
    assert min(flickers) > 5 * max(follows)


def test_region_restricts_the_warping_error():
    ref = texture()
    out_next = ref.copy()
    out_next[:, 64:] = np.clip(out_next[:, 64:].astype(int) + 40, 0, 255).astype(np.uint8)  # right half flickers
    region = np.zeros(ref.shape[:2], bool)
    region[:, :60] = True
    result = FlowWarpingError()(ref, ref, ref, out_next, region)
    assert result.region < 1e-5 < result.error and result.valid > 0.9
