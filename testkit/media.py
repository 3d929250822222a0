"""Small synthetic videos for tests, benchmarks and demos.

``write_video`` encodes frames with chosen timestamps (variable frame rate), rotation
metadata, pixel format, colour tags, audio and subtitles, so every property the pipeline must
preserve can be produced on demand. ``face_clip_frames`` moves a real face photo
(scikit-image's astronaut) over a background, so detection and tracking meet a real face.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import numpy as np

from vidrestore.io.colour import SWS_THREADS
from vidrestore.io.side_streams import ASS_HEADER


@dataclass(frozen=True)
class AudioSpec:
    """A sine tone to put beside the video.

    Attributes:
        seconds: duration of the audio track.
        rate: sample rate in Hz.
        codec: audio encoder (``aac``, ``libopus``, ``flac``, ``pcm_s16le``...).
        frequency: tone frequency in Hz.
        channels: 1 or 2.
    """

    seconds: float
    rate: int = 48000
    codec: str = "aac"
    frequency: float = 440.0
    channels: int = 2


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 24,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    rotation: int = 0,
    color_range: str | None = None,
    colorspace: str | None = None,
    audio: AudioSpec | None = None,
    subtitles: Sequence[tuple[float, float, str]] = (),
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` (H×W×3 uint8 RGB, or uint16 for 16-bit sources) into ``path``.

    Args:
        pts: per-frame timestamps in ``time_base`` units (default: 0, 1, 2... at ``fps``);
            uneven steps make a variable-frame-rate video.
        rotation: display rotation in degrees (counter-clockwise, as ``VideoFrame.rotation``).
        color_range: ``"mpeg"``/``"tv"`` (limited) or ``"jpeg"``/``"pc"`` (full) to tag.
        colorspace: ``"bt709"``, ``"bt601"`` or ``"bt2020"`` to tag (and convert with).
        subtitles: ``(start_s, end_s, text)`` cues, written as a text subtitle stream.
        metadata: container metadata (title, comment...).
    """
    path = Path(path)
    time_base = time_base or Fraction(1, fps)
    with av.open(str(path), "w") as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        if color_range:
            stream.codec_context.color_range = _COLOR_RANGES[color_range]
        if colorspace:
            stream.codec_context.colorspace = _COLORSPACES[colorspace][0]
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream(audio.codec, rate=audio.rate)
            audio_stream.layout = "stereo" if audio.channels == 2 else "mono"
        sub_stream = None
        if subtitles:
            sub_stream = container.add_stream("mov_text" if path.suffix in (".mp4", ".mov") else "subrip")
            sub_stream.codec_context.time_base = sub_stream.time_base = Fraction(1, 1000)
            sub_stream.codec_context.subtitle_header = ASS_HEADER
        first = True
        for i, image in enumerate(frames):
            if first:
                stream.height, stream.width = image.shape[:2]
                first = False
            fmt = "rgb48le" if image.dtype == np.uint16 else "rgb24"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
            frame = frame.reformat(  # here, not in the encoder: one swscale thread (see io.colour)
                format=pix_fmt,
                dst_colorspace=_COLORSPACES[colorspace][1] if colorspace else None,
                dst_color_range=_RANGE_NAMES.get(color_range),
                threads=SWS_THREADS,
            )
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            _write_tone(container, audio_stream, audio)
        if sub_stream is not None:
            _write_subtitles(container, sub_stream, subtitles)
    return path


def _write_tone(container, stream, spec: AudioSpec) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    total = int(round(spec.seconds * spec.rate))
    layout = "stereo" if spec.channels == 2 else "mono"
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    for start in range(0, total, frame_size):
        n = min(frame_size, total - start)
        t = (np.arange(start, start + n) / spec.rate).astype(np.float64)
        tone = (0.3 * np.sin(2 * np.pi * spec.frequency * t)).astype(np.float32)
        planes = np.stack([tone] * spec.channels)
        if fmt == "s16":
            data = (planes.T.reshape(1, -1) * 32767).astype(np.int16)
        elif fmt == "s16p":
            data = (planes * 32767).astype(np.int16)
        elif fmt == "s32":
            data = (planes.T.reshape(1, -1) * 2147483647).astype(np.int32)
        elif fmt == "s32p":
            data = (planes * 2147483647).astype(np.int32)
        elif fmt == "flt":
            data = planes.T.reshape(1, -1)
        else:
            data = planes
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate = spec.rate
        frame.pts = start
        frame.time_base = Fraction(1, spec.rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)




