"""The one small protocol every restoration backend satisfies.

An engine is built (or loaded from its cache) for one network, one device and one precision;
then it runs batches of aligned faces already on its device:

    x:        B×3×S×S in [−1, 1], on ``info.device``
    identity: B×512 unit ArcFace vectors (identity-conditioned networks only), or None
    w:        CodeFormer's fidelity weight — an input of every backend, never a constant
    returns   B×3×S×S float32 in [−1, 1] on the same device

``EngineRestorer`` (engines.restorer_adapter) turns any engine into the pipeline's ``Restorer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from torch import Tensor

from vidrestore.names import BackendName, choices

BACKENDS: tuple[str, ...] = choices(BackendName)
"""Every backend ``build_engine`` knows (``vidrestore.names.BackendName``)."""


@dataclass(frozen=True)
class EngineInfo:
    """What an engine is, for logs, ``engines list`` and ``bench``.

    Attributes:
        backend: one of ``BACKENDS``.
        model: the network's registry name.
        precision: ``fp32``, ``fp16`` or ``bf16`` (what the heavy layers compute in).
        device: ``cpu`` or ``cuda:N``.
        face_size: S.
        max_batch: the largest batch it accepts (None: any).
        artifact: the cached file it was loaded from, if any.
        inputs: its input names, in order (``x``, ``identity``, ``w``).
        batch: the ``(min, opt, max)`` batch profile it was built for (None: any batch).
        detail: how it runs (execution provider, CUDA graphs, compile mode...).
    """

    backend: str
    model: str
    precision: str
    device: str
    face_size: int = 512
    max_batch: int | None = None
    artifact: Path | None = None
    inputs: tuple[str, ...] = ("x", "w")
    batch: tuple[int, int, int] | None = None
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.model}/{self.backend}-{self.precision}@{self.device}"

    def shapes(self) -> dict[str, str]:
        """Input and output shapes with the batch as ``B`` (``{"x": "B×3×512×512", ...}``)."""
        s = self.face_size
        known = {"x": f"B×3×{s}×{s}", "identity": "B×512", "w": "B"}
        return {**{name: known.get(name, "?") for name in self.inputs}, "image": f"B×3×{s}×{s}"}

    def describe(self) -> str:
        """One line for logs: label, shapes, batch profile, detail."""
        shapes = ", ".join(f"{k} {v}" for k, v in self.shapes().items())
        batch = f"; batch {self.batch[0]}..{self.batch[2]}" if self.batch else ""
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.label} ({shapes}{batch}{detail})"


@runtime_checkable
class Engine(Protocol):
    """A built restoration backend (see module docstring)."""

    info: EngineInfo
    uses_identity: bool

    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        """Restore one batch (shapes and ranges in the module docstring)."""
        ...


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory error of any backend (torch, ONNX Runtime, TensorRT)."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "failed to allocate memory", "cuda_error_out_of_memory",
                                   "outofmemory", "bad_alloc"))
