"""``vidrestore preview INPUT --at T -o preview.png``: one frame restored at several fidelities."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidrestore.io.trim import parse_time

from .restore import add_restore_options, config_from_args

DEFAULT_FIDELITIES = (0.0, 0.5, 1.0)


def fidelity_list(text: str) -> tuple[float, ...]:
    """``0,0.5,1`` → the fidelities, each within 0..1."""
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"fidelities must be within 0..1, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the video")
    parser.add_argument("--at", required=True, metavar="T",
                        help="the first frame at or after this time: seconds or [hh:]mm:ss[.ms]")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the sheet to write (.png)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notes")
    add_restore_options(parser)
    for action in parser._actions:  # the restore options' --fidelity takes a list here
        if action.dest == "fidelity":
            action.type = fidelity_list
            action.metavar = "W,W,..."
            action.help = "the fidelities to show side by side (default 0,0.5,1)"


def run(args: argparse.Namespace) -> int:
    from vidrestore.preview import render_preview

    fidelities = args.fidelity or DEFAULT_FIDELITIES
    args.fidelity = None
    config = config_from_args(args)
    at = parse_time(args.at, option="--at")

    def log(line: str) -> None:
        if not args.quiet:
            print(f"vidrestore: {line}", file=sys.stderr)

    summary = render_preview(args.input, args.output, config, at=at, fidelities=fidelities,
                             overwrite=args.overwrite, log=log)
    if not args.quiet:
        print(f"vidrestore: {summary.line()} -> {args.output}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "fidelity_list", "run"]
