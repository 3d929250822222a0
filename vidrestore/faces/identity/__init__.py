"""Identity embeddings of faces, aggregated per track.

``encoders`` (ArcFace ONNX, ArcFace IR-SE50 in torch, dlib), ``backends`` (which encoder a run
uses; the ArcFace an identity-conditioned model needs), ``aggregate`` (``IdentityCache``: a
track's quality-weighted mean vector), ``schedule`` (``TrackIdentities``: when to embed, and
which vector conditions a face) and ``reference`` (a reference photo's vector).
"""

from .aggregate import IdentityCache, face_quality
from .backends import ARCFACE_WEIGHTS, RECOGNIZER_BACKENDS, build_encoder, conditioning_backend
from .encoders import (
    ArcFaceOnnxEncoder,
    ArcFaceTorchEncoder,
    DlibEncoder,
    FaceEncoder,
    dlib_models_dir,
)
from .reference import reference_identity
from .schedule import FrameEmbeddings, ReferenceMatch, TrackIdentities

__all__ = [
    "ARCFACE_WEIGHTS",
    "RECOGNIZER_BACKENDS",
    "ArcFaceOnnxEncoder",
    "ArcFaceTorchEncoder",
    "DlibEncoder",
    "FaceEncoder",
    "FrameEmbeddings",
    "IdentityCache",
    "ReferenceMatch",
    "TrackIdentities",
    "build_encoder",
    "conditioning_backend",
    "dlib_models_dir",
    "face_quality",
    "reference_identity",
]
