"""Degradation models: CodeFormer's per-image model (``model``, used by the training data) and
clip degradations coherent along a video (``video``, used by ``vidrestore degrade``)."""

from .model import DegradationConfig, DegradationParams, degrade, gaussian_kernel, to_gray
from .video import PRESETS, ClipDegradation, DegradationPreset, FrameParams, upsample

__all__ = [
    "PRESETS",
    "ClipDegradation",
    "DegradationConfig",
    "DegradationParams",
    "DegradationPreset",
    "FrameParams",
    "degrade",
    "gaussian_kernel",
    "to_gray",
    "upsample",
]
