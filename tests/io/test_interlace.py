"""Interlaced sources: detected (flags and idet), deinterlaced by bwdif / yadif, or kept woven
with their field order; one frame per field with --field-rate; progressive video untouched.

The clips weave two fields of a real face (the astronaut) taken one field apart while it
moves 6 px per field; combing is measured by the [1, −2, 1] vertical high-pass energy
(``testkit.combing``) against progressive pictures of the same instants.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from testkit.combing import combing_ratio
from testkit.media import AudioSpec, face_scene, gradient_frames, woven_frames, write_interlaced, write_video
from vidrestore.errors import UsageError
from vidrestore.io.decoding import DecodeSettings
from vidrestore.io.encoding import EncodeSettings
from vidrestore.io.interlace import FieldScan, plan_fields
from vidrestore.io.probe import probe
from vidrestore.io.reader import VideoReader
from vidrestore.io.writer import VideoWriter

FRAMES = 16
REFERENCES = [face_scene(2 * i) for i in range(FRAMES)]  # the first field's instant, progressive
BACKGROUND = face_scene(10_000)  # the face far outside the frame


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interlaced")
    return {
        "tff": write_interlaced(folder / "tff.mp4", woven_frames(FRAMES), order="tff", audio=AudioSpec(FRAMES / 25)),
        "bff": write_interlaced(folder / "bff.mkv", woven_frames(FRAMES, order="bff"), order="bff"),
        "unflagged": write_interlaced(folder / "unflagged.mp4", woven_frames(FRAMES), flagged=False),
    }


def images(path, **decode):
    return [f.image for f in VideoReader(path, decode=DecodeSettings(**decode)).frames()]


def face_x(image: np.ndarray) -> float:
    """Mean column of the pixels that differ from the background (the face's position)."""
    moving = np.abs(image.astype(np.int16) - BACKGROUND.astype(np.int16)).sum(axis=2) > 60
    return float(np.nonzero(moving)[1].mean())


def copy_video(src, dst, **decode):
    reader = VideoReader(src, decode=DecodeSettings(**decode))
    writer = VideoWriter(dst, reader.output, reader.colour, EncodeSettings(crf=12), source=src)
    for frame in reader.frames():
        writer.write(frame)
    writer.close()
    return reader


@pytest.mark.parametrize("kind", ["tff", "bff", "unflagged"])
def test_auto_deinterlaces_combed_frames_and_says_why(clips, kind):
    reader = VideoReader(clips[kind])
    assert reader.fields.filter == "bwdif"
    assert reader.fields.parity == ("bff" if kind == "bff" else "tff")  # from idet's votes
    woven = [f.image for f in VideoReader(clips[kind], decode=DecodeSettings(deinterlace="off")).frames()]
    done = [f.image for f in reader.frames()]
    assert combing_ratio(woven[2:-2], REFERENCES[2:-2]) > 10  # the fields really are woven
    assert combing_ratio(done[2:-2], REFERENCES[2:-2]) < 1.5  # and the combing is gone
    assert "flagged progressive but its frames are combed" in reader.notes[0] if kind == "unflagged" \
        else "the stream is interlaced" in reader.notes[0]


def test_yadif_is_there_too(clips):
    done = images(clips["tff"], deinterlace="yadif")
    assert combing_ratio(done[2:-2], REFERENCES[2:-2]) < 1.5


def test_progressive_video_is_left_alone(tmp_path):
    path = write_video(tmp_path / "p.mp4", gradient_frames(48, 64, 48))  # idet's multi-frame votes say bff here
    reader = VideoReader(path)
    assert reader.fields.filter is None and reader.notes == []
    assert reader.output.time_base == reader.info.time_base


def test_deinterlaced_output_is_flagged_progressive_with_exact_times(clips, tmp_path):
    out = tmp_path / "out.mkv"
    reader = copy_video(clips["tff"], out)
    assert probe(out).field_order == "progressive"
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == FRAMES and not any(f.interlaced_frame for f in frames)
    times = [float(f.pts * f.time_base) for f in frames]
    assert np.allclose(np.diff(times), 1 / 25, atol=1.5e-3)
    assert reader.output.time_base == reader.info.time_base / 2  # bwdif halves it


def test_off_keeps_the_fields_and_their_order(clips, tmp_path):
    for kind, ext in (("tff", ".mp4"), ("bff", ".mkv")):
        out = tmp_path / f"kept_{kind}{ext}"
        copy_video(clips[kind], out, deinterlace="off")
        assert probe(out).field_order == ("tt" if kind == "tff" else "bb")
        kept = [f.image for f in VideoReader(out, decode=DecodeSettings(deinterlace="off")).frames()]
        assert combing_ratio(kept[2:-2], REFERENCES[2:-2]) > 10
        # The frames' own flags carry the order: deinterlacing by those flags alone (parity
        # auto) gives fields in time order, the face moving right by 6 px every field.
        with av.open(str(out)) as c:
            stream = c.streams.video[0]
            flagged = [f for f in c.decode(stream)]
        assert all(f.interlaced_frame for f in flagged)
        graph = av.filter.Graph()
        ctx = stream.codec_context
        src = graph.add("buffer", video_size=f"{ctx.width}x{ctx.height}", pix_fmt=str(int(av.VideoFormat("yuv420p"))),
                        time_base=str(stream.time_base), pixel_aspect="1/1")
        bwdif = graph.add("bwdif", "mode=send_field:parity=auto:deint=all")
        sink = graph.add("buffersink")
        src.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        fields = []
        for frame in flagged + [None]:
            graph.vpush(frame)
            while True:
                try:
                    fields.append(graph.vpull().to_ndarray(format="rgb24"))
                except (av.BlockingIOError, av.EOFError):
                    break
        steps = np.diff([face_x(f) for f in fields[2:-4]])
        assert np.all(np.abs(steps - 6) < 2), (kind, steps)  # backwards flags: −6 / +18


def test_field_rate_doubles_the_frames_with_exact_times_and_audio_in_sync(clips, tmp_path):
    out = tmp_path / "fields.mp4"
    reader = copy_video(clips["tff"], out, field_rate=True)
    assert reader.output.rate == 50
    with av.open(str(out)) as c:
        frames = [f for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        packets = [float(p.pts * audio.time_base) for p in c.demux(audio) if p.pts is not None]
    assert len(frames) == 2 * FRAMES
    times = np.array([float(f.pts * f.time_base) for f in frames])
    assert np.allclose(np.diff(times), 1 / 50, atol=1e-3)
    positions = [face_x(f.to_ndarray(format="rgb24")) for f in frames[2:-4]]
    assert np.all(np.abs(np.diff(positions) - 6) < 2)  # every field, in time order
    with av.open(str(clips["tff"])) as c:
        src_audio = c.streams.audio[0]
        src_packets = [float(p.pts * src_audio.time_base) for p in c.demux(src_audio) if p.pts is not None]
    assert packets == src_packets  # every audio packet at its own time, against a video starting at 0


def test_field_rate_needs_deinterlacing():
    with pytest.raises(UsageError, match="field-rate"):
        DecodeSettings(deinterlace="off", field_rate=True)


@pytest.mark.parametrize("scan,deinterlace,expected", [
    (FieldScan("tt", 48, 48, 40, 0, 8, 0, 40, 8), "auto", ("bwdif", "tff", False)),
    (FieldScan("progressive", 48, 0, 0, 45, 3, 0, 44, 4), "auto", ("bwdif", "bff", True)),
    (FieldScan("bb", 48, 48, 44, 1, 3, 0, 44, 4), "auto", ("bwdif", "tff", False)),  # idet beats the flags
    (FieldScan("tt", 48, 48, 0, 0, 46, 2, 0, 48), "auto", (None, "auto", True)),  # film flagged interlaced
    (FieldScan("progressive", 48, 0, 0, 48, 0, 0, 24, 24), "auto", (None, "auto", True)),  # not frame by frame
    (FieldScan("unknown", 48, 0, 0, 0, 48, 0, 0, 48), "yadif", ("yadif", "auto", True)),
    (FieldScan("tt", 48, 48, 40, 0, 8, 0, 40, 8), "off", (None, "auto", True)),
])
def test_plan_follows_flags_and_pictures(scan, deinterlace, expected):
    plan = plan_fields(DecodeSettings(deinterlace=deinterlace), scan)
    assert (plan.filter, plan.parity, plan.every_frame) == expected
    if deinterlace == "off":
        assert plan.keep_interlaced == "tff" and plan.output_order == "tt"


def test_field_rate_timestamps_come_from_the_filter(clips):
    reader = VideoReader(clips["bff"], decode=DecodeSettings(field_rate=True))
    frames = list(reader.frames())
    assert reader.output.time_base == Fraction(1, 2000)  # Matroska's 1/1000, halved
    assert all(f.time_base == reader.output.time_base for f in frames)
    assert [f.pts for f in frames] == [40 * i for i in range(2 * FRAMES)]  # 20 ms a field
