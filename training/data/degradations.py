"""CodeFormer's degradation model, for the training data: it lives in the runtime
(``vidrestore.degradation``, which ``vidrestore degrade`` uses too) and is re-exported here."""

from vidrestore.degradation.model import (
    DegradationConfig,
    DegradationParams,
    KernelType,
    degrade,
    gaussian_kernel,
    to_gray,
)

__all__ = ["DegradationConfig", "DegradationParams", "KernelType", "degrade", "gaussian_kernel", "to_gray"]
