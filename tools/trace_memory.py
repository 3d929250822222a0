"""Where does Python memory go over a long run? ``tracemalloc`` snapshots at two frames.

    python tools/trace_memory.py --minutes 5 --size 640x360 --at 1000,6000 [restore options]

Makes a long generated clip as ``tools/soak.py`` does (a segment repeated packet for packet),
restores it in this process with the passthrough model (``restore_video``), takes a snapshot
(after a full garbage collection) when the encoder has written each frame of ``--at``, and
prints the allocations that grew most between the first and the last snapshot, with their
tracebacks. Growth in the bounded queues comes and goes; a leak grows with the frame count.
Native memory (FFmpeg, x264, OpenCV, torch's allocator) is not traced: compare with the RSS
of ``tools/soak.py``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--size", default="640x360", help="WxH")
    parser.add_argument("--at", default="1000,6000", help="frames to snapshot at (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vr_trace_memory"))
    parser.add_argument("--top", type=int, default=8)
    args, extra = parser.parse_known_args()
    from soak import PASSTHROUGH, make_long_clip

    from vidrestore.cli import build_parser, parse_arguments
    from vidrestore.commands.restore import config_from_args
    from vidrestore.restore_video import restore_video

    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    clip = make_long_clip(args.out / f"long-{width}x{height}-{args.minutes:g}min.mp4", args.minutes * 60, width, height)
    target = args.out / "restored.mp4"
    cli = parse_arguments(build_parser(None), [str(clip), "-o", str(target), *PASSTHROUGH, "--overwrite", *extra])
    marks = sorted(int(v) for v in args.at.split(","))
    snapshots: dict[int, tracemalloc.Snapshot] = {}

    def on_frame(written: int, expected: int | None) -> None:
        if written in marks:
            gc.collect()
            snapshots[written] = tracemalloc.take_snapshot()
            current, peak = tracemalloc.get_traced_memory()
            print(f"frame {written}: traced {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f})", flush=True)

    tracemalloc.start(12)
    restore_video(clip, target, config_from_args(cli), overwrite=True, on_frame=on_frame)
    if len(snapshots) < 2:
        print(f"fewer than two of the frames {marks} were written ({sorted(snapshots)})", file=sys.stderr)
        return 1
    first, last = snapshots[min(snapshots)], snapshots[max(snapshots)]
    print(f"grown from frame {min(snapshots)} to {max(snapshots)}:")
    for stat in last.compare_to(first, "traceback")[: args.top]:
        print(f"{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks")
        for line in stat.traceback.format()[-8:]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
