"""``python -m training prepare``: align raw face photos into a training folder.

Each image under the input folder is run through the runtime's detector and every kept
face is aligned with the runtime's ``align_face`` to the FFHQ template (so training crops
are made exactly as crops are at run time) and written as a PNG, keeping the input's
sub-folders: a folder per person stays a folder per person (the identity layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vidrestore.errors import InputError
from vidrestore.faces.align import align_face

from .datasets import list_images


@dataclass
class PrepareReport:
    """Counts of a prepare run."""

    images: int = 0
    faces: int = 0
    no_face: int = 0
    too_small: int = 0
    unreadable: int = 0

    def line(self) -> str:
        return (f"{self.images} images: {self.faces} faces written, {self.no_face} without a face, "
                f"{self.too_small} faces too small, {self.unreadable} unreadable")


def prepare_folder(
    source: Path | str, target: Path | str, detector, *, size: int = 512, min_face: float = 64.0,
    all_faces: bool = False, min_score: float = 0.9, log: Callable[[str], None] = lambda line: None,
) -> PrepareReport:
    """Align the faces of every image under ``source`` into ``target``.

    Args:
        detector: a ``vidrestore.faces.detect`` detector.
        size: side of the aligned crops.
        min_face: faces whose box is smaller (geometric mean of width and height, pixels)
            are skipped: upsampling them would make blurry "HQ" targets.
        all_faces: keep every face (``name_f1.png``...), not only the best one.
        min_score: detector score threshold.
    """
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise InputError(f"input folder not found: {source}")
    report = PrepareReport()
    for path in list_images(source):
        report.images += 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            report.unreadable += 1
            log(f"skip {path}: unreadable")
            continue
        rgb = np.ascontiguousarray(image[..., ::-1])
        faces = [f for f in detector.detect([rgb])[0] if f.score >= min_score]
        if not faces:
            report.no_face += 1
            continue
        candidates = faces if all_faces else faces[:1]
        kept = [f for f in candidates if f.size >= min_face]
        report.too_small += len(candidates) - len(kept)
        relative = path.relative_to(source).with_suffix("")
        for k, face in enumerate(kept):
            crop, _ = align_face(rgb, face.landmarks, size)
            name = relative.name + (f"_f{k}" if all_faces else "")
            out = target / relative.parent / f"{name}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            data = np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8)[..., ::-1]
            if not cv2.imwrite(str(out), data):
                raise OSError(f"cannot write {out}")
            report.faces += 1
    return report
