"""Pure builders for encoder settings: which pixel format, which options.

Kept free of I/O so they are tested by equality.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Literal

import av

from vidrestore.errors import UsageError

Codec = Literal["libx264", "libx265", "libvpx-vp9", "prores_ks", "ffv1", "h264_nvenc", "hevc_nvenc"]
CODECS: tuple[str, ...] = ("libx264", "libx265", "libvpx-vp9", "prores_ks", "ffv1", "h264_nvenc", "hevc_nvenc")
NVENC: dict[str, str] = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265"}
"""NVIDIA's hardware encoders, and the software encoder of the same format each falls back to
where it cannot be opened (no NVENC in this PyAV's FFmpeg, no NVIDIA driver or GPU)."""
_CRF_MAX = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63, "h264_nvenc": 51, "hevc_nvenc": 51}
# x264 preset names → libvpx-vp9 ``cpu-used`` (its "good" deadline: 0 slowest … 5 fastest).
_VP9_SPEED = {"ultrafast": 5, "superfast": 5, "veryfast": 5, "faster": 4, "fast": 4, "medium": 3,
              "slow": 2, "slower": 1, "veryslow": 0, "placebo": 0}


# Containers each encoder's output may keep (the input's extension, if listed), and the one
# it gets otherwise: FFV1 is archived in Matroska, ProRes lives in QuickTime.
_KEEPS: dict[str, frozenset[str]] = {
    "libx264": frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".flv", ".3gp"}),
    "libx265": frozenset({".mp4", ".mov", ".mkv"}),
    "libvpx-vp9": frozenset({".webm", ".mkv", ".mp4"}),
    "prores_ks": frozenset({".mov", ".mkv"}),
    "ffv1": frozenset({".mkv"}),
}
_KEEPS.update({hw: _KEEPS[sw] for hw, sw in NVENC.items()})
_FALLBACK: dict[str, str] = {"libx264": ".mkv", "libx265": ".mkv", "libvpx-vp9": ".webm", "prores_ks": ".mov",
                             "ffv1": ".mkv", "h264_nvenc": ".mkv", "hevc_nvenc": ".mkv"}


def output_suffix(suffix: str, codec: str) -> str:
    """The output's extension: the input's, unless ``codec`` does not belong in it."""
    return suffix if suffix.lower() in _KEEPS[codec] else _FALLBACK[codec]


def default_codec(output: str | Path) -> str:
    """The encoder used when none is asked for: x264, or VP9 for WebM (which takes no H.264)."""
    return "libvpx-vp9" if Path(output).suffix.lower() == ".webm" else "libx264"


@dataclass(frozen=True)
class EncodeSettings:
    """How the output video is encoded.

    Attributes:
        codec: ``libx264`` (default), ``libx265``, ``libvpx-vp9`` (WebM), ``prores_ks``
            (mezzanine), ``ffv1`` (lossless), or NVIDIA's ``h264_nvenc`` / ``hevc_nvenc``
            (where they cannot open, the writer falls back to x264 / x265 and says so).
        crf: constant rate factor for x264/x265/VP9 (lower is better; 18 is visually
            lossless for x264; VP9's scale runs to 63; NVENC's constant quality ``cq``).
        preset: x264/x265 speed preset (mapped onto VP9's ``cpu-used`` and NVENC's p1–p7);
            ``auto`` (default): ``medium`` on a CPU run, by frame size on a GPU run
            (``resolve_preset``).
        prores_profile: 0 proxy … 3 HQ, 4 4444.
        pix_fmt: force an output pixel format; None follows the input where the codec allows.
        threads: encoder threads (0: FFmpeg chooses).
    """

    codec: str = "libx264"
    crf: int = 18
    preset: str = "auto"
    prores_profile: int = 3
    pix_fmt: str | None = None
    threads: int = 0

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise UsageError(f"unknown codec {self.codec!r}; choose one of {', '.join(CODECS)}")
        top = _CRF_MAX.get(self.codec, 51)
        if not 0 <= self.crf <= top:
            raise UsageError(f"--crf must be within 0..{top}, got {self.crf}")


_MATROSKA = frozenset({".mkv", ".webm", ".mka", ".mk3d"})
_SAR_IN_BITSTREAM = frozenset({"libx264", "libx265", "h264_nvenc", "hevc_nvenc", "ffv1"})
"""Encoders whose bitstream records the pixel shape (H.264 / H.265 VUI, FFV1 slice headers)."""


