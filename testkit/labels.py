"""The hand-labelled real-frame detection set (``tests/data/face_labels.csv``) and its scoring.

Each row is one box on one image of ``testkit.real_faces``: ``id, source, frame, x1, y1, x2,
y2, label, note``, with ``label`` one of

- ``face``: a real human face (any size, pose or light, partly outside the frame or not);
- ``not``: something a detector fired on that is not a face (a T-shirt print, a lamp, a
  guitar's body, a hand);
- ``unsure``: a region no one could call either way at this resolution (a face turned
  away, a face mostly outside the frame, a printed face); ignored by the scores, as the
  "difficult" boxes of the PASCAL VOC and WIDER FACE benchmarks.

The boxes were gathered by running every detector compared in ``tools/bench_detectors.py``
with permissive thresholds (``tools/label_faces.py candidates``), and each candidate was
labelled by looking at its crop; faces no detector found were added by hand. The contact
sheets the labels were made from can be regenerated with ``tools/label_faces.py sheets``.

A detection matches a labelled box when each box's centre lies inside the other and their
sides differ by less than 2.2× (detectors frame faces differently: dlib's boxes are tight,
MTCNN's include the forehead), one-to-one, closest centres first.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

LABELS_CSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "face_labels.csv"
FIELDS = ("id", "source", "frame", "x1", "y1", "x2", "y2", "label", "note")
LABEL_VALUES = ("face", "not", "unsure")

SET_IMAGES: tuple[tuple[str, int], ...] = (
    *(("iscc-demo", i) for i in range(12, 1441, 12)),
    ("astronaut", 0),
    ("grace-hopper", 0),
    ("t1", 0),
    *(("t1-pan", i) for i in range(0, 48, 4)),
    *(("t1-zoom", i) for i in range(0, 48, 6)),
)
"""The images of the labelled set, ``(source, frame)`` of ``testkit.real_faces``: every 12th
frame of the concert video (half a second apart), the three photos, and frames of the
camera moving over the group photo."""

EXHAUSTIVE_DEMO = frozenset((*range(144, 1441, 48), 312, 456, 468, 552, 600, 612, 660, 708, 732,
                             744, 876, 888, 900, 1092, 1116, 1164, 1176, 1308, 1320, 1332, 1368))
"""Concert frames in which every face of at least ``MIN_LABELLED`` px was labelled (by hand
where no detector found it); in the other concert frames only what a detector fired on is
labelled, so they count for precision, not for recall. Every photo and camera frame is
labelled exhaustively (the camera frames' faces are ``t1``'s, mapped)."""

MIN_LABELLED = 10.0
"""Faces smaller than this (pixels, geometric mean of the box's sides) were not labelled:
scores ignore them and the detections of that size."""


def exhaustive(key: tuple[str, int]) -> bool:
    """Whether every face of image ``key`` is labelled (see ``EXHAUSTIVE_DEMO``)."""
    return key[0] != "iscc-demo" or key[1] in EXHAUSTIVE_DEMO


@dataclass(frozen=True)
class LabelledBox:
    """One row of the labelled set."""

    id: int
    source: str
    frame: int
    box: tuple[float, float, float, float]
    label: str
    note: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return self.source, self.frame

    @property
    def size(self) -> float:
        """Geometric mean of the box's sides, pixels."""
        x1, y1, x2, y2 = self.box
        return float(max(x2 - x1, 0) * max(y2 - y1, 0)) ** 0.5


def read_labels(path: Path | str = LABELS_CSV) -> list[LabelledBox]:
    """The rows of a labels CSV (ValueError on an unknown label or a malformed row)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] not in LABEL_VALUES:
                raise ValueError(f"{path}: row {row['id']}: unknown label {row['label']!r}")
            box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            rows.append(LabelledBox(int(row["id"]), row["source"], int(row["frame"]), box,
                                    row["label"], row.get("note") or ""))
    return rows


def write_labels(rows: Iterable[LabelledBox], path: Path | str = LABELS_CSV) -> None:
    """Write rows as the labels CSV (boxes rounded to 0.1 px)."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(FIELDS)
        for r in rows:
            out.writerow([r.id, r.source, r.frame, *(f"{v:.1f}" for v in r.box), r.label, r.note])


def boxes_match(a: Sequence[float], b: Sequence[float], max_ratio: float = 2.2) -> bool:
    """Whether boxes ``a`` and ``b`` frame the same face (see module docstring): the rule
    the verifier uses too (``vidrestore.faces.verify.frames_same_face``)."""
    from vidrestore.faces.verify import frames_same_face

    return frames_same_face(np.asarray(a, np.float64)[:4], np.asarray(b, np.float64)[:4], max_ratio)


def match(detections: Sequence[Sequence[float]], labelled: Sequence[LabelledBox]) -> list[int | None]:
    """For each detection box, the index into ``labelled`` it matches (one-to-one), or None."""
    pairs = []
    for di, d in enumerate(detections):
        cd = (np.asarray(d[:2]) + np.asarray(d[2:4])) / 2
        for li, lab in enumerate(labelled):
            if boxes_match(d[:4], lab.box):
                cl = (np.asarray(lab.box[:2]) + np.asarray(lab.box[2:])) / 2
                pairs.append((float(np.linalg.norm(cd - cl)) / max(lab.size, 1.0), di, li))
    out: list[int | None] = [None] * len(detections)
    used = set()
    for _, di, li in sorted(pairs):
        if out[di] is None and li not in used:
            out[di], _ = li, used.add(li)
    return out


@dataclass
class Score:
    """Precision and recall of one detector (or detector + verifier) on the labelled set.

    ``tp`` detections matching a face, ``fp`` matching a non-face, ``unlabelled`` matching no
    box at all (counted as false positives: the set must be extended to cover them),
    ``ignored`` matching an ``unsure`` box; ``faces`` labelled faces in the exhaustively
    labelled images and ``found`` how many of them were detected (recall = found / faces).
    """

    tp: int = 0
    fp: int = 0
    unlabelled: int = 0
    ignored: int = 0
    faces: int = 0
    found: int = 0

    @property
    def precision(self) -> float:
        n = self.tp + self.fp + self.unlabelled
        return self.tp / n if n else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 1.0

    def add(self, other: "Score") -> None:
        for k in ("tp", "fp", "unlabelled", "ignored", "faces", "found"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def score_image(
    detections: Sequence[Sequence[float]],
    labelled: Sequence[LabelledBox],
    min_size: float = 0.0,
) -> tuple[Score, list[int | None]]:
    """Score one image's detection boxes against its labelled boxes.

    ``min_size``: only faces at least this big (labelled size, pixels) count: smaller faces
    and the detections matching them are ignored (the pipeline leaves faces under
    ``--min-face`` untouched, so they can neither be restored nor wrongly restored); a
    non-face or unlabelled detection smaller than ``min_size`` is ignored too.
    Returns the score and, per detection, the matched label index.
    """
    matched = match(detections, labelled)
    s = Score(faces=sum(1 for b in labelled if b.label == "face" and b.size >= min_size))
    for det, li in zip(detections, matched):
        det_size = float(np.sqrt(max(det[2] - det[0], 0) * max(det[3] - det[1], 0)))
        if li is None:
            if det_size >= min_size:
                s.unlabelled += 1
            continue
        lab = labelled[li]
        if lab.label == "unsure" or (lab.label == "face" and lab.size < min_size) or \
                (lab.label == "not" and max(lab.size, det_size) < min_size):
            s.ignored += 1
        elif lab.label == "face":
            s.tp += 1
            s.found += 1
        else:
            s.fp += 1
    return s, matched


def by_image(rows: Iterable[LabelledBox]) -> dict[tuple[str, int], list[LabelledBox]]:
    """Rows grouped by ``(source, frame)``, in first-seen order."""
    out: dict[tuple[str, int], list[LabelledBox]] = {}
    for r in rows:
        out.setdefault(r.key, []).append(r)
    return out


def score_all(
    detections: Mapping[tuple[str, int], Sequence[Sequence[float]]],
    rows: Sequence[LabelledBox],
    min_size: float = MIN_LABELLED,
    images: Iterable[tuple[str, int]] | None = None,
) -> Score:
    """The summed score over ``images`` (default every image of ``SET_IMAGES``): precision
    over all of them, recall over the exhaustively labelled ones (an image without
    detections counts its faces as missed)."""
    total = Score()
    grouped = by_image(rows)
    for key in SET_IMAGES if images is None else images:
        s, _ = score_image(detections.get(key, []), grouped.get(key, []), max(min_size, MIN_LABELLED))
        if not exhaustive(key):
            s.faces = s.found = 0  # only what a detector found is labelled here: no recall
        total.add(s)
    return total


def visible_fraction(box: Sequence[float], width: int, height: int) -> float:
    """The share of ``box``'s area inside a ``width``×``height`` frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    area = max(x2 - x1, 0) * max(y2 - y1, 0)
    inside = max(min(x2, width) - max(x1, 0), 0) * max(min(y2, height) - max(y1, 0), 0)
    return inside / area if area > 0 else 0.0


def camera_face_rows(rows: Sequence[LabelledBox], first_id: int) -> list[LabelledBox]:
    """The faces of every ``t1-pan`` / ``t1-zoom`` image of ``SET_IMAGES``: each face labelled
    on ``t1`` mapped through the camera (``real_faces.camera_affine``), so a face cut by the
    frame edge or missed by every detector is still known. At least half of it in frame: a
    face; 15–50 %: unsure; less: left out. Ids count from ``first_id``."""
    from .real_faces import CAMERA_SIZE, camera_affine, map_box

    faces = [r for r in rows if r.source == "t1" and r.label == "face"]
    out = []
    for source, frame in SET_IMAGES:
        if source not in ("t1-pan", "t1-zoom"):
            continue
        m = camera_affine(source, frame)
        for r in faces:
            box = map_box(r.box, m)
            seen = visible_fraction(box, *CAMERA_SIZE)
            if seen < 0.15:
                continue
            label = "face" if seen >= 0.5 else "unsure"
            note = f"{r.note.split(';')[0]}; t1 #{r.id} through the camera, {seen:.0%} in frame"
            out.append(LabelledBox(first_id + len(out), source, frame, tuple(float(v) for v in box), label, note))
    return out


def camera_truth(rows: Sequence[LabelledBox], source: str, frame: int,
                 min_visible: float = 0.5) -> dict[int, np.ndarray]:
    """The group photo's faces in camera frame ``frame`` of ``source`` (any frame, not only the
    labelled ones): ``{t1 row id: box}`` for those at least ``min_visible`` inside the frame."""
    from .real_faces import CAMERA_SIZE, camera_affine, map_box

    m = camera_affine(source, frame)
    out = {}
    for r in rows:
        if r.source == "t1" and r.label == "face":
            box = map_box(r.box, m)
            if visible_fraction(box, *CAMERA_SIZE) >= min_visible:
                out[r.id] = box
    return out
