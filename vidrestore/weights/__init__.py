"""Known checkpoints and the store that finds, downloads and checks their files."""

from .registry import DEFAULT_RUN, KNOWN_WEIGHTS, KnownWeights
from .store import VerifyResult, WeightStore, default_cache_dir, file_sha256

__all__ = [
    "DEFAULT_RUN",
    "KNOWN_WEIGHTS",
    "KnownWeights",
    "VerifyResult",
    "WeightStore",
    "default_cache_dir",
    "file_sha256",
]
