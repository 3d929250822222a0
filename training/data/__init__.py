"""Training data: aligned face datasets, the degradation model, the resumable sample order."""

from .datasets import FaceDataset, folder_paths, identity_paths, list_images
from vidrestore.degradation import DegradationConfig, DegradationParams, degrade
from .sampler import StreamSampler

__all__ = [
    "DegradationConfig",
    "DegradationParams",
    "FaceDataset",
    "StreamSampler",
    "degrade",
    "folder_paths",
    "identity_paths",
    "list_images",
]
