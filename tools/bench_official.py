"""Time the official CodeFormer video path on this machine, for docs/benchmarks.md.

    python tools/bench_official.py --official DIR --weights CODEFORMER.pth VIDEO \
        [--frames N] [--workdir DIR] [--json FILE] [--use-parse]

``DIR`` is an extracted copy of github.com/sczhou/CodeFormer (never committed here). This
re-runs the loop of its ``inference_codeformer.py`` for a video with ``-s 1`` (no upscaling),
phase by phase, with the official code wherever it can run offline:

- decode: every frame into a Python list first (the official reads an ``ffmpeg`` pipe; there
  is no ffmpeg binary here, so PyAV decodes, to BGR arrays as the official does);
- detect: the official ``FaceRestoreHelper.get_face_landmarks_5(resize=640,
  eye_dist_threshold=5)`` with its RetinaFace-ResNet50 — on seeded random weights (the real
  file cannot be downloaded here: the network's compute is the same) whose class head says
  "background" everywhere, so its NMS sees no boxes (a real one sees a few); the landmarks
  are then those of vidrestore's own detector (run before the timed loop, not timed), so
  that both paths restore the same faces;
- align, restore, paste: the official code (``align_warp_face``; the official CodeFormer
  network, fp32, one face per call, the loaded ``--weights``; ``paste_faces_to_input_image``,
  ParseNet mask with ``--use-parse`` — random weights, same compute — else the template);
- PNGs: cropped faces, restored faces and final frames written with ``imwrite``;
- encode: the final PNGs read back and encoded with libx264 (yuv420p, CRF 23, preset medium:
  ffmpeg's defaults, which the official writer uses), by PyAV instead of an ffmpeg pipe.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np


def import_official(root: Path):
    """The official modules, without running ``basicsr/__init__`` (it imports the training code)."""
    from vidrestore.faces.detect.retinaface import facexlib_retinaface

    facexlib_retinaface()  # torchvision importable, and the official helper's RetinaFace NMS runs
    sys.path.insert(0, str(root))
    package = types.ModuleType("basicsr")
    package.__path__ = [str(root / "basicsr")]
    sys.modules["basicsr"] = package
    import basicsr.archs.codeformer_arch  # noqa: F401  (registers CodeFormer)
    from basicsr.utils import img2tensor, imwrite, tensor2img
    from basicsr.utils.registry import ARCH_REGISTRY
    from facelib.utils.face_restoration_helper import FaceRestoreHelper

    return types.SimpleNamespace(ARCH_REGISTRY=ARCH_REGISTRY, FaceRestoreHelper=FaceRestoreHelper,
                                 img2tensor=img2tensor, imwrite=imwrite, tensor2img=tensor2img)


def seed_facelib_weights() -> None:
    """Random RetinaFace-R50 / ParseNet files where the official code looks before downloading
    (``<official>/weights/facelib``)."""
    import torch
    from facelib.detection.retinaface.retinaface import RetinaFace
    from facelib.parsing.parsenet import ParseNet
    from facelib.utils.misc import ROOT_DIR

    folder = Path(ROOT_DIR) / "weights" / "facelib"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if not (folder / "detection_Resnet50_Final.pth").exists():
        state = RetinaFace(network_name="resnet50", half=False).state_dict()
        for name in [n for n in state if n.startswith("ClassHead.") and n.endswith("conv1x1.weight")]:
            # random weights would pass ~7700 boxes to its NMS (1.7 s a frame, not the real
            # cost); a confident "background" head passes none, as real weights pass a few
            state[name].zero_()
            bias = state[name.replace("weight", "bias")]
            bias[0::2], bias[1::2] = 10.0, -10.0
        torch.save(state, folder / "detection_Resnet50_Final.pth")
    if not (folder / "parsing_parsenet.pth").exists():
        torch.save(ParseNet(in_size=512, out_size=512, parsing_ch=19).state_dict(), folder / "parsing_parsenet.pth")


def decode_all(video: Path, limit: int | None) -> tuple[list[np.ndarray], float]:
    import av

    frames = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 24)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="bgr24"))
            if limit and len(frames) >= limit:
                break
    return frames, fps


def our_landmarks(frames: list[np.ndarray]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """vidrestore's detector on every frame, with its default score and size limits: per
    frame, ``(landmarks 5×2, box+score)`` pairs."""
    from vidrestore.faces.config import FaceConfig
    from vidrestore.faces.detect import build_detector
    from vidrestore.faces.detect.batching import score_floor
    from vidrestore.weights import WeightStore

    limits = FaceConfig()
    detector = build_detector("auto", WeightStore(allow_download=False), "cpu")
    floor = score_floor(detector, limits.score_threshold)
    found = []
    for start in range(0, len(frames), 8):
        batch = [np.ascontiguousarray(f[..., ::-1]) for f in frames[start : start + 8]]  # RGB
        for faces in detector.detect(batch):
            found.append([(np.asarray(f.landmarks, np.float64).reshape(5, 2),
                           np.append(np.asarray(f.box, np.float64), f.score)) for f in faces
                          if f.size >= limits.min_face and f.score >= floor])
    return found


def encode_pngs(pngs: list[str], target: Path, fps: float) -> None:
    import av
    import cv2

    first = cv2.imread(pngs[0])
    h, w = first.shape[:2]
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        stream.options = {"crf": "23", "preset": "medium"}
        for path in pngs:
            image = cv2.imread(path)[: h - h % 2, : w - w % 2]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time the official CodeFormer video path")
    parser.add_argument("video", type=Path)
    parser.add_argument("--official", type=Path, required=True, help="extracted sczhou/CodeFormer")
    parser.add_argument("--weights", type=Path, required=True, help="a CodeFormer checkpoint ({'params_ema': ...})")
    parser.add_argument("--frames", type=int, help="first N frames only")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vidrestore-official"))
    parser.add_argument("--fidelity", "-w", type=float, default=0.5)
    parser.add_argument("--use-parse", action="store_true", help="ParseNet paste mask (the official default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    video, weights = args.video.resolve(), args.weights.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)  # results/ are written here

    import torch

    official = import_official(args.official.resolve())  # makes torchvision importable first (compat)
    from torchvision.transforms.functional import normalize

    seed_facelib_weights()
    device = torch.device("cpu")
    net = official.ARCH_REGISTRY.get("CodeFormer")(dim_embd=512, codebook_size=1024, n_head=8, n_layers=9,
                                                   connect_list=["32", "64", "128", "256"]).to(device)
    net.load_state_dict(torch.load(weights, map_location="cpu")["params_ema"])
    net.eval()
    helper = official.FaceRestoreHelper(1, face_size=512, crop_ratio=(1, 1), det_model="retinaface_resnet50",
                                        save_ext="png", use_parse=args.use_parse, device=device)
    frames_for_landmarks, _ = decode_all(video, args.frames)
    landmarks = our_landmarks(frames_for_landmarks)  # not timed: stands in for real RetinaFace weights
    del frames_for_landmarks

    result_root = args.workdir / "results"
    phases: dict[str, float] = defaultdict(float)
    faces = 0
    started = time.perf_counter()
    t = time.perf_counter()
    frames, fps = decode_all(video, args.frames)
    phases["decode"] += time.perf_counter() - t
    for i, img in enumerate(frames):
        helper.clean_all()
        basename = str(i).zfill(6)
        t = time.perf_counter()
        helper.read_image(img)
        helper.get_face_landmarks_5(only_center_face=False, resize=640, eye_dist_threshold=5)
        phases["detect"] += time.perf_counter() - t
        helper.all_landmarks_5 = [lm.copy() for lm, _ in landmarks[i]]
        helper.det_faces = [box for _, box in landmarks[i]]
        t = time.perf_counter()
        helper.align_warp_face()
        phases["align"] += time.perf_counter() - t
        t = time.perf_counter()
        for cropped_face in helper.cropped_faces:
            face_t = official.img2tensor(cropped_face / 255.0, bgr2rgb=True, float32=True)
            normalize(face_t, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), inplace=True)
            face_t = face_t.unsqueeze(0).to(device)
            with torch.no_grad():
                output = net(face_t, w=args.fidelity, adain=True)[0]
                restored_face = official.tensor2img(output, rgb2bgr=True, min_max=(-1, 1))
            del output
            helper.add_restored_face(restored_face.astype("uint8"), cropped_face)
            faces += 1
        phases["restore"] += time.perf_counter() - t
        t = time.perf_counter()
        helper.get_inverse_affine(None)
        restored_img = helper.paste_faces_to_input_image(upsample_img=None, draw_box=False)
        phases["paste"] += time.perf_counter() - t
        t = time.perf_counter()
        for idx, (cropped_face, restored_face) in enumerate(zip(helper.cropped_faces, helper.restored_faces)):
            official.imwrite(cropped_face, str(result_root / "cropped_faces" / f"{basename}_{idx:02d}.png"))
            official.imwrite(restored_face, str(result_root / "restored_faces" / f"{basename}_{idx:02d}.png"))
        official.imwrite(restored_img, str(result_root / "final_results" / f"{basename}.png"))
        phases["png"] += time.perf_counter() - t
        print(f"[{i + 1}/{len(frames)}] {len(helper.cropped_faces)} face(s)", file=sys.stderr)
    t = time.perf_counter()
    pngs = sorted(glob.glob(str(result_root / "final_results" / "*.png")))
    encode_pngs(pngs, result_root / "video.mp4", fps)
    phases["encode"] += time.perf_counter() - t
    seconds = time.perf_counter() - started
    report = {
        "frames": len(frames), "faces": faces, "seconds": round(seconds, 3),
        "fps": round(len(frames) / seconds, 4), "faces_per_s": round(faces / seconds, 4),
        "stages": {k: round(v, 3) for k, v in phases.items()},
        "restore_faces_per_s": round(faces / phases["restore"], 4) if phases["restore"] else None,
        "use_parse": args.use_parse, "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
