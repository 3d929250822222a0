"""Restoration engines: one protocol over torch, compiled, ONNX Runtime and TensorRT backends.

    engine = build_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu)
    out = engine.run(x, identity, w)           # B×3×S×S in [-1, 1], on the engine's device
    restorer = EngineRestorer(engine)          # the pipeline's Restorer (numpy in / out)

    split = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu)
    codes = split.predict(x, identity)         # logits, latent, skips: fuse them over frames...
    out = split.decode(codes, identity, w)     # ...then the code choice and the generator

Image-to-image networks (Real-ESRGAN) are a second kind beside CodeFormer's:
``build_image_engine(net, ImageNetworkIO(...), ...)`` on the same backends, run over whole
frames tile by tile by ``TiledUpscaler``.

Engines know networks (``vidrestore.models``), devices and precisions, nothing of the
pipeline: ``vidrestore.pipeline.build.build_restorer`` composes a ``RestoreConfig`` into a
network with its weights and hands it to ``build_engine``. Installed as
``vidrestore.engines`` (the folder is ``engines/`` at the top of the repository).
"""

from .base import BACKENDS, Engine, EngineInfo
from .build import (
    AUTO_ORDER,
    EngineUnavailableError,
    backend_unavailable,
    batch_profile,
    build_engine,
    choose_backend,
    resolve_precision,
)
from .cache import EngineCache, EngineKey, model_hash
from .image_network import IMAGE_BACKENDS, ImageEngineNetwork, ImageNetworkIO, build_image_engine
from .network import EngineNetwork, NetworkIO, network_io
from .restorer_adapter import EngineRestorer
from .split import CodeTensors, SplitEngine
from .split_build import build_split_engine
from .split_restorer import SplitRestorer
from .tiled import TiledUpscaler, tile_shape

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "CodeTensors",
    "Engine",
    "EngineCache",
    "EngineInfo",
    "EngineKey",
    "EngineNetwork",
    "EngineRestorer",
    "EngineUnavailableError",
    "IMAGE_BACKENDS",
    "ImageEngineNetwork",
    "ImageNetworkIO",
    "NetworkIO",
    "SplitEngine",
    "SplitRestorer",
    "TiledUpscaler",
    "backend_unavailable",
    "batch_profile",
    "build_engine",
    "build_image_engine",
    "build_split_engine",
    "choose_backend",
    "model_hash",
    "network_io",
    "resolve_precision",
    "tile_shape",
]
