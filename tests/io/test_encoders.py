"""Choosing the encoder: which encoders this machine has (``--codec list``), NVENC falling back
to its software twin with a note, the preset by frame size on GPU runs, frame threads for x264,
and NVENC's options and pixel formats."""

from __future__ import annotations

import av
import pytest

from vidrestore.cli import main
from vidrestore.errors import UsageError
from vidrestore.io import encoding
from vidrestore.io.encoding import (
    CODECS,
    NVENC,
    EncodeSettings,
    available_encoders,
    choose_pix_fmt,
    encoder_options,
    encoder_threading,
    format_encoders,
    output_suffix,
    resolve_codec,
    resolve_preset,
)
from vidrestore.io.reader import VideoReader
from vidrestore.io.writer import VideoWriter


def test_every_encoder_is_listed_software_ones_work_here():
    found = available_encoders()
    assert tuple(found) == CODECS
    for codec in ("libx264", "libx265", "libvpx-vp9", "prores_ks", "ffv1"):
        assert found[codec] is None
    for codec in NVENC:  # on this CPU-only machine NVENC cannot open; where it can, it says None
        assert found[codec] is None or "NVENC" in found[codec] or "no " + codec in found[codec]


def test_the_listing_says_why_an_encoder_is_missing():
    text = format_encoders({"libx264": None, "h264_nvenc": "this PyAV's FFmpeg has no h264_nvenc encoder"})
    assert text.splitlines() == ["libx264     available",
                                 "h264_nvenc  not available: this PyAV's FFmpeg has no h264_nvenc encoder"]


def test_codec_list_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--codec", "list"])
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(CODECS)
    assert lines[0].endswith("available")


def test_unopenable_nvenc_falls_back_to_its_software_twin(monkeypatch):
    monkeypatch.setattr(encoding, "encoder_unavailable", lambda codec: "no NVIDIA driver here")
    notes = []
    assert resolve_codec(EncodeSettings(codec="h264_nvenc", crf=20), notes.append) == EncodeSettings(
        codec="libx264", crf=20)
    assert resolve_codec(EncodeSettings(codec="hevc_nvenc"), notes.append).codec == "libx265"
    assert notes[0] == ("encoder: no NVIDIA driver here; encoding with libx264 instead "
                        "(`--codec list` shows what this machine has)")
    monkeypatch.setattr(encoding, "encoder_unavailable", lambda codec: None)
    assert resolve_codec(EncodeSettings(codec="h264_nvenc")).codec == "h264_nvenc"
    assert resolve_codec(EncodeSettings(codec="libx264")).codec == "libx264"


def test_a_video_asked_for_in_nvenc_is_written_by_x264_here(media, tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "encoder_unavailable", lambda codec: "no NVIDIA driver here")
    src, dst = media.plain(frames=6), tmp_path / "out.mp4"
    reader = VideoReader(src)
    notes = []
    writer = VideoWriter(dst, reader.info, reader.colour, EncodeSettings(codec="h264_nvenc"), log=notes.append)
    assert writer.stream.codec_context.name == "libx264"
    assert writer.stream.codec_context.thread_type.name == "FRAME"
    for frame in reader.frames():
        writer.write(frame)
    writer.close()
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.video[0].frames == 6
    assert any("encoding with libx264 instead" in n for n in notes)


def test_auto_preset_is_medium_on_a_cpu_run_and_follows_the_frame_size_on_a_gpu_run():
    assert resolve_preset("libx264", "auto", 1920, 1080) == "medium"
    assert resolve_preset("libx264", "auto", 640, 360, gpu=True) == "faster"
    assert resolve_preset("libx264", "auto", 960, 540, gpu=True) == "faster"
    assert resolve_preset("libx264", "auto", 1280, 720, gpu=True) == "veryfast"
    assert resolve_preset("libx264", "auto", 3840, 2160, gpu=True) == "veryfast"
    assert resolve_preset("libx264", "slow", 3840, 2160, gpu=True) == "slow"
    with pytest.raises(ValueError):
        encoder_options(EncodeSettings())  # "auto" must be resolved before it reaches FFmpeg


def test_x264_gets_frame_threads_by_frame_height():
    assert encoder_threading("libx264", 1920, 1080, 16) == ("FRAME", 16)
    assert encoder_threading("libx264", 176, 144, 16) == ("FRAME", 4)   # 9 macroblock rows
    assert encoder_threading("libx265", 64, 16, 16) == ("FRAME", 1)
    assert encoder_threading("ffv1", 1920, 1080, 16) == ("SLICE", 0)


def test_nvenc_options_formats_and_containers():
    options = encoder_options(EncodeSettings(codec="h264_nvenc", crf=18, preset="veryfast"))
    assert options == {"preset": "p2", "tune": "hq", "rc": "vbr", "cq": "18", "b": "0"}
    assert encoder_options(EncodeSettings(codec="hevc_nvenc", crf=0, preset="medium"))["cq"] == "1"
    if "h264_nvenc" in av.codecs_available:  # the pixel formats come from this FFmpeg's encoder
        assert choose_pix_fmt("h264_nvenc", "yuv420p10le", 64, 48) == "yuv420p"  # 8 bits only
        assert choose_pix_fmt("hevc_nvenc", "yuv420p10le", 64, 48) == "p010le"
        assert choose_pix_fmt("h264_nvenc", "rgb24", 64, 48) == "yuv444p"
    assert output_suffix(".mp4", "h264_nvenc") == ".mp4" and output_suffix(".webm", "hevc_nvenc") == ".mkv"
    with pytest.raises(UsageError):
        EncodeSettings(codec="av1_nvenc")
