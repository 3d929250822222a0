"""``vidrestore batch``: restore many videos, resumably; ``vidrestore batch status OUTDIR``.

    vidrestore batch INPUT... -o OUTDIR [--glob PATTERN] [--manifest FILE] [--jobs N]
                     [--shard K/N] [--ray auto|ADDRESS] [--retries N] [--no-resume]
                     [--json] [--quiet] [restore options]
    vidrestore batch status OUTDIR [--json]
    vidrestore batch recover OUTDIR [--json]

A first argument ``status`` or ``recover`` is that command (restore a file named ``status``
as ``./status``). ``recover`` sets a damaged ledger aside and rebuilds it from the done
records of the finished outputs. Exit codes: 0 every file done, 5 the batch finished but
some files failed (their errors are in the ledger), 6 some files neither done nor failed
(run it again), 2 usage (or a damaged ledger), 4 missing weights, 130 interrupted, 1 internal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidrestore.errors import UsageError

from .restore import add_restore_options, config_from_args

_STATUS_USAGE = "usage: vidrestore batch {command} OUTDIR [--json]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Restore many videos into OUTDIR, mirroring their folders, with a "
                          "resumable SQLite ledger (OUTDIR/vidrestore-ledger.sqlite). "
                          "'vidrestore batch status OUTDIR [--json]' shows every file's state; "
                          "'vidrestore batch recover OUTDIR' rebuilds a damaged ledger from the "
                          "finished outputs' records. Exit codes: 0 all done, 5 some files failed, "
                          "6 some files neither done nor failed (run again).")
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT",
                        help="video files and folders (searched recursively)")
    parser.add_argument("-o", "--output", type=Path, metavar="OUTDIR",
                        help="output folder: mirrors the input tree, holds the ledger")
    group = parser.add_argument_group("batch")
    group.add_argument("--glob", action="append", metavar="PATTERN", dest="patterns",
                       help="take files in folders matching this shell pattern (on the name, or "
                            "the path below the folder if it holds a /; repeatable; default: "
                            "common video extensions)")
    group.add_argument("--manifest", type=Path, metavar="FILE",
                       help="a file listing inputs, one per line (# comments; relative to its folder)")
    group.add_argument("--jobs", "-j", type=int, metavar="N",
                       help="worker processes (default: one per GPU on a CUDA machine, else 1)")
    group.add_argument("--shard", metavar="K/N",
                       help="only the inputs of shard K of N (0 <= K < N), for job arrays")
    group.add_argument("--ray", metavar="auto|ADDRESS",
                       help="one Ray task per file on this cluster (auto: the running one, else a "
                            "local one); needs pip install 'vidrestore[ray]'")
    group.add_argument("--retries", type=int, default=2, metavar="N",
                       help="retry a failed file on later runs until it had 1+N attempts with these "
                            "settings; Ray also retries a task whose worker died (default 2)")
    group.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="skip files already done with the same input and settings (default); "
                            "--no-resume redoes everything")
    group.add_argument("--json", action="store_true",
                       help="print the summary (or the status) as JSON on stdout")
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-file lines")
    add_restore_options(parser)
    parser.set_defaults(_batch_defaults=None)
    parser.set_defaults(_batch_defaults=vars(parser.parse_args(["status", "x"])))


def run(args: argparse.Namespace) -> int:
    if args.inputs and str(args.inputs[0]) == "status":
        return _status(args)
    if args.inputs and str(args.inputs[0]) == "recover":
        return _recover(args)
    return _batch(args)


def _batch(args: argparse.Namespace) -> int:
    from vidrestore.batch.plan import parse_shard
    from vidrestore.batch.progress import summary_text
    from vidrestore.batch.runner import BatchOptions, run_batch, validate

    if args.output is None:
        raise UsageError("the following arguments are required: -o/--output (see vidrestore batch --help)")
    if not args.inputs and args.manifest is None:
        raise UsageError("no inputs: give files, folders or --manifest FILE (see vidrestore batch --help)")
    options = BatchOptions(
        inputs=tuple(args.inputs), outdir=args.output, config=config_from_args(args),
        manifest=args.manifest, patterns=tuple(args.patterns) if args.patterns else None,
        jobs=args.jobs, shard=parse_shard(args.shard) if args.shard else None, ray=args.ray,
        retries=args.retries, resume=args.resume, quiet=args.quiet,
        argv=tuple(sys.argv),
    )
    validate(options)
    if options.ray is not None:
        from vidrestore.batch.ray_runner import import_ray

        import_ray()

    def log(line: str) -> None:
        if not args.quiet:
            print(f"vidrestore: {line}", file=sys.stderr, flush=True)

    result = run_batch(options, log=log)
    if not args.quiet:
        print(summary_text(result, args.output), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    return result.exit_code


def _outdir_only(args: argparse.Namespace, command: str) -> Path:
    """The OUTDIR of ``batch status|recover OUTDIR [--json]``, which take no other option."""
    given = {k: v for k, v in vars(args).items() if k not in ("inputs", "json", "_batch_defaults")}
    defaults = args._batch_defaults
    if len(args.inputs) != 2 or any(v != defaults.get(k) for k, v in given.items()):
        raise UsageError(f"{_STATUS_USAGE.format(command=command)} (it takes no other options)")
    return args.inputs[1]


def _recover(args: argparse.Namespace) -> int:
    from vidrestore.batch.ledger import LEDGER_NAME, ledger_errors
    from vidrestore.batch.records import recover

    outdir = _outdir_only(args, "recover")
    with ledger_errors(Path(outdir) / LEDGER_NAME):
        result = recover(outdir)
    if args.json:
        print(json.dumps({"ledger": str(result.ledger), "healthy": result.healthy,
                          "kept_as": [str(p) for p in result.kept_as], "done": result.done,
                          "stale": result.stale}, indent=1))
    elif result.healthy:
        print(f"the ledger {result.ledger} is healthy; nothing to recover")
    else:
        kept = f"; the damaged ledger is kept as {result.kept_as[0]}" if result.kept_as else ""
        print(f"rebuilt {result.ledger}: {len(result.done)} finished files recovered from their done "
              f"records, {len(result.stale)} records no longer match their output (those files will "
              f"be redone){kept}. Run the batch again to finish the rest.")
    return 0


def _status(args: argparse.Namespace) -> int:
    from vidrestore.batch.ledger import LEDGER_NAME, Ledger, ledger_errors

    outdir = _outdir_only(args, "status")
    with ledger_errors(Path(outdir) / LEDGER_NAME):
        return _show_status(args, Ledger.in_folder(outdir, create=False))


def _show_status(args: argparse.Namespace, ledger) -> int:
    from vidrestore.batch.progress import status_text
    from vidrestore.batch.runner import file_json

    rows = list(ledger.files().values())
    live = {row["id"]: ledger.alive(ledger.worker(row["worker"])) if row["worker"] is not None else False
            for row in rows if row["status"] == "running"}
    if args.json:
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", "failed", "pending", "running")}
        files = [{**file_json(dict(r), ledger.outdir), **({"live": live[r["id"]]} if r["id"] in live else {})} for r in rows]
        print(json.dumps({"ledger": str(ledger.path), "journal": ledger.journal, "counts": counts,
                          "files": files}, indent=1))
    else:
        print(status_text(rows, live, ledger.path))
    ledger.close()
    return 0


__all__ = ["add_arguments", "run"]
