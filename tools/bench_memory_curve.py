"""Resident memory sampled through one long run, by tenths of the run (flat = no growth).

    python tools/bench_memory_curve.py [--frames 1440] [--size 640x360] [--model passthrough]

Makes a face clip (the astronaut moving over a textured background), restores it with
``restore_video`` while a thread samples this process's RSS every 0.2 s, and prints the
largest sample of each tenth of the run. A leak shows as a steady climb; a streaming
pipeline levels off once its queues are full.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import psutil

    from testkit.media import face_clip_frames, write_video
    from vidrestore.restore_video import restore_video
    from vidrestore.settings import RestoreConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1440)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--model", default="passthrough")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    process = psutil.Process()
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(process.memory_info().rss / 2**20)
            time.sleep(0.2)

    with tempfile.TemporaryDirectory(prefix="vidrestore-curve-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        path = ((0.25, 0.45), (0.75, 0.55), (0.3, 0.5), (0.7, 0.45))
        write_video(clip, face_clip_frames(args.frames, width, height, face_size=min(width, height) // 2,
                                           path=path), fps=24)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        summary = restore_video(clip, Path(tmp) / "out.mp4",
                                RestoreConfig(model=args.model, download=False, face_cache=False))
        done.set()
        sampler.join()
    k = len(samples)
    tenths = [max(samples[i * k // 10 : max((i + 1) * k // 10, i * k // 10 + 1)]) for i in range(10)]
    print(f"{summary.frames} frames, {summary.fps:.1f} fps, {k} samples")
    print("peak RSS MiB by tenth of the run:", " ".join(f"{v:.0f}" for v in tenths))
    print(f"second tenth → last tenth: {tenths[-1] - tenths[1]:+.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
