"""``python -m training prepare``: align raw face photos into a training folder.

Each image under the input folder is run through the runtime's detector and every kept
face is aligned with the runtime's ``align_face`` to the FFHQ template (so training crops
are made exactly as crops are at run time) and written as a PNG, keeping the input's
sub-folders: a folder per person stays a folder per person (the identity layout).

With an identity label file in CelebA's ``identity_CelebA.txt`` format (one
``<image name> <identity id>`` per line), ``prepare_identities`` writes the identity layout
itself: ``<output>/<identity id>/<image stem>.png``. The identities of a test list (image
names, looked up in the labels, or identity ids; one per line) are left out, so no person of
the test set is trained on; identities left with a single image are dropped too (they give
no reference).
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
    """Counts of a prepare run (the identity fields only with labels)."""

    images: int = 0
    faces: int = 0
    no_face: int = 0
    too_small: int = 0
    unreadable: int = 0
    unlabelled: int = 0
    excluded: int = 0
    identities: int = 0
    single: int = 0

    def line(self) -> str:
        line = (f"{self.images} images: {self.faces} faces written, {self.no_face} without a face, "
                f"{self.too_small} faces too small, {self.unreadable} unreadable")
        if self.identities or self.unlabelled or self.excluded:
            line += (f"; {self.identities} identities kept, {self.excluded} images of test identities "
                     f"left out, {self.unlabelled} without a label, {self.single} identities with one "
                     "image dropped")
        return line


def read_identity_labels(path: Path | str) -> dict[str, str]:
    """``identity_CelebA.txt``-style labels: image stem → identity id (both as written).

    Raises InputError on a missing file or a line that is not ``<name> <id>``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"identity label file not found: {path}")
    labels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise InputError(f"{path}:{number}: expected '<image name> <identity id>', got {line.strip()!r}")
        labels[Path(fields[0]).stem] = fields[1]
    if not labels:
        raise InputError(f"{path} holds no labels")
    return labels


def identities_in_test_list(path: Path | str, labels: dict[str, str]) -> set[str]:
    """The identities of a test list: each line an image name (its label's identity) or an
    identity id."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"test list not found: {path}")
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        token = line.split()[0] if line.split() else ""
        if token:
            found.add(labels.get(Path(token).stem, token))
    return found


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
        relative = path.relative_to(source).with_suffix("")
        for k, crop in enumerate(_aligned_faces(path, detector, report, size, min_face, all_faces, min_score, log)):
            name = relative.name + (f"_f{k}" if all_faces else "")
            _write(crop, target / relative.parent / f"{name}.png")
            report.faces += 1
    return report


def prepare_identities(
    source: Path | str, target: Path | str, detector, labels_path: Path | str, *,
    test_list: Path | str | None = None, size: int = 512, min_face: float = 64.0, min_score: float = 0.9,
    log: Callable[[str], None] = lambda line: None,
) -> PrepareReport:
    """The identity layout from a label file (see module doc): the best face of each
    labelled image under ``source``, aligned, at ``target/<identity>/<stem>.png``."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise InputError(f"input folder not found: {source}")
    labels = read_identity_labels(labels_path)
    excluded = identities_in_test_list(test_list, labels) if test_list is not None else set()
    if excluded:
        log(f"leaving out {len(excluded)} test identities")
    report = PrepareReport()
    written: dict[str, list[Path]] = {}
    for path in list_images(source):
        identity = labels.get(path.stem)
        if identity is None:
            report.unlabelled += 1
            continue
        if identity in excluded:
            report.excluded += 1
            continue
        for crop in _aligned_faces(path, detector, report, size, min_face, False, min_score, log):
            out = target / identity / f"{path.stem}.png"
            _write(crop, out)
            written.setdefault(identity, []).append(out)
            report.faces += 1
    for identity, files in written.items():
        if len(files) < 2:  # no second photo to be its reference
            report.single += 1
            report.faces -= len(files)
            for f in files:
                f.unlink()
            (target / identity).rmdir()
    report.identities = len(written) - report.single
    return report


def _aligned_faces(path: Path, detector, report: PrepareReport, size: int, min_face: float,
                   all_faces: bool, min_score: float, log: Callable[[str], None]) -> list[np.ndarray]:
    """The aligned crops (float RGB) to keep from one image; counts into ``report``."""
    report.images += 1
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        report.unreadable += 1
        log(f"skip {path}: unreadable")
        return []
    rgb = np.ascontiguousarray(image[..., ::-1])
    faces = [f for f in detector.detect([rgb])[0] if f.score >= min_score]
    if not faces:
        report.no_face += 1
        return []
    candidates = faces if all_faces else faces[:1]
    kept = [f for f in candidates if f.size >= min_face]
    report.too_small += len(candidates) - len(kept)
    return [align_face(rgb, face.landmarks, size)[0] for face in kept]


def _write(crop: np.ndarray, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8)[..., ::-1]
    if not cv2.imwrite(str(out), data):
        raise OSError(f"cannot write {out}")
