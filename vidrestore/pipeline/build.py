"""From a ``RestoreConfig`` to the pipeline's parts: the restorer, and the three stages.

This is where a run's settings meet the layers below: the model's registry spec and its
weights (``vidrestore.models``, ``vidrestore.weights``), an engine for it (``vidrestore.engines``,
which knows nothing of settings), and the face, restore and paste stages around it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from vidrestore.engines import (
    EngineCache,
    EngineRestorer,
    NetworkIO,
    batch_profile,
    build_engine,
    choose_backend,
    network_io,
    resolve_precision,
)
from vidrestore.errors import UsageError
from vidrestore.faces.device import build_face_ops
from vidrestore.faces.identity import conditioning_backend
from vidrestore.faces.paste import build_masker
from vidrestore.models.registry import ModelSpec, build_model, get_spec, load_checkpoint
from vidrestore.settings import RestoreConfig
from vidrestore.weights import WeightStore

from .contracts import Restorer, check_restorer
from .face_stage import FaceStage
from .paste_stage import PasteStage
from .restore_stage import PassthroughRestorer, RestoreStage

Log = Callable[[str], None]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but PyTorch sees no CUDA device")
    return torch.device(name)


def weights_path(spec: ModelSpec, config: RestoreConfig, store: WeightStore, log: Log) -> Path:
    """The checkpoint to load: ``--weights``, else the model's own trained weights if known
    and present, else its base (official CodeFormer) weights, downloaded if allowed."""
    if config.weights is not None:
        return config.weights
    trained = spec.trained_weights
    if trained and trained in store.table and store.find(trained):
        return store.require(trained)
    if trained:
        log(f"{spec.name}: no trained {spec.name} checkpoint found; starting from the official "
            f"CodeFormer weights (new layers untrained; pass --weights for a trained one)")
    return store.require(spec.base_weights)


def load_network(config: RestoreConfig, store: WeightStore, *, log: Log = lambda line: None,
                 tiny: bool = False) -> tuple[nn.Module, NetworkIO]:
    """The network of ``config.model`` with its weights, and its ``NetworkIO``.

    ``tiny``: the registry's test-size network with seeded random weights (no weight files):
    for CI-speed runs of ``bench`` and ``engines``; its face size is the tiny config's.
    """
    spec = get_spec(config.model)
    if tiny:
        from vidrestore.models.seeded import fill_seeded

        net = fill_seeded(build_model(config.model, tiny=True))
        log(f"{config.model}: tiny test network with seeded random weights")
    else:
        net = build_model(config.model)
        log(load_checkpoint(net, weights_path(spec, config, store, log), name=config.model).summary())
    return net.eval(), network_io(spec, net)


def build_restorer(config: RestoreConfig, store: WeightStore, device: torch.device, *,
                   log: Log = lambda line: None, tiny: bool = False, cache: EngineCache | None = None,
                   batch_sizes: tuple[int, ...] = ()) -> Restorer:
    """The ``Restorer`` for ``config.model`` on ``device`` with ``config.engine``."""
    if config.model == "passthrough":
        return PassthroughRestorer(config.faces.face_size)
    if get_spec(config.model).needs_identity:  # the face stage will need ArcFace: say so before a long build
        conditioning_backend(config.faces.identity.backend, store)
    net, io = load_network(config, store, log=log, tiny=tiny)
    precision = resolve_precision(config.precision, device)
    backend = config.engine
    if backend == "auto":
        backend, why = choose_backend(device, precision)
        log(f"engine: auto picked {backend}: {why}")
    engine = build_engine(net, io, backend=backend, precision=precision, device=device,
                          batch=batch_profile(backend, config.batch_for(device), batch_sizes),
                          cache=cache, log=log, owned=True)
    log(f"engine: {engine.info.describe()}")
    return EngineRestorer(engine, log=log)


@dataclass
class Stages:
    """The pipeline's three stages for one video, in order."""

    faces: FaceStage
    restore: RestoreStage
    paste: PasteStage

    def __iter__(self):
        return iter((self.faces, self.restore, self.paste))


def build_stages(config: RestoreConfig, store: WeightStore, device: torch.device, restorer: Restorer, *,
                 source: str | Path, cache_dir: str | Path | None = None,
                 reference_image: np.ndarray | None = None, log: Log = lambda line: None) -> Stages:
    """The face, restore and paste stages of ``config`` around ``restorer`` for video ``source``.

    The restorer decides the crop size (a tiny test network takes smaller faces); the face
    cache lives in ``cache_dir`` when given.
    """
    restorer = check_restorer(restorer)
    face_ops, why = build_face_ops(config.face_ops, device, config.paste)
    log(f"face ops: {'torch on ' + str(device) if face_ops is not None else 'OpenCV on the host'} ({why})")
    face_config = config.faces
    if restorer.face_size != face_config.face_size:
        face_config = dataclasses.replace(face_config, face_size=restorer.face_size)
    faces = FaceStage(
        face_config, store, device,
        identity_needed=restorer.uses_identity,
        reference_image=reference_image,
        cache_dir=cache_dir,
        source=Path(source),
        log=log,
        face_ops=face_ops,
    )
    log(faces.summary)
    restore = RestoreStage(restorer, fidelity=config.fidelity, batch_size=config.batch_for(device))
    masker = build_masker(config.paste.mask, store, device, config.paste)
    return Stages(faces, restore, PasteStage(masker, overlay=config.overlay, config=config.paste, face_ops=face_ops))
