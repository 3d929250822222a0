"""The names a user may write for a model, an engine, a detector, a mask..., as ``Literal`` types.

One place for each vocabulary: the CLI's ``choices`` (``choices(ModelName)``) and the typed
configs' checks come from here. This module imports nothing heavy (no torch), so ``vidrestore
--help`` and usage errors stay fast. The tables that implement the names check at import
that they cover exactly these: ``models.registry`` (``NetworkName``), ``engines.build``
(``BackendName``) and ``faces.detect`` (``DetectorName``) raise at import if one was added in
one place only.
"""

from __future__ import annotations

from typing import Literal, get_args

NetworkName = Literal["codeformer", "id-codeformer", "codeformer++"]
"""The restoration networks of ``vidrestore.models.registry``."""

ModelName = Literal["codeformer", "id-codeformer", "codeformer++", "passthrough"]
"""What ``--model`` takes: a network, or ``passthrough`` (faces unchanged: checks the road)."""

BackendName = Literal["torch", "compiled", "compiled-jit", "onnxruntime", "tensorrt"]
"""Every engine backend. ``compiled`` is an AOTInductor package on disk; ``compiled-jit`` is
``torch.compile`` in the running process (no artifact, not offered by ``--engine``)."""

EngineName = Literal["auto", "torch", "compiled", "onnxruntime", "tensorrt"]
"""What ``--engine`` takes: ``auto`` or a backend."""

PrecisionName = Literal["auto", "fp32", "fp16", "bf16"]
DeviceName = Literal["auto", "cpu", "cuda"]

DetectorName = Literal["auto", "retinaface", "retinaface-mobilenet", "mtcnn", "blazeface"]
"""Face detectors; ``auto`` picks the best whose weights are present."""

VerifierName = Literal["auto", "geometry", "dlib-cnn", "landmarks", "off"]
"""Second opinions on detected faces (``faces.verify``); ``auto`` is the measured best."""

MaskName = Literal["auto", "parsing", "template"]
"""Paste-back masks; ``auto`` uses face parsing when its weights are present."""

SmoothName = Literal["off", "gaussian", "one-euro"]
TemporalName = Literal["on", "off"]
"""``--temporal``: fuse the code choice over a face track's neighbouring frames, or not."""
DegradePresetName = Literal["vfhq", "codeformer"]
"""``vidrestore degrade --preset``: the clip degradations of ``vidrestore.degradation.video``."""
LpipsNetName = Literal["alex", "vgg"]
"""``vidrestore evaluate --lpips-net``: LPIPS's ImageNet trunk."""

DeinterlaceName = Literal["auto", "off", "bwdif", "yadif"]
"""``--deinterlace``: ``auto`` deinterlaces what is interlaced (bwdif), ``off`` keeps fields
woven, ``bwdif`` / ``yadif`` deinterlace every frame with that libavfilter filter."""

UpsamplerName = Literal["realesrgan", "lanczos", "none"]
"""``--bg-upsampler``: how the whole frame is enlarged by ``--upscale``."""

FaceOpsName = Literal["auto", "opencv", "torch"]
"""Where alignment and paste-back run: OpenCV on the host, or torch (``grid_sample``) on the
restorer's device; ``auto`` takes torch on CUDA, OpenCV on the CPU."""
IdentityBackendName = Literal["auto", "arcface-onnx", "arcface-torch", "dlib", "off"]


def choices(vocabulary) -> tuple[str, ...]:
    """The names of a ``Literal`` vocabulary, in order (for argparse ``choices``)."""
    return tuple(get_args(vocabulary))


def check_covers(vocabulary, names, what: str) -> None:
    """Raise ``RuntimeError`` unless ``names`` are exactly ``vocabulary``'s (a table and its
    vocabulary were changed apart: add the name in both places)."""
    expected, got = set(get_args(vocabulary)), set(names)
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise RuntimeError(f"{what} and vidrestore.names disagree: missing {missing}, not in names {extra}")
