"""From a ``RestoreConfig`` to the pipeline's parts: the restorer, and the three stages.

This is where a run's settings meet the layers below: the model's registry spec and its
weights (``vidrestore.models``, ``vidrestore.weights``), an engine for it (``vidrestore.engines``,
which knows nothing of settings), and the face, restore and paste stages around it.

Untrained layers never reach a user's output: a checkpoint whose model's own layers are
missing or still at their initial values (``ModelSpec.untrained_parts``) stops the run here,
before any frame is read (``UntrainedWeightsError``, exit 4), unless ``allow_untrained`` asks
for the base behaviour, which then runs without those layers in the graph at all
(``ModelSpec.base_network``): ID-CodeFormer as CodeFormer, CodeFormer++ as its faithful
output. An identity-conditioned checkpoint's recorded recognizer decides which ArcFace gives
the identity vectors (``faces.identity.conditioning_backend``).
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
from vidrestore.errors import UntrainedWeightsError, UsageError
from vidrestore.faces.device import build_face_ops
from vidrestore.faces.identity import conditioning_backend
from vidrestore.faces.paste import build_masker
from vidrestore.models import LoadReport, Recognizer
from vidrestore.models.registry import ModelSpec, build_model, get_spec, load_model
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
        log(f"{spec.name}: no trained {spec.name} checkpoint found (none is published); "
            f"reading the official CodeFormer weights (pass --weights for one you trained)")
    return store.require(spec.base_weights)


@dataclass(frozen=True)
class LoadedNetwork:
    """A network ready for an engine, and what was loaded into it.

    Attributes:
        net: the module (eval mode).
        io: its inputs (``NetworkIO``).
        report: the checkpoint load's report (None for a tiny seeded network).
        recognizer: the identity network the checkpoint's identity layers were trained with
            (None: not recorded, or the network takes no identity).
        base: ``allow_untrained`` replaced an untrained model by its base behaviour.
    """

    net: nn.Module
    io: NetworkIO
    report: LoadReport | None = None
    recognizer: Recognizer | None = None
    base: bool = False


def load_network(config: RestoreConfig, store: WeightStore, *, log: Log = lambda line: None,
                 tiny: bool = False) -> tuple[nn.Module, NetworkIO]:
    """The network of ``config.model`` with its weights, and its ``NetworkIO`` (see
    ``prepare_network``)."""
    loaded = prepare_network(config, store, log=log, tiny=tiny)
    return loaded.net, loaded.io


def prepare_network(config: RestoreConfig, store: WeightStore, *, log: Log = lambda line: None,
                    tiny: bool = False) -> LoadedNetwork:
    """The network of ``config.model`` with its weights (built as the checkpoint's metadata
    records it), checked for untrained layers (see module doc).

    ``tiny``: the registry's test-size network with seeded random weights (no weight files):
    for CI-speed runs of ``bench`` and ``engines``; its face size is the tiny config's.

    Raises:
        UntrainedWeightsError: the model's own layers are untrained and ``allow_untrained`` is off.
        MissingWeightsError, WeightsError, WeightsMismatchError: see ``models.registry.load_model``.
    """
    spec = get_spec(config.model)
    if tiny:
        from vidrestore.models.seeded import fill_seeded

        net = fill_seeded(build_model(config.model, tiny=True))
        log(f"{config.model}: tiny test network with seeded random weights")
        return LoadedNetwork(net.eval(), network_io(spec, net))
    if (config.weights is None and spec.training and not config.allow_untrained
            and not (spec.trained_weights in store.table and store.find(spec.trained_weights))):
        # Nothing but the base weights to read: refuse now rather than after a download.
        raise UntrainedWeightsError(untrained_message(spec, None, spec.own_parts, None))
    path = weights_path(spec, config, store, log)
    net, report = load_model(config.model, path)
    log(report.summary())
    parts = spec.untrained_parts(net)
    if spec.refuses(parts):
        if not config.allow_untrained:
            raise UntrainedWeightsError(untrained_message(spec, Path(path), parts, report))
        base, base_name = spec.base_network(net)
        log(f"{spec.name}: {' and '.join(parts)} untrained; --allow-untrained runs "
            f"{_BASE_BEHAVIOUR.get(spec.name, base_name)} instead, without those layers (deterministic)")
        return LoadedNetwork(base, network_io(get_spec(base_name), base), report, base=True)
    if parts:
        log(f"{spec.name}: {' and '.join(parts)} at its initial value in {Path(path).name}: "
            f"that path adds nothing (an ablation without it)")
    recognizer = report.metadata.recognizer if report.metadata is not None and spec.needs_identity else None
    return LoadedNetwork(net, network_io(spec, net), report, recognizer)


_BASE_BEHAVIOUR = {"id-codeformer": "CodeFormer (no identity conditioning)",
                   "codeformer++": "its faithful output I_F (identity warp, zero residual)"}


def untrained_message(spec: ModelSpec, path: Path | None, parts: tuple[str, ...],
                      report: LoadReport | None) -> str:
    """The one line of an ``UntrainedWeightsError``: what is untrained, which weights the
    model needs and the training commands that make them (``path`` None: no checkpoint of
    the model's own was given at all)."""
    commands = " then ".join(f"`{c}`" for c in spec.training)
    needs = f"{spec.name} needs its own trained weights ({' and '.join(parts)})"
    if path is None:
        what = "and no checkpoint of it was given (--weights)"
    else:
        how = ("missing: it is a plain CodeFormer checkpoint" if report is not None and report.untrained
               else "still at their initial values: never trained")
        what = f"but in {path.name} they are {how}"
    return (f"{needs}, {what}; no trained {spec.name} weights are published: make them with {commands} "
            f"and pass the result with --weights (or --allow-untrained to run "
            f"{_BASE_BEHAVIOUR.get(spec.name, 'the base model')})")


def build_restorer(config: RestoreConfig, store: WeightStore, device: torch.device, *,
                   log: Log = lambda line: None, tiny: bool = False, cache: EngineCache | None = None,
                   batch_sizes: tuple[int, ...] = ()) -> Restorer:
    """The ``Restorer`` for ``config.model`` on ``device`` with ``config.engine``."""
    if config.model == "passthrough":
        return PassthroughRestorer(config.faces.face_size)
    loaded = prepare_network(config, store, log=log, tiny=tiny)
    if loaded.io.uses_identity:  # the face stage will need this ArcFace: say so before a long build
        backend = conditioning_backend(config.faces.identity.backend, store, loaded.recognizer)
        if loaded.recognizer is not None:
            log(f"identity: {backend} ({loaded.recognizer.name}), the recognizer this checkpoint was trained with")
    net, io = loaded.net, loaded.io
    precision = resolve_precision(config.precision, device)
    backend = config.engine
    if backend == "auto":
        backend, why = choose_backend(device, precision)
        log(f"engine: auto picked {backend}: {why}")
    engine = build_engine(net, io, backend=backend, precision=precision, device=device,
                          batch=batch_profile(backend, config.batch_for(device), batch_sizes),
                          cache=cache, log=log, owned=True)
    log(f"engine: {engine.info.describe()}")
    restorer = EngineRestorer(engine, log=log)
    restorer.recognizer = loaded.recognizer  # which ArcFace the face stage must use (None: any)
    return restorer


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
                 references: dict[str, np.ndarray] | None = None, log: Log = lambda line: None) -> Stages:
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
        references=references,
        recognizer=getattr(restorer, "recognizer", None),
        cache_dir=cache_dir,
        source=Path(source),
        log=log,
        face_ops=face_ops,
    )
    log(faces.summary)
    restore = RestoreStage(restorer, fidelity=config.fidelity, batch_size=config.batch_for(device))
    masker = build_masker(config.paste.mask, store, device, config.paste)
    return Stages(faces, restore, PasteStage(masker, overlay=config.overlay, config=config.paste, face_ops=face_ops))
