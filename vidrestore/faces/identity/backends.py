"""Which identity encoder a run uses (``build_encoder``), and the ArcFace backend an
identity-conditioned model needs (``conditioning_backend``): the recognizer its checkpoint
was trained with when the checkpoint records one (vectors of another ArcFace are other
vectors: ArcFaces trained apart do not share an embedding space)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidrestore.errors import ChecksumError, MissingWeightsError, UsageError, WeightsError

from .encoders import ArcFaceOnnxEncoder, ArcFaceTorchEncoder, DlibEncoder, FaceEncoder

ARCFACE_WEIGHTS = ("arcface-w600k-r50", "arcface-ir-se50")

if TYPE_CHECKING:
    from vidrestore.models.checkpoint import Recognizer

RECOGNIZER_BACKENDS = {"arcface-ir-se50": "arcface-torch", "arcface-w600k-r50": "arcface-onnx"}
"""A recognizer's weights name → the identity backend that runs it."""


def conditioning_backend(backend: str, store, recognizer: Recognizer | None = None) -> str:
    """The identity backend that gives an identity-conditioned model its vectors: an ArcFace
    one. With a ``recognizer`` (what the checkpoint was trained with) exactly that one, its
    file checked against the recorded sha256. Without: ``auto`` / ``off`` take the ArcFace
    weights present, else download IR-SE50 (MIT licence) where the store may download.

    Raises:
        UsageError: ``dlib`` (its vectors are not ArcFace's), or a backend other than the
            checkpoint's recognizer.
        MissingWeightsError: the ArcFace weights needed are absent and not downloadable.
        WeightsError: the recognizer is a smoke run's stand-in, unknown, or its file differs.
    """
    if backend == "dlib":
        raise UsageError("identity conditioning needs an ArcFace backend, not dlib")
    if recognizer is not None:
        return _recognizer_backend(backend, store, recognizer)
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


def _recognizer_backend(backend: str, store, recognizer: Recognizer) -> str:
    from vidrestore.models.checkpoint import STAND_IN_RECOGNIZER

    name = recognizer.name
    if name == STAND_IN_RECOGNIZER:
        raise WeightsError("this checkpoint's identity layers were trained on the random stand-in "
                           "recognizer of a smoke run (smoke: true): they mean nothing for real faces; "
                           "train with smoke: false and the real ArcFace weights")
    wanted = RECOGNIZER_BACKENDS.get(name)
    if wanted is None:
        raise WeightsError(f"the checkpoint names an unknown recognizer {name!r} "
                           f"(known: {', '.join(RECOGNIZER_BACKENDS)})")
    if backend not in ("auto", "off", wanted):
        raise UsageError(f"the checkpoint's identity layers were trained on {name} vectors ({wanted}); "
                         f"the identity backend {backend!r} gives other vectors")
    try:
        path = store.require(name)
    except MissingWeightsError as exc:
        raise MissingWeightsError(f"the checkpoint conditions on the {name} recognizer it was trained "
                                  f"with: {exc}") from None
    if recognizer.sha256 and (digest := store.sha256(path)) != recognizer.sha256:
        raise ChecksumError(f"{path} is not the {name} file the checkpoint was trained with "
                            f"(sha256 {digest[:12]}… here, {recognizer.sha256[:12]}… recorded)")
    return wanted


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
