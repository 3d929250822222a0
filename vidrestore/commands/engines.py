"""``vidrestore engines build | list | check``: the compiled restoration engines.

    vidrestore engines build [restore options] [--batch-sizes 1,4,8]   build (or find) the artifact
    vidrestore engines list [--json]                                  what is cached, size, key
    vidrestore engines check [restore options] [--engines E1,E2]      PSNR vs fp32 eager + faces/s

``build`` makes what a run with the same options uses: with temporal fusion on (the default)
the two halves of the split network, with ``--temporal off`` the whole network. ``check``
checks the whole network, and with an explicit ``--temporal on`` the split network as well.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidrestore.errors import EngineError, UsageError

from .bench import engine_list
from .restore import add_restore_options, config_from_args


def batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be >= 1")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine-dir", type=Path, metavar="DIR",
                        help="artifact cache (default $VIDRESTORE_ENGINE_DIR or $XDG_CACHE_HOME/vidrestore/engines)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="build the engine artifact for these restore options (or find it cached)")
    build.add_argument("--batch-sizes", type=batch_sizes, default=(), metavar="N,N,...",
                       help="batch sizes the artifact must take (default: --batch-size)")
    build.add_argument("--tiny", action="store_true", help="the tiny test network with seeded weights")
    build.add_argument("--quiet", "-q", action="store_true", help="no set-up notes")
    add_restore_options(build)
    listing = sub.add_parser("list", help="the cached artifacts: folder, size, device, key")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    check = sub.add_parser("check", help="check engines against fp32 eager (PSNR) and time them alone")
    check.add_argument("--engines", type=engine_list, metavar="E1,E2,...",
                       help="BACKEND[:PRECISION] list (default: --engine with --precision)")
    check.add_argument("--batch-sizes", type=batch_sizes, default=(1,), metavar="N,N,...",
                       help="batch sizes to time (default 1)")
    check.add_argument("--repeats", type=int, default=3, metavar="N", help="timed calls per batch size (best kept)")
    check.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    check.add_argument("--tiny", action="store_true", help="the tiny test network with seeded weights")
    check.add_argument("--quiet", "-q", action="store_true", help="no set-up notes")
    add_restore_options(check)


def run(args: argparse.Namespace) -> int:
    from vidrestore.engines import EngineCache

    cache = EngineCache(args.engine_dir)
    if args.action == "list":
        return _list(cache, args.json)
    config = config_from_args(args)
    if config.model == "passthrough":
        raise UsageError("the passthrough model has no engine")
    log = _quiet if args.quiet else _log
    if args.action == "build":
        return _build(config, cache, args, log)
    return _check(config, cache, args, log)


def _log(line: str) -> None:
    print(f"vidrestore: {line}", file=sys.stderr)


def _quiet(line: str) -> None:
    pass


def _setup(config, args, log):
    from vidrestore.pipeline.build import load_network, resolve_device
    from vidrestore.weights import WeightStore

    device = resolve_device(config.device)
    store = WeightStore(config.weights_dir, allow_download=config.download)
    net, io = load_network(config, store, log=log, tiny=args.tiny)
    return device, net, io


def _build(config, cache, args, log) -> int:
    from vidrestore.engines import (
        batch_profile,
        build_engine,
        choose_backend,
        model_hash,
        resolve_precision,
    )

    device, net, io = _setup(config, args, log)
    precision = resolve_precision(config.precision, device)
    backend = config.engine
    if backend == "auto":
        backend, why = choose_backend(device, precision)
        log(f"engine: auto picked {backend}: {why}")
    if backend == "torch":
        print("the torch engine runs the network as it is: nothing to build")
        return 0
    batch = batch_profile(backend, config.batch_for(device), args.batch_sizes)
    if config.temporal.enabled:  # what a run with these options uses: the split network
        from vidrestore.engines.split_build import build_split_engine

        engine = build_split_engine(net, io, backend=backend, precision=precision, device=device, batch=batch,
                                    cache=cache, log=log, digest=model_hash(net), owned=True)
    else:
        engine = build_engine(net, io, backend=backend, precision=precision, device=device, batch=batch,
                              cache=cache, log=log, digest=model_hash(net), owned=True)
    print(f"{engine.info.describe()}")
    if engine.info.artifact:
        print(f"artifact: {engine.info.artifact}")
    return 0


def _list(cache, as_json: bool) -> int:
    entries = cache.entries()
    if as_json:
        print(json.dumps([{"folder": str(e.folder), "artifact": str(e.artifact), "size": e.size, "key": e.key,
                           "built_seconds": e.built_seconds} for e in entries], indent=1))
        return 0
    if not entries:
        print(f"no engines cached in {cache.root}")
        return 0
    print(f"{len(entries)} engine(s) in {cache.root}:")
    for entry in entries:
        print("  " + entry.line())
    return 0


def _check(config, cache, args, log) -> int:
    from vidrestore.engines import (
        EngineUnavailableError,
        backend_unavailable,
        batch_profile,
        build_engine,
        model_hash,
        resolve_precision,
    )
    from vidrestore.engines.check import check_engine, time_engine

    device, net, io = _setup(config, args, log)
    digest = model_hash(net)
    specs = args.engines or [f"{config.engine}:{config.precision}"]
    reference = build_engine(net, io, backend="torch", precision="fp32", device=device, channels_last=False)
    results, skipped = [], []
    for spec in specs:
        backend, _, precision = spec.partition(":")
        precision = resolve_precision(precision or config.precision, device)
        if backend == "auto":
            from vidrestore.engines import choose_backend

            backend, why = choose_backend(device, precision)
            log(f"engine: auto picked {backend}: {why}")
        if (reason := backend_unavailable(backend, device, precision)) is not None:
            print(f"{spec:44s} skipped: {reason}")
            skipped.append(spec)
            continue
        engine = build_engine(net, io, backend=backend, precision=precision, device=device, cache=cache,
                              batch=batch_profile(backend, max(args.batch_sizes), args.batch_sizes),
                              log=log, digest=digest)
        engines = [engine]
        if args.temporal == "on" and config.temporal.enabled:  # asked for: the split network too
            from vidrestore.engines.split_build import build_split_engine

            engines.append(build_split_engine(net, io, backend=backend, precision=precision, device=device,
                                              cache=cache, batch=engine.info.batch or (1, 8, 8), log=log,
                                              digest=digest))
        for checked in engines:
            result = check_engine(checked, reference, io, fidelity=config.fidelity)
            speeds = {b: time_engine(checked, io, batch=b, repeats=args.repeats) for b in args.batch_sizes}
            split = " (split)" if checked is not engine else ""
            print(result.line() + split + "  " + "  ".join(f"b{b}: {v:.2f} faces/s" for b, v in speeds.items()))
            results.append({**result.to_dict(), "split": bool(split), "faces_per_s": speeds,
                            "detail": checked.info.detail})
    results += [{"label": spec, "skipped": True, "passed": None} for spec in skipped]
    if args.json:
        from vidrestore.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"device": str(device), "model": config.model,
                                                 "face_size": io.face_size, "results": results},
                                                indent=1, default=str) + "\n")
    failed = [r["label"] for r in results if r["passed"] is False]
    if failed:
        raise EngineError(f"engine check failed for {', '.join(failed)}")
    if len(skipped) == len(specs):
        raise EngineUnavailableError(f"none of the engines can run here ({', '.join(skipped)})")
    return 0


__all__ = ["add_arguments", "run"]
