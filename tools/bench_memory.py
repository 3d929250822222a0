"""Peak memory of the pipeline on a clip and on the same clip N× longer (flat = streaming).

    python tools/bench_memory.py [--frames 48] [--factor 10] [--size 640x360] [restore options]

Writes the two face clips (the astronaut moving over a textured background, H.264) into a
temporary folder, runs ``vidrestore bench`` on each in its own process (passthrough model by
default: no weights needed) and prints both peaks: the child's kernel-reported maximum
resident set (``wait4``) and the bench's own sampled peak. Extra arguments go to ``bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def make_clip(path: Path, frames: int, width: int, height: int) -> Path:
    from testkit.media import face_clip_frames, write_video

    path_points = ((0.25, 0.45), (0.75, 0.55), (0.3, 0.5), (0.7, 0.45))
    write_video(path, face_clip_frames(frames, width, height, face_size=min(width, height) // 2,
                                       path=path_points), fps=24)
    return path


def peak_of_run(clip: Path, report: Path, extra: list[str]) -> tuple[float, dict]:
    """Run ``vidrestore bench`` on ``clip`` in a child process: (max RSS MiB by wait4, JSON)."""
    cmd = [sys.executable, "-m", "vidrestore.cli", "bench", str(clip), "--warmup", "0", "--quiet",
           "--json", str(report), *extra]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench failed ({child.returncode}): {' '.join(cmd)}")
    return usage.ru_maxrss / 1024, json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames of the short clip (default 48)")
    parser.add_argument("--factor", type=int, default=10, help="how many times longer the long clip is")
    parser.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    args, extra = parser.parse_known_args(argv)
    if not any(a == "--model" for a in extra):
        extra = ["--model", "passthrough", *extra]
    width, height = (int(v) for v in args.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidrestore-memory-") as tmp:
        for n in (args.frames, args.frames * args.factor):
            clip = make_clip(Path(tmp) / f"clip_{n}.mp4", n, width, height)
            maxrss, data = peak_of_run(clip, Path(tmp) / f"bench_{n}.json", extra)
            rows.append((n, maxrss, data["peak_rss_mb"], data["fps"], data["faces"]))
    print(f"{'frames':>7} {'max RSS MiB (wait4)':>20} {'sampled peak MiB':>17} {'fps':>7} {'faces':>6}")
    for n, maxrss, sampled, fps, faces in rows:
        print(f"{n:7d} {maxrss:20.0f} {sampled:17.0f} {fps:7.2f} {faces:6d}")
    growth = rows[1][1] - rows[0][1]
    print(f"{args.factor}x longer: peak RSS {'+' if growth >= 0 else ''}{growth:.0f} MiB "
          f"({100 * growth / rows[0][1]:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
