"""Paste restored faces back into the frame.

``config`` (``PasteConfig``), ``masks`` (the ``FaceMasker`` protocol and the feathered
template mask), ``parsing`` (the face-parsing mask), ``select`` (``build_masker``: which mask
a run uses) and ``blend`` (``paste_faces``: the inverse warp and the blend).
"""

from .blend import face_roi, paste_faces, restored_affine
from .config import PasteConfig
from .masks import FaceMasker, TemplateMasker, restored_crop, template_mask
from .select import build_masker

__all__ = [
    "FaceMasker",
    "PasteConfig",
    "TemplateMasker",
    "build_masker",
    "face_roi",
    "paste_faces",
    "restored_affine",
    "restored_crop",
    "template_mask",
]
