"""Any ``Engine`` as the pipeline's ``Restorer``, with several batches in flight on a GPU.

    ticket = restorer.submit(faces, identities, w)   # returns at once on a GPU
    ...                                              # submit more; do other work
    restored = ticket.result()                       # waits for this batch only
    restored = restorer.restore(faces, identities, w)   # = submit(...).result()

On a GPU each batch goes through three CUDA streams, ordered by events, never by a
``synchronize()`` of the device:

- upload: the faces are copied into pinned host memory and sent to the device (event
  ``uploaded``);
- compute: waits for ``uploaded``, runs the engine — replayed as one CUDA graph per batch size
  for the eager backend (``CudaGraphs``: captured once, checked against a plain call, off for
  good if capture fails) — and records ``computed``;
- download: waits for ``computed`` and copies the result into pinned host memory
  (``downloaded``).

So while batch k computes, k+1 uploads and k−1 downloads. ``submit`` queues all three and
returns a ticket; ``ticket.ready()`` asks the batch's last event, ``ticket.result()`` waits
for it alone (releasing the GIL). Faces already on the device — a tensor N×S×S×3 float32 in
[0, 1] on the engine's device, as the device face ops make them — skip the upload, and the
result stays there: a tensor, with ``ticket.event`` (``computed``) for the stream that uses it
to wait on. Pinned blocks come from PyTorch's caching host allocator, which hands a block out
again only after the copies queued on it have run.

On the CPU the same API works synchronously: ``submit`` runs the engine and returns a
finished ticket.

A batch that runs out of memory is split in half and retried (down to one face); the largest
size that worked is remembered, so later batches are split up front instead of failing again.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from .base import Engine, is_out_of_memory
from .compiled import CudaGraphs

Log = Callable[[str], None]

GPU_DEPTH = 3
"""Batches in flight on a GPU: one uploading, one computing, one downloading."""


class RestoreTicket(Protocol):
    """One submitted batch.

    Attributes:
        event: for a result that stays on the device, the CUDA event its consumer's stream
            must wait for; None otherwise.
    """

    event: Any

    def ready(self) -> bool:
        """Whether ``result()`` would return without waiting."""
        ...

    def result(self) -> np.ndarray | Tensor:
        """The restored faces (a host array for host input, a device tensor for device input)."""
        ...


class DoneTicket:
    """A batch that is already finished (the CPU path, a synchronous restorer)."""

    event = None

    def __init__(self, value: np.ndarray | Tensor) -> None:
        self._value = value

    def ready(self) -> bool:
        return True

    def result(self) -> np.ndarray | Tensor:
        return self._value


class _CudaTicket:
    """A batch queued on the streams: its result is ready once ``_done`` has fired."""

    def __init__(self, done: torch.cuda.Event, out: Tensor, *, on_device: bool) -> None:
        self._done = done
        self._out = out
        self._on_device = on_device
        self.event = done if on_device else None

    def ready(self) -> bool:
        return self._on_device or self._done.query()

    def result(self) -> np.ndarray | Tensor:
        if self._on_device:
            return self._out  # the consumer's stream waits for ``event``
        self._done.synchronize()
        return self._out.numpy()  # a pinned block of this batch alone (freed with the array)


class _JoinedTicket:
    """Several tickets of one batch (split by ``max_batch`` or after running out of memory)."""

    def __init__(self, parts: Sequence[RestoreTicket]) -> None:
        self._parts = list(parts)
        self.event = None
        self._value = None

    def ready(self) -> bool:
        return self._value is not None or all(p.ready() for p in self._parts)

    def result(self) -> np.ndarray | Tensor:
        if self._value is None:
            values = [p.result() for p in self._parts]
            if isinstance(values[0], Tensor):
                device = values[0].device
                if device.type == "cuda":  # concatenated on the current stream, after every part
                    stream = torch.cuda.current_stream(device)
                    for p in self._parts:
                        if p.event is not None:
                            stream.wait_event(p.event)
                self._value = torch.cat(values)
                if device.type == "cuda":
                    self.event = torch.cuda.Event()
                    self.event.record(stream)
            else:
                self._value = np.concatenate(values)
        return self._value


class EngineRestorer:
    """Adapts an ``Engine`` to the pipeline's ``Restorer`` protocol (``vidrestore.pipeline.contracts``),
    with ``submit`` for batches in flight (module doc).

    Args:
        engine: the built backend.
        name: label for logs (default: the engine's ``info.label``).
        cuda_graphs: replay the engine as CUDA graphs per batch size (default: on for the
            eager backend on a GPU; the compiled backend captures its own).
        log: notes (CUDA graphs switched off, and why).

    Attributes:
        depth: batches worth keeping in flight (``GPU_DEPTH`` on a GPU, 1 on the CPU).
        takes_tensors: ``submit`` also takes faces already on the engine's device.
    """

    takes_tensors = True

    def __init__(self, engine: Engine, name: str | None = None, *, cuda_graphs: bool | None = None,
                 log: Log = lambda line: None) -> None:
        self.engine = engine
        self.name = name or engine.info.label
        self.uses_identity = engine.uses_identity
        self.face_size = engine.info.face_size
        self.device = torch.device(engine.info.device)
        self.max_batch: int | None = engine.info.max_batch
        self.splits = 0  # batches halved after running out of memory
        self._cuda = self.device.type == "cuda"
        self.depth = GPU_DEPTH if self._cuda else 1
        self._graphs = None
        if self._cuda:
            self._upload = torch.cuda.Stream(self.device)
            self._compute = torch.cuda.Stream(self.device)
            self._download = torch.cuda.Stream(self.device)
            if cuda_graphs is None:
                cuda_graphs = engine.info.backend == "torch"
            if cuda_graphs:
                self._graphs = CudaGraphs(self._plain, self.device, log=log)

    @property
    def cuda_graphs(self) -> bool:
        """Whether batches are (still) replayed as CUDA graphs."""
        return self._graphs is not None and self._graphs.enabled

    def restore(self, faces: np.ndarray | Tensor, identities: np.ndarray | None, fidelity: float) -> np.ndarray | Tensor:
        """N×S×S×3 float32 [0, 1] → the same, restored (see ``Restorer``)."""
        return self.submit(faces, identities, fidelity).result()

    def submit(self, faces: np.ndarray | Tensor, identities: np.ndarray | None, fidelity: float) -> RestoreTicket:
        """Queue one batch (shapes as ``restore``); the ticket gives its result."""
        limit = self.max_batch
        if limit is not None and len(faces) > limit:
            return _JoinedTicket([
                self.submit(faces[i : i + limit], None if identities is None else identities[i : i + limit], fidelity)
                for i in range(0, len(faces), limit)
            ])
        try:
            return self._submit(faces, identities, fidelity)
        except Exception as exc:
            if not is_out_of_memory(exc) or len(faces) == 1:
                raise
        if self._cuda:
            torch.cuda.empty_cache()
        self.splits += 1
        half = (len(faces) + 1) // 2
        self.max_batch = half if self.max_batch is None else min(self.max_batch, half)
        return self.submit(faces, identities, fidelity)

    def _submit(self, faces, identities, fidelity: float) -> RestoreTicket:
        ids = None if identities is None else torch.from_numpy(np.ascontiguousarray(identities, dtype=np.float32))
        if self._cuda:
            return self._submit_cuda(faces, ids, fidelity)
        on_device = isinstance(faces, Tensor)
        x = faces if on_device else torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))
        out = _to_host_layout(self.engine.run(x.permute(0, 3, 1, 2).mul(2).sub(1), ids, fidelity))
        return DoneTicket(out if on_device else out.numpy())

    def _submit_cuda(self, faces, ids: Tensor | None, fidelity: float) -> RestoreTicket:
        on_device = isinstance(faces, Tensor)
        uploaded = None
        if on_device:
            # Made on the caller's current stream: the compute stream starts after it.
            x_dev = faces.to(self.device, torch.float32)
            self._compute.wait_stream(torch.cuda.current_stream(self.device))
            ids_dev = None if ids is None else ids.to(self.device)
        else:
            host = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32)).pin_memory()
            host_ids = None if ids is None else ids.pin_memory()
            with torch.cuda.stream(self._upload):
                x_dev = host.to(self.device, non_blocking=True)
                ids_dev = None if host_ids is None else host_ids.to(self.device, non_blocking=True)
                uploaded = torch.cuda.Event()
                uploaded.record(self._upload)
        computed = torch.cuda.Event()
        with torch.cuda.stream(self._compute):
            if uploaded is not None:
                self._compute.wait_event(uploaded)
            x = x_dev.permute(0, 3, 1, 2).mul(2).sub(1)
            out = _to_host_layout(self._run(x, ids_dev, fidelity))
            computed.record(self._compute)
        # Tensors made on one stream and used on another must not be freed early.
        for t in (x_dev, ids_dev):
            if t is not None:
                t.record_stream(self._compute)
        return cuda_ticket(out, computed, self._download, on_device=on_device)

    def _run(self, x: Tensor, ids: Tensor | None, fidelity: float) -> Tensor:
        if self._graphs is None or not self._graphs.enabled:
            return self.engine.run(x, ids, fidelity)
        w = torch.full((len(x),), float(fidelity), device=x.device)  # an input of the graph, not a constant
        return self._graphs(x, w) if ids is None else self._graphs(x, w, ids)

    def _plain(self, x: Tensor, w: Tensor, ids: Tensor | None = None) -> Tensor:
        """The engine called with ``w`` as a tensor (the eager backend takes one), for graphs."""
        return self.engine.run(x, ids, w)


def cuda_ticket(out: Tensor, computed: "torch.cuda.Event", download: "torch.cuda.Stream", *,
                on_device: bool) -> "_CudaTicket":
    """The ticket of a batch ``out`` whose compute ends at ``computed``: the tensor itself
    (``on_device``), or a pinned host copy made on the ``download`` stream after that event."""
    if on_device:
        return _CudaTicket(computed, out, on_device=True)
    host_out = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
    downloaded = torch.cuda.Event()
    with torch.cuda.stream(download):
        download.wait_event(computed)
        host_out.copy_(out, non_blocking=True)
        downloaded.record(download)
    out.record_stream(download)
    return _CudaTicket(downloaded, host_out, on_device=False)


def _to_host_layout(out: torch.Tensor) -> torch.Tensor:
    """B×3×S×S in [−1, 1] → B×S×S×3 float32 in [0, 1], contiguous."""
    return out.float().add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous()
