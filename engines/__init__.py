"""Restoration engines: one protocol over torch, compiled, ONNX Runtime and TensorRT backends.

    engine = build_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu)
    out = engine.run(x, identity, w)           # B×3×S×S in [-1, 1], on the engine's device
    restorer = EngineRestorer(engine)          # the pipeline's Restorer (numpy in / out)

    split = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu)
    codes = split.predict(x, identity)         # logits, latent, skips: fuse them over frames...
    out = split.decode(codes, identity, w)     # ...then the code choice and the generator

Engines know networks (``vidrestore.models``), devices and precisions, nothing of the
pipeline: ``vidrestore.pipeline.build.build_restorer`` composes a ``RestoreConfig`` into a
network with its weights and hands it to ``build_engine``. Installed as
``vidrestore.engines`` (the folder is ``engines/`` at the top of the repository).
"""

from .base import BACKENDS, Engine, EngineInfo
from .build import (
    EngineUnavailableError,
    backend_unavailable,
    batch_profile,
    build_engine,
    choose_backend,
    resolve_precision,
)
from .cache import EngineCache, EngineKey, model_hash
from .network import EngineNetwork, NetworkIO, network_io
from .restorer_adapter import EngineRestorer
from .split import CodeTensors, SplitEngine
from .split_build import build_split_engine
from .split_restorer import SplitRestorer

__all__ = [
    "BACKENDS",
    "CodeTensors",
    "Engine",
    "EngineCache",
    "EngineInfo",
    "EngineKey",
    "EngineNetwork",
    "EngineRestorer",
    "EngineUnavailableError",
    "NetworkIO",
    "SplitEngine",
    "SplitRestorer",
    "backend_unavailable",
    "batch_profile",
    "build_engine",
    "build_split_engine",
    "choose_backend",
    "model_hash",
    "network_io",
    "resolve_precision",
]
