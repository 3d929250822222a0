#!/usr/bin/env python
"""Alignment and paste-back per frame: OpenCV on the host against the torch face ops.

    python tools/bench_face_ops.py [--size 1920x1080] [--faces 1,4] [--rounds 5]
                                   [--device cpu|cuda] [--json FILE]

For each face count, a frame of ``testkit.media.scene_frames`` (real faces over a detailed
scene); its faces are found once by MTCNN; then, in interleaved rounds, the same work is timed
per path: ``align`` (the 512² crop of every face) and ``paste`` (every restored face — the
crop plus 0.1, so the blend really changes pixels — warped back, masked and blended, with the
changed pixels back in the host frame). The torch path includes its upload of the frame. Best
and median round, milliseconds per frame. On CUDA each torch round ends with a synchronize.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from testkit.media import scene_frames  # noqa: E402
from vidrestore.faces.align import estimate_affine, warp_face  # noqa: E402
from vidrestore.faces.device import DeviceFaceOps  # noqa: E402
from vidrestore.faces.paste import PasteConfig, paste_faces  # noqa: E402


def scene_with_faces(width: int, height: int, faces: int):
    """A scene frame and its detected faces (with ``affine`` set), MTCNN on the CPU."""
    from vidrestore.faces.detect import build_detector
    from vidrestore.weights import WeightStore

    image = next(scene_frames(1, width, height, faces=faces))
    detector = build_detector("mtcnn", WeightStore("/nonexistent", "/nonexistent", allow_download=False))
    found = detector.detect([image])[0]
    for face in found:
        face.affine = estimate_affine(face.landmarks, 512)
    return image, found


def time_face_ops(image: np.ndarray, faces, device: torch.device, rounds: int) -> dict:
    """Best and median ms per frame of align and paste, OpenCV and torch, interleaved."""
    config = PasteConfig(mask="template")
    ops = DeviceFaceOps(device, config)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {k: [] for k in ("opencv align", "opencv paste", "torch align", "torch paste")}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        start = time.perf_counter()
        crops = [warp_face(image, f.affine, 512) for f in faces]
        t_align = time.perf_counter() - start
        for f, c in zip(faces, crops):
            f.crop, f.restored = c, np.clip(c + 0.1, 0, 1)
        frame = image.copy()
        start = time.perf_counter()
        paste_faces(frame, faces, None, config)
        t_paste = time.perf_counter() - start
        times["opencv align"].append(t_align)
        times["opencv paste"].append(t_paste)

        frame = image.copy()
        sync()
        start = time.perf_counter()
        on_device = ops.upload(frame)
        dev_crops = ops.align(on_device, [f.affine for f in faces], 512)
        sync()
        t_align = time.perf_counter() - start
        for f, c in zip(faces, dev_crops):
            f.crop, f.restored = c, (c + 0.1).clamp(0, 1)
        sync()
        start = time.perf_counter()
        ops.paste(on_device, frame, faces)
        sync()
        times["torch align"].append(t_align)
        times["torch paste"].append(time.perf_counter() - start)
    return {k: {"best_ms": round(1000 * min(v[1:]), 2), "median_ms": round(1000 * statistics.median(v[1:]), 2)}
            for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--faces", default="1,4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    results = {}
    for count in (int(n) for n in args.faces.split(",")):
        image, faces = scene_with_faces(width, height, count)
        row = time_face_ops(image, faces, device, args.rounds)
        results[str(count)] = {"faces_found": len(faces), **row}
        print(f"{count} face(s) asked, {len(faces)} found, {width}×{height}, ms per frame (best / median):")
        for name, value in row.items():
            print(f"  {name:13s} {value['best_ms']:8.2f} / {value['median_ms']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"size": [width, height], "device": str(device),
                                         "torch_threads": torch.get_num_threads(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
