"""The paste stage: restored faces blended back into their frames."""

from __future__ import annotations

from typing import Sequence

from vidrestore.faces.device import host_array
from vidrestore.faces.paste import FaceMasker, PasteConfig, paste_faces

from .contracts import FrameJob


class PasteStage:
    """Blends each face's ``restored`` crop into its frame (``paste_faces``), records the
    changed regions on the frame (``Frame.touch``: the writer re-converts only those), then
    drops the face's crops to free memory; with ``overlay`` draws boxes, landmarks and track
    ids after pasting. Holds nothing back.

    A job whose frame is on the device (``job.device``, the device face ops) is pasted there
    and only the changed pixels come back into the host frame (``DeviceFaceOps.paste``).

    Args:
        masker: the paste mask maker (``faces.paste.build_masker``); None: the template mask.
        overlay: draw the debugging overlay.
        config: ``PasteConfig`` (interpolation, template mask), or None for defaults.
        face_ops: the device face ops the face stage used, or None.
    """

    name = "paste"

    def __init__(self, masker: FaceMasker | None = None, *, overlay: bool = False,
                 config: PasteConfig | None = None, face_ops=None) -> None:
        self.masker = masker
        self.overlay = overlay
        self.config = config
        self.face_ops = face_ops

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        for job in jobs:
            if any(f.restored is not None for f in job.faces):
                if job.device is not None and self.face_ops is not None:
                    boxes = self.face_ops.paste(job.device, job.frame.image, job.faces, self.masker)
                else:
                    if job.device is not None:
                        job.device.wait_here()  # its restored faces are read on this stream
                    for face in job.faces:
                        if face.restored is not None:
                            face.restored = host_array(face.restored)
                    boxes = paste_faces(job.frame.image, job.faces, self.masker, self.config)
                for box in boxes:
                    job.frame.touch(*box)
            job.device = None
            if self.overlay and job.faces:
                from vidrestore.faces.overlay import draw_overlay

                draw_overlay(job.frame.image, job.faces)
                job.frame.touch_all()
            for face in job.faces:
                face.crop = None
                face.restored = None
        return list(jobs)

    def flush(self) -> list[FrameJob]:
        return []
