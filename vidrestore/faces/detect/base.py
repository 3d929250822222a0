"""The contract every face detector satisfies."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from vidrestore.faces.face import Face


@runtime_checkable
class Detector(Protocol):
    """Finds faces and their 5 landmarks in a batch of frames.

    Attributes:
        name: what to call it in logs and reports (``mtcnn``, ``retinaface-resnet50``...).
    """

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Detect faces in each image.

        Args:
            images: H×W×3 uint8 RGB frames (sizes may differ).

        Returns:
            For each image, its faces (box, landmarks, score set; track_id -1), best first.
        """
        ...


def group_by_size(images: Sequence[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Indices of ``images`` grouped by shape (each group can run as one batch).

    Raises:
        ValueError: an image that is not H×W×3.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected H×W×3 RGB images, got shape {image.shape}")
        groups.setdefault(image.shape, []).append(i)
    return groups
