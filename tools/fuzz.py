"""Fuzz the command line with damaged and hostile videos; count how each case ended.

    python tools/fuzz.py --cases N --seed S --out DIR [--first I] [--timeout 120]
                         [--memory-mib 2048] [--launch fork|exec] [--keep]

Makes cases ``I`` … ``I+N-1`` of seed ``S`` (``testkit.fuzz``: every kind of damage of
``testkit.damage.KINDS`` on generated and package-shipped videos in mp4, mov, mkv, webm, avi
and mpeg-ts), runs ``vidrestore INPUT -o OUTPUT --model passthrough --offline --quiet`` on
each in a child process with a time limit and a memory bound, and judges it by the contract
(restored: exit 0 and a decodable output; refused: exit 3, one clear line, nothing left;
anything else is mishandled). The memory bound of a case is ``--memory-mib`` plus 660 bytes
a pixel of its frames and 3 MiB a stream, its time limit ``--timeout`` plus 2 µs a pixel of
each frame (about twice what a clean run costs; see ``testkit.fuzz``). Writes ``DIR/results-I.jsonl`` (a verdict per case) and
``DIR/summary.json`` (the counts over every results file in DIR, by kind and by
container, and the mishandled cases); a mishandled case's input and stderr are kept in
``DIR/mishandled/`` to reproduce it. Run it in chunks (``--first``) into one DIR to reach
large counts. Exit code: 0 if no case was mishandled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # testkit/, from the repository root

from testkit.fuzz import (  # noqa: E402
    BASE_MEMORY_MIB,
    ExecLauncher,
    ForkLauncher,
    argv,
    build,
    bounds,
    judge,
    output_name,
    plan,
    run_child,
    verdict,
)
from testkit.hostile import make_sources  # noqa: E402


def summarize(out: Path, command: str) -> dict:
    verdicts = [json.loads(line) for path in sorted(out.glob("results-*.jsonl"))
                for line in path.read_text().splitlines() if line.strip()]
    counts = collections.Counter(v["outcome"] for v in verdicts)
    by = lambda key: {k: dict(collections.Counter(v["outcome"] for v in verdicts if v[key] == k))  # noqa: E731
                      for k in sorted({v[key] for v in verdicts})}
    rss = [v["peak_rss_mib"] for v in verdicts if v["peak_rss_mib"] is not None]
    summary = {
        "command": command, "cases": len(verdicts),
        "counts": {k: counts.get(k, 0) for k in ("restored", "refused", "mishandled")},
        "by_kind": by("kind"), "by_container": by("container"), "by_origin": by("origin"),
        "peak_rss_mib_max": max(rss, default=None),
        "seconds_max": max((v["seconds"] for v in verdicts), default=None),
        "mishandled": [{k: v[k] for k in ("case", "detail", "why")} for v in verdicts if v["outcome"] == "mishandled"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", type=int, default=0, help="index of the first case (chunks)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a case may run before its frames' share (2 µs a pixel a frame)")
    parser.add_argument("--memory-mib", type=float, default=BASE_MEMORY_MIB,
                        help="memory bound of a case before its frames' share (PIXEL_BYTES a pixel)")
    parser.add_argument("--launch", choices=("fork", "exec"), default="fork",
                        help="fork from this process (vidrestore imported once) or start a fresh "
                             "interpreter per case")
    parser.add_argument("--keep", action="store_true", help="keep every input and output")
    args = parser.parse_args()

    out = args.out
    sources = make_sources(out / "sources")
    launcher = ForkLauncher() if args.launch == "fork" else ExecLauncher()
    results = out / f"results-{args.first:05d}.jsonl"
    started = time.monotonic()
    tally = collections.Counter()
    with results.open("w") as log:
        for case in plan(sources, args.cases, args.seed, args.first):
            work = out / "work" / case.name
            shutil.rmtree(work, ignore_errors=True)
            (work / "out").mkdir(parents=True)
            source, detail = build(case, work)
            target = work / "out" / output_name(source)
            bound, limit = bounds(source, case.source.path, base_mib=args.memory_mib, base_seconds=args.timeout)
            run = run_child(launcher, argv(source, target), work / "stderr.txt", timeout=limit, memory_mib=bound)
            outcome, why = judge(run, target, timeout=limit, memory_mib=bound)
            result = verdict(case, detail, run, outcome, why, bound)
            log.write(json.dumps(result.to_json()) + "\n")
            log.flush()
            tally[outcome] += 1
            print(f"{case.name:48s} {outcome:10s} {run.seconds:5.1f} s  {why[:110]}", flush=True)
            if outcome == "mishandled":
                kept = out / "mishandled" / case.name
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(work, kept)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    command = " ".join(["python", "tools/fuzz.py", *sys.argv[1:]])
    summary = summarize(out, command)
    print(f"this chunk: {dict(tally)} in {time.monotonic() - started:.0f} s; "
          f"all results in {out}: {summary['counts']} of {summary['cases']}")
    return 1 if tally["mishandled"] else 0


if __name__ == "__main__":
    sys.exit(main())
