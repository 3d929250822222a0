"""Which identity encoder a run uses (``build_encoder``), and the ArcFace backend an
identity-conditioned model needs (``conditioning_backend``)."""

from __future__ import annotations

from vidrestore.errors import MissingWeightsError, UsageError

from .encoders import ArcFaceOnnxEncoder, ArcFaceTorchEncoder, DlibEncoder, FaceEncoder

ARCFACE_WEIGHTS = ("arcface-w600k-r50", "arcface-ir-se50")


def conditioning_backend(backend: str, store) -> str:
    """The identity backend that gives an identity-conditioned model its vectors: an ArcFace
    one. ``auto`` / ``off`` take the ArcFace weights present, else download IR-SE50 (MIT
    licence) where the store may download.

    Raises:
        UsageError: ``dlib`` (its vectors are not ArcFace's).
        MissingWeightsError: no ArcFace weights and no downloads.
    """
    if backend == "dlib":
        raise UsageError("identity conditioning needs an ArcFace backend, not dlib")
    if backend not in ("auto", "off"):
        return backend
    if any(store.find(name) is not None for name in ARCFACE_WEIGHTS):
        return "auto"
    if store.allow_download:
        return "arcface-torch"
    names = ", ".join(store.entry(n).filename for n in ARCFACE_WEIGHTS)
    raise MissingWeightsError(
        f"identity conditioning needs ArcFace weights ({names}) and downloads are off; run "
        "`vidrestore weights fetch arcface-ir-se50` or put one in the weights folder"
    )


def build_encoder(backend: str, store, device: str = "cpu") -> tuple[FaceEncoder | None, str]:
    """The identity encoder for ``backend`` and a one-line reason.

    ``auto`` takes the first of arcface-onnx, arcface-torch (when ``store.find`` has their
    weights; a found file is sha256-checked, never downloaded) and dlib (when installed);
    ``off`` gives None. A named backend whose weights are missing raises
    ``MissingWeightsError`` (through ``store.require``: a download when the store allows it).
    """
    if backend == "off":
        return None, "identity off"
    if backend == "arcface-onnx":
        return ArcFaceOnnxEncoder(store.require("arcface-w600k-r50"), device), "arcface-onnx as configured"
    if backend == "arcface-torch":
        return ArcFaceTorchEncoder(store.require("arcface-ir-se50"), device), "arcface-torch as configured"
    if backend == "dlib":
        return DlibEncoder(), "dlib as configured"
    if backend != "auto":
        raise UsageError(f"unknown identity backend {backend!r}")
    if store.find("arcface-w600k-r50") is not None:
        path = store.require("arcface-w600k-r50")
        return ArcFaceOnnxEncoder(path, device), f"arcface-onnx: {path.name} found"
    if store.find("arcface-ir-se50") is not None:
        path = store.require("arcface-ir-se50")
        return ArcFaceTorchEncoder(path, device), f"arcface-torch: {path.name} found"
    try:
        return DlibEncoder(), "dlib: no ArcFace weights found (tracking only, no conditioning vector)"
    except MissingWeightsError:
        return None, "no identity encoder available (no ArcFace weights, dlib not installed)"
