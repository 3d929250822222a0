"""Long runs: is memory flat, and do open files and threads stay put, over an hour of video
or hundreds of batch files?

    python tools/soak.py single --minutes 60 --size 1920x1080 --out DIR [restore options]
    python tools/soak.py batch --files 200 --out DIR [--seconds 2] [--size 320x240] [batch options]

``single`` makes a long generated clip (scikit-image's astronaut moving over a textured
background, with a tone; a 10-second segment encoded once and repeated packet for packet to
the length asked, so making it takes seconds) and restores it with
``vidrestore INPUT -o OUTPUT --model passthrough --offline --quiet`` plus the options given.
``batch`` makes that many short clips and runs ``vidrestore batch`` over them. Every
``--every`` seconds the run's processes (the CLI, or the batch coordinator and each worker)
are sampled from /proc: resident memory (VmRSS and its high-water mark VmHWM), open file
descriptors (/proc/PID/fd) and threads. Writes ``DIR/samples.jsonl`` and ``DIR/soak.json``:
per process role, the first, middle and last samples' figures, the maxima, and the growth of
resident memory between the second quarter and the last quarter of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # testkit/, from the repository root

PASSTHROUGH = ["--model", "passthrough", "--offline", "--quiet"]


def make_long_clip(path: Path, seconds: float, width: int, height: int, segment: float = 10.0) -> Path:
    """A clip of ``seconds``: a ``segment``-second clip repeated packet for packet."""
    import av

    from testkit.media import AudioSpec, face_clip_frames, write_video

    piece = path.with_name(f"segment-{width}x{height}.mp4")
    if not piece.exists():
        frames = int(round(segment * 24))
        write_video(piece, face_clip_frames(frames, width, height, face_size=height // 3,
                                            path=((0.3, 0.45), (0.7, 0.55), (0.35, 0.5))),
                    fps=24, audio=AudioSpec(segment), options={"g": "48", "preset": "veryfast", "crf": "23"})
    repeats = max(1, int(round(seconds / segment)))
    with av.open(str(piece)) as src, av.open(str(path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        packets = [p for p in src.demux() if p.dts is not None]
        payloads = [(p.stream.index, bytes(p), p.pts, p.dts, p.duration, p.is_keyframe, p.time_base)
                    for p in packets]
        last: dict[int, int] = {}
        for k in range(repeats):  # each repeat shifted by exactly the segment's length
            for index, data, pts, dts, duration, key, tb in payloads:
                shift = int(round(k * segment / tb))
                if dts + shift <= last.get(index, -2 ** 62):
                    continue  # an audio packet the next repeat's first one overlaps
                packet = av.Packet(data)
                packet.pts = None if pts is None else pts + shift
                packet.dts = last[index] = dts + shift
                packet.duration, packet.is_keyframe, packet.time_base = duration, key, tb
                packet.stream = streams[index]
                out.mux(packet)
    return path


def sample(pid: int) -> dict | None:
    """VmRSS, VmHWM (MiB), threads and open fds of a process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:
        return None  # a zombie: it has exited, its parent has not reaped it yet
    kib = lambda key: int(fields[key].split()[0]) / 1024  # noqa: E731
    return {"rss_mib": round(kib("VmRSS"), 1), "hwm_mib": round(kib("VmHWM"), 1),
            "threads": int(fields["Threads"]), "fds": fds}


def roles(root: int) -> dict[int, str]:
    """The processes of a run: the CLI (``main``) and, for a batch, its workers."""
    import psutil

    found = {root: "main"}
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue  # gone, or a zombie
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found[child.pid] = "worker"
    return found


