"""The identity of a reference photo (``--reference``)."""

from __future__ import annotations

import numpy as np

from vidrestore.errors import InputError, UsageError
from vidrestore.imaging import to_uint8

from .encoders import FaceEncoder


def reference_identity(image: np.ndarray, detector, encoder: FaceEncoder) -> np.ndarray:
    """The identity vector of the largest face in a reference photo (H×W×3 RGB).

    Raises:
        InputError: no face found in the photo.
        UsageError: the encoder gives no conditioning vector (dlib).
    """
    if not encoder.conditioning:
        raise UsageError(f"a reference identity needs ArcFace weights; {encoder.name} gives no 512-d vector")
    image = to_uint8(image)
    faces = detector.detect([image])[0]
    if not faces:
        raise InputError("no face found in the reference image")
    largest = max(faces, key=lambda f: f.size)
    return encoder.embed(image, [largest])[0]
