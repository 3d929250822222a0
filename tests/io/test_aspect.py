"""Non-square pixels: the sample aspect ratio is read, kept in the bitstream and the container
(the display aspect ratio survives), or resampled to square pixels with --square-pixels."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from testkit.media import face_clip_frames
from vidrestore.io.decoding import DecodeSettings
from vidrestore.io.encoding import EncodeSettings
from vidrestore.io.probe import probe
from vidrestore.io.reader import VideoReader, square_size
from vidrestore.io.writer import VideoWriter

SAR = Fraction(16, 15)


def write_anamorphic(path, sar=SAR, size=(180, 144), frames=6, codec="libx264"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.sample_aspect_ratio = sar
        for i, image in enumerate(face_clip_frames(frames, *size, face_size=80)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def stored_aspect(path) -> tuple[Fraction, Fraction]:
    """(container-level, bitstream-level) sample aspect ratio of a file's video."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        container = Fraction(stream.sample_aspect_ratio or 0)
        next(c.decode(stream))  # the decoder reads the bitstream's (H.264 VUI, FFV1 header)
        return container, Fraction(stream.codec_context.sample_aspect_ratio or 0)


def copy_video(src, dst, **decode):
    reader = VideoReader(src, decode=DecodeSettings(**decode))
    writer = VideoWriter(dst, reader.output, reader.colour,
                         EncodeSettings(codec="ffv1" if "ffv1" in dst.name else "libx264"),
                         source=src)
    for frame in reader.frames():
        writer.write(frame)
    writer.close()
    return reader


def test_probe_reads_the_sample_aspect_ratio(tmp_path):
    info = probe(write_anamorphic(tmp_path / "a.mp4"))
    assert info.sample_aspect_ratio == SAR
    assert info.display_aspect_ratio == Fraction(4, 3)  # 180×144 of 16:15 pixels shows as 192×144


def frame_aspect(path) -> str:
    """The first decoded frame's own sample aspect ratio, as libavfilter's showinfo logs it
    (PyAV does not expose a frame's)."""
    before = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture(True) as logs, av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            graph = av.filter.Graph()
            src = graph.add("buffer", video_size=f"{frame.width}x{frame.height}",
                            pix_fmt=str(int(av.VideoFormat(frame.format.name))),
                            time_base="1/1000", pixel_aspect="1/1")
            info, sink = graph.add("showinfo"), graph.add("buffersink")
            src.link_to(info)
            info.link_to(sink)
            graph.configure()
            graph.vpush(frame)
            graph.vpull()
    finally:
        av.logging.set_level(before)
    line = next(text for _, name, text in logs if name == "showinfo" and "sar:" in text)
    return line.split("sar:")[1].split()[0]


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "out.mov", "out_ffv1.mp4"])
def test_output_keeps_the_aspect_in_bitstream_and_container(tmp_path, name):
    src = write_anamorphic(tmp_path / "a.mp4")
    dst = tmp_path / name
    copy_video(src, dst)
    info = probe(dst)
    assert (info.width, info.height) == (180, 144)
    assert info.display_aspect_ratio == Fraction(4, 3)
    assert stored_aspect(dst) == ((SAR, SAR) if "ffv1" not in name else (SAR, 0))  # MP4: pasp; FFV1: per slice
    assert frame_aspect(dst) == "16/15"


def test_ffv1_in_matroska_keeps_it_in_its_slices(tmp_path):
    # FFmpeg's Matroska muxer writes no display size through PyAV (module doc of io.encoding);
    # FFV1 records the pixel shape in every slice header, where decoders find it.
    dst = tmp_path / "out_ffv1.mkv"
    copy_video(write_anamorphic(tmp_path / "a.mp4"), dst)
    assert frame_aspect(dst) == "16/15"


@pytest.mark.parametrize("name,codec", [("out.mkv", "prores_ks"), ("out.webm", "libvpx-vp9")])
def test_a_container_and_codec_that_would_lose_the_aspect_are_refused(tmp_path, name, codec):
    from vidrestore.errors import UsageError
    from vidrestore.io.encoding import aspect_problem

    assert "play squeezed" in aspect_problem(name, codec, SAR)
    assert aspect_problem(name, codec, Fraction(1)) is None and aspect_problem("out.mov", codec, SAR) is None
    reader = VideoReader(write_anamorphic(tmp_path / "a.mp4", frames=1))
    with pytest.raises(UsageError, match="square-pixels"):
        VideoWriter(tmp_path / name, reader.output, reader.colour, EncodeSettings(codec=codec))


def test_square_pixels_resamples_to_the_display_shape(tmp_path):
    src = write_anamorphic(tmp_path / "a.mp4")
    dst = tmp_path / "square.mp4"
    reader = copy_video(src, dst, square_pixels=True)
    assert "square pixels: 192×144" in reader.notes[0]
    info = probe(dst)
    assert (info.width, info.height, info.sample_aspect_ratio) == (192, 144, 1)
    assert info.display_aspect_ratio == Fraction(4, 3)
    # The picture is the same picture, widened: the stored frame stretched by 16/15 matches.
    import cv2

    stored = next(VideoReader(src).frames()).image
    square = next(VideoReader(dst).frames()).image
    widened = cv2.resize(stored, (192, 144), interpolation=cv2.INTER_CUBIC)
    from vidrestore.imaging import psnr

    assert psnr(square, widened) > 30


@pytest.mark.parametrize("size,sar,expected", [
    ((720, 576), Fraction(16, 15), (768, 576)),    # PAL 4:3
    ((720, 576), Fraction(64, 45), (1024, 576)),   # PAL 16:9
    ((720, 480), Fraction(8, 9), (720, 540)),      # NTSC 4:3: tall pixels, the height grows
    ((720, 480), Fraction(32, 27), (854, 480)),    # NTSC 16:9, even width
    ((640, 480), Fraction(1), None),
])
def test_square_size_enlarges_one_side(size, sar, expected, tmp_path):
    info = probe(write_anamorphic(tmp_path / "a.mp4", frames=1))
    import dataclasses

    info = dataclasses.replace(info, width=size[0], height=size[1], sample_aspect_ratio=sar)
    assert square_size(info) == expected
    if expected:
        assert abs(expected[0] / expected[1] - float(info.display_aspect_ratio)) < 0.005
