"""Time CodeFormer++'s TGRN alone, forward, fp32 eager, on the CPU: the network of this
checkout, and optionally another TGRN module (e.g. an earlier version) interleaved with it,
so both see the same machine load.

    python tools/bench_tgrn.py [--size 512] [--repeats 3] [--threads 2] [--compare FILE.py]

Prints one line per network: median seconds per forward pass and parameters.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time

import torch

from vidrestore.models.tgrn import TextureGuidedRestoration


def _load(path: str):
    spec = importlib.util.spec_from_file_location("other_tgrn", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.TextureGuidedRestoration()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare", help="a Python file defining another TextureGuidedRestoration")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = {"this checkout": TextureGuidedRestoration().eval()}
    if args.compare:
        nets[args.compare] = _load(args.compare).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1
    y = torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1
    times: dict[str, list[float]] = {name: [] for name in nets}
    with torch.inference_mode():
        for net in nets.values():
            net(x, y)  # warm-up
        for _ in range(args.repeats):
            for name, net in nets.items():
                start = time.perf_counter()
                net(x, y)
                times[name].append(time.perf_counter() - start)
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters()) / 1e6
        print(f"{name}: {statistics.median(times[name]):.2f} s per {args.size}² face (median of "
              f"{args.repeats}), {params:.2f} M parameters")


if __name__ == "__main__":
    main()
