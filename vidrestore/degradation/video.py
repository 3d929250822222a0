"""Degrading a whole clip: parameters coherent along the clip, deterministic for a seed.

Image degradation draws every parameter afresh per image; a video camera, a tape or an
encoder does not change its blur or its compression from one frame to the next. Video face
restoration benchmarks therefore degrade a clip with one draw per clip: KEEP (Feng et al.,
ECCV 2024; ``basicsr/data/vfhq_real_degradation2_dataset.py`` of jnjaby/KEEP) draws one blur
kernel and one H.264 CRF per clip of VFHQ and only the noise per frame, in the order
blur → noise → downsample → noise → H.264 → upsample; its VFHQ-Test set (512² faces made
128², ``BlindLR_128x128_easy_Blur5-10_Noise0-10_CRF18-25``) uses blur σ 5–10, noise σ 0–10
and CRF 18–25.

``ClipDegradation`` draws the clip's parameters once from the seed, then lets the continuous
ones drift slowly within their range (a sum of two slow sinusoids with random phases, periods
of 3–10 s, at most ±``drift`` of the range), as focus, light and a camera's noise drift; the
noise itself is fresh every frame, from a generator seeded by (seed, frame index). The same
seed and frame times give the same parameters, whatever order frames are asked in.

Presets (``PRESETS``):

- ``vfhq``: KEEP's VFHQ-Test protocol above (downsample ×4, CRF drawn per clip; the H.264
  step is done by the caller, ``vidrestore.degrade_video``, at the small size).
- ``codeformer``: CodeFormer's Stage II ranges (``degradation.model.DegradationConfig``):
  blur σ 1–15, downsample 4–30×, noise 0–20, JPEG quality 30–80 per frame.

Ranges are in pixels of the frame, as in the datasets, whose ground truth is 512² face crops:
on a frame whose faces are smaller, the same σ blurs them relatively more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vidrestore.errors import ConfigError
from vidrestore.names import DegradePresetName, choices

from .model import gaussian_kernel


@dataclass(frozen=True)
class DegradationPreset:
    """The ranges of a clip degradation (``(low, high)`` drawn uniformly once per clip).

    Attributes:
        name: the preset's name.
        blur_sigma: σ of the Gaussian blur kernel, pixels (anisotropic: σx, σy drawn apart).
        aniso_prob: chance that the kernel is anisotropic (rotated ellipse).
        kernel_size: the kernel's side (odd).
        downsample: scale factor range (≥ 1).
        noise: Gaussian noise σ range, 8-bit units (per frame, fresh noise).
        noise_after_downsample: noise is added before and after the downsampling (KEEP's
            order) instead of once after it.
        jpeg: JPEG quality range per frame, or None.
        crf: H.264 CRF range per clip, or None (done by the caller at the small size).
        drift: how far continuous parameters wander along the clip, as a fraction of their range.
    """

    name: str
    blur_sigma: tuple[float, float]
    aniso_prob: float
    kernel_size: int
    downsample: tuple[float, float]
    noise: tuple[float, float]
    noise_after_downsample: bool
    jpeg: tuple[int, int] | None
    crf: tuple[int, int] | None
    drift: float = 0.1


PRESETS: dict[str, DegradationPreset] = {
    "vfhq": DegradationPreset("vfhq", (5.0, 10.0), 0.5, 41, (4.0, 4.0), (0.0, 10.0), True, None, (18, 25)),
    "codeformer": DegradationPreset("codeformer", (1.0, 15.0), 0.5, 41, (4.0, 30.0), (0.0, 20.0), False,
                                    (30, 80), None),
}
if set(PRESETS) != set(choices(DegradePresetName)):
    raise RuntimeError("degradation.video.PRESETS and vidrestore.names.DegradePresetName disagree")


@dataclass(frozen=True)
class FrameParams:
    """The degradation of one frame (for logs, reports and tests).

    ``sigma``: (σx, σy) px; ``theta``: kernel rotation, radians; ``scale``: downsampling
    factor; ``noise_sigma``: 8-bit units; ``jpeg_quality`` / ``crf``: None where not used.
    """

    sigma: tuple[float, float]
    theta: float
    scale: float
    noise_sigma: float
    jpeg_quality: int | None
    crf: int | None


class ClipDegradation:
    """One clip's degradation, drawn from ``seed`` (module doc).

    Args:
        preset: the ranges.
        seed: everything random derives from it.
    """

    def __init__(self, preset: DegradationPreset | str, seed: int = 0) -> None:
        if isinstance(preset, str):
            if preset not in PRESETS:
                raise ConfigError(f"unknown degradation preset {preset!r}; choose one of {', '.join(PRESETS)}")
            preset = PRESETS[preset]
        self.preset = preset
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 0])
        p = preset
        self._aniso = bool(rng.uniform() < p.aniso_prob)
        self._base = {  # position within each range, in [0, 1]
            "sigma_x": rng.uniform(), "sigma_y": rng.uniform(), "theta": rng.uniform(),
            "scale": rng.uniform(), "noise": rng.uniform(), "jpeg": rng.uniform(),
        }
        self._waves = {k: (rng.uniform(3.0, 10.0, 2), rng.uniform(0, 2 * math.pi, 2)) for k in self._base}
        self.crf = int(rng.integers(p.crf[0], p.crf[1] + 1)) if p.crf else None

    def _value(self, key: str, bounds: tuple[float, float], t: float) -> float:
        periods, phases = self._waves[key]
        wave = 0.5 * float(np.sin(2 * math.pi * t / periods + phases).sum())  # in [-1, 1]
        u = min(max(self._base[key] + self.preset.drift * wave, 0.0), 1.0)
        return bounds[0] + u * (bounds[1] - bounds[0])

    def params(self, time_s: float) -> FrameParams:
        """The parameters at ``time_s`` seconds into the clip."""
        p = self.preset
        sx = self._value("sigma_x", p.blur_sigma, time_s)
        sy = self._value("sigma_y", p.blur_sigma, time_s) if self._aniso else sx
        theta = self._value("theta", (-math.pi, math.pi), time_s) if self._aniso else 0.0
        jpeg = int(round(self._value("jpeg", p.jpeg, time_s))) if p.jpeg else None
        return FrameParams((sx, sy), theta, self._value("scale", p.downsample, time_s),
                           self._value("noise", p.noise, time_s), jpeg, self.crf)

    def small_size(self, width: int, height: int, time_s: float = 0.0) -> tuple[int, int]:
        """The downsampled size (even, as 4:2:0 video needs) of a ``width×height`` frame."""
        scale = self.params(time_s).scale
        return _even(width / scale), _even(height / scale)

    def degrade_frame(self, image: np.ndarray, index: int, time_s: float,
                      size: tuple[int, int] | None = None) -> np.ndarray:
        """Blur, noise, downsample (to ``size``, default ``small_size`` at ``time_s``), noise
        and JPEG of one frame; the video compression and the upsampling are the caller's.

        Args:
            image: H×W×3 RGB, uint8 or uint16.
            index: the frame's index (seeds its noise).
            time_s: its time in the clip (sets the drifting parameters).

        Returns:
            the small frame, uint8 RGB.
        """
        params = self.params(time_s)
        scale_to = size or self.small_size(image.shape[1], image.shape[0], time_s)
        peak = 65535.0 if image.dtype == np.uint16 else 255.0
        img = image.astype(np.float32) / peak
        kernel = gaussian_kernel(self.preset.kernel_size, *params.sigma, params.theta)
        img = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        noise = np.random.default_rng([self.seed, 1, int(index)])
        if self.preset.noise_after_downsample:
            img = _add_noise(img, params.noise_sigma, noise)
        img = cv2.resize(img, scale_to, interpolation=cv2.INTER_LINEAR if params.scale < 8 else cv2.INTER_AREA)
        img = _add_noise(img, params.noise_sigma, noise)
        small = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
        if params.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            small = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        return small


def upsample(small: np.ndarray, width: int, height: int, dtype=np.uint8) -> np.ndarray:
    """Back to the frame's size (bilinear, as CodeFormer's degradation), in ``dtype``."""
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if dtype == np.uint16:
        return big.astype(np.uint16) * 257
    return big


def _add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    if sigma <= 0:
        return img
    return img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)
