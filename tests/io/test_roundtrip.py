"""Decode → encode keeps every frame, timestamp, rotation, colour tag and side stream."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from testkit.media import gradient_frames
from vidrestore.imaging import psnr
from vidrestore.io.encoding import EncodeSettings
from vidrestore.io.reader import VideoReader
from vidrestore.io.writer import VideoWriter


def copy_video(src, dst, **settings):
    reader = VideoReader(src)
    notes: list[str] = []
    writer = VideoWriter(dst, reader.info, reader.colour, EncodeSettings(**settings), source=src,
                         log=notes.append)
    for frame in reader.frames():
        writer.write(frame)
    writer.close()
    return notes


def video_times(path) -> list[float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return [float(f.pts * stream.time_base) for f in c.decode(stream)]


def stream_summary(path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


def audio_span(path) -> tuple[float, float]:
    """First and last audio packet end times, in seconds."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        packets = [p for p in c.demux(stream) if p.pts is not None]
        first = float(packets[0].pts * stream.time_base)
        last = float((packets[-1].pts + packets[-1].duration) * stream.time_base)
        return first, last


def test_reader_yields_every_frame_with_its_real_timestamp(media):
    path = media.vfr()
    frames = list(VideoReader(path).frames())
    assert [f.index for f in frames] == list(range(16))
    with av.open(str(path)) as c:
        expected = [f.pts for f in c.decode(video=0)]
    assert [f.pts for f in frames] == expected
    assert len(set(np.diff(expected))) > 1  # the clip really is variable-rate


@pytest.mark.parametrize("ext,codec", [(".mp4", "libx264"), (".mkv", "ffv1"), (".mov", "prores_ks"),
                                       (".mkv", "libx265")])
def test_variable_frame_rate_survives(media, tmp_path, ext, codec):
    src = media.vfr()
    dst = tmp_path / f"out{ext}"
    copy_video(src, dst, codec=codec)
    before, after = video_times(src), video_times(dst)
    assert len(after) == len(before)
    # Containers may shift every stream by one constant (Matroska avoids negative times):
    # the steps between frames must be the same.
    assert np.allclose(np.diff(after), np.diff(before), atol=1.5e-3)


def test_audio_is_copied_and_stays_in_sync(media, tmp_path):
    src = media.plain(frames=48)
    dst = tmp_path / "out.mkv"
    copy_video(src, dst)
    assert ("audio", "aac") in stream_summary(dst)
    v0_in, v0_out = video_times(src)[0], video_times(dst)[0]
    a_in, a_out = audio_span(src), audio_span(dst)
    # Audio starts at the same offset from the first video frame and lasts as long (up to
    # Matroska's millisecond rounding of each packet's time).
    assert (a_out[0] - v0_out) == pytest.approx(a_in[0] - v0_in, abs=2e-3)
    assert (a_out[1] - a_out[0]) == pytest.approx(a_in[1] - a_in[0], abs=1e-2)


def test_audio_the_container_cannot_hold_is_reencoded_to_aac(media, tmp_path):
    src = media.ten_bit()  # FLAC audio: MOV refuses it
    dst = tmp_path / "out.mov"
    notes = copy_video(src, dst, codec="prores_ks")
    kinds = stream_summary(dst)
    assert ("audio", "aac") in kinds and ("video", "prores") in kinds
    assert any("re-encoding audio" in n for n in notes)
    a_in, a_out = audio_span(src), audio_span(dst)
    assert (a_out[1] - a_out[0]) == pytest.approx(a_in[1] - a_in[0], abs=0.05)


def test_subtitles_are_copied_or_converted(media, tmp_path):
    src = media.ten_bit()  # SubRip in Matroska
    copy_video(src, tmp_path / "same.mkv", codec="ffv1")
    copy_video(src, tmp_path / "conv.mp4")
    assert stream_summary(tmp_path / "same.mkv")[2] in (("subtitle", "srt"), ("subtitle", "subrip"))
    assert ("subtitle", "mov_text") in stream_summary(tmp_path / "conv.mp4")
    with av.open(str(tmp_path / "conv.mp4")) as c:
        texts = [bytes(p) for p in c.demux(subtitles=0) if p.size > 2]
    assert any(b"ten bits" in t for t in texts)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_is_kept_and_frames_are_upright(media, tmp_path, degrees):
    src = media.rotated(degrees)
    reader = VideoReader(src)
    first = next(reader.frames())
    assert reader.info.rotation == degrees
    assert first.image.shape[:2] == ((64, 48) if degrees in (90, 270) else (48, 64))
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    with av.open(str(dst)) as c:
        frame = next(c.decode(video=0))
        assert int(round(frame.rotation)) % 360 == degrees
        assert (frame.width, frame.height) == (64, 48)  # stored orientation unchanged
    again = next(VideoReader(dst).frames()).image
    assert np.abs(again.astype(int) - first.image.astype(int)).mean() < 3


