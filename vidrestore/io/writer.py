"""Streaming encode: frames in, a video out with the input's timing, tags and side streams.

Every frame keeps its own pts (so variable frame rate survives), the stream keeps the input's
time base, rotation matrix, colour tags, sample aspect ratio (so an anamorphic picture keeps
its display aspect ratio: in the container for MP4 / MOV, in the bitstream for H.264 / H.265
and FFV1 — ``encoding.aspect_problem`` refuses the pairs that would lose it), field order and
metadata, and audio / subtitles are carried over by ``SideStreams``. The container follows
the output file's extension.

An interlaced output (``--deinterlace off`` on an interlaced source) is coded as interlaced
where the codec can (x264: interlaced DCT and motion estimation; x264 and ProRes take the
field order from each frame's flags, set by libavfilter's ``setfield``); other codecs keep
the field order as a tag on the woven frames. A restored segment (``rebase``) starts at 0:
every timestamp moves back by the first frame's, audio and subtitles by the same instant.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av

from vidrestore.errors import InputError, OutputError, UsageError, VidrestoreError

from .atomic import disk_failure
from .colour import ColourModel, patch_regions
from .encoding import (
    LIMITED_RANGE_ONLY,
    EncodeSettings,
    aspect_problem,
    choose_pix_fmt,
    encoder_options,
    encoder_threading,
    resolve_codec,
    resolve_preset,
)
from .filters import FrameFilter, frame_filter
from .frame import Frame
from .interlace import FIELD_ORDER_CODES, display_order
from .probe import VideoInfo, open_input, video_stream
from .reader import stored, stored_box
from .side_streams import SideStreams

# Encoder → the codec name containers list in ``supported_codecs``.
_CODEC_ID = {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9", "prores_ks": "prores", "ffv1": "ffv1",
             "h264_nvenc": "h264", "hevc_nvenc": "hevc"}
_FIELD_CODED = frozenset({"libx264", "prores_ks"})
"""Encoders that code interlaced frames as fields, taking the order from each frame's flags."""
_SKIPPED_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}


SANE_RATES = (Fraction(1, 3600), Fraction(10_000))
"""Frame rates the encoder is told (one frame an hour to 10,000 frames/s); a damaged header's
rate outside them (0, 1/2147483647, 90000...) makes muxers fail, so it is not passed on."""

FALLBACK_RATE = Fraction(24)

_VARIABLE_FPS = 0x0400
"""``AVFMT_VARIABLE_FPS`` (libavformat/avformat.h): the container takes any timestamps."""

MAX_SECONDS = 1e6
"""A video whose frames reach past this (11.6 days) has timestamps a damaged header made up."""


def nominal_rate(info: VideoInfo) -> Fraction:
    """The rate the encoder is told: the input's if sane, else its time base's if sane, else
    24. Frames keep their own timestamps whatever this is (it guides rate control)."""
    for rate in (info.rate, 1 / info.time_base if info.time_base else None):
        if rate is not None and SANE_RATES[0] <= rate <= SANE_RATES[1]:
            return Fraction(rate)
    return FALLBACK_RATE


