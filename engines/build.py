"""From a loaded network to a ready engine: backend, precision, device, cached artifact.

``build_engine`` turns a network into any backend (building the artifact, or loading it from
the cache); ``choose_backend`` is what ``--engine auto`` means; ``resolve_precision`` what
``--precision auto`` means. The engines know networks, devices and precisions only: which
network and weights a run uses is decided above them (``vidrestore.pipeline.build``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from vidrestore.errors import EngineError, UsageError
from vidrestore.names import BackendName, check_covers

from .base import BACKENDS, Engine
from .cache import EngineCache, EngineKey, device_kind, model_hash
from .network import DTYPES, EngineNetwork, NetworkIO, PrecisionPlan, precision_plan
from .torch_eager import TorchEngine

Log = Callable[[str], None]


class EngineUnavailableError(UsageError, EngineError):
    """The asked-for backend (or precision) cannot run on this machine: a usage error (exit 2)."""


AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cuda": ("tensorrt", "compiled", "onnxruntime", "torch"),
    "cpu": ("onnxruntime", "torch"),
}
"""``--engine auto``: the first available backend, fastest first.

CPU, measured (docs/benchmarks.md, full-size CodeFormer fp32 at 512² on a 2-core AVX-512
EPYC): onnxruntime 4.3 s/face, torch (channels-last) 5.3, compiled (AOTInductor) 5.7-7.2 —
so ``compiled`` is never picked on a CPU. CUDA: not measured yet; the expected order
(TensorRT fp16 with fp32 islands, AOTInductor + CUDA graphs, onnxruntime's CUDA EP, eager),
for a GPU session to confirm with ``vidrestore engines check``."""

PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("fp32", "fp16", "bf16"),
    "compiled": ("fp32", "fp16", "bf16"),
    "compiled-jit": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "fp16"),
    "tensorrt": ("fp32", "fp16"),
}
"""The precisions each backend runs in."""

check_covers(BackendName, PRECISIONS, "engines.build.PRECISIONS")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → fp16 on CUDA, fp32 on the CPU (reduced precision is opt-in there: see
    docs/benchmarks.md for bf16 on CPUs with AVX-512 BF16)."""
    if precision != "auto":
        return precision
    return "fp16" if device.type == "cuda" else "fp32"


def backend_unavailable(backend: str, device: torch.device, precision: str = "fp32") -> str | None:
    """None if ``backend`` can run on ``device`` in ``precision`` here, else why not."""
    if backend not in BACKENDS:
        return f"unknown engine {backend!r} (known: {', '.join(BACKENDS)})"
    if precision not in PRECISIONS[backend]:
        return f"{backend} runs in {' or '.join(PRECISIONS[backend])}, not {precision}"
    if backend == "torch":
        return None
    if backend in ("compiled", "compiled-jit"):
        if device.type == "cpu" and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
            return "Inductor needs a C++ compiler (g++) on the CPU and none is on PATH"
        if device.type == "cuda":
            try:
                import triton  # noqa: F401
            except ImportError:
                return "Inductor needs Triton on a GPU and it is not installed"
        return None
    if backend == "onnxruntime":
        try:
            import onnxruntime as ort
            import onnxscript  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} is not installed"
        gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers())
        if device.type == "cuda" and not gpu:
            return "this onnxruntime build has no CUDA execution provider (pip install onnxruntime-gpu)"
        if precision == "fp16" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime fp16 needs the CUDA execution provider"
        return None
    from .tensorrt_engine import tensorrt_unavailable

    return tensorrt_unavailable()


def choose_backend(device: torch.device, precision: str) -> tuple[str, str]:
    """``--engine auto``: ``(backend, why)`` — the first available of ``AUTO_ORDER``."""
    skipped = []
    for backend in AUTO_ORDER["cuda" if device.type == "cuda" else "cpu"]:
        reason = backend_unavailable(backend, device, precision)
        if reason is None:
            why = ("expected fastest available on a GPU (TensorRT > AOTInductor > onnxruntime > eager)"
                   if device.type == "cuda" else
                   "fastest available on a CPU (measured: onnxruntime 1.2x eager fp32; docs/benchmarks.md)")
            if skipped:
                why += " (" + "; ".join(skipped) + ")"
            return backend, why
        skipped.append(f"not {backend}: {reason}")
    raise EngineError("no engine can run here: " + "; ".join(skipped))


def batch_profile(backend: str, batch_size: int, batch_sizes: tuple[int, ...] = ()) -> tuple[int, int, int]:
    """``(min, opt, max)`` batch sizes an artifact is built for.

    The maximum is the largest asked for, at least 8 and rounded up to a power of two, so a
    few different ``--batch-size`` values share one artifact; only TensorRT tunes for an
    ``opt`` size, the others ignore it (kept equal to max so it does not split the cache).
    """
    sizes = tuple(batch_sizes) or (batch_size,)
    top = 1 << (max(8, *sizes) - 1).bit_length()
    opt = max(1, min(batch_size, top)) if backend == "tensorrt" else top
    return (1, opt, top)


