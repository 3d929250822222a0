"""Engines for the split network: code prediction and decoding as two graphs on any backend.

``SplitEngine`` runs the two halves of ``engines.split_network`` (``predict`` → ``CodeTensors``
→ ``decode``) with one backend: ``torch`` (eager modules), ``compiled`` (two AOTInductor
packages), ``onnxruntime`` (two ONNX graphs) or ``tensorrt`` (two plans). It is also an
``Engine``: ``run(x, identity, w)`` is ``decode(predict(x))``, the per-frame face.

Tensors stay on the engine's device between the halves; the caller may fuse the logits and
latents of several frames (``vidrestore.models.temporal``) before decoding.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from .base import EngineInfo
from .split_network import SplitIO

GraphRunner = Callable[..., Sequence[Tensor]]
"""One exported half: positional float32 inputs (in ``SplitIO.input_names`` order) → its
outputs (in ``SplitIO.output_names`` order), on the engine's device."""


class CodeTensors(NamedTuple):
    """What the predict half gives for a batch (or one face): logits ``B×N×K``, the latent
    ``B×C×s×s`` and the CFT skips (one ``B×C_side×side×side`` per side, in ``SplitIO.sides``
    order)."""

    logits: Tensor
    lq_feat: Tensor
    skips: tuple[Tensor, ...]

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.logits.shape[0])

    def item(self, i: int) -> "CodeTensors":
        """Face ``i`` as a batch of one (views, no copy)."""
        return CodeTensors(self.logits[i : i + 1], self.lq_feat[i : i + 1], tuple(s[i : i + 1] for s in self.skips))

    @staticmethod
    def stack(items: Sequence["CodeTensors"]) -> "CodeTensors":
        """Several faces' tensors as one batch (concatenated along the batch axis)."""
        if len(items) == 1:
            return items[0]
        return CodeTensors(torch.cat([c.logits for c in items]), torch.cat([c.lq_feat for c in items]),
                           tuple(torch.cat(parts) for parts in zip(*(c.skips for c in items))))

    def with_codes(self, logits: Tensor, lq_feat: Tensor) -> "CodeTensors":
        """The same skips with other (fused) logits and latent."""
        return CodeTensors(logits, lq_feat, self.skips)


class SplitEngine:
    """The two halves of a split network on one backend (module doc).

    Args:
        predict: the predict half's runner.
        decode: the decode half's runner.
        split: the halves' names and shapes.
        info: what it is (``info.inputs`` are the whole network's inputs).
    """

    def __init__(self, predict: GraphRunner, decode: GraphRunner, split: SplitIO, info: EngineInfo) -> None:
        self._predict = predict
        self._decode = decode
        self.split = split
        self.io = split.io
        self.info = info
        self.uses_identity = split.io.uses_identity

    @torch.inference_mode()
    def predict(self, x: Tensor, identity: Tensor | None) -> CodeTensors:
        """``x`` ``B×3×S×S`` in [−1, 1] on the engine's device → its ``CodeTensors``."""
        inputs = self.io.inputs(x, identity, 0.0)
        outputs = list(self._predict(*inputs[: 2 if self.uses_identity else 1]))
        return CodeTensors(outputs[0], outputs[1], tuple(outputs[2:]))

    @torch.inference_mode()
    def decode(self, codes: CodeTensors, identity: Tensor | None, w: float | Tensor) -> Tensor:
        """``CodeTensors`` (fused or not) → image ``B×3×S×S`` float32 in [−1, 1]."""
        batch = len(codes)
        args: list[Tensor] = [codes.logits.float(), codes.lq_feat.float(), *(s.float() for s in codes.skips)]
        device = codes.logits.device
        if self.uses_identity:
            if identity is None:
                raise ValueError(f"{self.io.model} needs an identity vector per face")
            args.append(identity.to(device=device, dtype=torch.float32))
        if self.io.takes_fidelity:
            if isinstance(w, Tensor):
                args.append(w.to(device=device, dtype=torch.float32).expand(batch).contiguous())
            else:
                args.append(torch.full((batch,), float(w), device=device, dtype=torch.float32))
        out = self._decode(*args)
        return out[0] if isinstance(out, (list, tuple)) else out

    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        """The per-frame face: ``decode(predict(x))`` (the ``Engine`` protocol)."""
        return self.decode(self.predict(x, identity), identity, w)


def module_runner(module: torch.nn.Module, *, channels_last: bool = False) -> GraphRunner:
    """An eager (or ``torch.compile``d) half as a runner; ``channels_last`` lays image-like
    4-d inputs out NHWC (faster convolutions with oneDNN and on GPUs)."""

    def run(*inputs: Tensor) -> Sequence[Tensor]:
        if channels_last:
            inputs = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs)
        out = module(*inputs)
        return out if isinstance(out, (list, tuple)) else (out,)

    return run
