"""Segments: --start / --end parse, seek to the key frame before and decode to the exact frame,
and the output starts at 0 with audio and subtitles cut at the same instant."""

from __future__ import annotations

import av
import numpy as np
import pytest

from testkit.media import AudioSpec, gradient_frames, write_video
from vidrestore.errors import UsageError
from vidrestore.io.encoding import EncodeSettings
from vidrestore.io.reader import VideoReader
from vidrestore.io.trim import Trim, parse_time
from vidrestore.io.writer import VideoWriter

FPS = 25
CUES = [(0.2, 0.6, "before"), (0.7, 1.0, "across"), (1.2, 1.4, "inside"), (1.9, 2.3, "after")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("trim") / "clip.mkv"
    return write_video(path, gradient_frames(60, 64, 48), fps=FPS, options={"g": "10"},
                       audio=AudioSpec(60 / FPS, codec="libopus"), subtitles=CUES)


def frame_number(image: np.ndarray) -> int:
    """The 12-bit frame number ``gradient_frames`` draws as a bar code along the top."""
    cell = image.shape[1] // 16
    bits = [image[1, k * cell + cell // 2].mean() > 127 for k in range(12)]
    return sum(int(bit) << k for k, bit in enumerate(bits))


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("12.5", 12.5), ("1:30", 90.0), ("01:02:03.25", 3723.25),
                                          ("0:00.040", 0.04)])
def test_times_parse(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "-1", "1:75", "1:02:60", "", "nan", "inf"])
def test_bad_times_say_how_to_write_them(text):
    with pytest.raises(UsageError, match=r"\[hh:\]mm:ss"):
        parse_time(text, option="--start")


def test_an_end_before_the_start_and_a_start_past_the_end_are_refused(clip):
    with pytest.raises(UsageError, match="must come after"):
        Trim(2.0, 1.0)
    with pytest.raises(UsageError, match="past the end"):
        VideoReader(clip, trim=Trim(start=9.0))


@pytest.mark.parametrize("start,end,first,count", [(0.8, 1.6, 20, 20), (0.81, None, 21, 39), (None, 0.4, 0, 10),
                                                   (1.0, 1.04, 25, 1)])
def test_the_segment_holds_exactly_its_frames(clip, start, end, first, count):
    frames = list(VideoReader(clip, trim=Trim(start, end)).frames())
    assert [frame_number(f.image) for f in frames] == list(range(first, first + count))
    assert [f.index for f in frames] == list(range(count))


def packet_times(path, kind):
    with av.open(str(path)) as c:
        stream = c.streams.get(**{kind: 0})[0]
        return [(float(p.pts * stream.time_base), float((p.duration or 0) * stream.time_base), p)
                for p in c.demux(stream) if p.pts is not None]


def test_output_starts_at_zero_with_audio_and_subtitles_cut_in_sync(clip, tmp_path):
    reader = VideoReader(clip, trim=Trim(0.8, 1.6))
    out = tmp_path / "cut.mkv"
    writer = VideoWriter(out, reader.output, reader.colour, EncodeSettings(crf=12), source=clip, rebase=True)
    for frame in reader.frames():
        writer.write(frame)
    writer.close(side_streams_until=writer.end_time)
    with av.open(str(out)) as c:
        video = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert video[0] == 0.0 and len(video) == 20
    assert np.allclose(np.diff(video), 1 / FPS, atol=1.5e-3)
    # Every audio packet keeps its place against the video: source time − 0.8 s.
    source_audio = [t for t, _, _ in packet_times(clip, "audio")]
    kept_audio = [t for t, _, _ in packet_times(out, "audio")]
    expected = [t - 0.8 for t in source_audio if 0.8 - 1e-4 <= t <= 0.8 + writer.end_time]
    assert kept_audio == pytest.approx(expected, abs=1.5e-3)
    assert kept_audio[0] < 0.03  # audio starts with the video (within one packet)
    # Subtitles: the cue on screen at 0.8 s stays from 0 to its end; later ones move by 0.8 s.
    subtitles = [(round(t, 3), round(d, 3)) for t, d, _ in packet_times(out, "subtitles")]
    assert subtitles == [(0.0, 0.2), (0.4, 0.2)]