def _versions(backend: str) -> tuple[tuple[str, str], ...]:
    versions = [("torch", torch.__version__)]
    if torch.version.cuda:
        versions.append(("cuda", torch.version.cuda))
    if backend in ("onnxruntime", "tensorrt"):
        import onnx

        versions.append(("onnx", onnx.__version__))
    if backend == "onnxruntime":
        import onnxruntime

        versions.append(("onnxruntime", onnxruntime.__version__))
    if backend == "tensorrt":
        from .tensorrt_engine import tensorrt_version

        versions.append(("tensorrt", tensorrt_version()))
    return tuple(versions)


def engine_key(io: NetworkIO, digest: str, backend: str, precision: str, device: torch.device,
               batch: tuple[int, int, int], plan: PrecisionPlan | None = None) -> EngineKey:
    """The cache key of an artifact (see ``engines.cache``); a reduced-precision artifact
    also depends on which modules its precision ``plan`` keeps in fp32."""
    variant = ""
    if plan is not None:
        blob = json.dumps([plan.fp32, plan.fp32_entries, plan.reduced_entries]).encode()
        variant = "plan-" + hashlib.sha256(blob).hexdigest()[:12]
    return EngineKey(io.model, digest, backend, precision, device_kind(device), _versions(backend),
                     io.face_size, batch, variant)


def build_engine(net: nn.Module, io: NetworkIO, *, backend: str, precision: str, device: torch.device,
                 batch: tuple[int, int, int] = (1, 8, 8), cache: EngineCache | None = None,
                 log: Log = lambda line: None, digest: str | None = None,
                 channels_last: bool | None = None, owned: bool = False) -> Engine:
    """Build ``backend`` for ``net``: copied first, unless ``owned`` (then cast and moved in place).

    Artifacts (``compiled``, ``onnxruntime``, ``tensorrt``) come from ``cache`` when present
    and are built into it otherwise. Raises ``EngineUnavailableError`` when the backend or
    precision cannot run here.
    """
    if (reason := backend_unavailable(backend, device, precision)) is not None:
        raise EngineUnavailableError(f"engine {backend!r} ({precision}) is not available here: {reason}")
    plan = None
    if backend in ("compiled", "onnxruntime", "tensorrt"):
        digest = digest or model_hash(net)  # of the weights as loaded, before any cast
        if precision != "fp32":
            plan = precision_plan(net, DTYPES[precision])

    def module(export_precision: str = precision) -> EngineNetwork:
        """The network to run or export (made only when needed: a cache hit needs none)."""
        return EngineNetwork(net if owned else copy.deepcopy(net), io, export_precision).to(device)

    if backend == "torch":
        cl = (device.type == "cuda" or precision == "fp32") if channels_last is None else channels_last
        return TorchEngine(net if owned else copy.deepcopy(net), io, device=device, precision=precision,
                           channels_last=cl)
    if backend == "compiled-jit":
        from .compiled import CompiledEngine

        return CompiledEngine.jit(module(), device=device)
    cache = cache or EngineCache()
    key = engine_key(io, digest, backend, precision, device, batch, plan)

    def note_build(what: str) -> None:
        log(f"engine: building {what} for {io.model} ({precision}, batch {batch[0]}..{batch[2]}) "
            f"into {cache.folder(key)}; a one-off step (minutes on a CPU)")

    if backend == "compiled":
        from .compiled import CompiledEngine, build_aoti_package

        if cache.lookup(key, "model.pt2") is None:
            note_build("an AOTInductor package")
        path, _ = cache.get_or_build(key, "model.pt2",
                                     lambda p: build_aoti_package(module(), p, max_batch=batch[2]), log)
        return CompiledEngine.aot(path, io, device=device, precision=precision, batch=batch, log=log)
    if backend == "onnxruntime":
        from .onnx_export import export_onnx
        from .onnx_runtime import OnnxRuntimeEngine

        if cache.lookup(key, "model.onnx") is None:
            note_build("an ONNX export")
        path, _ = cache.get_or_build(key, "model.onnx", lambda p: export_onnx(module(), p, max_batch=batch[2]), log)
        return OnnxRuntimeEngine(path, io, device=device, precision=precision, batch=batch)
    from .onnx_export import export_onnx
    from .tensorrt_engine import TensorRTEngine, build_plan

    fp32_modules = precision_plan(net, torch.float16).fp32

    def build(plan_path: Path) -> None:  # from the fp32 export: TensorRT lowers precision itself
        onnx_path = export_onnx(module("fp32"), plan_path.with_name("model.onnx"), max_batch=batch[2])
        build_plan(onnx_path, plan_path, io, precision=precision, batch=batch, fp32_modules=fp32_modules, log=log)

    if cache.lookup(key, "model.plan") is None:
        note_build("a TensorRT engine")
    path, _ = cache.get_or_build(key, "model.plan", build, log)
    return TensorRTEngine(path, io, device=device, precision=precision, batch=batch)
