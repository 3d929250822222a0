"""``vidrestore degrade GT -o LQ``: a clean video degraded into a benchmark input for ``evaluate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidrestore.errors import UsageError
from vidrestore.io.encoding import CODECS
from vidrestore.names import DegradePresetName, choices


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the clean (ground-truth) video")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the degraded video")
    parser.add_argument("--preset", choices=choices(DegradePresetName), default="vfhq",
                        help="vfhq (KEEP's VFHQ-Test: blur, noise, ×4 down, x264 CRF 18-25; default) or "
                             "codeformer (CodeFormer's training ranges, JPEG per frame)")
    parser.add_argument("--seed", type=int, default=0, help="every random draw derives from it (default 0)")
    parser.add_argument("--codec", choices=CODECS, help="encoder of the output (default libx264 at CRF 0, lossless)")
    parser.add_argument("--crf", type=int, metavar="N", help="the output's CRF (default 0: lossless)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary line")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from vidrestore.degrade_video import LOSSLESS, degrade_video

    if args.input.resolve() == args.output.resolve():
        raise UsageError("the output must not be the input file")
    encode = LOSSLESS
    if args.codec is not None:
        encode = dataclasses.replace(encode, codec=args.codec)
    if args.crf is not None:
        encode = dataclasses.replace(encode, crf=args.crf)
    summary = degrade_video(args.input, args.output, preset=args.preset, seed=args.seed, encode=encode,
                            overwrite=args.overwrite, max_frames=args.max_frames,
                            log=(lambda line: None) if args.quiet else (lambda line: print(f"vidrestore: {line}", file=sys.stderr)))
    if not args.quiet:
        print(f"vidrestore: {summary.line()} -> {args.output}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "run"]
