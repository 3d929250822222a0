#!/usr/bin/env python
"""The background upsampler's engines on one tile: eager torch against ONNX Runtime.

    python tools/bench_upsampler.py WEIGHTS [--scale 2] [--tile 214x204] [--rounds 3]
                                    [--cache DIR] [--json FILE]

WEIGHTS is a Real-ESRGAN checkpoint in the official format (``{"params_ema": state_dict}``;
random weights cost the same as trained ones). The full-size RRDBNet is loaded strictly, the
ONNX Runtime engine is built (export and session set-up timed; cached under ``--cache`` by the
engine cache's key, so a second call reuses it), both engines are warmed up on one random
tile, then timed in interleaved rounds so a shared machine's load hits both alike: wall and
CPU seconds per tile, and the process's peak RSS. CPU only.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from vidrestore.engines import EngineCache, ImageNetworkIO, build_image_engine  # noqa: E402
from vidrestore.models.checkpoint import load_weights_file  # noqa: E402
from vidrestore.models.rrdbnet import UPSAMPLERS, RRDBNet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--scale", type=int, choices=sorted(UPSAMPLERS), default=2)
    parser.add_argument("--tile", default="214x204", help="HxW of the input tile")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None, help="engine cache (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.tile.lower().split("x"))
    cpu = torch.device("cpu")
    net = load_weights_file(RRDBNet(UPSAMPLERS[args.scale].config), args.weights, what=f"x{args.scale}")
    io = ImageNetworkIO(f"realesrgan-x{args.scale}plus", args.scale, (height, width))
    with tempfile.TemporaryDirectory() as scratch:
        cache = EngineCache(args.cache or Path(scratch))
        start = time.perf_counter()
        engines = {"onnxruntime": build_image_engine(net, io, backend="onnxruntime", precision="fp32", device=cpu,
                                                     cache=cache, batch=(1, 4, 4))}
        build_s = time.perf_counter() - start
        engines["torch"] = build_image_engine(net, io, backend="torch", precision="fp32", device=cpu)
        x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
        for engine in engines.values():
            engine.run(x, None, 0.0)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in ("torch", "onnxruntime")}
        for _ in range(args.rounds):
            for name in times:
                wall, cpu_s = time.perf_counter(), time.process_time()
                engines[name].run(x, None, 0.0)
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu_s))
    result = {
        "tile": [height, width], "scale": args.scale, "onnx_build_s": round(build_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "engines": {name: {"wall_s": [round(w, 2) for w, _ in v], "cpu_s": [round(c, 2) for _, c in v]}
                    for name, v in times.items()},
    }
    print(f"ONNX export + session: {result['onnx_build_s']} s; peak RSS {result['peak_rss_mb']} MB")
    for name, v in result["engines"].items():
        print(f"{name:12s} wall s/tile {v['wall_s']}  CPU s/tile {v['cpu_s']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
