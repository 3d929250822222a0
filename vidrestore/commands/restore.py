"""``vidrestore INPUT -o OUTPUT``: restore the faces of one video, one image, or a folder of
images (``--aligned``: a folder of aligned faces)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from vidrestore.config import from_mapping, load_yaml, to_mapping
from vidrestore.errors import UsageError
from vidrestore.io.encoding import CODECS, default_codec
from vidrestore.io.trim import Trim, parse_time
from vidrestore.names import (
    DeinterlaceName,
    DetectorName,
    DeviceName,
    EngineName,
    FaceOpsName,
    MaskName,
    ModelName,
    PrecisionName,
    SmoothName,
    TemporalName,
    VerifierName,
    UpsamplerName,
    choices,
)
from vidrestore.settings import RestoreConfig


def add_restore_options(parser: argparse.ArgumentParser) -> None:
    """The options that shape a restoration (shared with ``bench`` and ``batch``).

    Every default is None so that only flags the user gave override a ``--config`` preset.
    """
    model = parser.add_argument_group("model")
    model.add_argument("--config", type=Path, help="a YAML preset (configs/inference/*.yaml)")
    model.add_argument("--model", choices=choices(ModelName), help="restoration network (default codeformer)")
    model.add_argument("--weights", type=Path, metavar="FILE",
                       help="load this checkpoint instead of the model's known weights")
    model.add_argument("--weights-dir", type=Path, metavar="DIR",
                       help="offline folder of weight files, searched before the cache")
    model.add_argument("--offline", action="store_true", default=None,
                       help="never download weights; fail with exit 4 if one is missing")
    model.add_argument("--fidelity", "-w", type=float, metavar="W",
                       help="0 best quality … 1 closest to the input (default 0.5)")
    model.add_argument("--reference", action="append", metavar="[NAME=]IMAGE",
                       help="a photo of a person: its identity conditions id-codeformer on the "
                            "tracks that match it (repeatable, one per person; NAME defaults to "
                            "the file name)")
    model.add_argument("--allow-untrained", action="store_true", default=None,
                       help="run a model whose own layers are untrained as its base model "
                            "(id-codeformer as codeformer, codeformer++ as its faithful output) "
                            "instead of stopping with exit code 4")
    model.add_argument("--temporal", choices=choices(TemporalName),
                       help="fuse each face's code choice over its track's neighbouring frames "
                            "(default on: removes flicker; off: every frame alone)")
    model.add_argument("--temporal-window", type=int, metavar="N",
                       help="frames in the centred window of --temporal (odd, default 5)")
    run = parser.add_argument_group("engine")
    run.add_argument("--device", choices=choices(DeviceName), help="default auto")
    run.add_argument("--precision", choices=choices(PrecisionName),
                     help="default auto: fp16 on CUDA, fp32 on CPU")
    run.add_argument("--engine", choices=choices(EngineName), help="restoration backend (default auto)")
    run.add_argument("--batch-size", type=int, metavar="N",
                     help="faces per network call (default: 1 on a CPU, 8 on a GPU)")
    run.add_argument("--face-ops", choices=choices(FaceOpsName),
                     help="where alignment and paste-back run: opencv (host), torch (the device; "
                          "default auto: torch on CUDA, opencv on a CPU)")
    faces = parser.add_argument_group("faces")
    faces.add_argument("--detector", choices=choices(DetectorName),
                       help="default auto: RetinaFace if its weights are present, else MTCNN")
    faces.add_argument("--detect-every", type=int, metavar="K",
                       help="detect every K frames and track in between (default 1)")
    faces.add_argument("--detect-scale", type=_detect_scale, metavar="F|auto",
                       help="resize frames by F before detection (default auto: videos whose "
                            "shorter side is under 480 px are upscaled to 480, others run as they are)")
    faces.add_argument("--verify", choices=choices(VerifierName),
                       help="second opinion on each detected face before it is restored "
                            "(default auto: dlib's CNN on the face's region; off: none)")
    faces.add_argument("--min-face", type=float, metavar="PX",
                       help="leave faces smaller than this untouched (default 20)")
    faces.add_argument("--smoothing", choices=choices(SmoothName),
                       help="temporal smoothing of face alignment (default gaussian)")
    paste = parser.add_argument_group("paste")
    paste.add_argument("--mask", choices=choices(MaskName),
                       help="paste-back mask (default auto: face parsing when its weights are present)")
    paste.add_argument("--paste-shape", choices=("square", "ellipse"),
                       help="the template mask's region: the whole crop (square, the official "
                            "helper's; default) or a face-shaped ellipse")
    paste.add_argument("--paste-erode", type=float, metavar="F",
                       help="pull the mask's edge in by F of the crop side (default 0.06)")
    paste.add_argument("--paste-blur", type=float, metavar="F",
                       help="feather the mask's edge by a Gaussian of sigma F of the crop side "
                            "(default 0.02)")
    faces.add_argument("--no-face-cache", dest="face_cache", action="store_false", default=None,
                       help="do not keep or reuse the face stage's results beside the output")
    source = parser.add_argument_group("source")
    source.add_argument("--deinterlace", choices=choices(DeinterlaceName),
                        help="auto (default): deinterlace interlaced video with bwdif; off: keep it "
                             "interlaced; bwdif / yadif: deinterlace every frame")
    source.add_argument("--field-rate", action="store_true", default=None,
                        help="one output frame per field when deinterlacing (50i -> 50p)")
    source.add_argument("--square-pixels", action="store_true", default=None,
                        help="resample non-square pixels (anamorphic video) to square ones; "
                             "otherwise the sample aspect ratio is kept")
    upscale = parser.add_argument_group("upscale")
    upscale.add_argument("--upscale", type=int, metavar="N",
                         help="enlarge the whole frame N times: 1 (default), 2 or 4; faces are pasted "
                              "at the enlarged size")
    upscale.add_argument("--bg-upsampler", choices=choices(UpsamplerName),
                         help="how the frame is enlarged: realesrgan (default; lanczos with a note when "
                              "offline without its weights), lanczos, or none (plain bicubic)")
    upscale.add_argument("--bg-weights", type=Path, metavar="FILE",
                         help="a Real-ESRGAN checkpoint instead of the official x2plus / x4plus")
    upscale.add_argument("--bg-tile", type=int, metavar="PX",
                         help="tile side Real-ESRGAN runs on (default 256; memory is one tile's)")
    out = parser.add_argument_group("output")
    out.add_argument("--codec", choices=CODECS + ("list",), action=_CodecAction,
                     help="video encoder (default libx264; libvpx-vp9 for .webm; NVENC falls back to "
                          "x264/x265 where it cannot open); `--codec list` shows what this machine has")
    out.add_argument("--crf", type=int, metavar="N", help="x264/x265/VP9/NVENC quality, lower is better (default 18)")
    out.add_argument("--preset", help="x264/x265 speed preset, mapped for VP9 and NVENC (default auto: "
                                      "medium on a CPU, by frame size on a GPU)")
    out.add_argument("--pix-fmt", help="force the output pixel format")
    out.add_argument("--overlay", action="store_true", default=None,
                     help="draw detected faces, landmarks and track ids (debugging)")


class _CodecAction(argparse.Action):
    """``--codec NAME``; ``--codec list`` prints every encoder, usable here or why not, and exits."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values == "list":
            from vidrestore.io.encoding import available_encoders, format_encoders

            print(format_encoders(available_encoders()))
            parser.exit(0)
        setattr(namespace, self.dest, values)


