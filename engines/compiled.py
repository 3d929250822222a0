"""The ``compiled`` backends: an AOTInductor package on disk, or ``torch.compile`` in process.

``compiled`` (AOTInductor): ``torch.export`` of the ``EngineNetwork`` with a dynamic batch dim,
compiled by Inductor ahead of time into a ``.pt2`` package (C++ / Triton kernels with the
weights inside) that the engine cache keeps; the next run loads it in seconds. On a GPU each
batch size is then captured once as a CUDA graph (``CudaGraphs``) and replayed.

``compiled-jit`` (``torch.compile``): compiled in the running process, nothing written but
Inductor's own caches. CPU: default mode with automatic dynamic shapes (one recompile when a
second batch size appears, then a dynamic graph). GPU: ``mode="reduce-overhead"`` with static
shapes: one CUDA graph per batch size (the restore stage sends at most ``batch_size`` distinct
sizes, well under Dynamo's recompile limit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from .base import EngineInfo
from .network import EngineNetwork, NetworkIO

Log = Callable[[str], None]


def export_program(module: EngineNetwork, *, max_batch: int):
    """``torch.export`` of ``module`` with the batch dim dynamic in ``1..max_batch``."""
    io = module.io
    device = next(module.parameters()).device
    example = io.example_inputs(2, device)
    batch = torch.export.Dim("batch", min=1, max=max(2, max_batch))
    with torch.no_grad():
        return torch.export.export(module, example, dynamic_shapes=(tuple({0: batch} for _ in example),))


def build_aoti_package(module: EngineNetwork, path: Path, *, max_batch: int) -> Path:
    """Export and AOT-compile ``module`` into the package ``path`` (``.pt2``)."""
    program = export_program(module, max_batch=max_batch)
    configs = {"freezing": True} if next(module.parameters()).device.type == "cpu" else {}
    out = torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs=configs)
    return Path(out)


def load_aoti_package(path: Path, device: torch.device):
    """The callable model of a ``.pt2`` package, on ``device``."""
    index = device.index if device.type == "cuda" and device.index is not None else -1
    return torch._inductor.aoti_load_package(str(path), device_index=index)


class CompiledEngine:
    """A compiled ``EngineNetwork``.

    Use ``CompiledEngine.aot(...)`` (package on disk) or ``CompiledEngine.jit(...)``.

    Args:
        runner: callable ``(*inputs) -> image``.
        io: the network's inputs.
        info: what it is.
        cuda_graphs: capture each batch size as a CUDA graph (GPU only).
        log: notes (a failed capture falls back to plain calls and says so).
    """

    def __init__(self, runner: Callable[..., Tensor], io: NetworkIO, info: EngineInfo, *,
                 cuda_graphs: bool = False, log: Log = lambda line: None) -> None:
        self.io = io
        self.info = info
        self.uses_identity = io.uses_identity
        self._runner = runner
        self._graphs = CudaGraphs(runner, torch.device(info.device), log=log) if cuda_graphs else None

    @classmethod
    def aot(cls, path: Path, io: NetworkIO, *, device: torch.device, precision: str,
            batch: tuple[int, int, int], log: Log = lambda line: None) -> "CompiledEngine":
        runner = load_aoti_package(path, device)
        graphs = device.type == "cuda"
        info = EngineInfo("compiled", io.model, precision, str(device), io.face_size, max_batch=batch[2],
                          artifact=path, inputs=io.input_names, batch=batch,
                          detail="AOTInductor" + (" + CUDA graphs per batch size" if graphs else ""))
        return cls(runner, io, info, cuda_graphs=graphs, log=log)

    @classmethod
    def jit(cls, module: EngineNetwork, *, device: torch.device) -> "CompiledEngine":
        io = module.io
        module = module.to(device)
        if device.type == "cuda":
            compiled = torch.compile(module, mode="reduce-overhead", dynamic=False)
            detail = "torch.compile reduce-overhead (CUDA graphs per batch size)"
        else:
            compiled = torch.compile(module, dynamic=None)
            detail = "torch.compile default (automatic dynamic batch)"
        info = EngineInfo("compiled-jit", io.model, module.precision, str(device), io.face_size,
                          inputs=io.input_names, detail=detail)
        return cls(compiled, io, info)

    @torch.inference_mode()
    def run(self, x: Tensor, identity: Tensor | None, w: float) -> Tensor:
        inputs = self.io.inputs(x, identity, w)
        if self._graphs is not None:
            return self._graphs(*inputs)
        out = self._runner(*inputs)
        return out[0] if isinstance(out, (list, tuple)) else out


class CudaGraphs:
    """Replays one CUDA graph per batch size around ``fn`` (inputs copied into static buffers).

    Capture follows PyTorch's recipe: warm-up calls on a side stream, then capture into a
    memory pool shared by every batch size. The first replay of each graph is checked
    against a plain call; if capture fails or the results differ, graphs are switched off
    for good and ``fn`` is called directly (said once in the log).
    """

    def __init__(self, fn: Callable[..., Tensor], device: torch.device, *, log: Log = lambda line: None,
                 warmup: int = 2) -> None:
        self.fn = fn
        self.device = device
        self.log = log
        self.warmup = warmup
        self.enabled = True
        self._pool = None
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...], Tensor]] = {}

    def __call__(self, *inputs: Tensor) -> Tensor:
        if not self.enabled:
            return _first(self.fn(*inputs))
        key = tuple(tuple(t.shape) for t in inputs)
        entry = self._graphs.get(key)
        if entry is None:
            try:
                entry = self._capture(inputs)
            except Exception as exc:  # noqa: BLE001 - any capture failure means: run without graphs
                return self._disable(f"CUDA graph capture failed ({type(exc).__name__}: {exc})", inputs)
            expected = _first(self.fn(*inputs))
            got = self._replay(entry, inputs)
            if not torch.allclose(got, expected, rtol=1e-3, atol=1e-3):
                return self._disable("CUDA graph replay differs from a plain call", inputs)
            self._graphs[key] = entry
            return got
        return self._replay(entry, inputs)

    def _capture(self, inputs: tuple[Tensor, ...]):
        static = tuple(t.clone() for t in inputs)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(*static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: the pipeline's other threads (detector, device face ops) keep using
        # the GPU while a graph is captured here; the default mode would make their calls fail.
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            output = _first(self.fn(*static))
        return graph, static, output

    @staticmethod
    def _replay(entry, inputs: tuple[Tensor, ...]) -> Tensor:
        graph, static, output = entry
        for dst, src in zip(static, inputs):
            dst.copy_(src, non_blocking=True)
        graph.replay()
        return output.clone()  # the static output is overwritten by the next replay

    def _disable(self, why: str, inputs: tuple[Tensor, ...]) -> Tensor:
        self.enabled = False
        self._graphs.clear()
        self.log(f"engine: {why}; running without CUDA graphs")
        return _first(self.fn(*inputs))


def _first(out) -> Tensor:
    return out[0] if isinstance(out, (list, tuple)) else out
