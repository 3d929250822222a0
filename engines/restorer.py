"""Any ``Engine`` as the pipeline's ``Restorer``: host arrays in, host arrays out.

On a GPU the faces go up through a pinned host buffer on a copy stream, the engine computes
on its own stream, and results come back through pinned memory, so the copies overlap with
compute and with the CPU stages running in other threads. A batch that runs out of device
memory is split in half and retried, down to one face.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Engine


class EngineRestorer:
    """Adapts an ``Engine`` to ``vidrestore.stage.Restorer``.

    Args:
        engine: the built backend.
        name: label for logs (default: the engine's ``info.label``).
    """

    def __init__(self, engine: Engine, name: str | None = None) -> None:
        self.engine = engine
        self.name = name or engine.info.label
        self.uses_identity = engine.uses_identity
        self.face_size = engine.info.face_size
        self.device = torch.device(engine.info.device)
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            self._copy_stream = torch.cuda.Stream(self.device)
            self._compute_stream = torch.cuda.Stream(self.device)
        self.splits = 0  # batches halved after running out of memory

    def restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        """N×S×S×3 float32 [0, 1] → the same, restored (see ``Restorer``)."""
        try:
            return self._restore(faces, identities, fidelity)
        except torch.OutOfMemoryError:
            if len(faces) == 1:
                raise
            if self._cuda:
                torch.cuda.empty_cache()
            self.splits += 1
            half = len(faces) // 2
            first = self.restore(faces[:half], None if identities is None else identities[:half], fidelity)
            second = self.restore(faces[half:], None if identities is None else identities[half:], fidelity)
            return np.concatenate([first, second])

    def _restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        host = torch.from_numpy(np.ascontiguousarray(faces))
        ids = torch.from_numpy(np.ascontiguousarray(identities, dtype=np.float32)) if identities is not None else None
        if not self._cuda:
            x = host.permute(0, 3, 1, 2).mul(2).sub(1)
            out = self.engine.run(x, ids, fidelity)
            return _to_host_layout(out).numpy()
        with torch.cuda.stream(self._copy_stream):
            x = host.pin_memory().to(self.device, non_blocking=True)
            ids_dev = ids.pin_memory().to(self.device, non_blocking=True) if ids is not None else None
        self._compute_stream.wait_stream(self._copy_stream)
        with torch.cuda.stream(self._compute_stream):
            x = x.permute(0, 3, 1, 2).mul(2).sub(1)
            out = _to_host_layout(self.engine.run(x, ids_dev, fidelity))
            result = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
            result.copy_(out, non_blocking=True)
        self._compute_stream.synchronize()
        return result.numpy()


def _to_host_layout(out: torch.Tensor) -> torch.Tensor:
    """B×3×S×S in [−1, 1] → B×S×S×3 float32 in [0, 1], contiguous."""
    return out.float().add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous()