def test_odd_frame_size_survives_every_codec(media, tmp_path):
    src = media.odd()
    for codec, ext in (("libx264", ".mp4"), ("ffv1", ".mkv"), ("prores_ks", ".mov")):
        dst = tmp_path / f"odd_{codec}{ext}"
        copy_video(src, dst, codec=codec)
        with av.open(str(dst)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == 10
        assert (frames[0].width, frames[0].height) == (65, 47)


def test_ten_bit_decodes_to_16_bit_and_ffv1_is_lossless(media, tmp_path):
    src = media.ten_bit()
    frames = list(VideoReader(src).frames())
    assert frames[0].image.dtype == np.uint16
    truth = next(gradient_frames(1, 64, 48, dtype=np.uint16))
    # 10 bits of precision survive (an 8-bit path would be off by up to 2^8 in 16-bit units).
    luma_error = np.abs(frames[0].image.astype(np.int64) - truth.astype(np.int64))
    assert np.median(luma_error) < 200
    dst = tmp_path / "out.mkv"
    copy_video(src, dst, codec="ffv1")
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert b.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            # Untouched frames are re-encoded from their own planes: bit-exact.
            assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "gray"])
def test_chroma_formats_decode_to_the_right_colours(media, pix_fmt):
    frame = next(VideoReader(media.pix_fmt(pix_fmt)).frames())
    truth = next(gradient_frames(1, 64, 48)).astype(np.float32)
    got = frame.image.astype(np.float32)
    assert got.shape == truth.shape and got.dtype == np.float32
    if pix_fmt == "gray":
        assert np.abs(got[..., 0] - got[..., 1]).max() <= 1  # grey stays grey
        luma = truth @ np.array([0.299, 0.587, 0.114], np.float32)
        assert np.abs(got[..., 0] - luma).mean() < 4
    else:
        tolerance = {"yuv444p": 3, "yuv422p": 8, "yuv420p": 10}[pix_fmt]
        assert np.abs(got - truth).mean() < tolerance


def test_pixel_format_and_colour_tags_follow_the_input(media, tmp_path):
    from testkit.media import write_video

    src = tmp_path / "full.mp4"
    write_video(src, gradient_frames(4, 64, 48), pix_fmt="yuv444p", color_range="jpeg",
                colorspace="bt709")
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    with av.open(str(dst)) as c:
        ctx = c.streams.video[0].codec_context
        assert ctx.pix_fmt in ("yuv444p", "yuvj444p")
        assert int(ctx.color_range) == 2  # full range kept
        assert int(ctx.colorspace) == 1  # BT.709 kept
    a = next(VideoReader(src).frames()).image.astype(int)
    b = next(VideoReader(dst).frames()).image.astype(int)
    assert np.abs(a - b).mean() < 2  # same matrix and range both ways: no colour shift


def test_metadata_is_copied(tmp_path):
    from testkit.media import write_video

    src = tmp_path / "meta.mkv"
    write_video(src, gradient_frames(3, 32, 32), codec="ffv1", metadata={"title": "Home movie 1962"})
    dst = tmp_path / "out.mkv"
    copy_video(src, dst, codec="ffv1")
    with av.open(str(dst)) as c:
        assert c.metadata.get("title") == "Home movie 1962"


def test_time_base_and_frame_rate_are_kept(media, tmp_path):
    src = media.plain()
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate == Fraction(24)


