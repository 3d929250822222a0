"""``vidrestore evaluate RESTORED --reference GT``: score a restored video against its ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidrestore.errors import UsageError
from vidrestore.names import DetectorName, DeviceName, LpipsNetName, choices


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("restored", type=Path, help="the restored (or any processed) video")
    parser.add_argument("--reference", type=Path, required=True, metavar="GT",
                        help="the ground-truth video it is compared with (same size and timing)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write means and per-frame values as JSON")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write one row per frame as CSV")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write the per-frame curves as a PNG")
    parser.add_argument("--faces", action="store_true",
                        help="also measure the warping error within the reference's face regions")
    parser.add_argument("--lpips-net", choices=choices(LpipsNetName), default="alex",
                        help="LPIPS trunk (default alex, as the field's papers)")
    parser.add_argument("--detector", choices=choices(DetectorName), default="auto",
                        help="face detector for IDS, LMD and --faces (default auto)")
    parser.add_argument("--device", choices=choices(DeviceName), default="auto", help="default auto")
    parser.add_argument("--max-frames", type=int, metavar="N", help="compare the first N frames only")
    parser.add_argument("--weights-dir", type=Path, metavar="DIR",
                        help="offline folder of weight files (LPIPS trunk, ArcFace, RetinaFace)")
    parser.add_argument("--offline", action="store_true", help="never download weights")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notes; the table only")


def run(args: argparse.Namespace) -> int:
    from vidrestore.evaluation import evaluate_videos, plot, write_csv, write_json
    from vidrestore.pipeline.build import resolve_device
    from vidrestore.weights import WeightStore

    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {args.max_frames}")

    def log(line: str) -> None:
        if not args.quiet:
            print(f"vidrestore: {line}", file=sys.stderr)

    store = WeightStore(args.weights_dir, allow_download=not args.offline)
    device = str(resolve_device(args.device))
    evaluation = evaluate_videos(args.restored, args.reference, store, faces=args.faces, lpips_net=args.lpips_net,
                                 device=device, detector=args.detector, max_frames=args.max_frames, log=log)
    for path, write in ((args.json, write_json), (args.csv, write_csv), (args.plot, plot)):
        if path is not None:
            write(evaluation, path)
    print("\n".join(evaluation.lines()))
    return 0


__all__ = ["add_arguments", "run"]
