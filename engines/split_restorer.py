"""A ``SplitEngine`` as the pipeline's ``CodeRestorer``: host faces in, device codes between.

``predict`` takes aligned faces from the host and gives each face's ``CodeTensors`` on the
engine's device; ``decode`` takes ``CodeTensors`` (fused over frames by the caller, or not)
and gives restored faces back on the host. ``restore`` is both at once, so a
``SplitRestorer`` is also a plain ``Restorer``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .split import CodeTensors, SplitEngine


class SplitRestorer:
    """Adapts a ``SplitEngine`` (see module doc; protocol ``pipeline.contracts.CodeRestorer``).

    Args:
        engine: the built split backend.
        name: label for logs (default: the engine's ``info.label``).
    """

    def __init__(self, engine: SplitEngine, name: str | None = None) -> None:
        self.engine = engine
        self.name = name or engine.info.label
        self.uses_identity = engine.uses_identity
        self.face_size = engine.info.face_size
        self.device = torch.device(engine.info.device)
        self.max_batch: int | None = engine.info.max_batch

    def predict(self, faces: np.ndarray, identities: np.ndarray | None) -> list[CodeTensors]:
        """``N×S×S×3`` float32 RGB [0, 1] → one ``CodeTensors`` (a batch of one) per face."""
        out: list[CodeTensors] = []
        for start, stop in self._chunks(len(faces)):
            x = _to_device(faces[start:stop], self.device).permute(0, 3, 1, 2).mul(2).sub(1)
            ids = None if identities is None else _to_device(identities[start:stop], self.device)
            codes = self.engine.predict(x, ids)
            out += [codes.item(i) for i in range(len(codes))]
        return out

    def decode(self, codes: Sequence[CodeTensors], identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        """One ``CodeTensors`` per face → ``N×S×S×3`` float32 RGB [0, 1] on the host."""
        results = []
        for start, stop in self._chunks(len(codes)):
            batch = CodeTensors.stack(list(codes[start:stop]))
            ids = None if identities is None else _to_device(identities[start:stop], self.device)
            image = self.engine.decode(batch, ids, fidelity)
            results.append(image.float().add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous().cpu().numpy())
        return np.concatenate(results) if results else np.zeros((0, self.face_size, self.face_size, 3), np.float32)

    def restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        """Each face on its own: ``decode(predict(faces))`` (the ``Restorer`` protocol)."""
        return self.decode(self.predict(faces, identities), identities, fidelity)

    def _chunks(self, n: int):
        step = self.max_batch or n or 1
        return [(i, min(i + step, n)) for i in range(0, n, step)]


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.to(device, non_blocking=True) if device.type != "cpu" else t