def watch(cmd: list[str], out: Path, every: float) -> dict:
    """Run ``cmd``, sampling its processes every ``every`` s; returns the summary."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(out / "stderr.txt", "wb"))
    samples = []
    with (out / "samples.jsonl").open("w") as log:
        while proc.poll() is None:
            now = round(time.monotonic() - started, 1)
            for pid, role in roles(proc.pid).items():
                if (s := sample(pid)) is not None:
                    row = {"t": now, "pid": pid, "role": role, **s}
                    samples.append(row)
                    log.write(json.dumps(row) + "\n")
            log.flush()
            time.sleep(every)
    seconds = time.monotonic() - started
    return {"command": " ".join(cmd), "exit_code": proc.returncode, "seconds": round(seconds, 1),
            "roles": {role: summarize([s for s in samples if s["role"] == role])
                      for role in sorted({s["role"] for s in samples})}}


def summarize(rows: list[dict]) -> dict:
    """First / middle / last figures, maxima and the RSS growth between quarters of the run."""
    if not rows:
        return {}
    rows = sorted(rows, key=lambda r: r["t"])
    end = rows[-1]["t"] or 1.0
    quarter = lambda a, b, key="rss_mib": [r[key] for r in rows if a * end <= r["t"] <= b * end] or [0]  # noqa: E731
    pick = lambda r: {k: r[k] for k in ("t", "rss_mib", "hwm_mib", "threads", "fds")}  # noqa: E731
    second, last = quarter(0.25, 0.5), quarter(0.75, 1.0)
    return {
        "samples": len(rows), "processes": len({r["pid"] for r in rows}),
        "first": pick(rows[0]), "middle": pick(rows[len(rows) // 2]), "last": pick(rows[-1]),
        "rss_mib_max": max(r["rss_mib"] for r in rows), "hwm_mib_max": max(r["hwm_mib"] for r in rows),
        "threads_min_max": [min(r["threads"] for r in rows), max(r["threads"] for r in rows)],
        "fds_min_max": [min(r["fds"] for r in rows), max(r["fds"] for r in rows)],
        "rss_mib_median_second_quarter": sorted(second)[len(second) // 2],
        "rss_mib_median_last_quarter": sorted(last)[len(last) // 2],
        # growth shows as a higher maximum late in the run than early (the run's start and
        # end, where threads and files open and close, are outside these quarters' maxima)
        "threads_max_second_quarter": max(quarter(0.25, 0.5, "threads")),
        "threads_max_last_quarter": max(quarter(0.75, 0.95, "threads")),
        "fds_max_second_quarter": max(quarter(0.25, 0.5, "fds")),
        "fds_max_last_quarter": max(quarter(0.75, 0.95, "fds")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("single", "batch"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=60.0, help="single: length of the clip")
    parser.add_argument("--files", type=int, default=200, help="batch: number of clips")
    parser.add_argument("--seconds", type=float, default=2.0, help="batch: length of each clip")
    parser.add_argument("--size", default=None, help="WxH (single: 1920x1080, batch: 320x240)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    args, extra = parser.parse_known_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in (args.size or ("1920x1080" if args.mode == "single" else "320x240")).split("x"))
    cli = [sys.executable, "-m", "vidrestore.cli"]
    if args.mode == "single":
        clip = make_long_clip(out / f"long-{width}x{height}-{args.minutes:g}min.mp4", args.minutes * 60, width, height)
        target = out / "restored.mp4"
        target.unlink(missing_ok=True)
        cmd = [*cli, str(clip), "-o", str(target), *PASSTHROUGH, *extra]
    else:
        from testkit.media import AudioSpec, face_clip_frames, write_video

        inputs = out / "inputs"
        inputs.mkdir(exist_ok=True)
        for i in range(args.files):
            path = inputs / f"tape{i:04d}.mp4"
            if not path.exists():
                write_video(path, face_clip_frames(int(args.seconds * 24), width, height, face_size=height // 2,
                                                   seed=i), fps=24, audio=AudioSpec(args.seconds))
        cmd = [*cli, "batch", str(inputs), "-o", str(out / "outputs"), *PASSTHROUGH, *extra]
    summary = watch(cmd, out, args.every)
    summary["size"] = f"{width}x{height}"
    if args.mode == "single":
        from vidrestore.io.probe import count_frames

        summary["frames_in"], summary["frames_out"] = count_frames(clip), count_frames(target) if target.exists() else 0
        summary["fps"] = round(summary["frames_out"] / summary["seconds"], 2)
    (out / "soak.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0 if summary["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
