"""Who each track is: its identity vector, kept up to date while the track is seen.

``TrackIdentities`` is the face stage's identity policy over an ``IdentityCache``: after each
detected frame it embeds the views worth embedding (the schedule of ``aggregate``), and when
a face is aligned it gives the vector that conditions the restorer: the vector of the
reference photo (``--reference NAME=IMAGE``) whose person the track is, else the track's own.

A track is a reference's person when the cosine of the two ArcFace vectors reaches
``reference_threshold`` (the best reference if several do). The decision sticks: once
matched, a track keeps its reference for its whole life, so its faces never swap between
two conditioning vectors; an unmatched track is compared again whenever its own vector has
improved.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np

from vidrestore.faces.align import align_arcface
from vidrestore.faces.face import Face

from .aggregate import IdentityCache, face_quality
from .encoders import FaceEncoder


class FrameEmbeddings:
    """Embeddings of one frame's faces, each computed at most once, on first use.

    Calling it with a face (the tracker does, for ambiguous matches) embeds that face;
    ``many`` embeds several in one encoder call.
    """

    def __init__(self, encoder: FaceEncoder | None, image: np.ndarray) -> None:
        self.encoder, self.image = encoder, image
        self._vectors: dict[int, np.ndarray | None] = {}

    def __call__(self, face: Face) -> np.ndarray | None:
        return self.many([face])[0]

    def many(self, faces: Sequence[Face]) -> list[np.ndarray | None]:
        todo = [f for f in faces if id(f) not in self._vectors]
        if todo:
            vectors = self.encoder.embed(self.image, todo) if self.encoder is not None else [None] * len(todo)
            for face, vec in zip(todo, vectors):
                self._vectors[id(face)] = vec
        return [self._vectors[id(f)] for f in faces]


class ReferenceMatch(NamedTuple):
    """A track against the references: the best one's ``name``, its ``cosine``, and whether
    that reached the threshold (``matched``: the reference conditions the track)."""

    name: str
    cosine: float
    matched: bool


class TrackIdentities(IdentityCache):
    """An ``IdentityCache`` fed by an encoder on the schedule of ``IdentityConfig``.

    Args:
        encoder: the identity encoder, or None (no identities).
        every, improve: the embedding schedule (see ``aggregate``).
        min_face: views smaller than this (pixels) are never embedded.
        references: name → unit vector of each reference photo (``--reference``).
        reference_threshold: cosine a track's vector must reach to be a reference's person
            (None: the encoder's ``match_threshold``, 0.3 for the ArcFaces).
    """

    def __init__(self, encoder: FaceEncoder | None, *, every: int = 12, improve: float = 1.25,
                 min_face: float = 0.0, references: Mapping[str, np.ndarray] | None = None,
                 reference_threshold: float | None = None) -> None:
        super().__init__(every, improve)
        self.encoder = encoder
        self.min_face = min_face
        self.references = {name: np.asarray(v, np.float32) for name, v in (references or {}).items()}
        if reference_threshold is None:
            reference_threshold = encoder.match_threshold if encoder is not None else 0.3
        self.reference_threshold = float(reference_threshold)
        self._matches: dict[int, ReferenceMatch] = {}

    def match(self, track_id: int) -> ReferenceMatch | None:
        """How ``track_id`` compares with the references (None: no references, or no vector
        yet). Matched tracks keep their match (see module doc)."""
        known = self._matches.get(track_id)
        if known is not None and known.matched:
            return known
        vector = self.vector(track_id)
        if vector is None or not self.references:
            return known
        name, cosine = max(((n, float(vector @ ref)) for n, ref in self.references.items()), key=lambda t: t[1])
        found = ReferenceMatch(name, round(cosine, 4), cosine >= self.reference_threshold)
        self._matches[track_id] = found
        return found

    def matches(self) -> dict[int, ReferenceMatch]:
        """Every track compared so far → its match (for the face report)."""
        return dict(self._matches)

    def frame(self, image: np.ndarray) -> FrameEmbeddings:
        """The lazy embeddings of one frame's faces."""
        return FrameEmbeddings(self.encoder, image)

    def observe(self, index: int, faces: Sequence[Face], embeddings: FrameEmbeddings) -> dict[int, np.ndarray]:
        """Fold a detected frame's worthwhile views into their tracks; returns the tracks whose
        vector changed, with the new vector (for the tracker's identity matching)."""
        if self.encoder is None:
            return {}
        wanted, qualities = [], []
        for face in faces:
            if face.size < self.min_face:
                continue  # views too small to tell anyone apart
            q = self._quality(embeddings.image, face)
            if self.wants(face.track_id, index, q):
                wanted.append(face)
                qualities.append(q)
        changed = {}
        for face, q, vec in zip(wanted, qualities, embeddings.many(wanted)):
            self.add(face.track_id, index, vec, q)
            changed[face.track_id] = self.vector(face.track_id)
        return changed

    def conditioning(self, face: Face, image: np.ndarray, index: int) -> np.ndarray | None:
        """The vector that conditions the restorer for ``face`` (None without a conditioning
        encoder): the matching reference's, else its track's own, embedding this view first
        if the track has none yet (its earlier views were all too small)."""
        if self.encoder is None or not self.encoder.conditioning:
            return None
        if self.vector(face.track_id) is None:
            self.add(face.track_id, index, self.encoder.embed(image, [face])[0], self._quality(image, face))
        found = self.match(face.track_id)
        if found is not None and found.matched:
            return self.references[found.name]
        return self.vector(face.track_id)

    @staticmethod
    def _quality(image: np.ndarray, face: Face) -> float:
        return face_quality(align_arcface(image, face.landmarks), face.score, face.size)
