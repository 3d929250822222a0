#!/usr/bin/env python
"""Measure the jitter of aligned face crops with and without temporal smoothing.

    python tools/measure_jitter.py VIDEO [--smoothing off gaussian one-euro] [--frames N]
    python tools/measure_jitter.py astronaut --landmark-noise 1.5

VIDEO is a video file, or ``astronaut`` for a synthetic clip of scikit-image's astronaut
gliding over a background with sub-pixel motion (``vidrestore.faces.jitter.subpixel_face_frames``). The metrics are
defined in ``vidrestore.faces.jitter``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.jitter import ReplayDetector, measure_jitter  # noqa: E402
from vidrestore.faces.config import FaceConfig  # noqa: E402
from vidrestore.faces.detect import build_detector  # noqa: E402
from vidrestore.weights import WeightStore  # noqa: E402


def video_frames(path: str, start: int, count: int):
    import av

    def frames():
        with av.open(path) as container:
            decoded = (f.to_ndarray(format="rgb24") for f in container.decode(video=0))
            yield from itertools.islice(decoded, start, start + count)

    return frames


def astronaut_frames(count: int, period: float):
    from testkit.jitter import subpixel_face_frames

    def frames():
        return subpixel_face_frames(count, 320, 240, face_size=120, period=period)

    return frames


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="a video file, or 'astronaut'")
    p.add_argument("--smoothing", nargs="+", default=["off", "gaussian", "one-euro"],
                   choices=["off", "gaussian", "one-euro"])
    p.add_argument("--frames", type=int, default=240, help="frames to measure")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--sigma", type=float, default=None, help="Gaussian sigma, frames")
    p.add_argument("--beta", type=float, default=None, help="One-Euro beta")
    p.add_argument("--min-cutoff", type=float, default=None, help="One-Euro min cut-off, Hz")
    p.add_argument("--detector", default="auto")
    p.add_argument("--detect-scale", type=float, default=1.0)
    p.add_argument("--min-face", type=float, default=0.0)
    p.add_argument("--score-threshold", type=float, default=0.9)
    p.add_argument("--landmark-noise", type=float, default=0.0,
                   help="add Gaussian noise of this many pixels to every detected landmark")
    p.add_argument("--period", type=float, default=48.0,
                   help="astronaut: frames per back-and-forth (48 = fast, 144 = calm)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 cores)")
    p.add_argument("--weights-dir", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)

    smooth = FaceConfig().smooth
    changes = {k: v for k, v in (("sigma", args.sigma), ("beta", args.beta),
                                 ("min_cutoff", args.min_cutoff)) if v is not None}
    config = FaceConfig(detector=args.detector, detect_scale=args.detect_scale, min_face=args.min_face,
                        score_threshold=args.score_threshold, smooth=dataclasses.replace(smooth, **changes))
    store = WeightStore(args.weights_dir, allow_download=False)
    if args.video == "astronaut":
        frames, fps = astronaut_frames(args.frames, args.period), 24.0
    else:
        import av

        with av.open(args.video) as c:
            fps = float(c.streams.video[0].average_rate or 24)
        frames = video_frames(args.video, args.start, args.frames)
    real = build_detector(config.detector, store)
    noisy = ReplayDetector(real, landmark_noise=args.landmark_noise)
    clean = ReplayDetector(real) if args.landmark_noise else None
    print(f"{args.video}: {args.frames} frames from {args.start}, detector {real.name}, "
          f"landmark noise {args.landmark_noise} px, sigma {config.smooth.sigma}, "
          f"one-euro min_cutoff {config.smooth.min_cutoff} beta {config.smooth.beta}")
    for stats in measure_jitter(frames, config, store, methods=args.smoothing, detector=noisy,
                                clean_detector=clean, fps=fps):
        print(stats.line())
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
