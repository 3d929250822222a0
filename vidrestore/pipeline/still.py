"""Still images through the same parts as a video: detect, align, identify, restore, paste.

``StillRestorer.restore(image)`` handles one photo on its own (no tracking, no temporal
smoothing: each face is its own "track", matched against the ``--reference`` photos as a
video's tracks are). With ``aligned`` the image already is an FFHQ-aligned face (the
CelebA-Test protocol): it goes to the network whole, without detection or paste-back, and
the result is the network's output at the image's own size (resized to the network's face
size and back when they differ). The network, its engine and the identity options are the
video path's (``pipeline.build``). With ``--upscale`` the whole photo is enlarged (Real-ESRGAN,
or its offline stand-in) after its faces are restored, and they are pasted into the enlarged
photo at its geometry, as a video's frames are (``upscale_stage``) and as the official
CodeFormer does for photos (``--bg_upsampler realesrgan --upscale 2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch

from vidrestore.errors import InputError
from vidrestore.faces.align import estimate_affine, template, warp_face
from vidrestore.faces.detect.batching import detect_frames
from vidrestore.faces.face import Face
from vidrestore.faces.identity import TrackIdentities, reference_identity
from vidrestore.faces.paste import build_masker, paste_faces
from vidrestore.imaging import to_uint8
from vidrestore.settings import RestoreConfig

from .contracts import Restorer, check_restorer
from .face_stage import choose_verifier, identity_encoder
from .upscale_stage import Upscaler, scale_faces

Log = Callable[[str], None]


@dataclass
class StillResult:
    """One restored image: the output pixels (the input's dtype, its size times ``--upscale``) and one
    entry per face found (box, score, why it was skipped, the reference it matched)."""

    image: np.ndarray
    faces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def restored(self) -> int:
        return sum(1 for f in self.faces if f.get("skip") is None)


class StillRestorer:
    """Restores still images with ``restorer`` (see module doc).

    Args:
        config: the run's settings (faces, paste, identity, fidelity, batch size).
        store: where detector, identity and mask weights are found.
        device: torch device of the face networks.
        restorer: the network or engine (``pipeline.build.build_restorer``).
        aligned: the images are aligned faces (no detection, no paste-back).
        references: name → RGB photo of a person (``--reference``).
        log: receives one-line notes.
    """

    def __init__(self, config: RestoreConfig, store, device: torch.device, restorer: Restorer, *,
                 aligned: bool = False, references: Mapping[str, np.ndarray] | None = None,
                 log: Log = lambda line: None) -> None:
        self.config = config
        self.restorer = check_restorer(restorer)
        self.aligned = aligned
        self._store, self._device, self._log = store, device, log
        self._upscaler: tuple[tuple[int, int], Upscaler] | None = None  # the last image size's
        self.size = restorer.face_size
        faces = config.faces
        references = dict(references or {})
        self.detector = None
        if not aligned or references:
            from vidrestore.faces.detect import build_detector

            self.detector = build_detector(faces.detector, store, device)
        conditioning = restorer.uses_identity or bool(references)
        self.encoder, reason = (identity_encoder(faces, store, device, conditioning=True,
                                                  recognizer=getattr(restorer, "recognizer", None))
                                if conditioning else (None, "not needed"))
        self.references = {name: reference_identity(photo, self.detector, self.encoder)
                           for name, photo in references.items()}
        self.masker = None if aligned else build_masker(config.paste.mask, store, device, config.paste)
        self.verifier, verify_reason = (None, "aligned faces") if aligned else choose_verifier(faces)
        detector = "none (aligned faces)" if aligned else getattr(self.detector, "name", "detector")
        names = f", references {', '.join(self.references)}" if self.references else ""
        verify = getattr(self.verifier, "name", "off")
        self.summary = f"images: detector {detector}, verify {verify} ({verify_reason}), identity {reason}{names}"
        log(self.summary)

    def restore(self, image: np.ndarray) -> StillResult:
        """Restore ``image`` (H×W×3 RGB uint8 / uint16); the input is left unchanged."""
        if self.aligned:
            return self._restore_aligned(image)
        image = image.copy()
        faces = detect_frames(self.detector, [image], batch=1, scale=self.config.faces.scale_for(*image.shape[:2]),
                              score_threshold=self.config.faces.score_threshold)[0]
        identities = self._identities()
        for i, face in enumerate(faces):
            face.track_id = i
            if face.size < self.config.faces.min_face:
                face.skip = "too small"
        self._verify(image, [f for f in faces if f.skip is None])
        for face in faces:
            if face.skip is not None:
                continue
            face.affine = estimate_affine(face.landmarks, self.size)
            face.crop = warp_face(image, face.affine, self.size)
            face.identity = identities.conditioning(face, image, 0)
        self._run([f for f in faces if f.skip is None])
        upscaler = self._upscaler_for(image)
        if upscaler is not None:
            image = upscaler.upscale(image)
            scale_faces(faces, upscaler.scale)
        paste_faces(image, faces, self.masker, self.config.paste)
        if self.config.overlay and faces:
            from vidrestore.faces.overlay import draw_overlay

            draw_overlay(image, faces)
        return StillResult(image, [_entry(f, identities) for f in faces])

    def _upscaler_for(self, image: np.ndarray) -> Upscaler | None:
        """The ``--upscale`` enlargement for an image of this size (None without it). Its tiles
        follow the image's size, so one is built per size in a row of images; its set-up note
        is logged once."""
        if self.config.upscale.factor == 1:
            return None
        size = image.shape[:2]
        if self._upscaler is None or self._upscaler[0] != size:
            from .build import build_upscaler

            log = self._log if self._upscaler is None else (lambda line: None)
            self._upscaler = (size, build_upscaler(self.config, self._store, self._device, frame_size=size, log=log))
        return self._upscaler[1]

    def _verify(self, image: np.ndarray, faces: list[Face]) -> None:
        """The video path's second opinion on each candidate (``faces.verify``): a rejected
        one is left untouched, with the verifier's reason."""
        if self.verifier is None or not faces:
            return
        for face, reason in zip(faces, self.verifier.check(image, faces)):
            if reason is not None:
                face.skip, face.rejected = "rejected", reason

    def _restore_aligned(self, image: np.ndarray) -> StillResult:
        h, w = image.shape[:2]
        if h != w:
            raise InputError(f"not an aligned face: {w}×{h} is not square (--aligned takes "
                             f"FFHQ-aligned square faces)")
        top = float(np.iinfo(image.dtype).max)
        crop = image.astype(np.float32) / top
        if h != self.size:
            crop = cv2.resize(crop, (self.size, self.size),
                              interpolation=cv2.INTER_AREA if h > self.size else cv2.INTER_CUBIC)
        crop = np.clip(crop, 0.0, 1.0)
        # The face is the whole image: its landmarks are the template's at the image's size,
        # so the identity is embedded from the full-resolution pixels.
        face = Face(np.array([0, 0, w, h], np.float32), template(h).astype(np.float32), 1.0,
                    track_id=0, crop=crop)
        identities = self._identities()
        if self.encoder is not None:
            face.identity = identities.conditioning(face, to_uint8(image), 0)
        self._run([face])
        out = face.restored
        if h != self.size:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA if h < self.size else cv2.INTER_CUBIC)
        pixels = np.clip(np.rint(np.clip(out, 0.0, 1.0) * top), 0, top).astype(image.dtype)
        entry = {"box": [0.0, 0.0, float(w), float(h)], "score": 1.0, "skip": None}
        entry |= _reference(identities, 0)
        return StillResult(pixels, [entry])

    def _identities(self) -> TrackIdentities:
        return TrackIdentities(self.encoder, references=self.references,
                               reference_threshold=self.config.faces.identity.reference_threshold)

    def _run(self, faces: list[Face]) -> None:
        batch = self.config.batch_for(getattr(self.restorer, "device", "cpu"))
        for start in range(0, len(faces), batch):
            chunk = faces[start : start + batch]
            ids = None
            if self.restorer.uses_identity:
                ids = np.stack([f.identity for f in chunk])
            restored = self.restorer.restore(np.stack([f.crop for f in chunk]), ids, self.config.fidelity)
            for face, out in zip(chunk, restored):
                face.restored = out


def _reference(identities: TrackIdentities, track_id: int) -> dict[str, Any]:
    match = identities.matches().get(track_id)
    if match is None:
        return {}
    return {"reference": match.name if match.matched else None, "reference_cosine": match.cosine}


def _entry(face: Face, identities: TrackIdentities) -> dict[str, Any]:
    entry = {"box": [round(float(v), 2) for v in face.box], "score": round(float(face.score), 4),
             "skip": face.skip}
    if face.rejected is not None:
        entry["rejected"] = face.rejected
    return entry | _reference(identities, face.track_id)
