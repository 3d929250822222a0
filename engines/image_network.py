"""A second kind of network for the engines: image to image (Real-ESRGAN's RRDBNet).

CodeFormer's path (``network.NetworkIO``, ``EngineNetwork``, ``build.build_engine``) is left as
it is; this module gives an image network the same backends through the same parts:

    x      B×3×h×w float32 RGB in [0, 1] (a tile of fixed size)
    image  B×3×(s·h)×(s·w) float32

``ImageNetworkIO`` describes the inputs the way the backends read a ``NetworkIO`` (input
names, shapes, example inputs), so ``onnx_export.export_onnx``, ``compiled`` (AOTInductor,
``torch.compile``), ``onnx_runtime.OnnxRuntimeEngine`` and the ``EngineCache`` take it
unchanged. Reduced precision casts the whole network (convolutions and LeakyReLUs have no
statistics to protect; the official Real-ESRGAN runs in fp16 on GPUs); inputs and outputs
stay float32 whatever the precision. Tiles have a fixed size per video, so compiled and ONNX
artifacts need a dynamic batch axis only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from vidrestore.errors import EngineError

from .base import Engine, EngineInfo
from .build import EngineUnavailableError, _versions, backend_unavailable
from .cache import EngineCache, EngineKey, device_kind, model_hash
from .network import DTYPES

Log = Callable[[str], None]

IMAGE_BACKENDS: tuple[str, ...] = ("torch", "compiled", "compiled-jit", "onnxruntime")
"""The backends an image network runs on (TensorRT is built for CodeFormer's face batches only)."""


@dataclass(frozen=True)
class ImageNetworkIO:
    """The inputs of an image-to-image network as an engine sees them.

    Attributes:
        model: its name (``realesrgan-x2plus``).
        scale: output side / input side.
        tile: ``(height, width)`` of the input tiles.
    """

    model: str
    scale: int
    tile: tuple[int, int]
    uses_identity: bool = False
    takes_fidelity: bool = False
    identity_dim: int = 0

    @property
    def face_size(self) -> int:
        """The input side as ``EngineInfo`` and ``EngineKey`` record it (the tile's height;
        the width is in the cache key's variant)."""
        return self.tile[0]

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("x",)

    def shapes(self, batch: int | str = "B") -> dict[str, tuple]:
        h, w = self.tile
        return {"x": (batch, 3, h, w), "image": (batch, 3, self.scale * h, self.scale * w)}

    def inputs(self, x: Tensor, identity: Tensor | None = None, w: float | Tensor = 0.0) -> tuple[Tensor, ...]:
        """The positional inputs for a batch of tiles (float32); ``identity`` and ``w`` are
        ignored (the ``Engine`` protocol passes them)."""
        return (x.float(),)

    def example_inputs(self, batch: int = 2, device: torch.device | str = "cpu", seed: int = 0) -> tuple[Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand((batch, 3, *self.tile), generator=gen).to(device),)


class ImageEngineNetwork(nn.Module):
    """An image network as ``forward(x) -> image`` in a given precision (float32 in and out).

    Args:
        net: the network (cast in place: pass a copy if the original is still needed).
        io: its ``ImageNetworkIO``.
        precision: ``fp32``, ``fp16`` or ``bf16``.
    """

    def __init__(self, net: nn.Module, io: ImageNetworkIO, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"unknown precision {precision!r}")
        self.io = io
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.net = net.eval().to(self.dtype)
        self.net.requires_grad_(False)
        self.eval()

    def forward(self, *inputs: Tensor) -> Tensor:
        """``(x,)`` → image: positional inputs, as ``EngineNetwork`` takes them, so the exports'
        dynamic-batch specifications fit both kinds."""
        (x,) = inputs
        return self.net(x.to(self.dtype)).float()


class ImageTorchEngine:
    """Runs an image network eagerly (the ``torch`` backend for ``ImageNetworkIO``)."""

    def __init__(self, net: nn.Module, io: ImageNetworkIO, *, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False) -> None:
        self.module = ImageEngineNetwork(net, io, precision).to(device)
        self.io = io
        self.uses_identity = False
        self.channels_last = channels_last
        if channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.info = EngineInfo("torch", io.model, precision, str(device), io.face_size, inputs=io.input_names,
                               detail="channels-last" if channels_last else "contiguous")

    @torch.inference_mode()
    def run(self, x: Tensor, identity: Tensor | None = None, w: float = 0.0) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.module(x)


def image_engine_key(io: ImageNetworkIO, digest: str, backend: str, precision: str, device: torch.device,
                     batch: tuple[int, int, int]) -> EngineKey:
    """The cache key of an image network's artifact (tile size and scale in the variant)."""
    h, w = io.tile
    return EngineKey(io.model, digest, backend, precision, device_kind(device), _versions(backend), h, batch,
                     f"image-x{io.scale}-{h}x{w}")


def build_image_engine(net: nn.Module, io: ImageNetworkIO, *, backend: str, precision: str,
                       device: torch.device, batch: tuple[int, int, int] = (1, 4, 4),
                       cache: EngineCache | None = None, log: Log = lambda line: None,
                       owned: bool = False) -> Engine:
    """Build ``backend`` for an image network (copied first unless ``owned``); artifacts come
    from ``cache`` or are built into it, as ``build.build_engine`` does for CodeFormer."""
    if backend not in IMAGE_BACKENDS:
        raise EngineUnavailableError(f"engine {backend!r} does not run image networks "
                                     f"(it takes {', '.join(IMAGE_BACKENDS)})")
    if (reason := backend_unavailable(backend, device, precision)) is not None:
        raise EngineUnavailableError(f"engine {backend!r} ({precision}) is not available here: {reason}")

    def module() -> ImageEngineNetwork:
        return ImageEngineNetwork(net if owned else copy.deepcopy(net), io, precision).to(device)

    if backend == "torch":
        cl = device.type == "cuda" or precision == "fp32"
        return ImageTorchEngine(net if owned else copy.deepcopy(net), io, device=device, precision=precision,
                                channels_last=cl)
    if backend == "compiled-jit":
        from .compiled import CompiledEngine

        return CompiledEngine.jit(module(), device=device)
    cache = cache or EngineCache()
    key = image_engine_key(io, model_hash(net), backend, precision, device, batch)

    def note(what: str, artifact: str) -> None:
        if cache.lookup(key, artifact) is None:
            log(f"engine: building {what} for {io.model} ({precision}, tiles {io.tile[0]}×{io.tile[1]}, "
                f"batch {batch[0]}..{batch[2]}) into {cache.folder(key)}; a one-off step")

    try:
        if backend == "compiled":
            from .compiled import CompiledEngine, build_aoti_package

            note("an AOTInductor package", "model.pt2")
            path, _ = cache.get_or_build(key, "model.pt2",
                                         lambda p: build_aoti_package(module(), p, max_batch=batch[2]), log)
            return CompiledEngine.aot(path, io, device=device, precision=precision, batch=batch, log=log)
        from .onnx_export import export_onnx
        from .onnx_runtime import OnnxRuntimeEngine

        note("an ONNX export", "model.onnx")
        path, _ = cache.get_or_build(key, "model.onnx", lambda p: export_onnx(module(), p, max_batch=batch[2]), log)
        return OnnxRuntimeEngine(path, io, device=device, precision=precision, batch=batch)
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - an export or compile failure, said in one line
        raise EngineError(f"cannot build the {backend} engine for {io.model}: {type(exc).__name__}: {exc}") from None
