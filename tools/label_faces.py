#!/usr/bin/env python
"""Make and audit the hand-labelled detection set (``tests/data/face_labels.csv``).

    python tools/label_faces.py candidates --out DIR [--skip-cnn]
    python tools/label_faces.py sheets --out DIR [--labels CSV] [--label face|not|unsure]

``candidates`` runs every detector of the comparison with permissive thresholds on every
image of the set (``testkit.labels.SET_IMAGES``), merges the boxes that frame the same thing,
and writes ``DIR/candidates.csv`` (the labels CSV's columns, ``label`` empty, ``note``
saying which detectors found it) and numbered contact sheets ``DIR/candidates-NN.png``: for
each candidate its crop (1.8× the box) and the whole image with the box drawn. A person
labels each number by looking at the sheets.

``sheets`` draws the same contact sheets from a labels CSV, one series per label
(``DIR/face-NN.png``, ``DIR/not-NN.png``, ``DIR/unsure-NN.png``), numbered by row id, so
anyone can check every label.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.labels import (  # noqa: E402
    LABELS_CSV,
    SET_IMAGES,
    LabelledBox,
    boxes_match,
    read_labels,
    write_labels,
)
from testkit.real_faces import load_images  # noqa: E402
from vidrestore.errors import MissingWeightsError  # noqa: E402

TILE = 160
PER_ROW, ROWS = 4, 5


def candidate_detectors(skip_cnn: bool = False):
    """name → callable(image) → [(box, score)] for every detector configuration compared,
    with thresholds lower than any operating point, so the labels cover every operating point."""
    from vidrestore.faces.detect.batching import auto_scale
    from vidrestore.faces.detect.dlib_detect import DlibDetector
    from vidrestore.faces.detect.mtcnn import MTCNNDetector

    mtcnn = MTCNNDetector(threshold=0.5, stage_thresholds=(0.6, 0.6))
    hog = DlibDetector("hog", upsample=1, threshold=-0.3)
    cnn = None if skip_cnn else DlibDetector("cnn", upsample=0, threshold=-0.3)

    def scaled(fn, scale_of):
        def run(image):
            s = scale_of(image)
            big = image if s == 1 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
            return [(np.asarray(b, np.float64) / s, score) for b, score in fn(big)]
        return run

    def mtcnn_raw(image):
        return [(f.box, f.score) for f in mtcnn.detect([image])[0]]

    def auto(image):
        return auto_scale(*image.shape[:2])

    out = {
        "mtcnn@1": scaled(mtcnn_raw, lambda im: 1.0),
        "mtcnn@2": scaled(mtcnn_raw, lambda im: 2.0),
        "mtcnn@auto": scaled(mtcnn_raw, auto),
        "hog@1": scaled(hog.raw, lambda im: 1.0),
        "hog@auto": scaled(hog.raw, auto),
    }
    if cnn is not None:
        out["cnn@auto"] = scaled(cnn.raw, auto)
    try:
        from vidrestore.faces.detect.blazeface import BlazeFaceDetector

        blaze = BlazeFaceDetector("back")  # at its own threshold 0.5, the lowest it runs at
    except MissingWeightsError:
        return out

    def blaze_raw(image):
        return [(f.box, f.score) for f in blaze.detect([image])[0]]

    out["blazeface@1"] = scaled(blaze_raw, lambda im: 1.0)
    out["blazeface@auto"] = scaled(blaze_raw, auto)
    return out


def collect(skip_cnn: bool = False, only: list[str] | None = None,
            known: list[LabelledBox] = ()) -> list[LabelledBox]:
    """Every candidate box of every image, merged across detectors (label left empty).

    ``only``: run just these detector configurations. ``known``: boxes found before (a
    previous candidates CSV or the labels): they are kept with their ids and labels, and a
    new candidate framing the same thing adds its detector to their note instead of a row.
    """
    detectors = candidate_detectors(skip_cnn)
    if only:
        detectors = {k: v for k, v in detectors.items() if k in only}
    images = load_images(SET_IMAGES)
    rows: list[LabelledBox] = []
    next_id = max((r.id for r in known), default=0) + 1
    for n, key in enumerate(SET_IMAGES):
        image = images[key]
        clusters: list[dict] = [{"box": np.asarray(r.box), "by": {}, "row": r} for r in known if r.key == key]
        for name, run in detectors.items():
            for box, score in run(image):
                box = np.asarray(box, np.float64)
                for c in clusters:
                    if boxes_match(box, c["box"]):
                        c["by"].setdefault(name, score)
                        break
                else:
                    clusters.append({"box": box, "by": {name: score}})
        for c in clusters:
            note = " ".join(f"{k}={v:.2f}" for k, v in sorted(c["by"].items()))
            if "row" in c:
                old = c["row"]
                rows.append(LabelledBox(old.id, old.source, old.frame, old.box, old.label,
                                        " ".join(x for x in (old.note, note) if x)))
            else:
                rows.append(LabelledBox(next_id, key[0], key[1], tuple(float(v) for v in c["box"]), "", note))
                next_id += 1
        print(f"[{n + 1}/{len(SET_IMAGES)}] {key[0]} {key[1]}: {len(clusters)} candidates", file=sys.stderr)
    return rows


def _crop(image: np.ndarray, box, zoom: float) -> np.ndarray:
    """A TILE² view centred on ``box``, ``zoom`` times its longer side, the box drawn in green."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, zoom * max(x2 - x1, y2 - y1, 4.0)
    k = TILE / side
    m = np.array([[k, 0, TILE / 2 - k * cx], [0, k, TILE / 2 - k * cy]])
    crop = cv2.warpAffine(image, m, (TILE, TILE), flags=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA,
                          borderValue=(90, 90, 90))
    a = (np.array([x1, y1]) * k + m[:, 2]).round().astype(int)
    b = (np.array([x2, y2]) * k + m[:, 2]).round().astype(int)
    cv2.rectangle(crop, tuple(int(v) for v in a), tuple(int(v) for v in b), (0, 255, 0), 1)
    return crop