def aspect_problem(output: str | Path, codec: str, sample_aspect_ratio) -> str | None:
    """Why ``output`` cannot keep non-square pixels with ``codec``, or None.

    MP4 and MOV record the sample aspect ratio in the container (``pasp``). FFmpeg's Matroska
    muxer writes its display size only from a stream field PyAV does not expose, so in
    Matroska / WebM the pixel shape survives only in bitstreams that record it.
    """
    if not sample_aspect_ratio or sample_aspect_ratio == 1:
        return None
    if Path(output).suffix.lower() in _MATROSKA and codec not in _SAR_IN_BITSTREAM:
        return (f"{Path(output).suffix} with {codec} cannot record the input's pixel shape "
                f"({sample_aspect_ratio}): the picture would play squeezed; write .mov / .mp4, use "
                "--codec libx264 / libx265 / ffv1, or --square-pixels")
    return None


LIMITED_RANGE_ONLY = frozenset({"prores_ks"})
"""Encoders whose bitstream cannot say "full range": decoders read them as limited range."""


def encoder_options(settings: EncodeSettings) -> dict[str, str]:
    """FFmpeg private options for the encoder."""
    if settings.preset == "auto":
        raise ValueError("resolve the preset first (resolve_preset)")
    if settings.codec == "libx264":
        return {"crf": str(settings.crf), "preset": settings.preset}
    if settings.codec == "libx265":
        return {
            "crf": str(settings.crf),
            "preset": settings.preset,
            "x265-params": "log-level=error",
        }
    if settings.codec == "libvpx-vp9":
        return {"crf": str(settings.crf), "b": "0", "deadline": "good", "row-mt": "1",
                "cpu-used": str(_VP9_SPEED.get(settings.preset, 3))}
    if settings.codec == "prores_ks":
        return {"profile": str(settings.prores_profile), "vendor": "apl0"}
    if settings.codec == "ffv1":
        return {"level": "3", "slicecrc": "1", "context": "1", "g": "1"}
    if settings.codec in NVENC:
        # Constant quality (``cq``, NVENC's counterpart of a CRF; 0 would mean "automatic").
        return {"preset": _NVENC_PRESET.get(settings.preset, "p4"), "tune": "hq", "rc": "vbr",
                "cq": str(max(1, settings.crf)), "b": "0"}
    return {}


# x264 preset names → NVENC's p1 (fastest) … p7 (slowest); its default is p4.
_NVENC_PRESET = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}


AUTO_PRESETS: tuple[tuple[int, str], ...] = ((960 * 544, "faster"),)
"""``--preset auto`` on a GPU run, for x264 / x265 (and NVENC's p-levels): the preset of the
first row whose pixel count the frame does not exceed, else ``veryfast``. A GPU restores
frames faster than x264 encodes them at its default preset: on grainy 1080p footage x264
measured ~1 frame/s per core at ``medium`` and 2.6 at ``veryfast``, while ``superfast`` was
barely faster and ``ultrafast`` twice as fast for 2.5–4× the bytes (docs/benchmarks.md,
"Encoding"). On a CPU run the network is the bottleneck by far and ``auto`` is x264's
default, ``medium``."""


def resolve_preset(codec: str, preset: str, width: int, height: int, *, gpu: bool = False) -> str:
    """``preset``, or for ``auto``: ``medium`` on a CPU run, the ``AUTO_PRESETS`` row of this
    frame size on a GPU run."""
    if preset != "auto":
        return preset
    if not gpu:
        return "medium"
    pixels = width * height
    return next((name for limit, name in AUTO_PRESETS if pixels <= limit), "veryfast")


