"""The one small protocol every restoration backend satisfies.

An engine is built (or loaded from its cache) for one network, one device and one precision;
then it runs batches of aligned faces already on its device:

    x:        B×3×S×S in [−1, 1], on ``info.device``
    identity: B×512 unit ArcFace vectors (identity-conditioned networks only), or None
    w:        CodeFormer's fidelity weight — an input of every backend, never a constant
    returns   B×3×S×S in [−1, 1] on the same device

``EngineRestorer`` (engines.restorer) turns any engine into the pipeline's ``Restorer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from torch import Tensor


@dataclass(frozen=True)
class EngineInfo:
    """What an engine is, for logs, ``engines list`` and ``bench``.

    Attributes:
        backend: ``torch``, ``compiled``, ``onnxruntime`` or ``tensorrt``.
        model: the network's registry name.
        precision: ``fp32``, ``fp16`` or ``bf16`` (what the heavy layers compute in).
        device: ``cpu`` or ``cuda:N``.
        face_size: S.
        max_batch: the largest batch it accepts (None: any).
        artifact: the cached file it was loaded from, if any.
    """

    backend: str
    model: str
    precision: str
    device: str
    face_size: int = 512
    max_batch: int | None = None
    artifact: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.model}/{self.backend}-{self.precision}@{self.device}"


@runtime_checkable
class Engine(Protocol):
    """A built restoration backend (see module docstring)."""

    info: EngineInfo
    uses_identity: bool

    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        """Restore one batch (shapes and ranges in the module docstring)."""
        ...
