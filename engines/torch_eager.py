"""The ``torch`` backend: the network itself, eager, in fp32 / fp16 / bf16, channels-last."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import EngineInfo

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchEngine:
    """Runs a registry network eagerly.

    Args:
        net: the loaded network (moved to ``device`` and cast here).
        model: its registry name.
        uses_identity: forward takes ``(x, identity, w)`` instead of ``(x, w)``.
        takes_fidelity: forward takes ``w`` (CodeFormer++ does not: it fuses both ends).
        device: where to run.
        precision: ``fp32``, ``fp16`` or ``bf16``. Reduced precision casts the weights; the
            network keeps its numerically sensitive steps (AdaIN statistics) in fp32.
        channels_last: use the NHWC memory layout (faster convolutions on GPUs).
    """

    def __init__(self, net: nn.Module, model: str, *, uses_identity: bool, takes_fidelity: bool,
                 device: torch.device, precision: str = "fp32", channels_last: bool = False,
                 face_size: int = 512) -> None:
        self.dtype = DTYPES[precision]
        self.net = net.eval().to(device=device, dtype=self.dtype)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.uses_identity = uses_identity
        self.takes_fidelity = takes_fidelity
        self.info = EngineInfo("torch", model, precision, str(device), face_size)

    @torch.inference_mode()
    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        x = x.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        args: list = [x]
        if self.uses_identity:
            if identity is None:
                raise ValueError(f"{self.info.model} needs an identity vector per face")
            args.append(identity.to(self.dtype))
        if self.takes_fidelity:
            args.append(w)
        out = self.net(*args)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float()
