"""A frame's copy on the torch device, and the CUDA events its users wait for.

On CUDA a frame goes up once: copied into pinned host memory (PyTorch's caching host
allocator, so the block is reused only after its copy has finished) and sent with
``non_blocking`` on an upload stream. Every stage that works on the copy runs on its own
stream and waits for the events the stages before it recorded (``DeviceFrame.wait``), then
records its own (``DeviceFrame.mark``): work is ordered on the device, and no thread blocks
until the paste stage needs its pixels back. On the CPU the "copy" shares the host frame's
memory and the events are empty: the same code runs, synchronously.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


def stream_context(stream):
    """``torch.cuda.stream(stream)``, or nothing for ``stream`` None (the CPU)."""
    return torch.cuda.stream(stream) if stream is not None else nullcontext()


def new_stream(device: torch.device):
    """A CUDA stream on ``device``, or None on the CPU."""
    return torch.cuda.Stream(device) if device.type == "cuda" else None


def used_on(tensor: Tensor | None, stream) -> None:
    """Tell the caching allocator that ``tensor`` (made on another stream) is used on ``stream``,
    so its memory is not handed out again before the work queued there has run."""
    if tensor is not None and stream is not None and tensor.is_cuda:
        tensor.record_stream(stream)


@dataclass
class DeviceFrame:
    """A frame's pixels on the torch device while the device face ops work on them.

    Attributes:
        image: H×W×3 uint8 or uint16 tensor (the host frame's layout and units); on the CPU
            it shares the host frame's memory.
        events: CUDA events recorded by the work queued on ``image`` and on the tensors made
            from it (crops, restored faces); a stream that uses any of them waits for all.
    """

    image: Tensor
    events: list = field(default_factory=list)

    def wait(self, stream) -> None:
        """Make ``stream`` (None: the CPU, nothing to do) wait for every recorded event."""
        if stream is not None:
            for event in self.events:
                stream.wait_event(event)

    def wait_here(self) -> None:
        """Make the calling thread's current stream wait for every recorded event (before
        reading the frame's tensors outside the device face ops' own streams)."""
        if self.image.is_cuda:
            self.wait(torch.cuda.current_stream(self.image.device))

    def mark(self, stream) -> None:
        """Record an event on ``stream`` after the work queued there so far."""
        if stream is not None:
            event = torch.cuda.Event()
            event.record(stream)
            self.events.append(event)

    def after(self, event) -> None:
        """Add an event recorded elsewhere (e.g. by the restorer's compute stream)."""
        if event is not None:
            self.events.append(event)


def upload(image: np.ndarray, device: torch.device, stream=None) -> DeviceFrame:
    """``image`` (H×W×3 uint8 / uint16) as a ``DeviceFrame`` on ``device``: on CUDA through
    pinned memory on ``stream`` without blocking; on the CPU a tensor sharing its memory."""
    host = torch.from_numpy(np.ascontiguousarray(image))
    if device.type != "cuda":
        return DeviceFrame(host)
    pinned = host.pin_memory()
    with stream_context(stream):
        on_device = pinned.to(device, non_blocking=True)
    frame = DeviceFrame(on_device)
    frame.mark(stream if stream is not None else torch.cuda.current_stream(device))
    return frame
