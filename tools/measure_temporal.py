"""Temporal fusion measured: the face region's frame-to-frame change with and without
``--temporal``, at several fidelity weights, and what it costs per frame.

Clips (made once under OUT/clips): scikit-image's astronaut, a real face 400 px wide in a
640×480 frame over a textured background (``testkit.media.face_clip_frames``), ``still`` or
``moving`` (panning 64 px over the clip), 12 frames at 24 fps, lossless; each degraded by
``vidrestore degrade --preset vfhq --seed 0`` (blur, noise, ×4 downsampling, x264 at the
clip's CRF), the same pair for every run.

One run = one clip × w × temporal mode: ``restore_video`` of the degraded clip with the given
weights and engine, then ``evaluate_videos(..., faces=True)`` against the clean clip. Each run
appends one JSON line to OUT/results.jsonl: the face-region and whole-frame warping errors,
PSNR, the restore stage's busy seconds per frame and the process's CPU seconds per frame (CPU
time is what a loaded machine distorts least; engine building excluded: artifacts are cached in
$VIDRESTORE_ENGINE_DIR, build them first with ``vidrestore engines build``).

    python tools/measure_temporal.py --out DIR --weights W.pth --clip still --w 0 --temporal on
    python tools/measure_temporal.py --out DIR --table        # the markdown table of every run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIPS = {"still": ((0.5, 0.5),), "moving": ((0.45, 0.5), (0.55, 0.5))}


def make_clip(out: Path, clip: str, frames: int) -> tuple[Path, Path]:
    """The clean clip and its degraded version (made once)."""
    from testkit.media import face_clip_frames, write_video
    from vidrestore.degrade_video import degrade_video

    folder = out / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    gt, lq = folder / f"{clip}_{frames}_gt.mkv", folder / f"{clip}_{frames}_lq.mkv"
    if not gt.exists():
        write_video(gt, face_clip_frames(frames, 640, 480, face_size=400, path=CLIPS[clip]), fps=24,
                    codec="ffv1", pix_fmt="yuv420p")
    if not lq.exists():
        print(degrade_video(gt, lq, preset="vfhq", seed=0).line(), file=sys.stderr)
    return gt, lq


def run_one(args) -> dict:
    from vidrestore.config import from_mapping, to_mapping
    from vidrestore.evaluation import evaluate_videos
    from vidrestore.restore_video import restore_video
    from vidrestore.settings import RestoreConfig
    from vidrestore.weights import WeightStore

    gt, lq = make_clip(args.out, args.clip, args.frames)
    data = to_mapping(RestoreConfig())
    data.update(weights=str(args.weights), fidelity=args.w, engine=args.engine, download=False, face_cache=False)
    data["temporal"].update(mode=args.temporal, window=args.window)
    data["encode"]["codec"] = "ffv1"  # lossless: the evaluation sees the restoration, not an encoder
    config = from_mapping(RestoreConfig, data)
    restored = args.out / "runs" / f"{args.clip}_w{args.w:g}_{args.temporal}{args.window}.mkv"
    restored.parent.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    summary = restore_video(lq, restored, config, overwrite=True, log=lambda line: print(line, file=sys.stderr))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    store = WeightStore(None, allow_download=False)
    scores = evaluate_videos(restored, gt, store, faces=True)
    input_file = args.out / "clips" / f"{args.clip}_{args.frames}_input.json"
    if not input_file.exists():
        input_file.write_text(json.dumps(evaluate_videos(lq, gt, store, faces=True).means))
    inputs = json.loads(input_file.read_text())
    row = {
        "clip": args.clip, "w": args.w, "temporal": args.temporal, "window": args.window, "engine": args.engine,
        "frames": summary.frames, "faces": summary.faces,
        "restore_s_per_frame": summary.stage_seconds.get("restore", 0.0) / max(summary.frames, 1),
        "run_s_per_frame": summary.seconds / max(summary.frames, 1), "wall_s": wall,
        "cpu_s_per_frame": cpu / max(summary.frames, 1),
        "warp_error_faces": scores.means.get("warp_error_faces"), "warp_error": scores.means.get("warp_error"),
        "psnr": scores.means.get("psnr"), "input_warp_error_faces": inputs.get("warp_error_faces"),
        "restored": str(restored),
    }
    with (args.out / "results.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def table(out: Path) -> str:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    latest = {}
    for r in rows:  # the last run of each setting counts
        latest[(r["clip"], r["w"], r["temporal"], r["window"])] = r
    lines = ["| clip | w | face warping error: off | on | change | whole frame: off | on | restore s/frame: off | on | cost |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (clip, w, mode, window), on in sorted(latest.items()):
        if mode != "on":
            continue
        off = next((r for (c, ww, m, _), r in latest.items() if c == clip and ww == w and m == "off"), None)
        if off is None:
            continue
        change = on["warp_error_faces"] / off["warp_error_faces"] - 1
        cost = on["restore_s_per_frame"] / off["restore_s_per_frame"] - 1
        lines.append(f"| {clip} (window {window}) | {w:g} | {off['warp_error_faces']:.5f} | {on['warp_error_faces']:.5f} | "
                     f"{change:+.0%} | {off['warp_error']:.5f} | {on['warp_error']:.5f} | "
                     f"{off['restore_s_per_frame']:.2f} | {on['restore_s_per_frame']:.2f} | {cost:+.1%} |")
    inputs = {r["clip"]: r["input_warp_error_faces"] for r in rows}
    lines.append("")
    lines.append("degraded input's own face warping error: " + ", ".join(f"{c} {v:.5f}" for c, v in sorted(inputs.items())))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", type=Path, help="the CodeFormer checkpoint (official format)")
    parser.add_argument("--clip", choices=sorted(CLIPS), default="still")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--w", type=float, default=0.0)
    parser.add_argument("--temporal", choices=("on", "off"), default="on")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--engine", default="onnxruntime")
    parser.add_argument("--table", action="store_true", help="print the table of the runs so far")
    args = parser.parse_args()
    if args.table:
        print(table(args.out))
        return 0
    if args.weights is None:
        parser.error("--weights is required for a run")
    print(json.dumps(run_one(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
