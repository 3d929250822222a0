"""Any ``Engine`` as the pipeline's ``Restorer``: host arrays in, host arrays out.

On a GPU, faces go up through a reused pinned host buffer on a copy stream; the engine runs
on a compute stream that waits for the upload's event; results come back into a reused
pinned buffer on the copy stream after the compute event; the calling thread blocks only on
the last event (releasing the GIL), so the CPU stages in the other pipeline threads keep
running meanwhile. On the CPU, the engine is called directly on the arrays.

A batch that runs out of memory is split in half and retried (down to one face); the largest
size that worked is remembered, so later batches are split up front instead of failing again.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Engine, is_out_of_memory


class EngineRestorer:
    """Adapts an ``Engine`` to the pipeline's ``Restorer`` protocol (``vidrestore.pipeline.contracts``).

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
        self.max_batch: int | None = engine.info.max_batch
        self.splits = 0  # batches halved after running out of memory
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            self._copy_stream = torch.cuda.Stream(self.device)
            self._compute_stream = torch.cuda.Stream(self.device)
            self._pinned: dict[str, torch.Tensor] = {}

    def restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        """N×S×S×3 float32 [0, 1] → the same, restored (see ``Restorer``)."""
        limit = self.max_batch
        if limit is not None and len(faces) > limit:
            return np.concatenate([
                self.restore(faces[i : i + limit], None if identities is None else identities[i : i + limit],
                             fidelity)
                for i in range(0, len(faces), limit)
            ])
        try:
            return self._restore(faces, identities, fidelity)
        except Exception as exc:
            if not is_out_of_memory(exc) or len(faces) == 1:
                raise
        if self._cuda:
            torch.cuda.empty_cache()
        self.splits += 1
        half = (len(faces) + 1) // 2
        self.max_batch = half if self.max_batch is None else min(self.max_batch, half)
        return self.restore(faces, identities, fidelity)

    def _restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        ids = None if identities is None else np.ascontiguousarray(identities, dtype=np.float32)
        if not self._cuda:
            x = torch.from_numpy(faces).permute(0, 3, 1, 2).mul(2).sub(1)
            out = self.engine.run(x, None if ids is None else torch.from_numpy(ids), fidelity)
            return _to_host_layout(out).numpy()
        return self._restore_cuda(faces, ids, fidelity)

    def _restore_cuda(self, faces: np.ndarray, ids: np.ndarray | None, fidelity: float) -> np.ndarray:
        n = len(faces)
        host_in = self._buffer("faces", faces.shape)
        host_in.numpy()[...] = faces
        host_ids = None
        if ids is not None:
            host_ids = self._buffer("ids", ids.shape)
            host_ids.numpy()[...] = ids
        uploaded = torch.cuda.Event()
        with torch.cuda.stream(self._copy_stream):
            x_dev = host_in.to(self.device, non_blocking=True)
            ids_dev = host_ids.to(self.device, non_blocking=True) if host_ids is not None else None
            uploaded.record()
        computed = torch.cuda.Event()
        with torch.cuda.stream(self._compute_stream):
            self._compute_stream.wait_event(uploaded)
            x = x_dev.permute(0, 3, 1, 2).mul(2).sub(1)
            out = _to_host_layout(self.engine.run(x, ids_dev, fidelity))
            computed.record()
        downloaded = torch.cuda.Event()
        host_out = self._buffer("out", (n, *out.shape[1:]))
        with torch.cuda.stream(self._copy_stream):
            self._copy_stream.wait_event(computed)
            host_out.copy_(out, non_blocking=True)
            downloaded.record()
        # Tensors made on one stream and used on another must not be freed early.
        for t in (x_dev, ids_dev):
            if t is not None:
                t.record_stream(self._compute_stream)
        out.record_stream(self._copy_stream)
        downloaded.synchronize()
        return host_out.numpy().copy()  # the pinned buffer is reused by the next call

    def _buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A pinned host tensor of ``shape``: a view of a buffer that only grows."""
        need = int(np.prod(shape))
        buf = self._pinned.get(name)
        if buf is None or buf.numel() < need:
            buf = torch.empty(need, dtype=torch.float32, pin_memory=True)
            self._pinned[name] = buf
        return buf[:need].view(shape)


def _to_host_layout(out: torch.Tensor) -> torch.Tensor:
    """B×3×S×S in [−1, 1] → B×S×S×3 float32 in [0, 1], contiguous."""
    return out.float().add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous()
