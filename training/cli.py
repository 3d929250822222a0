"""Command line of the trainer.

    python -m training STAGE --config configs/training/STAGE.yaml [--set key=value ...]
                             [--resume auto|STATE] [--stop-at STEP]
    python -m training prepare --input RAW --output FACES [--size 512] [--detector auto]
                               [--identities identity_CelebA.txt [--exclude TEST_LIST]]
    python -m training evaluate --restored DIR --gt DIR [--weights-dir DIR] [--json FILE]
    python -m training smoke-data --output DIR

STAGE is one of ``vqgan``, ``transformer``, ``cft``, ``dam``, ``tgrn``. Errors print one
line and exit with ``vidrestore``'s codes (2 usage, 3 input, 4 weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidrestore.cli import ArgumentParser, run_guarded
from vidrestore.names import DetectorName, choices


def _parser() -> ArgumentParser:
    from .stages import STAGES

    parser = ArgumentParser(prog="python -m training", description="Train CodeFormer, ID-CodeFormer, CodeFormer++.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, stage in STAGES.items():
        p = sub.add_parser(name, help=(stage.__module__ and sys.modules[stage.__module__].__doc__ or "").splitlines()[0])
        p.add_argument("--config", type=Path, help="YAML config (default: the stage's built-in defaults)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (dotted, YAML value); repeatable")
        p.add_argument("--resume", help="a state_*.pt file, or 'auto' for the newest in the run folder")
        p.add_argument("--stop-at", type=int, help="stop (and save a resume state) at this step")
    p = sub.add_parser("prepare", help="align raw photos into a folder of 512² FFHQ-aligned faces")
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--detector", default="auto", choices=choices(DetectorName))
    p.add_argument("--min-face", type=float, default=64.0, help="skip faces smaller than this (pixels)")
    p.add_argument("--all-faces", action="store_true", help="keep every face, not only the best")
    p.add_argument("--identities", type=Path, metavar="LABELS",
                   help="an identity label file ('<image name> <identity id>' per line, CelebA's "
                        "identity_CelebA.txt): write the identity layout OUTPUT/<identity>/<image>.png")
    p.add_argument("--exclude", type=Path, metavar="TEST_LIST",
                   help="with --identities: leave out the identities of these images (or ids), one per line")
    p.add_argument("--weights-dir", type=Path)
    p = sub.add_parser("evaluate", help="PSNR / SSIM / LPIPS / IDS / LMD of restored faces vs ground truth")
    p.add_argument("--restored", type=Path, required=True)
    p.add_argument("--gt", type=Path, required=True)
    p.add_argument("--weights-dir", type=Path)
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"))
    p.add_argument("--detector", default="auto", choices=choices(DetectorName))
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="also write the results (means and per image) here")
    p = sub.add_parser("smoke-data", help="write the tiny generated smoke dataset")
    p.add_argument("--output", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_guarded(lambda: _run(_parser().parse_args(argv)), "")


def _run(args: argparse.Namespace) -> int:
    from vidrestore.weights import WeightStore

    if args.command == "prepare":
        from vidrestore.training.data.prepare import prepare_folder, prepare_identities

        from vidrestore.errors import UsageError
        from vidrestore.faces.detect import build_detector

        if args.exclude and not args.identities:
            raise UsageError("--exclude needs --identities (the labels that name each image's person)")
        if args.identities and args.all_faces:
            raise UsageError("--identities keeps one face per labelled image; leave out --all-faces")
        store = WeightStore(args.weights_dir, allow_download=False)
        detector = build_detector(args.detector, store)
        print(f"detector: {detector.name}")
        if args.identities:
            report = prepare_identities(args.input, args.output, detector, args.identities,
                                        test_list=args.exclude, size=args.size, min_face=args.min_face, log=print)
        else:
            report = prepare_folder(args.input, args.output, detector, size=args.size, min_face=args.min_face,
                                    all_faces=args.all_faces, log=print)
        print(report.line())
        return 0
    if args.command == "evaluate":
        from .evaluate import evaluate_folders

        result = evaluate_folders(args.restored, args.gt, WeightStore(args.weights_dir, allow_download=False),
                                  lpips_net=args.lpips_net, detector=args.detector, device=args.device)
        print("\n".join(result.lines()))
        if args.json:
            args.json.write_text(json.dumps({
                "count": result.count, "means": result.means, "unavailable": result.unavailable,
                "names": result.names, "per_image": result.per_image, "lmd_missed": result.lmd_missed,
            }, indent=1))
        return 0
    if args.command == "smoke-data":
        from vidrestore.training.data.smoke import make_smoke_dataset

        print(make_smoke_dataset(args.output, log=print))
        return 0
    from .config import load_stage_config
    from .stages import STAGES
    from .trainer import Trainer

    stage = STAGES[args.command]
    config = load_stage_config(stage.config_type, args.config, args.overrides)
    result = Trainer(stage, config).run(resume=args.resume, stop_at=args.stop_at)
    print(f"stopped at step {result.step}" + (f"; weights {result.final_weights}" if result.final_weights else ""))
    return 0
