"""Training throughput of every stage at real size: iterations/s, samples/s, peak GPU memory.

    python tools/train_benchmark.py [--steps 30] [--warmup 5] [--batch-size 4] [--precision bf16]
                                    [--stages vqgan,transformer,cft,dam,tgrn] [--weights-dir weights]
    torchrun --nproc_per_node=8 tools/train_benchmark.py ...   # data-parallel

Each stage runs its real config's full-size network from random weights on the smoke dataset
(made on first use; its images are 512², so the cost per step is the real one) with the
GAN on from the first step. Without ``--weights-dir`` holding the VGG-16 / ArcFace files the
perceptual and identity losses are the small random stand-ins, which is cheaper than the
real LPIPS-VGG and ArcFace: the table says which it was. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidrestore.training.config import load_stage_config  # noqa: E402
from vidrestore.training.stages import STAGES  # noqa: E402
from vidrestore.training.trainer import Trainer  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "training"
RUNS = {"vqgan": "vqgan", "transformer": "transformer", "id-transformer": "id_transformer", "cft": "cft",
        "ia-cft": "ia_cft", "dam": "dam", "tgrn": "tgrn"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps before timing (also the log window)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--stages", default=",".join(RUNS))
    parser.add_argument("--weights-dir", type=Path, help="real loss-network weights (else random stand-ins)")
    parser.add_argument("--data", type=Path, default=Path("runs/smoke-data"))
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as out:
        for run in args.stages.split(","):
            stem = RUNS[run]
            stage = STAGES[stem.replace("id_", "").replace("ia_", "")]
            identity = stem in ("id_transformer", "ia_cft")
            real = args.weights_dir is not None
            overrides = [
                f"name={run}", f"output_dir={out}", f"total_steps={args.warmup + args.steps}",
                f"log_every={max(1, args.warmup)}",
                "val_every=0", "save_every=0", "keep_checkpoints=1", f"precision={args.precision}",
                f"smoke={str(not real).lower()}", "init=null",
                f"data.root={args.data / ('persons' if identity else 'faces')}", f"data.batch_size={args.batch_size}",
                f"data.num_workers={args.workers}", "data.cache_images=true",
            ]
            if real:
                overrides.append(f"weights_dir={args.weights_dir}")
            if stem in ("transformer", "id_transformer", "cft", "ia_cft"):
                overrides.append("vqgan=null")
            if stem in ("vqgan", "cft", "ia_cft", "tgrn"):
                overrides.append("losses.disc_start=0")
            cfg = load_stage_config(stage.config_type, CONFIGS / f"{stem}.yaml", overrides)
            Trainer(stage, cfg, log=lambda line: None).run()
            if rank == 0:
                logs = [json.loads(line) for line in (Path(out) / run / "log.jsonl").read_text().splitlines()]
                steps = seconds = 0.0
                for before, entry in zip(logs, logs[1:]):  # every window after the warm-up one
                    window = entry["step"] - before["step"]
                    steps, seconds = steps + window, seconds + window / entry["it_per_s"]
                its = steps / seconds
                rows.append((run, its, its * logs[-1]["samples_per_s"] / logs[-1]["it_per_s"], logs[-1].get("max_mem_gib")))
    if rank == 0:
        losses = "real LPIPS-VGG / ArcFace" if args.weights_dir else "random stand-in loss networks"
        print(f"| stage | it/s | samples/s | peak GPU memory (GiB) |  ({args.precision}, batch {args.batch_size}"
              f"/process, {losses})")
        print("|---|---|---|---|")
        for run, its, sps, mem in rows:
            print(f"| {run} | {its:.2f} | {sps:.2f} | {'n/a' if mem is None else f'{mem:.1f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
