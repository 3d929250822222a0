"""The restore stage: aligned faces from several frames, restored in batches.

Faces are gathered across consecutive frames until ``batch_size`` of them are waiting (or
``max_pending_frames`` frames are held, so a long stretch without faces never piles up
behind one face), then handed to the restorer, which may be any network or compiled engine
behind the ``Restorer`` protocol.

The hand-over does not wait: a restorer with ``submit`` (``engines.EngineRestorer``) queues a
batch and returns a ticket at once, and the stage goes back to gathering the next batch. Its
frames come out, in order, once their tickets are ready; when more than ``in_flight`` batches
are queued the stage waits for the oldest. On a GPU the next batch thus uploads while one
computes and one downloads; on a CPU tickets come back finished and nothing changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vidrestore.faces.device import DeviceFrame, host_array, stack_crops
from vidrestore.faces.face import Face

from .contracts import FrameJob, Restorer, check_restorer


class PassthroughRestorer:
    """Returns each aligned face unchanged: exercises the whole road without a network."""

    name = "passthrough"
    uses_identity = False
    takes_tensors = True

    def __init__(self, face_size: int = 512) -> None:
        self.face_size = face_size

    def restore(self, faces: np.ndarray, identities: np.ndarray | None, fidelity: float) -> np.ndarray:
        return faces


class _Finished:
    """The ticket of a restorer without ``submit``: restored when handed over."""

    event = None

    def __init__(self, value) -> None:
        self._value = value

    def ready(self) -> bool:
        return True

    def result(self):
        return self._value


@dataclass
class _Batch:
    ticket: object
    faces: list[Face]
    frames: list[DeviceFrame]  # the device copies of the frames its faces come from


@dataclass
class _Handover:
    """Jobs whose faces were handed over together, in order, with their batches."""

    jobs: list[FrameJob]
    batches: list[_Batch] = field(default_factory=list)

    def ready(self) -> bool:
        return all(b.ticket.ready() for b in self.batches)


class RestoreStage:
    """Batches faces across frames through a ``Restorer`` (satisfies ``Stage``).

    Args:
        restorer: the network or engine.
        fidelity: CodeFormer's w.
        batch_size: faces per restorer call.
        max_pending_frames: most frames held while a batch fills.
        in_flight: most batches handed over and not yet back (default: the restorer's
            ``depth``, 1 without one).
    """

    name = "restore"

    def __init__(self, restorer: Restorer, *, fidelity: float = 0.5, batch_size: int = 4,
                 max_pending_frames: int = 32, in_flight: int | None = None) -> None:
        self.restorer = check_restorer(restorer)
        self.fidelity = fidelity
        self.batch_size = max(1, batch_size)
        self.max_pending_frames = max(1, max_pending_frames)
        self.in_flight = max(1, in_flight if in_flight is not None else getattr(restorer, "depth", 1))
        self.faces_restored = 0
        self._pending: list[FrameJob] = []
        self._handed: deque[_Handover] = deque()

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        for job in jobs:
            if not self._pending and not _restorable(job):
                self._pass(job)  # nothing waits ahead of it to be handed over
                continue
            self._pending.append(job)
            waiting = sum(len(_restorable(j)) for j in self._pending)
            if waiting >= self.batch_size or len(self._pending) >= self.max_pending_frames:
                self._hand_over()
        return self._release(wait=False)

    def flush(self) -> list[FrameJob]:
        self._hand_over()
        return self._release(wait=True)

    @property
    def batches_in_flight(self) -> int:
        return sum(len(h.batches) for h in self._handed)

    def _pass(self, job: FrameJob) -> None:
        """A job with no face to restore: out behind the batches in flight, never before."""
        if self._handed:
            self._handed[-1].jobs.append(job)
        else:
            self._handed.append(_Handover([job]))

    def _hand_over(self) -> None:
        jobs, self._pending = self._pending, []
        if not jobs:
            return
        handover = _Handover(jobs)
        pairs = [(job, face) for job in jobs for face in _restorable(job)]
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            faces = [face for _, face in chunk]
            frames = list({id(job.device): job.device for job, _ in chunk if job.device is not None}.values())
            crops = stack_crops([face.crop for face in faces], frames)
            identities = np.stack([_identity_of(face) for face in faces]) if self.restorer.uses_identity else None
            handover.batches.append(_Batch(self._submit(crops, identities), faces, frames))
            for face in faces:
                face.crop = None  # the restorer has its own copy: free the memory
            self.faces_restored += len(chunk)
        self._handed.append(handover)

    def _submit(self, crops, identities):
        if not isinstance(crops, np.ndarray) and not getattr(self.restorer, "takes_tensors", False):
            crops = host_array(crops)  # a restorer of host arrays only
        submit = getattr(self.restorer, "submit", None)
        if submit is not None:
            return submit(crops, identities, self.fidelity)
        return _Finished(self.restorer.restore(crops, identities, self.fidelity))

    def _release(self, wait: bool) -> list[FrameJob]:
        """The jobs at the front whose batches are back (all of them with ``wait``; the oldest
        regardless while more than ``in_flight`` batches are out)."""
        out: list[FrameJob] = []
        while self._handed:
            front = self._handed[0]
            if not (wait or self.batches_in_flight > self.in_flight or front.ready()):
                break
            self._handed.popleft()
            for batch in front.batches:
                restored = batch.ticket.result()
                for face, value in zip(batch.faces, restored):
                    face.restored = value
                for frame in batch.frames:
                    frame.after(getattr(batch.ticket, "event", None))
            out += front.jobs
        return out


def _restorable(job: FrameJob) -> list:
    return [face for face in job.faces if face.crop is not None and face.skip is None]


def _identity_of(face) -> np.ndarray:
    if face.identity is None:
        raise RuntimeError(f"face of track {face.track_id} has no identity vector; "
                           "the identity-conditioned model needs ArcFace weights or --reference")
    return face.identity
