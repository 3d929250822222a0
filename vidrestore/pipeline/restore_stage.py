"""The restore stage: aligned faces from several frames, restored in batches.

Faces are gathered across consecutive frames until ``batch_size`` of them are waiting (or
``max_pending_frames`` frames are held, so a long stretch without faces never piles up
behind one face), then restored in one call of the restorer, which may be any network or
compiled engine behind the ``Restorer`` protocol.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .contracts import FrameJob, Restorer, check_restorer


class PassthroughRestorer:
    """Returns each aligned face unchanged: exercises the whole road without a network."""

    name = "passthrough"
    uses_identity = False

    def __init__(self, face_size: int = 512) -> None:
        self.face_size = face_size

    def restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        return faces


class RestoreStage:
    """Batches faces across frames through a ``Restorer`` (satisfies ``Stage``).

    Args:
        restorer: the network or engine.
        fidelity: CodeFormer's w.
        batch_size: faces per restorer call.
        max_pending_frames: most frames held while a batch fills.
    """

    name = "restore"

    def __init__(self, restorer: Restorer, *, fidelity: float = 0.5, batch_size: int = 4,
                 max_pending_frames: int = 32) -> None:
        self.restorer = check_restorer(restorer)
        self.fidelity = fidelity
        self.batch_size = max(1, batch_size)
        self.max_pending_frames = max(1, max_pending_frames)
        self.faces_restored = 0
        self._pending: list[FrameJob] = []

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        done: list[FrameJob] = []
        for job in jobs:
            if not self._pending and not _restorable(job):
                done.append(job)  # nothing waits ahead of it: pass straight on
                continue
            self._pending.append(job)
            waiting = sum(len(_restorable(j)) for j in self._pending)
            if waiting >= self.batch_size or len(self._pending) >= self.max_pending_frames:
                done += self._run()
        return done

    def flush(self) -> list[FrameJob]:
        return self._run()

    def _run(self) -> list[FrameJob]:
        jobs, self._pending = self._pending, []
        faces = [face for job in jobs for face in _restorable(job)]
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start : start + self.batch_size]
            crops = np.stack([face.crop for face in chunk])
            identities = None
            if self.restorer.uses_identity:
                identities = np.stack([_identity_of(face) for face in chunk])
            restored = self.restorer.restore(crops, identities, self.fidelity)
            for face, out in zip(chunk, restored):
                face.restored = out
                face.crop = None  # the restored face replaces it: free the memory
            self.faces_restored += len(chunk)
        return jobs


def _restorable(job: FrameJob) -> list:
    return [face for face in job.faces if face.crop is not None and face.skip is None]


def _identity_of(face) -> np.ndarray:
    if face.identity is None:
        raise RuntimeError(f"face of track {face.track_id} has no identity vector; "
                           "the identity-conditioned model needs ArcFace weights or --reference")
    return face.identity
