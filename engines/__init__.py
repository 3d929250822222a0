"""Restoration engines: one protocol over torch, compiled, ONNX Runtime and TensorRT backends.

    engine = build_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu)
    out = engine.run(x, identity, w)           # B×3×S×S in [-1, 1], on the engine's device
    restorer = EngineRestorer(engine)          # the pipeline's Restorer (numpy in / out)

``build_restorer(config, store, device)`` does all of it from a ``RestoreConfig``.
"""

from .base import BACKENDS, Engine, EngineInfo
from .build import (
    EngineUnavailableError,
    backend_unavailable,
    batch_profile,
    build_engine,
    build_restorer,
    choose_backend,
    load_network,
    resolve_precision,
)
from .cache import EngineCache, EngineKey, model_hash
from .network import EngineNetwork, NetworkIO, network_io
from .restorer import EngineRestorer

__all__ = [
    "BACKENDS",
    "Engine",
    "EngineCache",
    "EngineInfo",
    "EngineKey",
    "EngineNetwork",
    "EngineRestorer",
    "EngineUnavailableError",
    "NetworkIO",
    "backend_unavailable",
    "batch_profile",
    "build_engine",
    "build_restorer",
    "choose_backend",
    "load_network",
    "model_hash",
    "network_io",
    "resolve_precision",
]
