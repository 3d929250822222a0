"""The ``onnxruntime`` backend: the network exported to ONNX, run by ONNX Runtime.

The execution provider is the best one this ONNX Runtime build has for the device:
TensorRT EP > CUDA EP on a GPU, the CPU EP otherwise. Session options: every graph
optimisation, intra-op threads = torch's thread count, no spinning worker threads (the other
pipeline stages need the cores while a batch runs), no CPU memory arena (it keeps a batch's
peak resident for good).

Precision: ``fp32`` everywhere; ``fp16`` (GPU only) runs the ONNX export of the reduced-precision
plan (``engines.network``: code choice in fp32, decoder in fp16, casts in the graph) on the
CUDA EP, which keeps the graph's types — not on the TensorRT EP, whose fp16 switch would
lower the fp32 islands too (the ``tensorrt`` backend does that right).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import EngineInfo
from .network import NetworkIO

_NP_TYPES = {torch.float32: np.float32, torch.float16: np.float16}


def providers_for(device: torch.device, precision: str, available: list[str] | None = None,
                  *, cache_dir: str | None = None, batch: tuple[int, int, int] | None = None,
                  io: NetworkIO | None = None) -> list:
    """The provider list (best first) for ``device``: names, or ``(name, options)`` pairs."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    chosen: list = []
    if device.type == "cuda":
        index = device.index or 0
        if "TensorrtExecutionProvider" in available and precision == "fp32":
            options = {"device_id": index, "trt_fp16_enable": False}
            if cache_dir:
                options.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir,
                               trt_timing_cache_enable=True)
            if batch and io:
                options.update(_trt_profile_options(io, batch))
            chosen.append(("TensorrtExecutionProvider", options))
        if "CUDAExecutionProvider" in available:
            chosen.append(("CUDAExecutionProvider", {"device_id": index, "cudnn_conv_algo_search": "EXHAUSTIVE",
                                                     "do_copy_in_default_stream": True}))
    chosen.append("CPUExecutionProvider")
    return chosen


def _trt_profile_options(io: NetworkIO, batch: tuple[int, int, int]) -> dict[str, str]:
    def shapes(b: int) -> str:
        return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}"
                        for name, shape in io.shapes(b).items() if name != "image")
    lo, opt, hi = batch
    return {"trt_profile_min_shapes": shapes(lo), "trt_profile_opt_shapes": shapes(opt),
            "trt_profile_max_shapes": shapes(hi)}


def session_options(threads: int | None = None):
    """Tuned ``SessionOptions``: full graph optimisation, ``threads`` intra-op, no spinning,
    no CPU memory arena (measured at 512², batch 4: the arena kept 4.8 GB resident between
    batches and peaked at 5.5 GB; without it 1.0 GB between batches, 4.2 GB peak, same speed
    at batch 1 and ~8 % slower at batch 4)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxRuntimeEngine:
    """Runs an exported ONNX model with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        io: the network's inputs.
        device: where inputs arrive and outputs are returned.
        precision: the precision the file was exported in (``fp32`` / ``fp16``).
        providers: from ``providers_for`` (default: the best for ``device``).
        batch: the batch profile it was exported for.
    """

    def __init__(self, path, io: NetworkIO, *, device: torch.device, precision: str = "fp32",
                 providers: list | None = None, batch: tuple[int, int, int] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.io = io
        self.device = device
        providers = providers or providers_for(device, precision, batch=batch, io=io)
        self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                            providers=providers)
        self.provider = self.session.get_providers()[0]
        self.uses_identity = io.uses_identity
        names = [i.name for i in self.session.get_inputs()]
        if tuple(names) != io.input_names:
            raise ValueError(f"{path}: inputs {names}, expected {list(io.input_names)}")
        self._on_gpu = device.type == "cuda" and self.provider != "CPUExecutionProvider"
        self.info = EngineInfo("onnxruntime", io.model, precision, str(device), io.face_size,
                               max_batch=batch[2] if batch else None, artifact=path,
                               inputs=io.input_names, batch=batch, detail=self.provider)

    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        inputs = self.io.inputs(x, identity, w)
        if self._on_gpu:
            return self._run_bound(inputs)
        feeds = {name: t.detach().cpu().numpy() for name, t in zip(self.io.input_names, inputs)}
        out = self.session.run(["image"], feeds)[0]
        return torch.from_numpy(out).to(self.device)

    def _run_bound(self, inputs: tuple[Tensor, ...]) -> Tensor:
        """GPU: bind device tensors directly (no host round trip)."""
        binding = self.session.io_binding()
        index = self.device.index or 0
        for name, t in zip(self.io.input_names, inputs):
            t = t.contiguous()
            binding.bind_input(name, "cuda", index, _NP_TYPES[t.dtype], tuple(t.shape), t.data_ptr())
        out = torch.empty(self.io.shapes(inputs[0].shape[0])["image"], device=self.device)
        binding.bind_output("image", "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # inputs written before ORT reads them
        self.session.run_with_iobinding(binding)
        return out


class OnnxGraph:
    """One exported graph as a runner (a half of a split network, ``engines.split``).

    Args:
        path: the ``.onnx`` file.
        input_names, output_names: its graph inputs and outputs, in order.
        shapes: batch size → name → shape of every input and output (GPU binding).
        device: where inputs arrive and outputs are returned.
        precision: the precision the file was exported in.
        threads: intra-op threads (default: torch's).
    """

    def __init__(self, path, input_names: tuple[str, ...], output_names: tuple[str, ...], shapes, *,
                 device: torch.device, precision: str = "fp32", threads: int | None = None) -> None:
        import onnxruntime as ort

        self.device = device
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)
        self.shapes = shapes
        self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                            providers=providers_for(device, precision))
        self.provider = self.session.get_providers()[0]
        names = tuple(i.name for i in self.session.get_inputs())
        if names != self.input_names:
            raise ValueError(f"{path}: inputs {list(names)}, expected {list(self.input_names)}")
        self._on_gpu = device.type == "cuda" and self.provider != "CPUExecutionProvider"

    def __call__(self, *inputs: Tensor) -> list[Tensor]:
        if self._on_gpu:
            return self._run_bound(inputs)
        feeds = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
        outs = self.session.run(list(self.output_names), feeds)
        return [torch.from_numpy(o).to(self.device) for o in outs]

    def _run_bound(self, inputs) -> list[Tensor]:
        binding = self.session.io_binding()
        index = self.device.index or 0
        inputs = [t.contiguous() for t in inputs]  # kept alive until the run
        for name, t in zip(self.input_names, inputs):
            binding.bind_input(name, "cuda", index, _NP_TYPES[t.dtype], tuple(t.shape), t.data_ptr())
        shapes = self.shapes(inputs[0].shape[0])
        outs = [torch.empty(shapes[name], device=self.device) for name in self.output_names]
        for name, out in zip(self.output_names, outs):
            binding.bind_output(name, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return outs
