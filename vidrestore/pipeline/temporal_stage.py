"""The temporal restore stage: each face's codes fused over its track's centred window.

Faces are restored in two steps through a ``CodeRestorer``: *predict* (encoder +
transformer: the logits that decide the codes), batched across frames as the plain restore
stage batches whole restorations; then, once the frames up to ``radius`` after a face have
been predicted, *decode*: its logits and latent fused with those of the same track's faces
in frames ``t − radius … t + radius`` (``vidrestore.models.temporal.fuse_window``), then the
code choice and the generator, batched again.

The decode hand-over does not wait, as in the plain restore stage: a restorer with
``submit_decode`` (``engines.SplitRestorer``) queues a batch and returns a ticket, and the
stage goes on predicting; faces get their restored crops once their tickets are ready, and at
most ``in_flight`` decode batches are out (the oldest is waited for beyond that). Crops the
device face ops made (tensors on the restorer's device, ``job.device`` set) go in as they
are, and the restored faces stay there for the paste stage, which waits for their events.

Jobs are held back by the window's future half (``radius`` frames), plus what batching
gathers, and never more than ``max_pending_frames`` frames: past that, waiting faces are
predicted at once and whatever can be decoded is. At the end of the stream (``flush``) the
last faces are decoded with the frames there are. Jobs come out exactly once, in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vidrestore.faces.device import DeviceFrame, host_array, stack_crops
from vidrestore.faces.face import Face
from vidrestore.models.temporal import TemporalConfig, fuse_window

from .contracts import CodeRestorer, FrameJob
from .restore_stage import _Finished, _identity_of, _restorable


@dataclass
class _Decoding:
    """One decode batch handed over: its ticket, its faces, the device copies of their frames."""

    ticket: object
    faces: list[Face]
    frames: list[DeviceFrame]


class TemporalRestoreStage:
    """Restores faces with temporally fused codes (satisfies ``Stage``; module doc).

    Args:
        restorer: the split network or engine (``CodeRestorer``).
        config: the window (``radius`` frames each side) and its gate.
        fidelity: CodeFormer's w.
        batch_size: faces per predict / decode call.
        max_pending_frames: most frames held.
        in_flight: most decode batches handed over and not yet back (default: the
            restorer's ``depth``, 1 without one).

    Attributes:
        faces_restored: faces decoded so far.
        fused: of those, how many had at least one neighbour in their window.
    """

    name = "restore"

    def __init__(self, restorer: CodeRestorer, config: TemporalConfig, *, fidelity: float = 0.5,
                 batch_size: int = 1, max_pending_frames: int = 32, in_flight: int | None = None) -> None:
        self.restorer = restorer
        self.config = config
        self.radius = config.radius
        self.fidelity = fidelity
        self.batch_size = max(1, batch_size)
        self.max_pending_frames = max(self.radius + 1, max_pending_frames)
        self.in_flight = max(1, in_flight if in_flight is not None else getattr(restorer, "depth", 1))
        self.faces_restored = 0
        self.fused = 0
        self._next_seq = 0
        self._held: deque[tuple[int, FrameJob, list[Face]]] = deque()
        self._waiting: list[tuple[int, int, Face]] = []   # (seq, frame, face) admitted, not predicted
        self._predicted: list[tuple[int, int, Face]] = [] # predicted, not yet decoded
        self._decoding: deque[_Decoding] = deque()         # decode batches handed over, not back
        self._frames: dict[int, DeviceFrame] = {}          # id(face) -> its frame's device copy
        self._codes: dict[int, object] = {}                # id(face) -> its CodeTensors
        self._history: dict[int, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}  # track -> frame -> codes

    @property
    def delay(self) -> int:
        """Frames a job is held back for the window (batching adds to it)."""
        return self.radius

    # -- the Stage protocol --------------------------------------------------------------

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        for job in jobs:
            faces = _restorable(job)
            seq = self._next_seq
            self._next_seq += 1
            self._held.append((seq, job, faces))
            self._waiting += [(seq, job.index, face) for face in faces]
            if job.device is not None:
                self._frames.update((id(face), job.device) for face in faces)
        forced = len(self._held) >= self.max_pending_frames
        self._predict(everything=forced)
        self._decode(final=False, forced=forced)
        return self._release(wait=forced)

    def flush(self) -> list[FrameJob]:
        self._predict(everything=True)
        self._decode(final=True, forced=True)
        out = self._release(wait=True)
        self._history.clear()
        return out

    @property
    def batches_in_flight(self) -> int:
        """Decode batches handed over whose results are not collected yet."""
        return len(self._decoding)

    # -- predict, fuse, decode -----------------------------------------------------------

    def _predict(self, *, everything: bool) -> None:
        while self._waiting and (everything or len(self._waiting) >= self.batch_size):
            chunk, self._waiting = self._waiting[: self.batch_size], self._waiting[self.batch_size :]
            faces = [face for _, _, face in chunk]
            crops = stack_crops([f.crop for f in faces], self._frames_of(faces))
            if not isinstance(crops, np.ndarray) and not getattr(self.restorer, "takes_tensors", False):
                crops = host_array(crops)  # a restorer of host arrays only
            codes = self.restorer.predict(crops, self._identities(faces))
            for (seq, frame, face), code in zip(chunk, codes):
                self._codes[id(face)] = code
                face.crop = None  # the restorer has its own copy: free the memory
                self._predicted.append((seq, frame, face))
                if face.track_id >= 0:
                    self._history.setdefault(face.track_id, {})[frame] = (code.logits[0], code.lq_feat[0])

    def _decode(self, *, final: bool, forced: bool) -> None:
        through = self._waiting[0][0] - 1 if self._waiting else self._next_seq - 1  # every face up to here predicted
        ready = [item for item in self._predicted if final or item[0] + self.radius <= through]
        if not ready or (len(ready) < self.batch_size and not forced):
            return
        count = len(ready) if forced else len(ready) - len(ready) % self.batch_size
        ready = ready[:count]
        self._predicted = self._predicted[count:]
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            faces = [face for _, _, face in chunk]
            codes = [self._fused(frame, face) for _, frame, face in chunk]
            frames = self._frames_of(faces)
            self._decoding.append(_Decoding(self._submit(codes, faces, on_device=bool(frames)), faces, frames))
            for _, frame, face in chunk:
                del self._codes[id(face)]
                self._frames.pop(id(face), None)
                self._forget(face.track_id, frame)
            self.faces_restored += len(chunk)

    def _submit(self, codes: list, faces: list[Face], *, on_device: bool):
        submit = getattr(self.restorer, "submit_decode", None)
        if submit is not None:
            return submit(codes, self._identities(faces), self.fidelity, on_device=on_device)
        return _Finished(self.restorer.decode(codes, self._identities(faces), self.fidelity))

    def _collect(self, wait: bool) -> None:
        """Give faces their restored crops from the decode batches that are back, oldest
        first (all of them with ``wait``; the oldest regardless beyond ``in_flight``)."""
        while self._decoding:
            front = self._decoding[0]
            if not (wait or len(self._decoding) > self.in_flight or front.ticket.ready()):
                break
            self._decoding.popleft()
            for face, value in zip(front.faces, front.ticket.result()):
                face.restored = value
            for frame in front.frames:
                frame.after(getattr(front.ticket, "event", None))

    def _fused(self, t: int, face: Face):
        """The face's codes, fused with its track's frames ``t ± radius`` where it has any."""
        code = self._codes[id(face)]
        track = self._history.get(face.track_id) if face.track_id >= 0 else None
        if not track or self.radius == 0:
            return code
        offsets = [f - t for f in sorted(track) if abs(f - t) <= self.radius]
        if len(offsets) == 1:
            return code
        logits = torch.stack([track[t + k][0] for k in offsets])
        latents = torch.stack([track[t + k][1] for k in offsets])
        fused_logits, fused_latent = fuse_window(logits, latents, offsets, self.config)
        self.fused += 1
        return code.with_codes(fused_logits[None], fused_latent[None])

    def _forget(self, track_id: int, frame: int) -> None:
        """Drop what no later face of the track can need once ``frame`` is decoded."""
        track = self._history.get(track_id)
        if track is None:
            return
        for f in [f for f in track if f <= frame - self.radius]:
            del track[f]

    # -- bookkeeping ---------------------------------------------------------------------

    def _identities(self, faces: list[Face]) -> np.ndarray | None:
        if not self.restorer.uses_identity:
            return None
        return np.stack([_identity_of(face) for face in faces])

    def _frames_of(self, faces: list[Face]) -> list[DeviceFrame]:
        found = (self._frames.get(id(face)) for face in faces)
        return list({id(f): f for f in found if f is not None}.values())

    def _release(self, wait: bool) -> list[FrameJob]:
        self._collect(wait)
        out = []
        while self._held and all(face.restored is not None for face in self._held[0][2]):
            _, job, _ = self._held.popleft()
            out.append(job)
        if self._held:
            oldest = self._held[0][1].index
            for tid in [t for t, frames in self._history.items() if not frames or max(frames) < oldest - self.radius]:
                del self._history[tid]
        return out
