#!/usr/bin/env python
"""How faithfully the road itself carries a face: the ``passthrough`` model, lossless output.

    python tools/measure_roundtrip.py [VIDEO] [--frames N] [--bits 8|10] [--size WxH]

Restores VIDEO (default: scikit-image's astronaut moving over a textured background, written
losslessly as FFV1 4:4:4 at ``--bits``) with the passthrough restorer into FFV1, then compares
input and output frame by frame: PSNR over every detected face box (the region alignment,
warping back, the mask and the colour round trip touch), PSNR of the whole frame, and the
share of pixels that came through bit-exact (everything no face touched should). A perfect
road gives infinite PSNR; the loss left is the bilinear warp to the 512² crop and back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.media import face_clip_frames, write_video  # noqa: E402
from vidrestore.config import from_mapping  # noqa: E402
from vidrestore.faces.detect import build_detector  # noqa: E402
from vidrestore.imaging import max_value, psnr, to_uint8  # noqa: E402
from vidrestore.io.reader import VideoReader  # noqa: E402
from vidrestore.restore_video import restore_video  # noqa: E402
from vidrestore.settings import RestoreConfig  # noqa: E402
from vidrestore.weights import WeightStore  # noqa: E402


def synthetic_clip(folder: Path, frames: int, size: tuple[int, int], bits: int) -> Path:
    path = folder / f"astronaut_{bits}bit.mkv"
    images = face_clip_frames(frames, *size, face_size=min(size) // 2)
    if bits > 8:
        images = (image.astype(np.uint16) * 257 for image in images)
    write_video(path, images, fps=24, codec="ffv1", pix_fmt="yuv444p" if bits == 8 else "yuv444p10le")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="a video (default: the synthetic astronaut clip)")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--bits", type=int, default=8, choices=(8, 10), help="bit depth of the synthetic clip")
    p.add_argument("--size", default="640x360", help="size of the synthetic clip")
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="vidrestore-roundtrip-") as tmp:
        source = Path(args.video) if args.video else synthetic_clip(Path(tmp), args.frames, size, args.bits)
        target = Path(tmp) / "passthrough.mkv"
        config = from_mapping(RestoreConfig, {"model": "passthrough", "download": False,
                                              "encode": {"codec": "ffv1"}})
        summary = restore_video(source, target, config, max_frames=args.frames)
        detector = build_detector("auto", WeightStore(None, allow_download=False))
        face_psnr, frame_psnr, exact = [], [], []
        pairs = zip(VideoReader(source).frames(limit=args.frames), VideoReader(target).frames())
        for before, after in pairs:
            a, b = before.image, after.image
            peak = max_value(a)
            for face in detector.detect([to_uint8(a)])[0]:
                x0, y0, x1, y1 = (int(round(v)) for v in face.box)
                x0, y0 = max(x0, 0), max(y0, 0)
                face_psnr.append(psnr(a[y0:y1, x0:x1], b[y0:y1, x0:x1], peak))
            frame_psnr.append(psnr(a, b, peak))
            exact.append(float(np.mean(np.all(a == b, axis=2))))
    dtype = "uint16" if args.bits > 8 and not args.video else "as decoded"
    print(f"{source.name if args.video else f'synthetic {args.size} {args.bits}-bit'}: "
          f"{summary.frames} frames, {summary.faces} faces restored (passthrough, FFV1; {dtype})")
    if face_psnr:
        print(f"face-box PSNR   min {min(face_psnr):6.2f} dB  median {np.median(face_psnr):6.2f} dB  "
              f"over {len(face_psnr)} boxes")
    print(f"frame PSNR      min {min(frame_psnr):6.2f} dB  median {np.median(frame_psnr):6.2f} dB")
    print(f"bit-exact pixels  min {100 * min(exact):5.1f} %  mean {100 * np.mean(exact):5.1f} % of each frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
