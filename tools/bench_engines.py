"""Restoration throughput per engine at full size, interleaved so machine load hits all alike.

    python tools/bench_engines.py --weights W.pth [--model codeformer] \
        [--engines torch,torch:bf16,onnxruntime,compiled,compiled:bf16] [--batch-sizes 1,4] \
        [--rounds 3] [--device cpu] [--threads N] [--json FILE]

Builds (or loads from the engine cache) every engine, checks each once against fp32 eager
(PSNR), then runs ``--rounds`` rounds; each round times one call per engine and batch size,
in turn. Prints faces/s from the best and the median round. ``vidrestore engines check`` is
the same check and timer, engine after engine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch
    from vidrestore.engines import (
        batch_profile,
        build_engine,
        model_hash,
        resolve_precision,
    )
    from vidrestore.engines.check import check_engine, face_batch

    from vidrestore.pipeline.build import load_network
    from vidrestore.settings import RestoreConfig
    from vidrestore.weights import WeightStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--model", default="codeformer")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--engines", default="torch,torch:bf16,onnxruntime,compiled,compiled:bf16")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch / onnxruntime intra-op threads")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    config = RestoreConfig(model=args.model, weights=args.weights, download=False)
    net, io = load_network(config, WeightStore(allow_download=False), log=print, tiny=args.tiny)
    digest = model_hash(net)
    reference = None if args.no_check else build_engine(net, io, backend="torch", precision="fp32",
                                                         device=device, channels_last=False)
    built = {}
    for spec in args.engines.split(","):
        backend, _, precision = spec.partition(":")
        precision = resolve_precision(precision or "auto", device)
        start = time.perf_counter()
        engine = build_engine(net, io, backend=backend, precision=precision, device=device, digest=digest,
                              batch=batch_profile(backend, max(sizes), tuple(sizes)), log=print)
        print(f"{spec}: ready in {time.perf_counter() - start:.1f} s — {engine.info.describe()}", flush=True)
        check = check_engine(engine, reference, io) if reference is not None else None
        if check is not None:
            print("  " + check.line(), flush=True)
        built[spec] = (engine, check)
    inputs = {b: face_batch(io, b, seed=1) for b in sizes}
    times: dict[tuple[str, int], list[float]] = {(s, b): [] for s in built for b in sizes}
    with torch.inference_mode():
        for spec, (engine, _) in built.items():  # warm-up: one call per batch size
            for b in sizes:
                engine.run(inputs[b][0].to(device), _maybe(inputs[b][1], device), 0.5)
        for r in range(args.rounds):
            for spec, (engine, _) in built.items():
                for b in sizes:
                    x, identity = inputs[b]
                    start = time.perf_counter()
                    engine.run(x.to(device), _maybe(identity, device), 0.5)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    times[(spec, b)].append(time.perf_counter() - start)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    print(f"\n{'engine':16s} {'batch':>5s} {'best faces/s':>13s} {'median faces/s':>15s} {'s/face (best)':>14s} {'PSNR dB':>8s}")
    for (spec, b), values in times.items():
        best, median = b / min(values), b / statistics.median(values)
        check = built[spec][1]
        psnr = f"{check.psnr_db:.1f}" if check else "-"
        print(f"{spec:16s} {b:5d} {best:13.3f} {median:15.3f} {1 / best:14.2f} {psnr:>8s}")
        rows.append({"engine": spec, "batch": b, "faces_per_s_best": round(best, 4),
                     "faces_per_s_median": round(median, 4), "seconds": [round(v, 3) for v in values],
                     "psnr_db": check.psnr_db if check else None, "passed": check.passed if check else None,
                     "detail": built[spec][0].info.detail})
    if args.json:
        from vidrestore.bench import environment

        args.json.write_text(json.dumps({"model": args.model, "face_size": io.face_size, "device": str(device),
                                         "threads": torch.get_num_threads(), "environment": environment(),
                                         "results": rows}, indent=1) + "\n")
    return 0


def _maybe(t, device):
    return None if t is None else t.to(device)


if __name__ == "__main__":
    sys.exit(main())
