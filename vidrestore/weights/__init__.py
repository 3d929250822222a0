"""Known checkpoints and the store that finds, downloads and checks their files."""

from .registry import KNOWN_WEIGHTS, KnownWeights
from .store import VerifyResult, WeightStore, default_cache_dir, file_sha256

__all__ = [
    "KNOWN_WEIGHTS",
    "KnownWeights",
    "VerifyResult",
    "WeightStore",
    "default_cache_dir",
    "file_sha256",
]