def encoder_threading(codec: str, width: int, height: int, cpus: int) -> tuple[str, int]:
    """``(thread_type, thread_count)`` for the encoder's codec context.

    x264 and x265 get frame threads (``FRAME``): PyAV opens encoders with ``SLICE``, which
    FFmpeg's libx264 wrapper turns into x264's sliced threads (lower latency, lower
    efficiency). The count follows the frame height: at most one thread per two macroblock
    rows (a frame thread waits for its reference frame's rows within the motion search
    range, so more threads on a short frame only wait), and at most the CPU count. Other
    encoders keep PyAV's slice threads and FFmpeg's count.
    """
    if codec not in ("libx264", "libx265"):
        return "SLICE", 0
    rows = -(-height // 16)
    return "FRAME", max(1, min(cpus, rows // 2))


@functools.lru_cache(maxsize=None)
def encoder_unavailable(codec: str) -> str | None:
    """None if ``codec`` can encode here, else why not (one line). Software encoders need only
    to be in this PyAV's FFmpeg; a hardware encoder (NVENC) must also open a small session,
    which needs an NVIDIA driver and GPU (probed once per process)."""
    try:
        av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        return f"this PyAV's FFmpeg has no {codec} encoder"
    if codec not in NVENC:
        return None
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return (f"{codec} is in this PyAV's FFmpeg but cannot open: it needs an NVIDIA GPU with NVENC "
                f"and its driver (FFmpeg said: {_reason(exc)})")
    return None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def available_encoders() -> dict[str, str | None]:
    """Every encoder ``--codec`` knows → None where it can encode here, else why not."""
    return {codec: encoder_unavailable(codec) for codec in CODECS}


def resolve_codec(settings: "EncodeSettings", log: Callable[[str], None] = lambda line: None) -> "EncodeSettings":
    """``settings`` with an NVENC encoder that cannot open here replaced by its software twin
    (``NVENC``), saying so in ``log``; anything else as it is."""
    reason = encoder_unavailable(settings.codec) if settings.codec in NVENC else None
    if reason is None:
        return settings
    twin = NVENC[settings.codec]
    log(f"encoder: {reason}; encoding with {twin} instead (`--codec list` shows what this machine has)")
    return dataclasses.replace(settings, codec=twin)


def format_encoders(available: dict[str, str | None]) -> str:
    """The ``--codec list`` table: one line per encoder, usable or why not."""
    width = max(map(len, available))
    return "\n".join(f"{codec:{width}s}  {'available' if why is None else 'not available: ' + why}"
                     for codec, why in available.items())


def _format(name: str) -> av.VideoFormat | None:
    """The pixel format ``name``, or None for one that is unknown or holds no pixels here
    (a hardware surface such as NVENC's ``cuda``)."""
    try:
        fmt = av.VideoFormat(name, 64, 64)
    except (ValueError, av.error.FFmpegError):
        return None
    return fmt if fmt.components else None


def _shape(name: str) -> tuple[str, int, int, int, bool]:
    """(family, bit depth, chroma log2 w, chroma log2 h, alpha) of a pixel format."""
    fmt = _format(name)
    if fmt is None:
        return ("yuv", 8, 1, 1, False)
    comps = fmt.components
    depth = max(c.bits for c in comps)
    alpha = any(c.is_alpha for c in comps)
    if fmt.is_rgb or fmt.has_palette:
        return ("rgb", depth, 0, 0, alpha)
    colour = [c for c in comps if not c.is_alpha]
    if len(colour) < 3:
        return ("gray", depth, 0, 0, alpha)
    w = (64 // max(colour[1].width, 1)).bit_length() - 1
    h = (64 // max(colour[1].height, 1)).bit_length() - 1
    return ("yuv", depth, w, h, alpha)


_NVENC_FORMATS = ("yuv420p", "nv12", "yuv444p", "p010le", "yuv444p16le")


def choose_pix_fmt(codec: str, source: str, width: int, height: int, forced: str | None = None) -> str:
    """The encoder pixel format closest to ``source`` that ``codec`` accepts at this size.

    Keeps the bit depth and chroma subsampling where possible (``yuvj*`` maps to ``yuv*``;
    the full range is kept as a tag). Odd sizes with subsampled chroma move to 4:4:4 for the
    codecs that refuse them (x264/x265), so every pixel row and column survives.
    """
    supported = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    if forced:
        if forced not in supported:
            raise UsageError(f"{codec} cannot encode pixel format {forced}; it takes {', '.join(supported)}")
        return forced
    source = source.replace("yuvj", "yuv")
    family, depth, cw, ch, _ = _shape(source)
    odd = width % 2 or height % 2
    strict_even = codec in ("libx264", "libx265")

    def score(name: str) -> tuple:
        fam, d, w, h, alpha = _shape(name)
        if odd and strict_even and (w or h):
            return (9,)  # the codec refuses this size with subsampled chroma
        return (
            0 if fam == family else (1 if family in ("gray", "rgb") and fam == "yuv" else 2),
            0 if d >= depth else 1,  # never lose bit depth where avoidable
            abs(d - depth),
            0 if (w, h) == (cw, ch) else (1 if (w, h) < (cw, ch) else 2),  # prefer more chroma
            abs(w - cw) + abs(h - ch),
            alpha,
        )

    if codec in NVENC:  # the formats every NVENC generation takes; H.264 NVENC encodes 8 bits only
        usable = _NVENC_FORMATS[:3] if codec == "h264_nvenc" else _NVENC_FORMATS
        candidates = [n for n in supported if n in usable]
    else:
        candidates = [n for n in supported if _format(n) is not None and not n.startswith(("nv", "p0", "p2", "p4"))]
    if family == "rgb":  # RGB sources go to full-chroma YUV where the codec has no RGB
        cw = ch = 0
    if source in candidates and score(source)[0] != 9:
        return source
    best = min(candidates, key=score)
    if score(best)[0] == 9:
        raise UsageError(f"{codec} cannot encode a {width}×{height} video; use --codec ffv1 or prores_ks")
    return best
