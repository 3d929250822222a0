"""``vidrestore bench INPUT``: per-stage speed, throughput, latency and memory of the pipeline."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from vidrestore.errors import UsageError

from .restore import add_restore_options, config_from_args


def engine_list(text: str) -> list[str]:
    """``torch,compiled:fp16,...`` → checked ``BACKEND[:PRECISION]`` entries."""
    from vidrestore.engines import BACKENDS

    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        backend, _, precision = item.partition(":")
        if backend not in (*BACKENDS, "auto"):
            raise argparse.ArgumentTypeError(f"unknown engine {backend!r} (known: auto, {', '.join(BACKENDS)})")
        if precision and precision not in ("fp32", "fp16", "bf16", "auto"):
            raise argparse.ArgumentTypeError(f"unknown precision {precision!r} in {item!r}")
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of engines")
    return items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the video to run through the pipeline")
    parser.add_argument("--frames", type=int, metavar="N", help="measure the first N frames (default all)")
    parser.add_argument("--warmup", type=int, default=8, metavar="N",
                        help="frames of the untimed warm-up run (default 8; 0: none)")
    parser.add_argument("--compare", type=engine_list, metavar="E1,E2,...",
                        help="run several engines side by side: BACKEND[:PRECISION], e.g. "
                             "torch,torch:bf16,compiled,compiled-jit,onnxruntime")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the results as JSON (frames, fps, faces_per_s, stages, ...)")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG bar chart of the stages")
    parser.add_argument("--keep-output", type=Path, metavar="FILE",
                        help="keep the (last) measured run's video here")
    parser.add_argument("--tiny", action="store_true",
                        help="the model's tiny test network with seeded random weights (CI smoke runs)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no set-up notes")
    add_restore_options(parser)


def run(args: argparse.Namespace) -> int:
    from vidrestore.bench import format_table, plot, run_bench, write_json

    if args.frames is not None and args.frames < 1:
        raise UsageError("--frames must be >= 1")
    if args.warmup < 0:
        raise UsageError("--warmup must be >= 0")
    config = config_from_args(args)

    def log(line: str) -> None:
        if not args.quiet:
            print(f"vidrestore: {line}", file=sys.stderr)

    results = []
    for engine in args.compare or [None]:
        if engine:
            log(f"bench: {engine}")
        results.append(run_bench(args.input, config, engine=engine, frames=args.frames, warmup=args.warmup,
                                 tiny=args.tiny, output=args.keep_output, log=log))
    print(format_table(results))
    command = "vidrestore bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["bench"] else None
    if args.json:
        write_json(results, args.json, source=args.input, command=command)
        log(f"bench: JSON written to {args.json}")
    if args.plot:
        plot(results, args.plot)
        log(f"bench: chart written to {args.plot}")
    return 0


__all__ = ["add_arguments", "run"]
