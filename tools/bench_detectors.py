#!/usr/bin/env python
"""Precision and recall of each face detector, before and after each verifier, on the
hand-labelled real frames (``tests/data/face_labels.csv``, see ``testkit.labels``).

    python tools/bench_detectors.py [--detectors mtcnn@1 mtcnn@auto ...] [--verifiers off auto ...]
                                    [--json FILE]
    python tools/bench_detectors.py --stage [--stage-detector blazeface] [--stage-verify geometry] [--json FILE]
    python tools/bench_detectors.py --detectors mtcnn@auto --verifiers dlib-cnn --sheets DIR

``--sheets DIR`` draws contact sheets of what each verifier accepted and rejected
(``DIR/<detector>-<verifier>-accepted-NN.png``, ``...-rejected-NN.png``), each candidate
captioned with its label in the set, to look at.

``--stage`` measures the face stage itself, as a default offline run has it (MTCNN, detect
scale auto, tracking, smoothing, verification per track): the whole concert video and both
camera moves go through it, the photos one frame each, and the faces it would restore on
the labelled frames are scored; "before" counts every face not too small, "after" the ones
verification let through.

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


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from testkit.labels import SET_IMAGES, read_labels, score_all  # noqa: E402
from testkit.real_faces import load_images  # noqa: E402
from vidrestore.faces.detect.batching import auto_scale  # noqa: E402

VERIFIERS = ("off", "geometry", "landmarks", "dlib-cnn", "geometry+landmarks", "geometry+dlib-cnn",
             "landmarks+dlib-cnn")


def detectors(names: list[str]):
    """name → (detector, scale rule, score floor)."""
    from vidrestore.faces.detect.dlib_detect import DlibDetector
    from vidrestore.faces.detect.mtcnn import MTCNNDetector

    out = {}
    mtcnn = hog = cnn = None
    blaze: dict = {}
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
        elif kind.startswith("blazeface"):
            from vidrestore.faces.detect.blazeface import BlazeFaceDetector

            model = kind.removeprefix("blazeface").removeprefix("-") or "back"
            blaze[model] = blaze.get(model) or BlazeFaceDetector(model)
            out[name] = (blaze[model], rule, float(floor_text or 0.5))
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


def stage_scores(rows, log=print, detector: str = "auto", verify: str = "auto") -> list[dict]:
    """Score what the face stage (default settings, offline; ``detector`` and ``verify`` as
    ``--detector`` / ``--verify`` set them) restores on the labelled frames."""
    import dataclasses

    import av

    from testkit.labels import score_all
    from testkit.real_faces import camera_frames, iscc_demo_path
    from vidrestore.faces.config import FaceConfig
    from vidrestore.io.frame import Frame
    from vidrestore.pipeline.contracts import FrameJob
    from vidrestore.pipeline.face_stage import FaceStage
    from vidrestore.weights import WeightStore

    from fractions import Fraction

    config = FaceConfig(detector=detector, verify=dataclasses.replace(FaceConfig().verify, method=verify))
    store = WeightStore("/nonexistent", "/nonexistent", allow_download=False)
    wanted = set(SET_IMAGES)
    before, after, spent = {}, {}, {}

    def run(source, frames):
        stage = FaceStage(config, store, "cpu", log=lambda line: None)
        start = time.perf_counter()
        out = []
        for i, image in enumerate(frames):
            out += stage.process([FrameJob(Frame(i, i, Fraction(1, 24), image))])
        out += stage.flush()
        for job in out:
            key = (source, job.index)
            if key in wanted:
                before[key] = [f.box for f in job.faces if f.skip in (None, "rejected")]
                after[key] = [f.box for f in job.faces if f.skip is None]
        spent[source] = (time.perf_counter() - start, len(out), dict(stage.seconds), stage.report())
        log(f"{source}: {len(out)} frames in {spent[source][0]:.1f} s, verify {stage.verifier_name}, "
            f"rejected {stage.report()['rejected']}")

    def demo():
        with av.open(str(iscc_demo_path())) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    run("iscc-demo", demo())
    run("t1-pan", camera_frames("t1-pan"))
    run("t1-zoom", camera_frames("t1-zoom"))
    for source in ("astronaut", "grace-hopper", "t1"):
        run(source, [load_images([(source, 0)])[(source, 0)]])
    out = []
    for size in (10.0, 20.0):
        for name, kept in (("off", before), ("auto", after)):
            sc = score_all(kept, rows, size)
            out.append({"size": size, "verify": name, "precision": sc.precision, "recall": sc.recall,
                        "counts": vars(sc)})
    out.append({"timing": {k: {"seconds": v[0], "frames": v[1], "parts": v[2], "rejected": v[3]["rejected"],
                                "verifier_checks": v[3]["verifier_checks"]} for k, v in spent.items()}})
    return out


def _verdict_sheets(folder: Path, prefix: str, decided, rows) -> None:
    """Contact sheets of accepted and rejected candidates, captioned with their label."""
    from label_faces import draw_sheets

    from testkit.labels import LabelledBox, by_image, match

    folder.mkdir(parents=True, exist_ok=True)
    grouped = by_image(rows)
    for verdict in ("accepted", "rejected"):
        chosen = []
        for n, (key, face, reason) in enumerate(decided):
            if (reason is None) != (verdict == "accepted"):
                continue
            labelled = grouped.get(key, [])
            (li,) = match([face.box], labelled)
            label = labelled[li].label if li is not None else "unlabelled"
            chosen.append(LabelledBox(n + 1, key[0], key[1], tuple(float(v) for v in face.box), label,
                                      f"{label} {face.size:.0f}px"))
        if chosen:
            draw_sheets(chosen, folder, f"{prefix}-{verdict}", lambda r: r.note)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+",
                        default=["mtcnn@1", "mtcnn@2", "mtcnn@auto", "hog@1", "hog@auto", "cnn@1",
                                 "retinaface@auto"])
    parser.add_argument("--verifiers", nargs="+", default=list(VERIFIERS))
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--stage", action="store_true", help="measure the face stage (see above)")
    parser.add_argument("--stage-detector", default="auto", help="the stage's --detector (default auto)")
    parser.add_argument("--stage-verify", default="auto", help="the stage's --verify (default auto)")
    parser.add_argument("--sheets", type=Path, metavar="DIR", help="contact sheets of the verdicts")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = read_labels()
    if args.stage:
        results = stage_scores(rows, detector=args.stage_detector, verify=args.stage_verify)
        print("| faces scored | verification | precision | recall |")
        print("|---|---|---|---|")
        for r in results[:-1]:
            c = r["counts"]
            print(f"| ≥{r['size']:.0f} px | {r['verify']} | {r['precision']:.3f} ({c['tp']}/{c['tp'] + c['fp'] + c['unlabelled']}) "
                  f"| {r['recall']:.3f} ({c['found']}/{c['faces']}) |")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    images = load_images(SET_IMAGES)
    verifiers = build_verifiers(args.verifiers)
    results = []
    print("| detector | verifier | precision ≥10 px | recall ≥10 px | precision ≥20 px | recall ≥20 px "
          "| wrong faces ≥20 px | detect s/image | verify s/candidate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (det, rule, floor) in detectors(args.detectors).items():
        found, seconds = detect_all(det, rule, floor, images)
        for vname, verifier in verifiers.items():
            kept, spent, checked, decided = {}, 0.0, 0, []
            for key, faces in found.items():
                if verifier is None or not faces:
                    kept[key] = [f.box for f in faces]
                    continue
                start = time.perf_counter()
                verdicts = verifier.check(images[key], faces)
                spent += time.perf_counter() - start
                checked += len(faces)
                kept[key] = [f.box for f, v in zip(faces, verdicts) if v is None]
                decided += [(key, f, v) for f, v in zip(faces, verdicts)]
            if args.sheets and verifier is not None:
                _verdict_sheets(args.sheets, f"{name}-{vname}".replace(":", "_"), decided, rows)
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
