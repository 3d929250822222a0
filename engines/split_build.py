"""From a loaded network to a ready ``SplitEngine`` on any backend, artifacts cached.

The split's artifacts live in one cache folder per key, beside each other (``predict.onnx``
and ``decode.onnx``; ``predict.pt2`` and ``decode.pt2``; ``predict.plan`` and
``decode.plan``); the key is the whole network's (``engines.build.engine_key``) with the
variant ``split``, so the per-frame artifact and the split ones never collide.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .base import EngineInfo
from .build import EngineUnavailableError, backend_unavailable, engine_key
from .cache import EngineCache, model_hash
from .network import DTYPES, NetworkIO, precision_plan
from .split import SplitEngine, module_runner
from .split_network import PARTS, SplitNetwork, split_io

Log = Callable[[str], None]

SPLIT_VARIANT = "split"

_SUFFIX = {"compiled": ".pt2", "onnxruntime": ".onnx", "tensorrt": ".plan"}


def build_split_engine(net: nn.Module, io: NetworkIO, *, backend: str, precision: str, device: torch.device,
                       batch: tuple[int, int, int] = (1, 8, 8), cache: EngineCache | None = None,
                       log: Log = lambda line: None, digest: str | None = None,
                       channels_last: bool | None = None, owned: bool = False) -> SplitEngine:
    """``build_engine`` for the split network (``engines.split``): copied first, unless
    ``owned``. Raises ``EngineUnavailableError`` when the backend or precision cannot run here."""
    if (reason := backend_unavailable(backend, device, precision)) is not None:
        raise EngineUnavailableError(f"engine {backend!r} ({precision}) is not available here: {reason}")

    def module(export_precision: str = precision) -> SplitNetwork:
        return SplitNetwork(net if owned else copy.deepcopy(net), io, export_precision).to(device)

    def info(detail: str, artifact: Path | None = None, profile: tuple[int, int, int] | None = None) -> EngineInfo:
        return EngineInfo(backend, io.model, precision, str(device), io.face_size,
                          max_batch=profile[2] if profile else None, artifact=artifact,
                          inputs=io.input_names, batch=profile, detail=f"split: {detail}")

    if backend in ("torch", "compiled-jit"):
        split = module()
        if backend == "compiled-jit":
            parts = [torch.compile(split.part(p), dynamic=None) for p in PARTS]
            return SplitEngine(*(module_runner(p) for p in parts), split.split, info("torch.compile"))
        cl = (device.type == "cuda" or precision == "fp32") if channels_last is None else channels_last
        if cl:
            split = split.to(memory_format=torch.channels_last)
        runners = [module_runner(split.part(p), channels_last=cl) for p in PARTS]
        return SplitEngine(*runners, split.split, info("channels-last" if cl else "contiguous"))

    digest = digest or model_hash(net)
    plan = precision_plan(net, DTYPES[precision]) if precision != "fp32" else None
    cache = cache or EngineCache()
    key = engine_key(io, digest, backend, precision, device, batch, plan)
    key = dataclasses.replace(key, variant="+".join(v for v in (SPLIT_VARIANT, key.variant) if v))
    suffix = _SUFFIX[backend]
    if cache.lookup(key, "decode" + suffix) is None:
        log(f"engine: building the split {backend} artifacts for {io.model} ({precision}, batch "
            f"{batch[0]}..{batch[2]}) into {cache.folder(key)}; a one-off step (minutes on a CPU)")

    def build(path: Path) -> None:
        split = module("fp32" if backend == "tensorrt" else precision)
        _export(split, backend, path.parent, batch, precision, net, log)

    path, _ = cache.get_or_build(key, "decode" + suffix, build, log)
    folder = path.parent
    split = split_io(net, io)
    if backend == "compiled":
        from .compiled import load_aoti_package

        runners = [_listed(load_aoti_package(folder / f"{p}.pt2", device)) for p in PARTS]
        detail = "AOTInductor"
    elif backend == "onnxruntime":
        from .onnx_runtime import OnnxGraph

        graphs = [OnnxGraph(folder / f"{p}.onnx", split.input_names(p), split.output_names(p),
                            _shapes_of(split, p), device=device, precision=precision) for p in PARTS]
        runners, detail = graphs, graphs[0].provider
    else:
        from .tensorrt_engine import TensorRTGraph

        runners = [TensorRTGraph(folder / f"{p}.plan", split.input_names(p), split.output_names(p),
                                 _shapes_of(split, p), device=device, max_batch=batch[2]) for p in PARTS]
        detail = "TensorRT"
    return SplitEngine(*runners, split, info(detail, path, batch))


def _shapes_of(split, part: str):
    return lambda b: split.shapes(part, b)


def _listed(runner):
    def run(*inputs):
        out = runner(*inputs)
        return out if isinstance(out, (list, tuple)) else [out]

    return run


def _export(split: SplitNetwork, backend: str, folder: Path, batch: tuple[int, int, int], precision: str,
            net: nn.Module, log: Log) -> None:
    """Write both halves' artifacts into ``folder`` (decode last: its name marks completion)."""
    device = next(split.parameters()).device
    for part in ("predict", "decode"):
        example = split.example_inputs(part, 2, device)
        module = split.part(part)
        if backend == "compiled":
            from .compiled import build_aoti_package

            build_aoti_package(module, folder / f"{part}.pt2", max_batch=batch[2], example=example)
            continue
        from .onnx_export import export_onnx

        names = split.split.input_names(part), split.split.output_names(part)
        onnx_path = folder / f"{part}.onnx"
        export_onnx(module, onnx_path, max_batch=batch[2], example=example, input_names=names[0],
                    output_names=names[1])
        if backend == "tensorrt":
            from .tensorrt_engine import build_plan

            shapes = {n: s for n, s in split.split.shapes(part).items() if n in names[0]}
            build_plan(onnx_path, folder / f"{part}.plan", split.io, precision=precision, batch=batch,
                       fp32_modules=precision_plan(net, torch.float16).fp32, log=log, input_shapes=shapes)