def _tile(image: np.ndarray, box, number: int, caption: str = "") -> np.ndarray:
    """One contact-sheet tile: the box's close view (1.6× its size; grey outside the image)
    and a wide view (4×) for context; the number and caption underneath."""
    tile = np.full((TILE + 18, 2 * TILE + 4, 3), 0, np.uint8)
    tile[:TILE, :TILE] = _crop(image, box, 1.6)
    tile[:TILE, TILE + 4 :] = _crop(image, box, 4.0)
    cv2.putText(tile, f"{number} {caption}"[:40], (2, TILE + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def draw_sheets(rows: list[LabelledBox], out: Path, prefix: str, caption=lambda r: "") -> list[Path]:
    """Contact sheets of ``rows`` (``PER_ROW``×``ROWS`` tiles each) as ``out/prefix-NN.png``."""
    images = load_images(r.key for r in rows)
    tiles = [_tile(images[r.key], r.box, r.id, caption(r)) for r in rows]
    per = PER_ROW * ROWS
    paths = []
    for start in range(0, len(tiles), per):
        chunk = tiles[start : start + per]
        chunk += [np.zeros_like(tiles[0])] * (-len(chunk) % PER_ROW)
        sheet = np.vstack([np.hstack(chunk[r : r + PER_ROW]) for r in range(0, len(chunk), PER_ROW)])
        path = out / f"{prefix}-{start // per + 1:02d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _read_any(path: Path) -> list[LabelledBox]:
    """A labels or candidates CSV (candidates have an empty label)."""
    import csv

    with open(path, newline="") as fh:
        return [LabelledBox(int(r["id"]), r["source"], int(r["frame"]),
                            tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")), r["label"], r["note"])
                for r in csv.DictReader(fh)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    cand = sub.add_parser("candidates", help="detect permissively, merge, write candidates.csv + sheets")
    cand.add_argument("--out", type=Path, required=True)
    cand.add_argument("--skip-cnn", action="store_true", help="leave out dlib's slow CNN")
    cand.add_argument("--only", nargs="+", metavar="NAME", help="run only these configurations")
    cand.add_argument("--add-to", type=Path, metavar="CSV",
                      help="extend this candidates or labels CSV (ids and labels kept)")
    sheets = sub.add_parser("sheets", help="contact sheets of a labels CSV, one series per label")
    sheets.add_argument("--out", type=Path, required=True)
    sheets.add_argument("--labels", type=Path, default=LABELS_CSV)
    sheets.add_argument("--label", choices=("face", "not", "unsure"), action="append")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.action == "candidates":
        known = _read_any(args.add_to) if args.add_to else []
        rows = collect(args.skip_cnn, args.only, known)
        write_labels(sorted(rows, key=lambda r: r.id), args.out / "candidates.csv")
        new = [r for r in rows if r.id not in {k.id for k in known}]
        paths = draw_sheets(sorted(new, key=lambda r: r.id), args.out, "candidates",
                            lambda r: f"{r.source[:6]}:{r.frame}")
        print(f"{len(rows)} candidates: {args.out / 'candidates.csv'}, {len(paths)} sheets")
        return 0
    rows = read_labels(args.labels)
    for label in args.label or ("face", "not", "unsure"):
        chosen = [r for r in rows if r.label == label]
        if chosen:
            paths = draw_sheets(chosen, args.out, label, lambda r: f"{r.source[:6]}:{r.frame}")
            print(f"{label}: {len(chosen)} boxes, {len(paths)} sheets in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
