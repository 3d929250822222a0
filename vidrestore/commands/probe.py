"""``vidrestore probe INPUT``: what a video holds, as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidrestore.io.probe import count_frames, probe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a video file")
    parser.add_argument("--count", action="store_true",
                        help="count the video packets exactly (reads the whole file, no decoding)")


def run(args: argparse.Namespace) -> int:
    data = probe(args.input).to_json()
    if args.count:
        data["frames"] = count_frames(args.input)
        data["frames_exact"] = True
    print(json.dumps(data, indent=2))
    return 0
