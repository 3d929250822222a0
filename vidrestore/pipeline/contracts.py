"""The contracts that pipeline stages, restorers and engines plug into.

Data flows one way: decode → face stage → restore stage → paste stage → encode. Every item
on the road is a ``FrameJob``: the frame plus what the stages learned about it.

A ``Stage`` takes jobs in presentation order and gives them back in the same order. It may
hold some back (a centred smoothing window needs the frames after the current one) and gives
them out later or from ``flush()`` at the end of the stream.

A ``Restorer`` turns aligned face crops into restored ones; networks and compiled engines
both satisfy it, so the pipeline never knows which backend runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from vidrestore.faces.face import Face
from vidrestore.io.frame import Frame


@dataclass
class FrameJob:
    """One frame and everything the stages attach to it.

    Attributes:
        frame: the decoded frame (its host pixels are what the encoder writes).
        faces: what the face stage found in it.
        device: the frame's copy on the torch device while the device face ops work on it
            (``faces.device.DeviceFrame``: made by the face stage, dropped by the paste
            stage), else None.
    """

    frame: Frame
    faces: list[Face] = field(default_factory=list)
    device: Any = None

    @property
    def index(self) -> int:
        return self.frame.index


@runtime_checkable
class Stage(Protocol):
    """A step of the frame pipeline (see module docstring for the ordering contract)."""

    name: str

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        """Take the next jobs in order; return the jobs that are finished, in order."""
        ...

    def flush(self) -> list[FrameJob]:
        """The stream has ended: return every job still held, in order."""
        ...


@runtime_checkable
class Restorer(Protocol):
    """Restores a batch of aligned faces.

    Attributes:
        name: what to call it in logs and reports (e.g. ``codeformer/torch-fp16``).
        uses_identity: whether ``restore`` needs ``identities`` (ID-CodeFormer).
        face_size: the side of the square crops it takes (512 for every CodeFormer).
    """

    name: str
    uses_identity: bool
    face_size: int

    def restore(
        self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float
    ) -> np.ndarray:
        """Restore ``faces``.

        Args:
            faces: N×S×S×3 float32 RGB in [0, 1], aligned to the FFHQ template. A restorer
                whose ``takes_tensors`` is true also takes a torch tensor on its device (the
                device face ops' crops) and then returns one there.
            identities: N×512 float32 unit ArcFace vectors, or None.
            fidelity: CodeFormer's w in [0, 1]: 0 favours quality, 1 fidelity to the input.

        Returns:
            N×S×S×3 float32 RGB in [0, 1].

        A restorer may also offer ``submit(faces, identities, fidelity) -> ticket`` (with
        ``ticket.ready()``, ``ticket.result()`` and ``ticket.event``, see
        ``engines.restorer_adapter``) and ``depth``, the batches worth keeping in flight: the
        restore stage then hands batches over without waiting for them.
        """
        ...


def check_stage(obj: object) -> Stage:
    """Return ``obj`` if it satisfies ``Stage``, else raise TypeError naming what is missing."""
    return _check(obj, Stage, ("name", "process", "flush"))


def check_restorer(obj: object) -> Restorer:
    """Return ``obj`` if it satisfies ``Restorer``, else raise TypeError naming what is missing."""
    return _check(obj, Restorer, ("name", "uses_identity", "face_size", "restore"))


def _check(obj, proto, members):
    missing = [m for m in members if not hasattr(obj, m)]
    if missing or not isinstance(obj, proto):
        raise TypeError(f"{type(obj).__name__} is not a {proto.__name__}: lacks {', '.join(missing)}")
    return obj