@pytest.mark.parametrize("make", ["ten_bit", "odd", "plain"])
@pytest.mark.parametrize("rotation", [0, 90])
def test_only_touched_regions_change(media, tmp_path, make, rotation):
    from testkit.media import write_video

    src = getattr(media, make)()
    if rotation:
        rotated = tmp_path / "rotated.mkv"
        frames = [f.image for f in VideoReader(src).frames()]
        write_video(rotated, iter(frames), codec="ffv1", rotation=rotation,
                    pix_fmt="yuv420p10le" if frames[0].dtype == np.uint16 else "yuv420p")
        src = rotated
    reader = VideoReader(src)
    dst = tmp_path / "out.mkv"
    writer = VideoWriter(dst, reader.info, reader.colour, EncodeSettings(codec="ffv1"))
    box = (5, 3, 21, 19)  # odd corners: widened to whole chroma samples
    for frame in reader.frames():
        x0, y0, x1, y1 = box
        frame.image[y0:y1, x0:x1] = frame.image.max() // 2  # a grey patch
        frame.touch(*box)
        writer.write(frame)
    writer.close()
    before = [f.image.astype(np.int64) for f in VideoReader(src).frames()]
    after = [f.image.astype(np.int64) for f in VideoReader(dst).frames()]
    assert len(before) == len(after)
    unit = 257 if before[0].max() > 255 else 1
    for a, b in zip(before, after):
        outside = np.ones(a.shape[:2], bool)
        outside[box[1] - 2 : box[3] + 2, box[0] - 2 : box[2] + 2] = False
        assert np.array_equal(a[outside], b[outside])
        # Inside, away from the edge where subsampled chroma blends both sides: the new grey.
        patch = b[box[1] + 3 : box[3] - 3, box[0] + 3 : box[2] - 3]
        assert np.abs(patch - a.max() // 2).max() <= 3 * unit


def test_colour_conversion_of_a_patch_is_deterministic():
    """swscale's automatic slice threading now and then greyed the first 8 pixels of a
    slice's first row converting rgb48le → yuv444p10le (147² patches, about 1 in 8 calls):
    a pasted 10-bit face got a grey dash. Conversions run single-threaded; every repeat of
    the same conversion must give the same planes."""
    from vidrestore.io.colour import ColourModel

    colour = ColourModel("itu601", full_range=False, high_bit_depth=True)
    patch = np.random.default_rng(1).integers(0, 65536, (147, 147, 3)).astype(np.uint16)

    def planes() -> np.ndarray:
        frame = colour.from_rgb(patch, "yuv444p10le")
        return np.stack([np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in frame.planes])

    first = planes()
    assert all(np.array_equal(planes(), first) for _ in range(60))
    back = colour.to_rgb(colour.from_rgb(patch, "yuv444p10le")).astype(np.int64)
    assert np.abs(back - patch).max() < 400  # 10-bit YUV quantisation, nothing grey


@pytest.mark.parametrize("range_,colorspace", [("jpeg", "bt709"), ("mpeg", "bt601")])
def test_a_codec_that_needs_another_pixel_format_keeps_the_colours(tmp_path, range_, colorspace):
    """8-bit 4:2:0 into ProRes (10-bit 4:2:2 only): the whole frame is converted with the
    input's matrix and range, not by the encoder's guess."""
    from testkit.media import write_video

    src = tmp_path / "in.mp4"
    write_video(src, gradient_frames(4, 64, 48), pix_fmt="yuv420p", color_range=range_, colorspace=colorspace)
    dst = tmp_path / "out.mov"
    copy_video(src, dst, codec="prores_ks")
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv422p10le"
    for a, b in zip(VideoReader(src).frames(), VideoReader(dst).frames()):
        assert np.abs(a.image.astype(int) - (b.image.astype(int) >> 8)).mean() < 2


def test_webm_gets_vp9_and_opus(media, tmp_path):
    from vidrestore.io.encoding import EncodeSettings, default_codec

    assert default_codec(tmp_path / "a.WebM") == "libvpx-vp9" and default_codec("a.mkv") == "libx264"
    src = media.plain(frames=48)  # H.264 + AAC: WebM takes neither
    dst = tmp_path / "out.webm"
    notes = copy_video(src, dst, codec="libvpx-vp9", crf=30)
    assert stream_summary(dst) == [("video", "vp9"), ("audio", "opus")]
    assert any("to libopus" in n for n in notes)
    assert len(video_times(dst)) == 48
    a_in, a_out = audio_span(src), audio_span(dst)
    assert (a_out[1] - a_out[0]) == pytest.approx(a_in[1] - a_in[0], abs=0.05)
    a = np.stack([f.image for f in VideoReader(src).frames()]).astype(float)
    b = np.stack([f.image for f in VideoReader(dst).frames()]).astype(float)
    assert psnr(a, b) > 35
    with pytest.raises(Exception, match="0..63"):
        EncodeSettings(codec="libvpx-vp9", crf=64)


def test_a_damaged_side_stream_packet_is_dropped_not_fatal(media, tmp_path, monkeypatch):
    """A packet the muxer refuses (e.g. its timestamp goes back in a damaged file) is left
    out with a note; the output is still written."""
    import vidrestore.io.side_streams as side_streams

    original = side_streams.SideStreams._route_packet
    calls = {"n": 0}

    def flaky(self, packet, route):
        calls["n"] += 1
        if calls["n"] == 3:
            raise av.error.InvalidDataError(22, "Invalid argument")
        return original(self, packet, route)

    monkeypatch.setattr(side_streams.SideStreams, "_route_packet", flaky)
    src = media.plain(frames=48)
    dst = tmp_path / "out.mkv"
    notes = copy_video(src, dst)
    assert any("dropped 1 damaged packet(s) of audio stream #1" in n for n in notes)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        count = lambda c: sum(1 for p in c.demux(audio=0) if p.size)  # noqa: E731
        assert count(b) == count(a) - 1
    assert len(video_times(dst)) == 48
