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
    AUTO_ORDER,
    IMAGE_BACKENDS,
    EngineCache,
    EngineRestorer,
    ImageNetworkIO,
    NetworkIO,
    TiledUpscaler,
    backend_unavailable,
    batch_profile,
    build_engine,
    build_image_engine,
    choose_backend,
    network_io,
    resolve_precision,
    tile_shape,
)
from vidrestore.errors import UntrainedWeightsError, UsageError
from vidrestore.faces.device import build_face_ops
from vidrestore.faces.identity import conditioning_backend
from vidrestore.faces.paste import build_masker
from vidrestore.models import LoadReport, Recognizer
from vidrestore.models.checkpoint import load_weights_file
from vidrestore.models.registry import ModelSpec, build_model, get_spec, load_model
from vidrestore.models.rrdbnet import RRDBNet, upsampler_spec
from vidrestore.models.seeded import fill_seeded
from vidrestore.settings import RestoreConfig
from vidrestore.weights import WeightStore

from .contracts import CodeRestorer, Restorer, check_restorer
from .face_stage import FaceStage
from .paste_stage import PasteStage
from .restore_stage import PassthroughRestorer, RestoreStage
from .temporal_stage import TemporalRestoreStage
from .upscale_stage import ResizeUpscaler, Upscaler, UpscaleStage

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
    batch = batch_profile(backend, config.batch_for(device), batch_sizes)
    if config.temporal.enabled:  # the network split at the code choice, for the temporal stage
        from vidrestore.engines.split_build import build_split_engine
        from vidrestore.engines.split_restorer import SplitRestorer

        split = build_split_engine(net, io, backend=backend, precision=precision, device=device, batch=batch,
                                   cache=cache, log=log, owned=True)
        log(f"engine: {split.info.describe()}")
        return SplitRestorer(split)
    engine = build_engine(net, io, backend=backend, precision=precision, device=device,
                          batch=batch, cache=cache, log=log, owned=True)
    log(f"engine: {engine.info.describe()}")
    restorer = EngineRestorer(engine, log=log)
    restorer.recognizer = loaded.recognizer  # which ArcFace the face stage must use (None: any)
    return restorer


@dataclass
class Stages:
    """The pipeline's stages for one video, in order (``upscale`` only with ``--upscale``)."""

    faces: FaceStage
    restore: RestoreStage | TemporalRestoreStage
    paste: PasteStage
    upscale: UpscaleStage | None = None

    def __iter__(self):
        return iter([s for s in (self.faces, self.restore, self.upscale, self.paste) if s is not None])


