"""The face report (``--report FILE``): what the face stage found, as JSON.

Memory stays small on long videos: per-frame face counts are one small integer each (an
``array``), and each track's statistics are running sums.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .face import Face


@dataclass
class TrackStats:
    """Running statistics of one track."""

    first: int
    last: int
    frames: int = 0
    detected: int = 0
    box_sum: np.ndarray = field(default_factory=lambda: np.zeros(4))
    score_sum: float = 0.0
    skipped: int = 0

    def to_dict(self, track_id: int, identity: str | None, embeddings: int,
                reference: tuple[str | None, float | None] = (None, None)) -> dict[str, Any]:
        n = max(self.frames, 1)
        out = {
            "id": track_id,
            "first_frame": self.first,
            "last_frame": self.last,
            "frames": self.frames,
            "detected_frames": self.detected,
            "skipped_frames": self.skipped,
            "mean_box": [round(float(v), 2) for v in self.box_sum / n],
            "mean_score": round(self.score_sum / n, 4),
            "identity": identity,
            "identity_embeddings": embeddings,
        }
        if reference != (None, None):
            out["reference"], out["reference_cosine"] = reference
        return out


class FaceReport:
    """Collects the report as frames are finished (in order)."""

    def __init__(self) -> None:
        self.first_frame: int | None = None
        self.counts = array("H")  # faces per frame, from ``first_frame`` on
        self.tracks: dict[int, TrackStats] = {}
        self.cuts: list[int] = []
        self.skipped: Counter[str] = Counter()

    def add_frame(self, index: int, faces: Iterable[Face], detected: bool = True, cut: bool = False) -> None:
        """Count a finished frame's faces into the report."""
        faces = list(faces)
        if self.first_frame is None:
            self.first_frame = index
        # Frames normally come one by one; a hole (a frame that never reached the stage)
        # counts as zero faces so that positions stay frame indices.
        while self.first_frame + len(self.counts) < index:
            self.counts.append(0)
        self.counts.append(min(len(faces), 65535))
        if cut:
            self.cuts.append(index)
        for face in faces:
            stats = self.tracks.get(face.track_id)
            if stats is None:
                stats = self.tracks[face.track_id] = TrackStats(first=index, last=index)
            stats.last = index
            stats.frames += 1
            stats.detected += int(detected)
            stats.box_sum += np.asarray(face.box, np.float64)
            stats.score_sum += float(face.score)
            if face.skip:
                stats.skipped += 1
                self.skipped[face.skip] += 1

    def to_dict(
        self,
        *,
        identity: str | None = None,
        embeddings: Mapping[int, int] | None = None,
        track_references: Mapping[int, tuple[str | None, float | None]] | None = None,
        **header: Any,
    ) -> dict[str, Any]:
        """The report as plain data; ``header`` entries (detector, settings...) come first.

        ``track_references``: track id → (the reference photo conditioning it or None, the
        best cosine to a reference); tracks listed get ``reference`` / ``reference_cosine``.
        """
        embeddings = embeddings or {}
        references = track_references or {}
        return {
            **header,
            "frames": len(self.counts),
            "first_frame": self.first_frame or 0,
            "faces": int(sum(self.counts)),
            "skipped": dict(self.skipped),
            "scene_cuts": list(self.cuts),
            "tracks": [
                stats.to_dict(tid, identity, embeddings.get(tid, 0), references.get(tid, (None, None)))
                for tid, stats in sorted(self.tracks.items())
            ],
            "face_counts": self.counts.tolist(),
        }
