"""The settings of one restoration run, as one typed config.

``RestoreConfig`` holds everything that changes the output video; the CLI fills it from its
flags (over an optional ``--config`` YAML preset from ``configs/inference/``), the batch
runner hashes it to know when a finished file must be redone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .config import to_mapping
from .errors import ConfigError
from .faces.config import FaceConfig
from .faces.paste.config import PasteConfig
from .io.decoding import DecodeSettings
from .io.encoding import EncodeSettings
from .models.temporal import TemporalConfig
from .names import DeviceName, EngineName, FaceOpsName, ModelName, PrecisionName, UpsamplerName, choices

UPSCALES = (1, 2, 4)
"""The ``--upscale`` factors (those Real-ESRGAN has official networks for)."""


@dataclass(frozen=True)
class UpscaleConfig:
    """Enlarging the whole frame (``--upscale``), as the official CodeFormer does for small
    sources: restored faces are pasted into the enlarged frame at its geometry, so their
    512² detail is kept instead of being shrunk back to the source's face size.

    Attributes:
        factor: 1 (off), 2 or 4.
        upsampler: the background's enlargement: ``realesrgan`` (Real-ESRGAN RRDBNet x2plus
            / x4plus, its official weights fetched like the others; offline without them,
            ``lanczos`` with a note), ``lanczos`` (8×8 Lanczos resampling), or ``none`` (a plain
            bicubic resize, as the official CodeFormer without a background upsampler: only
            the faces get new detail).
        weights: a Real-ESRGAN checkpoint to use instead of the official file.
        tile: side of the tiles Real-ESRGAN runs on (input pixels; memory is that of one
            tile whatever the frame size).
        tile_pad: the overlap kept from each tile's inner edges (input pixels).
    """

    factor: int = 1
    upsampler: UpsamplerName = "realesrgan"
    weights: Path | None = None
    tile: int = 256
    tile_pad: int = 16

    def __post_init__(self) -> None:
        if self.factor not in UPSCALES:
            raise ConfigError(f"--upscale must be one of {', '.join(map(str, UPSCALES))}, got {self.factor}")
        if self.upsampler not in choices(UpsamplerName):
            raise ConfigError(f"--bg-upsampler must be one of {', '.join(choices(UpsamplerName))}, "
                              f"not {self.upsampler!r}")
        if self.tile_pad < 0 or self.tile <= 2 * self.tile_pad or self.tile < 16:
            raise ConfigError(f"upscale tile must be >= 16 and more than twice tile_pad "
                              f"(got tile {self.tile}, tile_pad {self.tile_pad})")


@dataclass(frozen=True)
class ReferencePhoto:
    """A photo of one person (``--reference NAME=IMAGE``).

    Attributes:
        name: what the face report calls the person.
        path: the image; its largest face gives the identity vector.
    """

    name: str
    path: Path

    def __post_init__(self) -> None:
        if not self.name or "=" in self.name:
            raise ConfigError(f"a reference needs a name without '=', got {self.name!r}")


@dataclass(frozen=True)
class RestoreConfig:
    """One restoration run's settings.

    Attributes:
        model: ``codeformer``, ``id-codeformer``, ``codeformer++`` or ``passthrough`` (faces
            pass unchanged: for checking the road, and with ``overlay`` for debugging).
        weights: a checkpoint file to load instead of the model's known weights (checked to
            fit the network strictly).
        weights_dir: an offline folder of weight files, searched before the cache.
        download: fetch missing known weights (False: offline, fail with exit 4 instead).
        fidelity: CodeFormer's w in [0, 1]: 0 best quality, 1 closest to the input.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
        engine: restoration backend (``auto`` picks the fastest available).
        batch_size: faces per network call, gathered across frames (None: by device, see
            ``batch_for``).
        encode: codec and quality of the output.
        decode: what is done to frames as they are decoded (deinterlacing, square pixels).
        upscale: enlarging the whole frame (``--upscale``, ``--bg-upsampler``).
        faces: the face stage.
        paste: how restored faces are blended back (mask, its shape, erosion and feather).
        overlay: draw what the face stage found (boxes, landmarks, track ids).
        references: photos of people (``ReferencePhoto``): each conditions ``id-codeformer`` on
            the tracks whose identity matches it; other tracks use their own identity.
        allow_untrained: run a model whose own layers are untrained as its base model
            (ID-CodeFormer as CodeFormer, CodeFormer++ as its faithful output) instead of
            stopping (see ``pipeline.build``).
        face_cache: keep the face stage's results beside the output for re-runs.
        queue_size: jobs per queue between stages (memory vs. overlap).
        temporal: fuse each face's code choice over its track's neighbouring frames
            (``vidrestore.models.temporal``; on by default for videos).
        face_ops: where alignment and paste-back run: ``opencv`` (on the host), ``torch``
            (``grid_sample`` on the restorer's device: on CUDA a frame goes up once and only
            the pasted regions come back) or ``auto`` (torch on CUDA, OpenCV on a CPU).
    """

    model: ModelName = "codeformer"
    weights: Path | None = None
    weights_dir: Path | None = None
    download: bool = True
    fidelity: float = 0.5
    device: DeviceName = "auto"
    precision: PrecisionName = "auto"
    engine: EngineName = "auto"
    batch_size: int | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    faces: FaceConfig = field(default_factory=FaceConfig)
    paste: PasteConfig = field(default_factory=PasteConfig)
    overlay: bool = False
    references: tuple[ReferencePhoto, ...] = ()
    allow_untrained: bool = False
    face_cache: bool = True
    queue_size: int = 4
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    face_ops: FaceOpsName = "auto"

    def __post_init__(self) -> None:
        for name, vocabulary in (("model", ModelName), ("engine", EngineName), ("device", DeviceName),
                                 ("precision", PrecisionName), ("face_ops", FaceOpsName)):
            if getattr(self, name) not in choices(vocabulary):
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; choose one of "
                                  f"{', '.join(choices(vocabulary))}")
        if not 0.0 <= self.fidelity <= 1.0:
            raise ConfigError(f"fidelity must be within 0..1, got {self.fidelity}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.queue_size < 1:
            raise ConfigError(f"queue size must be >= 1, got {self.queue_size}")
        names = [r.name for r in self.references]
        if len(set(names)) != len(names):
            raise ConfigError(f"reference names must differ, got {', '.join(names)}")

    def batch_for(self, device) -> int:
        """Faces per network call on ``device``: ``batch_size``, else 1 on a CPU (measured:
        one 512² face already fills the cores, and a batch of 4 holds 4× the activations,
        docs/benchmarks.md) and 8 on a GPU (the artifacts' batch profile; not yet tuned by
        a GPU measurement)."""
        if self.batch_size is not None:
            return self.batch_size
        return 8 if str(device).startswith("cuda") else 1

    def fingerprint(self) -> str:
        """A hash of every setting that changes the output (paths of weights by content name).

        Speed and memory settings are left out: the queue size, and the batch size (a batch
        changes results only by floating-point rounding; a batch job must not redo finished
        files because a later run gathers faces differently), and where the face ops run
        (OpenCV and torch agree to a level of rounding: docs/benchmarks.md)."""
        data = to_mapping(self)
        data.pop("queue_size")
        data.pop("face_ops")
        data.pop("batch_size")
        data.pop("face_cache")
        data.pop("download")
        data.pop("weights_dir")
        for key, default in (("decode", DecodeSettings()), ("upscale", UpscaleConfig())):
            if data[key] == to_mapping(default):  # hashes made before these settings existed hold
                data.pop(key)
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
