"""The ``torch`` backend: the network itself, eager, in fp32 / fp16 / bf16, channels-last."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import EngineInfo
from .network import DTYPES, EngineNetwork, NetworkIO

__all__ = ["DTYPES", "TorchEngine"]


class TorchEngine:
    """Runs a registry network eagerly.

    Args:
        net: the loaded network (moved to ``device`` and cast in place).
        io: its inputs (``engines.network.network_io``).
        device: where to run.
        precision: ``fp32``, ``fp16`` or ``bf16``; reduced precision follows the plan of
            ``engines.network`` (code choice in fp32, decoder in the reduced dtype).
        channels_last: use the NHWC memory layout (faster convolutions on GPUs and with oneDNN).
    """

    def __init__(self, net: nn.Module, io: NetworkIO, *, device: torch.device,
                 precision: str = "fp32", channels_last: bool = False) -> None:
        self.module = EngineNetwork(net, io, precision).to(device)
        self.io = io
        self.channels_last = channels_last
        if channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.uses_identity = io.uses_identity
        self.info = EngineInfo("torch", io.model, precision, str(device), io.face_size,
                               inputs=io.input_names,
                               detail="channels-last" if channels_last else "contiguous")

    @torch.inference_mode()
    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.module(*self.io.inputs(x, identity, w))
