"""What the fuzz harness found, one regression test each: inputs that used to end in an
internal error (exit 1) and now restore or are refused with one clear line."""

from __future__ import annotations

import random
from fractions import Fraction

import av
import pytest

from testkit import damage
from testkit.hostile import make_sources, many_streams, non_utf8_tags
from vidrestore.cli import main
from vidrestore.io.probe import count_frames, probe
from vidrestore.io.reader import VideoReader

PASSTHROUGH = ["--model", "passthrough", "--offline", "--quiet"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return {(s.origin, s.container): s for s in make_sources(tmp_path_factory.mktemp("sources"))}


def restore(capfd, source, target) -> tuple[int, list[str]]:
    capfd.readouterr()
    code = main([str(source), "-o", str(target), *PASSTHROUGH])
    return code, [line for line in capfd.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("container", ["mp4", "mkv", "avi"])
def test_tags_that_are_not_utf8_are_read_with_replacement_characters(sources, tmp_path, capfd, container):
    source = sources[("generated", container)]
    hostile = tmp_path / f"tags{source.path.suffix}"
    assert not non_utf8_tags(source, hostile, random.Random(1)).startswith("0 ")
    with pytest.raises(UnicodeDecodeError):  # what PyAV does by default
        av.open(str(hostile))
    assert probe(hostile).width == 160
    code, err = restore(capfd, hostile, tmp_path / f"out{source.path.suffix}")
    assert (code, err) == (0, [])


def test_a_stream_without_a_known_codec_is_left_out(sources, tmp_path, capfd):
    data = sources[("iscc demo", "mov")].path.read_bytes()
    broken, _ = damage.absurd_length(data, "mov", random.Random("1/0/damage"))  # fuzz case 0 of seed 1
    path = tmp_path / "unknown.mov"
    path.write_bytes(broken)
    with av.open(str(path)) as container:  # the audio track became a stream FFmpeg has no codec for
        assert [(s.type, s.codec_context is None) for s in container.streams] == [("video", False), ("data", True)]
    code, err = restore(capfd, path, tmp_path / "out.mov")
    assert (code, err) == (0, [])
    assert [s.type for s in av.open(str(tmp_path / "out.mov")).streams] == ["video"]


def test_an_absurd_frame_rate_is_refused_in_mp4_and_restored_in_mkv(sources, tmp_path, capfd):
    data = sources[("generated", "mp4")].path.read_bytes()
    rng = random.Random(0)
    while True:  # the "huge" variant: time scale 0xFFFFFFFF, frames 2**31 ticks apart
        broken, detail = damage.rate_field(data, "mp4", rng)
        if detail.startswith("huge"):
            break
    path = tmp_path / "rate.mp4"
    path.write_bytes(broken)
    code, err = restore(capfd, path, tmp_path / "out.mp4")
    assert code == 3 and len(err) == 1 and "timestamps are unusable" in err[0], err
    assert list((tmp_path).glob("out*")) == [] and not list(tmp_path.glob(".out*"))
    assert restore(capfd, path, tmp_path / "out.mkv") == (0, [])


def test_streams_that_appear_mid_file_do_not_stop_the_reader(sources, tmp_path, capfd):
    source = sources[("generated", "ts")]
    path = tmp_path / "many.ts"
    many_streams(source, path, random.Random(0), copies=300)
    frames = len(list(VideoReader(path).frames()))
    assert frames == len(list(VideoReader(source.path).frames())) == count_frames(path)
    code, err = restore(capfd, path, tmp_path / "out.mkv")
    assert (code, err) == (0, [])
    assert count_frames(tmp_path / "out.mkv") == frames


def test_an_avi_output_counts_frames_at_a_constant_rate(sources, tmp_path, capfd):
    source = sources[("generated", "mkv")]  # Matroska: a time base of 1/1000
    assert restore(capfd, source.path, tmp_path / "out.avi") == (0, [])
    info = probe(tmp_path / "out.avi")
    assert info.fps == 24 and info.time_base == Fraction(1, 24) and count_frames(tmp_path / "out.avi") == 24