class VideoWriter:
    """Encodes upright RGB frames into ``path``, mirroring the input's properties.

    Args:
        path: where to write (the caller handles atomic renaming).
        info: the probed input (size, rotation, time base, tags).
        colour: the colour model the frames were decoded with.
        settings: codec and quality.
        source: the input file, whose audio / subtitles are carried over (None: video only).
        log: receives notes (streams re-encoded or left out, the encoder's choices).
        gpu: the frames come from a GPU run: ``--preset auto`` picks a preset fast enough for
            the frame size (``encoding.resolve_preset``).
        rebase: the frames are a segment (``--start``): the output starts at time 0, its
            side streams from the same instant of the source.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        colour: ColourModel,
        settings: EncodeSettings,
        *,
        source: str | Path | None = None,
        log: Callable[[str], None] = lambda line: None,
        gpu: bool = False,
        rebase: bool = False,
    ) -> None:
        self.path = Path(path)
        self.rebase = rebase
        self._origin: tuple[int, float] | None = None  # (pts, seconds) of the first frame, rebasing
        self._flags: FrameFilter | None = None
        self._field_flag = display_order(info.field_order)
        sar = info.sample_aspect_ratio
        self._frame_chain = ([("setsar", f"{sar.numerator}/{sar.denominator}")] if sar and sar != 1 else []) + (
            [("setfield", self._field_flag)] if self._field_flag else [])
        settings = resolve_codec(settings, log)
        preset = resolve_preset(settings.codec, settings.preset, info.width, info.height, gpu=gpu)
        if preset != settings.preset:
            if gpu:
                log(f"encoder: {settings.codec} preset {preset} (auto, for {info.width}×{info.height} on a GPU run)")
            settings = dataclasses.replace(settings, preset=preset)
        self.info = info
        self.colour = colour
        # What the output is written with: the input's model, in limited range where the
        # codec cannot signal full range.
        self.out_colour = (dataclasses.replace(colour, full_range=False)
                           if settings.codec in LIMITED_RANGE_ONLY else colour)
        self.settings = settings
        self.frames_written = 0
        self._last_pts: int | None = None
        self._side: SideStreams | None = None
        rate = nominal_rate(info)
        self._frame_duration = float(1 / rate)
        self.end_time: float | None = None
        """Where the video written so far ends: the last frame's time plus one frame."""
        try:
            self.container = av.open(str(self.path), "w")
        except ValueError:
            suffix = f"the extension {self.path.suffix!r}" if self.path.suffix else "an output name without an extension"
            raise UsageError(f"cannot tell the container format from {suffix}; "
                             "use an extension such as .mp4, .mkv, .mov or .webm") from None
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from None
        try:
            self._setup(source, log)
        except BaseException:
            self.abort()
            raise

    def _setup(self, source, log) -> None:
        info, settings, container = self.info, self.settings, self.container
        fmt = container.format.name
        if _CODEC_ID[settings.codec] not in container.supported_codecs:
            raise UsageError(f"the {fmt} container cannot hold {settings.codec}; "
                             "use .mkv (any codec) or .mov (ProRes)")
        if (problem := aspect_problem(self.path, settings.codec, info.sample_aspect_ratio)) is not None:
            raise UsageError(problem)
        rate = nominal_rate(info)
        stream = container.add_stream(settings.codec, rate=rate, options=encoder_options(settings))
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = choose_pix_fmt(settings.codec, info.pix_fmt, info.width, info.height,
                                        settings.pix_fmt)
        # A container without variable frame rates (AVI) counts frames at a constant rate:
        # its time base is one frame (an input's 1/1000 or 1/1200000 would make it pad every
        # tick with empty frames, or fail); frames are placed at their nearest frame slot.
        self._constant_rate = None if container.format.flags & _VARIABLE_FPS else rate
        self.time_base = info.time_base if self._constant_rate is None else 1 / rate
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        ctx = stream.codec_context
        thread_type, threads = encoder_threading(settings.codec, info.width, info.height, os.cpu_count() or 1)
        ctx.thread_type = thread_type
        ctx.thread_count = settings.threads or threads
        if self.out_colour.full_range:
            ctx.color_range = 2
        elif self.colour.full_range:
            ctx.color_range = 1  # converted to limited range
        else:
            ctx.color_range = info.color_range or 0
        ctx.colorspace = info.colorspace
        ctx.color_primaries = info.color_primaries
        ctx.color_trc = info.color_trc
        if info.sample_aspect_ratio and info.sample_aspect_ratio != 1:
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        if info.field_order in FIELD_ORDER_CODES and info.field_order != "unknown":
            ctx.field_order = FIELD_ORDER_CODES[info.field_order]
        if self._field_flag is not None:
            if settings.codec == "libx264":
                ctx.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            elif settings.codec not in _FIELD_CODED:
                log(f"{settings.codec} codes the interlaced frames as they are (fields woven); "
                    f"the output is tagged {self._field_flag} (x264 and ProRes code fields)")
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self.stream = stream
        if source is not None:
            self._copy_metadata(source)
            self._side = SideStreams(source, container, log=log)

    def _copy_metadata(self, source) -> None:
        with open_input(source) as src:
            for key, value in src.metadata.items():
                if key.lower() not in _SKIPPED_TAGS:
                    self.container.metadata[key] = value
            video = video_stream(src, source)
            for key, value in video.metadata.items():
                if key.lower() not in _SKIPPED_TAGS | {"handler_name", "vendor_id"}:
                    self.stream.metadata[key] = value
            try:
                chapters = src.chapters()
                if chapters:
                    self.container.set_chapters(chapters)
            except (AttributeError, av.error.FFmpegError):
                pass

    @property
    def side_summary(self) -> list[str]:
        """What happened to the audio and subtitle streams."""
        return self._side.summary if self._side else []

    def write(self, frame: Frame) -> None:
        """Encode one upright RGB frame at its own timestamp."""
        av_frame = self._compose(frame)
        pts, t = frame.pts, frame.time
        if self.rebase and pts is not None:
            if self._origin is None:
                self._origin = (pts, t)
                if self._side is not None:
                    self._side.start_at(t)
            pts, t = pts - self._origin[0], t - self._origin[1]
        if self._constant_rate is not None:
            pts = frame.index if t is None else int(round(t * self._constant_rate))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # a damaged input repeated a timestamp
        av_frame.pts = self._last_pts = pts
        av_frame.time_base = self.time_base
        if self._frame_chain:
            av_frame = self._flag(av_frame)
        if t is not None:
            self.end_time = t + self._frame_duration
        try:
            for packet in self.stream.encode(av_frame):
                self.container.mux(packet)
            if self._side is not None and t is not None:
                self._side.pump(t)
        except av.error.FFmpegError as exc:
            raise self._failure(exc, f"at frame {frame.index}") from None
        self.frames_written += 1

    def _flag(self, av_frame: av.VideoFrame) -> av.VideoFrame:
        """The frame with its pixel shape (``setsar``: FFV1 records it per slice) and field
        order (``setfield``: interlaced outputs) set, as the encoders read them."""
        if self._flags is None:
            self._flags = frame_filter(self._frame_chain, av_frame, time_base=self.time_base,
                                       sample_aspect_ratio=self.info.sample_aspect_ratio)
        out = self._flags.push(av_frame)
        if len(out) != 1:
            raise VidrestoreError(f"{self._flags.describe()} gave {len(out)} frames for one")
        return out[0]

    def _compose(self, frame: Frame) -> av.VideoFrame:
        """The frame to encode: the decoded one with only its touched regions re-converted."""
        rotation = self.info.rotation
        if (frame.source is None or frame.source.format.name != self.stream.pix_fmt
                or self.out_colour != self.colour):
            # No planes to patch, or not in the output's format or range: convert the whole
            # frame here, with the input's matrix (the encoder's own conversion would guess it).
            return self.out_colour.from_rgb(stored(frame.image, rotation), self.stream.pix_fmt)
        if not frame.touched:
            return frame.source
        height, width = frame.image.shape[:2]
        boxes = [stored_box(box, width, height, rotation) for box in frame.touched]
        return patch_regions(frame.source, stored(frame.image, rotation), boxes, self.colour)

    def close(self, *, side_streams_until: float | None = None) -> None:
        """Flush the encoder, the rest of the side streams, and the container.

        Args:
            side_streams_until: end audio and subtitles at this time (seconds), e.g. where a
                run stopped early (``--max-frames``) ended the video; None: carry all of them.
        """
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self._side is not None:
                self._side.end(side_streams_until)
            self.container.close()
        except av.error.FFmpegError as exc:
            raise self._failure(exc, "while finishing the file") from None
        finally:
            if self._side is not None:
                self._side.close()

    def _failure(self, exc: av.error.FFmpegError, when: str) -> VidrestoreError:
        """What an FFmpeg failure while writing means: the disk (``OutputError``), timestamps
        a damaged input made absurd that the container refuses (``InputError``), or else the
        encoder's or muxer's own failure."""
        if (disk := disk_failure(exc, self.path.parent, when)) is not None:
            return disk
        rate, end = self.info.rate, self.end_time or 0.0
        absurd = (f"a frame rate of {float(rate):.3g} fps" if rate is not None and not SANE_RATES[0] <= rate <= SANE_RATES[1]
                  else f"frames {end:.3g} s from the start" if end > MAX_SECONDS else None)
        if absurd:
            return InputError(
                f"the input's timestamps are unusable ({absurd}: a damaged header?); the "
                f"{self.container.format.name} container refuses them {when} ({exc.strerror or exc}); "
                "an .mkv output may take them")
        return VidrestoreError(f"encoding failed {when}: {exc}")

    def abort(self) -> None:
        """Close without flushing (after an error); the file is to be deleted by the caller."""
        for closer in ((self._side.close if self._side else None), self.container.close):
            if closer is None:
                continue
            try:
                closer()
            except Exception:  # noqa: BLE001 - already failing; keep the first error
                pass
