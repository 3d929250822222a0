#!/usr/bin/env python
"""Precision and recall of each face detector, before and after each verifier, on the
hand-labelled real frames (``tests/data/face_labels.csv``, see ``testkit.labels``).

    python tools/bench_detectors.py [--detectors mtcnn@1 mtcnn@auto ...] [--verifiers off auto ...]
                                    [--json FILE] [--markdown]

Each detector runs at its operating point: MTCNN as the face stage runs it (its own
threshold 0.7, then the stage's score floor 0.9), at the video's size (``@1``), upscaled 2×
(``@2``, the old advice for small videos) or at ``--detect-scale auto`` (``@auto``), and
with another score floor after a colon (``mtcnn@auto:0.7``); dlib's
HOG (upsampled once) and CNN (MMOD) at their default threshold 0. RetinaFace is measured
too when its weights are present (``VIDRESTORE_WEIGHTS_DIR``); they are not on any package
registry. Two sizes are scored: every labelled face (at least 10 px), and the faces the
stage would restore (at least 20 px, ``--min-face``'s default); a non-face smaller than the
size scored counts neither way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.labels import SET_IMAGES, read_labels, score_all  # noqa: E402
from testkit.real_faces import load_images  # noqa: E402
from vidrestore.faces.detect.batching import auto_scale  # noqa: E402
from vidrestore.faces.face import Face  # noqa: E402

VERIFIERS = ("off", "geometry", "landmarks", "dlib-cnn", "geometry+landmarks", "geometry+dlib-cnn",
             "landmarks+dlib-cnn")


def detectors(names: list[str]):
    """name → (detector, scale rule, score floor)."""
    from vidrestore.faces.detect.dlib_detect import DlibDetector
    from vidrestore.faces.detect.mtcnn import MTCNNDetector

    out = {}
    mtcnn = hog = cnn = None
    for name in names:
        kind, _, rest = name.partition("@")
        scale, _, floor_text = rest.partition(":")
        rule = (lambda im: auto_scale(*im.shape[:2])) if scale == "auto" else (lambda im, s=float(scale or 1): s)
        if kind == "mtcnn":
            mtcnn = mtcnn or MTCNNDetector()
            out[name] = (mtcnn, rule, float(floor_text or 0.9))
        elif kind == "hog":
            hog = hog or DlibDetector("hog", upsample=1)
            out[name] = (hog, rule, 0.0)
        elif kind == "cnn":
            cnn = cnn or DlibDetector("cnn", upsample=0)
            out[name] = (cnn, rule, 0.0)
        elif kind in ("retinaface", "retinaface-mobilenet"):
            from vidrestore.faces.detect import build_detector
            from vidrestore.weights import WeightStore

            store = WeightStore(allow_download=False)
            entry = "retinaface-resnet50" if kind == "retinaface" else "retinaface-mobilenet"
            if store.find(entry) is None:
                print(f"{name}: skipped, {store.entry(entry).filename} is not present", file=sys.stderr)
                continue
            out[name] = (build_detector(kind, store), rule, float(floor_text or 0.9))
        else:
            raise SystemExit(f"unknown detector {name!r}")
    return out


def detect_all(det, rule, floor, images) -> tuple[dict, float]:
    """Faces of every image (frame coordinates) and the seconds spent."""
    from vidrestore.faces.detect.batching import detect_frames

    found, seconds = {}, 0.0
    for key, image in images.items():
        start = time.perf_counter()
        found[key] = detect_frames(det, [image], scale=rule(image), score_threshold=floor)[0]
        seconds += time.perf_counter() - start
    return found, seconds


def build_verifiers(names: list[str]):
    from vidrestore.faces.verify import AllOf, build_verifier

    out = {}
    for name in names:
        parts = name.split("+")
        out[name] = None if name == "off" else AllOf([build_verifier(p) for p in parts]) if len(parts) > 1 \
            else build_verifier(name)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+",
                        default=["mtcnn@1", "mtcnn@2", "mtcnn@auto", "hog@1", "hog@auto", "cnn@1",
                                 "retinaface@auto"])
    parser.add_argument("--verifiers", nargs="+", default=list(VERIFIERS))
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = read_labels()
    images = load_images(SET_IMAGES)
    verifiers = build_verifiers(args.verifiers)
    results = []
    print("| detector | verifier | precision ≥10 px | recall ≥10 px | precision ≥20 px | recall ≥20 px "
          "| wrong faces ≥20 px | detect s/image | verify s/candidate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (det, rule, floor) in detectors(args.detectors).items():
        found, seconds = detect_all(det, rule, floor, images)
        for vname, verifier in verifiers.items():
            kept, spent, checked = {}, 0.0, 0
            for key, faces in found.items():
                if verifier is None or not faces:
                    kept[key] = [f.box for f in faces]
                    continue
                start = time.perf_counter()
                verdicts = verifier.check(images[key], faces)
                spent += time.perf_counter() - start
                checked += len(faces)
                kept[key] = [f.box for f, v in zip(faces, verdicts) if v is None]
            small, big = score_all(kept, rows, 10.0), score_all(kept, rows, 20.0)
            row = {
                "detector": name, "verifier": vname,
                "precision_10": small.precision, "recall_10": small.recall,
                "precision_20": big.precision, "recall_20": big.recall,
                "counts_10": vars(small), "counts_20": vars(big),
                "detect_s_per_image": seconds / len(images),
                "verify_s_per_candidate": spent / checked if checked else 0.0,
            }
            results.append(row)
            print(f"| {name} | {vname} | {small.precision:.3f} ({small.tp}/{small.tp + small.fp + small.unlabelled}) "
                  f"| {small.recall:.3f} ({small.found}/{small.faces}) "
                  f"| {big.precision:.3f} ({big.tp}/{big.tp + big.fp + big.unlabelled}) "
                  f"| {big.recall:.3f} ({big.found}/{big.faces}) | {big.fp + big.unlabelled} "
                  f"| {row['detect_s_per_image']:.3f} | {row['verify_s_per_candidate']:.3f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
