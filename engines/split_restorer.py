"""A ``SplitEngine`` as the pipeline's ``CodeRestorer``: faces in, device codes between.

``predict`` takes aligned faces (a host array, or a tensor on the engine's device as the
device face ops make them) and gives each face's ``CodeTensors`` on the engine's device;
``decode`` takes ``CodeTensors`` (fused over frames by the caller, or not) and gives restored
faces back on the host. ``restore`` is both at once, so a ``SplitRestorer`` is also a plain
``Restorer``.

``submit_decode`` is ``decode`` without waiting, as ``EngineRestorer.submit`` is for the
whole network (``engines.restorer_adapter``): on a GPU the decode runs on its own CUDA stream
and the result comes down on another, ordered by events; the ticket's ``ready()`` asks the
last event, ``result()`` waits for that batch alone. With ``on_device`` the result stays on
the device (``ticket.event`` for the stream that reads it). On the CPU the ticket comes back
finished. ``predict`` itself never waits on a GPU: its outputs stay on the device.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .restorer_adapter import GPU_DEPTH, DoneTicket, RestoreTicket, cuda_ticket
from .split import CodeTensors, SplitEngine


class SplitRestorer:
    """Adapts a ``SplitEngine`` (see module doc; protocol ``pipeline.contracts.CodeRestorer``).

    Args:
        engine: the built split backend.
        name: label for logs (default: the engine's ``info.label``).

    Attributes:
        depth: decode batches worth keeping in flight (``GPU_DEPTH`` on a GPU, 1 on the CPU).
        takes_tensors: ``predict`` and ``restore`` also take faces already on the device.
    """

    takes_tensors = True

    def __init__(self, engine: SplitEngine, name: str | None = None) -> None:
        self.engine = engine
        self.name = name or engine.info.label
        self.uses_identity = engine.uses_identity
        self.face_size = engine.info.face_size
        self.device = torch.device(engine.info.device)
        self.max_batch: int | None = engine.info.max_batch
        self._cuda = self.device.type == "cuda"
        self.depth = GPU_DEPTH if self._cuda else 1
        if self._cuda:
            self._compute = torch.cuda.Stream(self.device)
            self._download = torch.cuda.Stream(self.device)

    def predict(self, faces: np.ndarray | Tensor, identities: np.ndarray | None) -> list[CodeTensors]:
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
        return self.submit_decode(codes, identities, fidelity).result()

    def submit_decode(self, codes: Sequence[CodeTensors], identities: np.ndarray | None, fidelity: float, *,
                      on_device: bool = False) -> RestoreTicket:
        """Queue ``decode`` (module doc); the ticket's result is the host array, or with
        ``on_device`` a ``N×S×S×3`` tensor on the engine's device."""
        if not self._cuda:
            out = self._decoded(codes, identities, fidelity)
            return DoneTicket(out if on_device else out.numpy())
        self._compute.wait_stream(torch.cuda.current_stream(self.device))  # the codes were made there
        computed = torch.cuda.Event()
        with torch.cuda.stream(self._compute):
            out = self._decoded(codes, identities, fidelity)
            computed.record(self._compute)
        for code in codes:  # made on the caller's stream, read on the compute stream
            for t in (code.logits, code.lq_feat, *code.skips):
                t.record_stream(self._compute)
        return cuda_ticket(out, computed, self._download, on_device=on_device)

    def restore(self, faces: np.ndarray | Tensor, identities: np.ndarray | None, fidelity: float) -> np.ndarray | Tensor:
        """Each face on its own: ``decode(predict(faces))`` (the ``Restorer`` protocol); a
        tensor of faces on the device gives a tensor there."""
        codes = self.predict(faces, identities)
        return self.submit_decode(codes, identities, fidelity, on_device=isinstance(faces, Tensor)).result()

    def _decoded(self, codes: Sequence[CodeTensors], identities: np.ndarray | None, fidelity: float) -> Tensor:
        """The decode half over ``codes`` in chunks of ``max_batch``: ``N×S×S×3`` float32 [0, 1]
        on the engine's device, on the current stream."""
        results = []
        for start, stop in self._chunks(len(codes)):
            batch = CodeTensors.stack(list(codes[start:stop]))
            ids = None if identities is None else _to_device(identities[start:stop], self.device)
            image = self.engine.decode(batch, ids, fidelity)
            results.append(image.float().add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous())
        if not results:
            return torch.zeros((0, self.face_size, self.face_size, 3), dtype=torch.float32, device=self.device)
        return results[0] if len(results) == 1 else torch.cat(results)

    def _chunks(self, n: int):
        step = self.max_batch or n or 1
        return [(i, min(i + step, n)) for i in range(0, n, step)]


def _to_device(array: np.ndarray | Tensor, device: torch.device) -> Tensor:
    if isinstance(array, Tensor):
        return array.to(device, torch.float32)
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.to(device, non_blocking=True) if device.type != "cpu" else t