def config_from_args(args: argparse.Namespace) -> RestoreConfig:
    """Defaults, then the ``--config`` preset, then the flags the user gave."""
    base = load_yaml(RestoreConfig, args.config) if args.config else RestoreConfig()
    data = to_mapping(base)

    def put(section: dict, key: str, value) -> None:
        if value is not None:
            section[key] = str(value) if isinstance(value, Path) else value

    for key in ("model", "weights", "weights_dir", "fidelity", "device", "precision",
                "engine", "batch_size", "overlay", "face_cache", "face_ops", "allow_untrained"):
        put(data, key, getattr(args, key, None))
    if getattr(args, "reference", None):
        data["references"] = [parse_reference(text) for text in args.reference]
    if getattr(args, "offline", None):
        data["download"] = False
    for key, flag in (("codec", "codec"), ("crf", "crf"), ("preset", "preset"), ("pix_fmt", "pix_fmt")):
        put(data["encode"], key, getattr(args, flag, None))
    for key, flag in (("detector", "detector"), ("detect_every", "detect_every"),
                      ("detect_scale", "detect_scale"), ("min_face", "min_face")):
        put(data["faces"], key, getattr(args, flag, None))
    for key, flag in (("mask", "mask"), ("shape", "paste_shape"), ("erode", "paste_erode"),
                      ("blur", "paste_blur")):
        put(data["paste"], key, getattr(args, flag, None))
    put(data["faces"]["smooth"], "method", getattr(args, "smoothing", None))
    put(data["temporal"], "mode", getattr(args, "temporal", None))
    put(data["temporal"], "window", getattr(args, "temporal_window", None))
    put(data["faces"]["verify"], "method", getattr(args, "verify", None))
    for key, flag in (("deinterlace", "deinterlace"), ("field_rate", "field_rate"),
                      ("square_pixels", "square_pixels")):
        put(data["decode"], key, getattr(args, flag, None))
    for key, flag in (("factor", "upscale"), ("upsampler", "bg_upsampler"), ("weights", "bg_weights"),
                      ("tile", "bg_tile")):
        put(data["upscale"], key, getattr(args, flag, None))
    return from_mapping(RestoreConfig, data)


