"""``vidrestore weights list | fetch NAME... | verify [NAME...] | import FILE``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidrestore.errors import ChecksumError, UsageError
from vidrestore.weights import DEFAULT_RUN, WeightStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-dir", type=Path, metavar="DIR",
                        help="offline folder searched before the cache")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="download cache (default $XDG_CACHE_HOME/vidrestore/weights)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="every known checkpoint and whether it is here")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    fetch = sub.add_parser("fetch", help="download checkpoints into the cache (sha256-checked)")
    fetch.add_argument("names", nargs="*", metavar="NAME")
    fetch.add_argument("--all", action="store_true",
                       help=f"every file a default run can use ({', '.join(DEFAULT_RUN)})")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    verify = sub.add_parser("verify", help="check present files against their sha256")
    verify.add_argument("names", nargs="*", metavar="NAME")
    importing = sub.add_parser("import", help="copy a downloaded file into the cache, checked")
    importing.add_argument("file", type=Path)
    importing.add_argument("--name", help="which known checkpoint it is (default: by hash/name)")


def run(args: argparse.Namespace) -> int:
    store = WeightStore(args.weights_dir, args.cache_dir, progress=_progress())
    if args.action == "list":
        return _list(store, args.json)
    if args.action == "fetch":
        if not args.names and not args.all:
            raise UsageError("weights fetch: name the checkpoints to fetch, or give --all")
        for name in dict.fromkeys([*args.names, *(DEFAULT_RUN if args.all else ())]):
            path = store.fetch(name, force=args.force)
            print(f"{name}: {path}")
        return 0
    if args.action == "verify":
        results = store.verify(args.names or None)
        for result in results:
            print(result.line)
        bad = [r for r in results if r.status == "mismatch"]
        if bad:
            raise ChecksumError(f"{len(bad)} corrupt file(s): {', '.join(r.name for r in bad)}")
        return 0
    entry, path = store.import_file(args.file, args.name)
    print(f"{entry.name}: {path}")
    return 0


def _list(store: WeightStore, as_json: bool) -> int:
    rows = []
    for name, entry in sorted(store.table.items()):
        path = store.find(name)
        rows.append({
            "name": name, "file": entry.filename, "network": entry.network,
            "present": str(path) if path else None, "license": entry.license,
            "url": entry.url, "sha256": entry.sha256, "description": entry.description,
        })
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        mark = "✓" if row["present"] else " "
        print(f"{mark} {row['name']:22s} {row['file']:36s} {row['description']}")
        print(f"  {'':22s} licence: {row['license']}")
    print(f"\nsearched: {', '.join(str(f) for f in store.folders())}")
    return 0


def _progress():
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = {}

    def update(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, leave=False)
        bar["bar"].n = done
        bar["bar"].refresh()
        if total is not None and done >= total:
            bar.pop("bar").close()

    return update
