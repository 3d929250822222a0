"""CodeFormer's degradation model: blur → downsample → noise → JPEG → upsample, colour jitter, grey.

The defaults are the official Stage II options (sczhou/CodeFormer options/CodeFormer_stage2.yml):
Gaussian blur with a 41-tap isotropic or anisotropic kernel (probability 0.5 each, σ 1–15 px),
downsampling 4–30×, Gaussian noise σ 0–20 (8-bit units), JPEG quality 30–80. The official
option files set no colour jitter and no greyscale, and the official datasets
(``basicsr/data/ffhq_blind_dataset.py``) default them to off and apply them to the LQ input
only; here too they are off by default (``color_jitter_prob``, ``gray_prob`` 0). ``gray_gt``
(greying the ground truth as well when greyscale is drawn) is a deviation, off by default.

Everything random is drawn from the ``numpy.random.Generator`` passed in, so one seed gives
one result, in a DataLoader worker or not. Images are H×W×3 float32 RGB in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

KernelType = str  # "iso" or "aniso"


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges of the degradation model (``(low, high)`` drawn uniformly).

    blur_prob: probability of blurring at all. kernel_size: odd kernel side (41).
    kernel_types / kernel_probs: ``iso`` (one σ) or ``aniso`` (σx, σy, rotation), chosen
        with these probabilities.
    blur_sigma: σ range in pixels. downsample: scale factor range (≥ 1).
    noise: Gaussian noise σ range in 8-bit units. jpeg: quality range (1–100).
    color_jitter_prob / color_jitter_shift: chance and size (8-bit units) of a per-channel
        shift of the LQ (official: off; 20 when used). gray_prob: chance of a greyscale LQ
        (official: off); ``gray_gt`` greys the ground truth too (not official).
    """

    blur_prob: float = 1.0
    kernel_size: int = 41
    kernel_types: tuple[str, ...] = ("iso", "aniso")
    kernel_probs: tuple[float, ...] = (0.5, 0.5)
    blur_sigma: tuple[float, float] = (1.0, 15.0)
    downsample: tuple[float, float] = (4.0, 30.0)
    noise: tuple[float, float] = (0.0, 20.0)
    jpeg: tuple[int, int] = (30, 80)
    color_jitter_prob: float = 0.0
    color_jitter_shift: float = 20.0
    gray_prob: float = 0.0
    gray_gt: bool = False

    def __post_init__(self) -> None:
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if set(self.kernel_types) - {"iso", "aniso"} or len(self.kernel_types) != len(self.kernel_probs):
            raise ValueError("kernel_types must be iso / aniso, one probability each")
        for name in ("blur_sigma", "downsample", "noise", "jpeg"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: low {lo} > high {hi}")
        if self.blur_sigma[0] <= 0 or self.downsample[0] < 1 or self.noise[0] < 0:
            raise ValueError("blur_sigma > 0, downsample >= 1 and noise >= 0 are required")
        if not 1 <= self.jpeg[0] <= self.jpeg[1] <= 100:
            raise ValueError(f"jpeg quality must lie in 1..100, got {self.jpeg}")


@dataclass(frozen=True)
class DegradationParams:
    """What one call drew (for logs and tests). ``sigma`` is (σx, σy); None: step skipped."""

    kernel: str | None
    sigma: tuple[float, float] | None
    theta: float | None
    scale: float
    noise_sigma: float
    jpeg_quality: int
    jitter: tuple[float, float, float] | None
    gray: bool


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Normalised anisotropic Gaussian ``size×size`` float32 (σ in pixels, θ in radians)."""
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T
    inv = np.linalg.inv(cov)
    r = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(r, r)
    pts = np.stack([xx, yy], -1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", pts, inv, pts))
    return (kernel / kernel.sum()).astype(np.float32)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi))  # always one draw, so later draws do not shift


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB → grey (BT.601 luma) repeated over three channels."""
    y = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(y[..., None], 3, axis=2)


def degrade(
    hq: np.ndarray, cfg: DegradationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, DegradationParams]:
    """Make an LQ face from ``hq`` (H×W×3 float32 RGB [0, 1]).

    Returns ``(lq, gt, params)``: ``lq`` the same size as ``hq``; ``gt`` is ``hq`` (grey if
    greyscale was drawn and ``gray_gt``). The draws happen in a fixed order, so a seed gives
    the same result whatever was skipped.
    """
    h, w = hq.shape[:2]
    img = hq.astype(np.float32, copy=True)
    # Draw everything first (fixed order, independent of which steps run).
    do_blur = rng.uniform() < cfg.blur_prob
    kind = cfg.kernel_types[int(rng.choice(len(cfg.kernel_types), p=np.asarray(cfg.kernel_probs) / sum(cfg.kernel_probs)))]
    sx, sy = _uniform(rng, cfg.blur_sigma), _uniform(rng, cfg.blur_sigma)
    theta = float(rng.uniform(-math.pi, math.pi))
    scale = _uniform(rng, cfg.downsample)
    noise_sigma = _uniform(rng, cfg.noise)
    quality = int(rng.integers(cfg.jpeg[0], cfg.jpeg[1] + 1))
    do_jitter = rng.uniform() < cfg.color_jitter_prob
    shift = rng.uniform(-cfg.color_jitter_shift, cfg.color_jitter_shift, size=3)
    do_gray = rng.uniform() < cfg.gray_prob
    noise_seed = int(rng.integers(2**31))

    if kind == "iso":
        sy, theta = sx, 0.0
    if do_blur:
        kernel = gaussian_kernel(cfg.kernel_size, sx, sy, theta)
        img = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    small = (max(1, round(w / scale)), max(1, round(h / scale)))
    img = cv2.resize(img, small, interpolation=cv2.INTER_LINEAR)
    if noise_sigma > 0:
        noise = np.random.default_rng(noise_seed).standard_normal(img.shape, dtype=np.float32)
        img = img + noise * np.float32(noise_sigma / 255.0)
    img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    lq = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if do_jitter:
        lq = np.clip(lq + (shift / 255.0).astype(np.float32), 0.0, 1.0)
    gt = hq.astype(np.float32, copy=True)
    if do_gray:
        lq = to_gray(lq)
        if cfg.gray_gt:
            gt = to_gray(gt)
    params = DegradationParams(
        kind if do_blur else None, (sx, sy) if do_blur else None, theta if do_blur else None,
        scale, noise_sigma, quality, tuple(float(s) for s in shift) if do_jitter else None, do_gray,
    )
    return np.ascontiguousarray(lq, dtype=np.float32), gt, params
