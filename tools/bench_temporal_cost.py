"""What temporal fusion costs per face: the whole network's graph against the split graphs
(predict, the fusion of a 5-frame window, decode), on one engine, interleaved over rounds so
that the machine's load hits both alike.

Per round and per path: wall seconds and the process's CPU seconds (all threads), for one
512² face; the best round and the median are printed, and the largest difference between the
two outputs (the window holds five copies of the same face, so fusion changes nothing and the
outputs must agree to the backend's rounding).

    VIDRESTORE_ENGINE_DIR=DIR python tools/bench_temporal_cost.py --weights W.pth --engine onnxruntime --rounds 6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--engine", default="onnxruntime")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--w", type=float, default=0.0)
    args = parser.parse_args()

    from vidrestore.engines import EngineCache, build_engine
    from vidrestore.engines.check import face_batch
    from vidrestore.engines.split_build import build_split_engine
    from vidrestore.models.temporal import TemporalConfig, fuse_window
    from vidrestore.pipeline.build import load_network
    from vidrestore.settings import RestoreConfig
    from vidrestore.weights import WeightStore

    net, io = load_network(RestoreConfig(weights=args.weights, download=False), WeightStore(None, allow_download=False))
    cpu, cache = torch.device("cpu"), EngineCache()
    whole = build_engine(net, io, backend=args.engine, precision="fp32", device=cpu, cache=cache, batch=(1, 8, 8))
    split = build_split_engine(net, io, backend=args.engine, precision="fp32", device=cpu, cache=cache, batch=(1, 8, 8))
    x, _ = face_batch(io, 1)
    config = TemporalConfig()
    wall: dict[str, list[float]] = {"whole": [], "split": []}
    cpu_s: dict[str, list[float]] = {"whole": [], "split": []}
    fuse_s: list[float] = []
    diff = 0.0

    def timed(name, fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall[name].append(time.perf_counter() - t)
        cpu_s[name].append(time.process_time() - c)
        return out

    def split_path():
        codes = split.predict(x, None)
        t = time.perf_counter()
        logits, lq = fuse_window(torch.cat([codes.logits] * 5), torch.cat([codes.lq_feat] * 5), [-2, -1, 0, 1, 2], config)
        fuse_s.append(time.perf_counter() - t)
        return split.decode(codes.with_codes(logits[None], lq[None]), None, args.w)

    for r in range(args.rounds):
        order = (("whole", lambda: whole.run(x, None, args.w)), ("split", split_path))
        outs = [timed(name, fn) for name, fn in (order if r % 2 == 0 else order[::-1])]
        diff = max(diff, float((outs[0] - outs[1]).abs().max()))
        print(f"round {r}: " + "  ".join(f"{k} {wall[k][-1]:.2f} s wall {cpu_s[k][-1]:.2f} s CPU" for k in wall), flush=True)
    for name in wall:
        print(f"{name:6s} wall best {min(wall[name]):.2f} median {np.median(wall[name]):.2f} s; "
              f"CPU best {min(cpu_s[name]):.2f} median {np.median(cpu_s[name]):.2f} s")
    ratio = [s / w for s, w in zip(cpu_s["split"], cpu_s["whole"])]
    print(f"split / whole CPU per round: median {np.median(ratio):.3f} (min {min(ratio):.3f}, max {max(ratio):.3f}); "
          f"fusion alone {1000 * np.median(fuse_s):.1f} ms; max |difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