def _write_subtitles(container, stream, cues) -> None:
    from av.subtitles.subtitle import SubtitleSet

    for start, end, text in cues:
        duration = int(round((end - start) * 1000))
        cue = SubtitleSet.create(
            text=b"0,0,Default,,0,0,0,," + text.encode("utf-8"), start=0, end=duration
        )
        packet = stream.codec_context.encode_subtitle(cue)
        packet.stream = stream
        packet.pts = packet.dts = int(round(start * 1000))
        packet.duration = duration
        packet.time_base = stream.time_base
        container.mux(packet)


_COLORSPACES = {"bt709": (1, "itu709"), "bt601": (6, "itu601"), "bt2020": (9, "bt2020")}
_COLOR_RANGES = {"mpeg": 1, "tv": 1, "jpeg": 2, "pc": 2}
_RANGE_NAMES = {"mpeg": "MPEG", "tv": "MPEG", "jpeg": "JPEG", "pc": "JPEG", None: None}


def gradient_frames(n: int, width: int, height: int, *, dtype=np.uint8) -> Iterator[np.ndarray]:
    """Frames with a moving diagonal gradient and a frame-number bar code (no faces)."""
    max_value = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(n):
        r = (xx / max(width - 1, 1) + i * 0.01) % 1.0
        g = yy / max(height - 1, 1)
        b = ((xx + yy) / max(width + height - 2, 1) + i * 0.02) % 1.0
        image = (np.stack([r, g, b], axis=-1) * max_value).astype(dtype)
        bits = [(i >> k) & 1 for k in range(12)]
        cell = max(width // 16, 1)
        for k, bit in enumerate(bits):
            image[: max(height // 10, 1), k * cell : (k + 1) * cell] = max_value if bit else 0
        yield image


def face_clip_frames(
    n: int,
    width: int = 320,
    height: int = 240,
    *,
    face_size: int = 120,
    path: Sequence[tuple[float, float]] = ((0.3, 0.5), (0.7, 0.5)),
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Frames with scikit-image's astronaut face moving along ``path`` over a textured background.

    ``path`` holds the face centre as fractions of the frame, interpolated over ``n`` frames.
    """
    from skimage import data

    face = data.astronaut()[30:250, 110:330]  # the head: hair to chin, 220×220
    import cv2

    face = cv2.resize(face, (face_size, face_size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    background = (rng.normal(110, 12, (height, width, 3))).clip(0, 255).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    for i in range(n):
        t = i / max(n - 1, 1) * (len(path) - 1)
        k = min(int(t), len(path) - 2) if len(path) > 1 else 0
        u = t - k
        cx, cy = path[k] if len(path) == 1 else (
            path[k][0] * (1 - u) + path[k + 1][0] * u,
            path[k][1] * (1 - u) + path[k + 1][1] * u,
        )
        image = background.copy()
        x0 = int(round(cx * width - face_size / 2))
        y0 = int(round(cy * height - face_size / 2))
        _blit(image, face, x0, y0)
        yield image


def _blit(image: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    h, w = patch.shape[:2]
    x1, y1 = max(x0, 0), max(y0, 0)
    x2, y2 = min(x0 + w, image.shape[1]), min(y0 + h, image.shape[0])
    if x2 > x1 and y2 > y1:
        image[y1:y2, x1:x2] = patch[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0]


def face_scene(t: float, width: int = 320, height: int = 240, *, face_size: int = 100, speed: float = 6.0,
               seed: int = 0) -> np.ndarray:
    """The astronaut's head at time ``t`` (in fields), moving ``speed`` px per field to the right
    over a fixed textured background: the picture a camera saw at that instant."""
    face, background = _scene_parts(width, height, face_size, seed)
    image = background.copy()
    _blit(image, face, int(round(width * 0.15 + speed * t)), (height - face_size) // 2)
    return image


@functools.lru_cache(maxsize=8)
def _scene_parts(width: int, height: int, face_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[30:250, 110:330], (face_size, face_size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.normal(110, 12, (height, width, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    face.flags.writeable = background.flags.writeable = False
    return face, background


def woven_frames(n: int, width: int = 320, height: int = 240, *, order: str = "tff", **scene) -> Iterator[np.ndarray]:
    """Interlaced frames of ``face_scene``: each frame weaves two fields taken one field time
    apart (the first in time on the even lines for ``tff``, on the odd lines for ``bff``), as an
    interlaced camera records them."""
    for i in range(n):
        first, second = face_scene(2 * i, width, height, **scene), face_scene(2 * i + 1, width, height, **scene)
        woven = first.copy()
        lines = slice(1, None, 2) if order == "tff" else slice(0, None, 2)
        woven[lines] = second[lines]
        yield woven


def write_interlaced(path: str | Path, frames: Iterable[np.ndarray], *, order: str = "tff", flagged: bool = True,
                     fps: int = 25, audio: AudioSpec | None = None, crf: int = 12) -> Path:
    """Encode woven ``frames`` with x264 as an interlaced stream of field ``order`` (interlaced
    coding, frames flagged through libavfilter's ``setfield``, the stream's field order set), or,
    with ``flagged`` False, as a capture that says progressive (the fields stay woven)."""
    from vidrestore.io.filters import frame_filter

    path = Path(path)
    time_base = Fraction(1, fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        if flagged:
            stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            stream.codec_context.field_order = 2 if order == "tff" else 3
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream(audio.codec, rate=audio.rate)
            audio_stream.layout = "stereo" if audio.channels == 2 else "mono"
        setfield = None
        for i, image in enumerate(frames):
            if i == 0:
                stream.height, stream.width = image.shape[:2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format="yuv420p", threads=SWS_THREADS)
            frame.pts, frame.time_base = i, time_base
            if flagged:
                setfield = setfield or frame_filter([("setfield", order)], frame, time_base=time_base)
                frame = setfield.push(frame)[0]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            _write_tone(container, audio_stream, audio)
    return path


def _scene_faces() -> list[np.ndarray]:
    """The real faces a scene is made of: the astronaut's and Grace Hopper's heads (the photos
    scikit-image and matplotlib ship), and each mirrored."""
    import cv2
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        grace = np.array(im.convert("RGB"))[60:400, 120:410]
    heads = [data.astronaut()[30:250, 110:330], grace]
    return heads + [cv2.flip(h, 1) for h in heads]


def scene_frames(
    n: int,
    width: int = 1920,
    height: int = 1080,
    *,
    faces: int = 1,
    face_size: int | None = None,
    grain: float = 3.0,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Frames of a camera panning over a photo-textured scene with ``faces`` real faces (up to 4:
    the astronaut, Grace Hopper, and each mirrored) moving across it, with sensor grain.

    Closer to real footage than ``face_clip_frames`` for what costs time per frame (encoding a
    detailed, moving picture; detecting several faces in a large frame). ``face_size`` is each
    face's height in pixels (default: a quarter of the frame height for one face, a fifth for
    more); faces keep their photo's aspect ratio.
    """
    import cv2
    from skimage import data

    if not 1 <= faces <= 4:
        raise ValueError("a scene holds 1 to 4 faces")
    tiles = [data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field(), data.stereo_motorcycle()[0],
             data.immunohistochemistry()]
    tile_h = max(height // 2, 64)
    row = np.concatenate([cv2.resize(t, (int(t.shape[1] * tile_h / t.shape[0]), tile_h),
                                     interpolation=cv2.INTER_AREA) for t in tiles], axis=1)
    board = np.concatenate([row, np.roll(row, row.shape[1] // 3, axis=1), row[:, ::-1]], axis=0)
    pan_w = width + 2 * n + 8
    reps = -(-pan_w // board.shape[1])
    board = np.tile(board, (1, reps, 1))[: height + n + 8, :pan_w]
    if board.shape[0] < height + n + 8:
        board = np.concatenate([board, board[::-1]], axis=0)[: height + n + 8]
    size = face_size or (height // 4 if faces == 1 else height // 5)
    heads = [cv2.resize(h, (max(1, int(h.shape[1] * size / h.shape[0])), size), interpolation=cv2.INTER_AREA)
             for h in _scene_faces()[:faces]]
    starts = [(0.15, 0.35), (0.55, 0.25), (0.3, 0.7), (0.75, 0.65)]
    ends = [(0.45, 0.4), (0.8, 0.3), (0.1, 0.65), (0.6, 0.7)]
    rng = np.random.default_rng(seed)
    noise = [rng.normal(0, grain, (height, width, 3)).round().astype(np.int16) for _ in range(4)] if grain > 0 else []
    for i in range(n):
        image = np.ascontiguousarray(board[i // 2 : i // 2 + height, 2 * i : 2 * i + width])
        u = i / max(n - 1, 1)
        for head, (sx, sy), (ex, ey) in zip(heads, starts, ends):
            cx, cy = (sx + (ex - sx) * u) * width, (sy + (ey - sy) * u) * height
            _blit(image, head, int(round(cx - head.shape[1] / 2)), int(round(cy - head.shape[0] / 2)))
        if noise:  # four fields of grain in turn: cheap, and never the same on neighbours
            image = np.clip(image.astype(np.int16) + noise[i % 4], 0, 255).astype(np.uint8)
        yield image