def _detect_scale(text: str) -> float | str:
    """``--detect-scale``'s value: ``auto`` or a number."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None


def trim_from_args(args: argparse.Namespace) -> Trim:
    """``--start`` / ``--end`` (seconds or [hh:]mm:ss[.ms]) as a ``Trim``."""
    start = parse_time(args.start, option="--start") if getattr(args, "start", None) is not None else None
    end = parse_time(args.end, option="--end") if getattr(args, "end", None) is not None else None
    return Trim(start, end)


def parse_reference(text: str) -> dict[str, str]:
    """``NAME=IMAGE`` or ``IMAGE`` (named after the file's stem, ``=`` made ``-``) →
    ``{"name", "path"}``.

    An ``=`` is taken as the separator only when what precedes it is a bare name (no path
    separator) and the whole text is not an existing file.
    """
    name, sep, path = text.partition("=")
    if sep and name and "/" not in name and "\\" not in name and not Path(text).is_file():
        if not path:
            raise UsageError(f"--reference {text!r}: no image after {name}=")
        return {"name": name, "path": path}
    return {"name": (Path(text).stem or text).replace("=", "-"), "path": text}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path,
                        help="the video, image, or folder of images to restore")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="where to write the result (a folder for a folder of images)")
    parser.add_argument("--aligned", action="store_true",
                        help="the images are aligned 512² faces (CelebA-Test protocol): restore "
                             "each whole, no detection or paste-back")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or notes")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="write the face tracks and per-frame face counts as JSON")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--start", metavar="T",
                        help="restore from this time: seconds or [hh:]mm:ss[.ms] (audio and subtitles cut too)")
    parser.add_argument("--end", metavar="T", help="restore up to this time (same forms as --start)")
    add_restore_options(parser)


def run(args: argparse.Namespace) -> int:
    from vidrestore.io.image import is_image_path

    if args.input.is_dir() or is_image_path(args.input):
        return _run_images(args)
    if args.aligned:
        raise UsageError("--aligned applies to images and folders of images, not videos")
    from vidrestore.restore_video import restore_video

    config = config_from_args(args)
    trim = trim_from_args(args)
    codec = default_codec(args.output)
    if args.codec is None and config.encode.codec == "libx264" and codec != "libx264":
        config = dataclasses.replace(config, encode=dataclasses.replace(config.encode, codec=codec))
    if args.input.resolve() == args.output.resolve():
        raise UsageError("the output must not be the input file")
    show = not args.quiet

    def log(line: str) -> None:
        if show:
            print(f"vidrestore: {line}", file=sys.stderr)

    summary = restore_video(
        args.input, args.output, config,
        overwrite=args.overwrite,
        report_path=args.report,
        progress=show and sys.stderr.isatty(),
        log=log,
        max_frames=args.max_frames,
        trim=trim,
    )
    if show:
        print(f"vidrestore: {summary.line()} -> {args.output}", file=sys.stderr)
    return 0


VIDEO_ONLY = (("--max-frames", "max_frames"), ("--start", "start"), ("--end", "end"),
              ("--temporal", "temporal"), ("--temporal-window", "temporal_window"),
              ("--detect-every", "detect_every"), ("--smoothing", "smoothing"),
              ("--no-face-cache", "face_cache"), ("--deinterlace", "deinterlace"),
              ("--field-rate", "field_rate"), ("--square-pixels", "square_pixels"), ("--codec", "codec"),
              ("--crf", "crf"), ("--preset", "preset"), ("--pix-fmt", "pix_fmt"))
"""Options (and their argparse names) that only a video has a use for: given with an image
or a folder of images they are refused, not silently ignored."""


def _run_images(args: argparse.Namespace) -> int:
    from vidrestore.restore_images import restore_images

    given = [option for option, dest in VIDEO_ONLY if getattr(args, dest, None) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to videos, not images")
    if args.aligned and args.upscale is not None and args.upscale != 1:
        raise UsageError("--upscale applies to whole images and videos, not --aligned faces")
    if args.input.resolve() == args.output.resolve():
        raise UsageError("the output must not be the input")
    config = config_from_args(args)
    show = not args.quiet

    def log(line: str) -> None:
        if show:
            print(f"vidrestore: {line}", file=sys.stderr)

    summary = restore_images(args.input, args.output, config, aligned=args.aligned,
                             overwrite=args.overwrite, report_path=args.report, log=log)
    if show:
        print(f"vidrestore: {summary.frames} image(s), {summary.faces} faces restored in "
              f"{summary.seconds:.1f} s -> {args.output}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "add_restore_options", "config_from_args", "parse_reference", "run", "trim_from_args"]