def build_upscaler(config: RestoreConfig, store: WeightStore, device: torch.device, *,
                   frame_size: tuple[int, int], log: Log = lambda line: None, tiny: bool = False) -> Upscaler | None:
    """The ``Upscaler`` of ``config.upscale`` for frames of ``frame_size`` (height, width,
    upright), or None without ``--upscale``.

    Real-ESRGAN needs its weights: ``upscale.weights``, else the official file of the
    factor's network (downloaded where allowed); offline without it, Lanczos with a note.
    ``tiny``: the network's test size with seeded random weights (``bench --tiny``).
    """
    up = config.upscale
    if up.factor == 1:
        return None
    if up.upsampler != "realesrgan":
        return ResizeUpscaler(up.factor, "lanczos" if up.upsampler == "lanczos" else "bicubic")
    spec = upsampler_spec(up.factor)
    if tiny:
        net = fill_seeded(RRDBNet(spec.tiny))
        log(f"upscale: {spec.name} tiny test network with seeded random weights")
    else:
        if up.weights is not None:
            path = up.weights
        elif store.find(spec.weights) is None and not store.allow_download:
            entry = store.entry(spec.weights)
            log(f"upscale: {entry.filename} is not present and downloads are off: enlarging the background "
                f"with lanczos instead (`vidrestore weights fetch {spec.weights}` for Real-ESRGAN)")
            return ResizeUpscaler(up.factor, "lanczos")
        else:
            path = store.require(spec.weights)
        net = load_weights_file(RRDBNet(spec.config), path, what=f"Real-ESRGAN {spec.name}")
    precision = resolve_precision(config.precision, device)
    backend = config.engine
    if backend not in IMAGE_BACKENDS:
        backend, why = choose_image_backend(device, precision)
        if config.engine != "auto":
            why = f"--engine {config.engine} does not run it; {why}"
        log(f"upscale: engine {backend}: {why}")
    height, width = frame_size
    tile = tile_shape(height, width, up.tile, net.multiple, up.tile_pad)
    io = ImageNetworkIO(spec.name, spec.config.scale, tile)
    batch = 4 if device.type == "cuda" else 1
    engine = build_image_engine(net.eval(), io, backend=backend, precision=precision, device=device,
                                batch=(1, batch, max(batch, 4)), log=log, owned=True)
    upscaler = TiledUpscaler(engine, scale=spec.config.scale, tile=tile, pad=min(up.tile_pad, (min(tile) - 1) // 2),
                             multiple=net.multiple, batch=batch)
    log(f"upscale: {upscaler.name}")
    return upscaler


def choose_image_backend(device: torch.device, precision: str) -> tuple[str, str]:
    """``--engine auto`` for an image network: the first available of ``AUTO_ORDER`` that
    runs image networks."""
    skipped = []
    for backend in AUTO_ORDER["cuda" if device.type == "cuda" else "cpu"]:
        if backend not in IMAGE_BACKENDS:
            continue
        reason = backend_unavailable(backend, device, precision)
        if reason is None:
            return backend, "the first available for image networks" + (f" ({'; '.join(skipped)})" if skipped else "")
        skipped.append(f"not {backend}: {reason}")
    raise UsageError("no engine can run the background upsampler here: " + "; ".join(skipped))


def build_stages(config: RestoreConfig, store: WeightStore, device: torch.device, restorer: Restorer, *,
                 source: str | Path, cache_dir: str | Path | None = None,
                 references: dict[str, np.ndarray] | None = None, log: Log = lambda line: None,
                 pixel_aspect: float = 1.0, frames_key: str = "", upscaler: Upscaler | None = None) -> Stages:
    """The face, restore, [upscale] and paste stages of ``config`` around ``restorer`` for
    video ``source``.

    The restorer decides the crop size (a tiny test network takes smaller faces); the face
    cache lives in ``cache_dir`` when given. ``pixel_aspect`` is the frames' pixel shape
    (the face stage works in square pixels), ``frames_key`` what they depend on beyond the
    file (for the face cache); ``upscaler`` (``build_upscaler``) adds the upscale stage.
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
        pixel_aspect=pixel_aspect,
        frames_key=frames_key,
        face_ops=face_ops,
    )
    log(faces.summary)
    restore = restore_stage(config, restorer, device, log)
    masker = build_masker(config.paste.mask, store, device, config.paste)
    log(f"paste: {masker.name} mask ({getattr(masker, 'reason', '') or 'requested'})")
    return Stages(faces, restore, PasteStage(masker, overlay=config.overlay, config=config.paste, face_ops=face_ops),
                  UpscaleStage(upscaler) if upscaler is not None else None)


def restore_stage(config: RestoreConfig, restorer: Restorer, device: torch.device,
                  log: Log = lambda line: None) -> RestoreStage | TemporalRestoreStage:
    """The restore stage of ``config``: temporal fusion where it is on and the restorer is
    split at the code choice (``CodeRestorer``), else each face on its own."""
    batch = config.batch_for(device)
    temporal = config.temporal
    if temporal.enabled and isinstance(restorer, CodeRestorer):
        log(f"temporal: codes fused over {temporal.window} frames of each face track "
            f"(faces held back {temporal.radius} frames)")
        return TemporalRestoreStage(restorer, temporal, fidelity=config.fidelity, batch_size=batch)
    if temporal.enabled and config.model != "passthrough":
        log(f"temporal: off ({getattr(restorer, 'name', type(restorer).__name__)} is not split at the code choice)")
    return RestoreStage(restorer, fidelity=config.fidelity, batch_size=batch)
