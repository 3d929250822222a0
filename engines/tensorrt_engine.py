"""The ``tensorrt`` backend: a TensorRT engine built from the fp32 ONNX export.

Precision ``fp16`` sets the builder's FP16 flag and keeps every layer that ``onnx_export``
marks as numerically sensitive in fp32 through layer precision constraints
(``OBEY_PRECISION_CONSTRAINTS``): what the precision plan of ``engines.network`` keeps in
fp32 — the whole code choice (encoder, transformer, logits → argmax: a flipped code changes a
patch of the face) and the decoder's low-resolution part — plus statistics (AdaIN,
GroupNorm / InstanceNorm, LayerNorm), softmax and divisions everywhere. That is the difference with the CodeFormer
TensorRT ports whose fp16 engines give garbage: they lower everything.

The batch axis gets one optimisation profile ``(min, opt, max)``. The plan file is cached
under a key that holds the model hash, the GPU (name and compute capability) and the
TensorRT version (a plan only runs where it was built).

TensorRT cannot be installed on this project's machines; ``tensorrt_unavailable()`` says
why, and ``--engine tensorrt`` then fails with that one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from .base import EngineInfo
from .network import NetworkIO
from .onnx_export import is_fp32_node

Log = Callable[[str], None]

_WORKSPACE = 4 << 30


def tensorrt_unavailable() -> str | None:
    """None if TensorRT can be used here, else the reason in a few words."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"the tensorrt package is not installed ({exc.msg})"
    except Exception as exc:  # noqa: BLE001 - a broken install (stub wheels raise at import)
        return f"the tensorrt package cannot be imported ({type(exc).__name__}: {exc})"
    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA device and PyTorch sees none"
    return None


def tensorrt_version() -> str:
    import tensorrt as trt

    return trt.__version__


def _layer_op(name: str) -> str:
    """ONNX op type from a layer named ``<scope>/<Op>_<n>...`` by the parser."""
    tail = name.split("/", 1)[1] if "/" in name else name
    head = tail.split(" ")[0].split("_")[0]
    return head


def build_plan(onnx_path: Path, plan_path: Path, io: NetworkIO, *, precision: str,
               batch: tuple[int, int, int], fp32_modules: tuple[str, ...] = (),
               log: Log = lambda line: None, input_shapes: dict[str, tuple] | None = None) -> Path:
    """Build and serialise a TensorRT engine (``plan_path``) from ``onnx_path``.

    ``fp32_modules``: the module paths the precision plan keeps in fp32
    (``network.precision_plan(net, torch.float16).fp32``); with ``SENSITIVE_OPS`` they get
    fp32 layer precision constraints in an fp16 engine. ``input_shapes``: input name → shape
    (batch first) for the profile, for graphs other than the whole network (a half of a
    split network); default ``io.shapes()``.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch (the only mode in TensorRT 10)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, _WORKSPACE)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        kept = 0
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if is_fp32_node(layer.name, _layer_op(layer.name), fp32_modules) or layer.type in _fp32_layer_types(trt):
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    if layer.get_output(j).dtype in (trt.float32, trt.float16):
                        layer.set_output_type(j, trt.float32)
                kept += 1
        log(f"tensorrt: {kept} of {network.num_layers} layers kept in fp32")
    elif precision != "fp32":
        raise ValueError(f"TensorRT engines are built in fp32 or fp16, not {precision}")
    profile = builder.create_optimization_profile()
    shapes = input_shapes if input_shapes is not None else {k: v for k, v in io.shapes().items() if k != "image"}
    for name, shape in shapes.items():
        lo, opt, hi = ((b, *shape[1:]) for b in batch)
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build the engine (see its log above)")
    plan_path.write_bytes(bytes(serialized))
    return plan_path


def _fp32_layer_types(trt) -> set:
    names = ("REDUCE", "SOFTMAX", "NORMALIZATION", "TOPK")
    return {getattr(trt.LayerType, n) for n in names if hasattr(trt.LayerType, n)}


class TensorRTEngine:
    """Runs a serialised TensorRT plan on the current CUDA stream (``execute_async_v3``).

    Args:
        plan: the ``.plan`` file.
        io: the network's inputs.
        device: the CUDA device it was built on.
        precision: ``fp32`` / ``fp16``.
        batch: its optimisation profile.
    """

    def __init__(self, plan: Path, io: NetworkIO, *, device: torch.device, precision: str,
                 batch: tuple[int, int, int]) -> None:
        import tensorrt as trt

        self.io = io
        self.device = device
        self.uses_identity = io.uses_identity
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        if self._engine is None:
            raise RuntimeError(f"TensorRT cannot load {plan} (built by another version or GPU?)")
        self._context = self._engine.create_execution_context()
        self.info = EngineInfo("tensorrt", io.model, precision, str(device), io.face_size,
                               max_batch=batch[2], artifact=Path(plan), inputs=io.input_names,
                               batch=batch, detail=f"TensorRT {trt.__version__}")

    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        inputs = [t.contiguous() for t in self.io.inputs(x, identity, w)]
        batch = inputs[0].shape[0]
        if batch > self.info.max_batch:
            raise ValueError(f"batch {batch} > the engine's profile maximum {self.info.max_batch}")
        out = torch.empty(self.io.shapes(batch)["image"], device=self.device)
        for name, t in zip(self.io.input_names, inputs):
            self._context.set_input_shape(name, tuple(t.shape))
            self._context.set_tensor_address(name, t.data_ptr())
        self._context.set_tensor_address("image", out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return out


class TensorRTGraph:
    """A serialised plan with named inputs and outputs as a runner (a half of a split network,
    ``engines.split``), on the current CUDA stream.

    Args:
        plan: the ``.plan`` file.
        input_names, output_names: its tensors, in order.
        shapes: batch size → name → shape of every output.
        device: the CUDA device it was built on.
        max_batch: its profile's maximum.
    """

    def __init__(self, plan: Path, input_names: tuple[str, ...], output_names: tuple[str, ...], shapes, *,
                 device: torch.device, max_batch: int) -> None:
        import tensorrt as trt

        self.device = device
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)
        self.shapes = shapes
        self.max_batch = max_batch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        if self._engine is None:
            raise RuntimeError(f"TensorRT cannot load {plan} (built by another version or GPU?)")
        self._context = self._engine.create_execution_context()

    def __call__(self, *inputs: Tensor) -> list[Tensor]:
        inputs = tuple(t.contiguous() for t in inputs)
        batch = inputs[0].shape[0]
        if batch > self.max_batch:
            raise ValueError(f"batch {batch} > the engine's profile maximum {self.max_batch}")
        shapes = self.shapes(batch)
        outs = [torch.empty(shapes[name], device=self.device) for name in self.output_names]
        for name, t in zip(self.input_names, inputs):
            self._context.set_input_shape(name, tuple(t.shape))
            self._context.set_tensor_address(name, t.data_ptr())
        for name, out in zip(self.output_names, outs):
            self._context.set_tensor_address(name, out.data_ptr())
        if not self._context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return outs
