#!/usr/bin/env python
"""How fast the encoder takes frames, per codec, preset and threading, at one resolution.

    python tools/bench_encode.py [--size 1920x1080] [--frames 48] [--codecs libx264,h264_nvenc]
                                 [--presets medium,fast,faster,veryfast] [--json FILE]

Encodes the same frames (a camera panning over a photo-textured scene with one real face and
sensor grain, ``testkit.media.scene_frames``, converted to yuv420p before timing) through
``vidrestore.io.writer.VideoWriter``'s encoder settings — ``encoder_options`` and
``encoder_threading`` of ``vidrestore.io.encoding`` — into a file in a temporary folder, and
prints frames/s per setting; "auto" is what a restore run on a GPU chooses for this size. Encoders this
PyAV cannot open here (``available_encoders``) are reported as such, not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402

from testkit.media import scene_frames  # noqa: E402
from vidrestore.io.encoding import (  # noqa: E402
    EncodeSettings,
    available_encoders,
    encoder_options,
    encoder_threading,
    resolve_preset,
)


def source_frames(n: int, width: int, height: int) -> list[av.VideoFrame]:
    """``n`` yuv420p frames of the panning scene (made once, before any timing)."""
    return [av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p", threads=1)
            for image in scene_frames(n, width, height)]


def encode_rate(frames: list[av.VideoFrame], settings: EncodeSettings, *, thread_type: str | None = None,
                threads: int | None = None, cpus: int | None = None, gpu: bool = True) -> dict:
    """Encode ``frames`` with ``settings`` (preset ``auto`` resolved for their size, threading
    as a restore run sets it unless ``thread_type`` / ``threads`` say otherwise): frames/s
    over the whole encode (flush included) and the output's size."""
    width, height = frames[0].width, frames[0].height
    settings = dataclasses.replace(settings, preset=resolve_preset(settings.codec, settings.preset, width, height,
                                                                   gpu=gpu))
    auto_type, auto_threads = encoder_threading(settings.codec, width, height, cpus or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="vidrestore-encode-") as tmp:
        path = Path(tmp) / "out.mkv"
        with av.open(str(path), "w") as container:
            stream = container.add_stream(settings.codec, rate=25, options=encoder_options(settings))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            ctx = stream.codec_context
            ctx.thread_type = thread_type or auto_type
            ctx.thread_count = auto_threads if threads is None else threads
            start = time.perf_counter()
            for i, frame in enumerate(frames):
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
            seconds = time.perf_counter() - start
        size = path.stat().st_size
    return {"codec": settings.codec, "preset": settings.preset, "thread_type": ctx.thread_type.name
            if hasattr(ctx.thread_type, "name") else str(ctx.thread_type), "threads": ctx.thread_count,
            "frames": len(frames), "fps": round(len(frames) / seconds, 2), "bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--codecs", default="libx264")
    parser.add_argument("--presets", default="auto,medium,fast,faster,veryfast")
    parser.add_argument("--thread-types", default="auto,SLICE,FRAME",
                        help="x264 threading to compare (auto: what a restore run sets)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = source_frames(args.frames, width, height)
    usable = available_encoders()
    rows = []
    for codec in args.codecs.split(","):
        if usable.get(codec) is not None:
            print(f"{codec}: not usable here: {usable[codec]}")
            rows.append({"codec": codec, "unavailable": usable[codec]})
            continue
        for preset in args.presets.split(","):
            for kind in args.thread_types.split(","):
                row = encode_rate(frames, EncodeSettings(codec=codec, preset=preset),
                                  thread_type=None if kind == "auto" else kind)
                row["asked"] = {"preset": preset, "thread_type": kind}
                rows.append(row)
                print(f"{codec:12s} {preset:9s}->{row['preset']:9s} {kind:5s}->{row['thread_type']:6s} "
                      f"threads {row['threads']:2d}  {row['fps']:7.2f} frames/s  {row['bytes'] / 1e6:6.2f} MB",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"size": [width, height], "cpus": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
