"""One video end to end through every stage: what reaches the output, and what must not."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from vidrestore.imaging import psnr
from vidrestore.io.reader import VideoReader
from vidrestore.restore_video import restore_video
from vidrestore.settings import RestoreConfig

LOSSLESS = {"codec": "ffv1"}


def config(**faces) -> RestoreConfig:
    from vidrestore.config import from_mapping

    return from_mapping(RestoreConfig, {"model": "passthrough", "download": False,
                                        "encode": LOSSLESS, "faces": faces})


def frames_of(path):
    return [f.image.astype(np.float64) for f in VideoReader(path).frames()]


class Negative:
    """A restorer that visibly changes every face (its colour negative)."""

    name = "negative"
    uses_identity = False
    face_size = 512

    def __init__(self):
        self.calls = 0

    def restore(self, faces, identities, fidelity):
        self.calls += 1
        return 1.0 - faces


def test_passthrough_output_equals_input_on_faces_and_exactly_elsewhere(media, tmp_path):
    src = media.faces_lossless(frames=12)
    out = tmp_path / "out.mkv"
    report = tmp_path / "report.json"
    summary = restore_video(src, out, config(), report_path=report)
    assert summary.frames == 12 and summary.faces == 12
    tracks = json.loads(report.read_text())["tracks"]
    assert len(tracks) == 1 and tracks[0]["frames"] == 12
    x0, y0, x1, y1 = (int(round(v)) for v in tracks[0]["mean_box"])
    before, after = frames_of(src), frames_of(out)
    worst = min(psnr(a[y0:y1, x0:x1], b[y0:y1, x0:x1]) for a, b in zip(before, after))
    assert worst > 40, f"passthrough face PSNR {worst:.1f} dB"
    # Away from the face (it moves horizontally, centred at row 120, 120 px tall) nothing is
    # re-converted: bit-exact through a lossless codec.
    for a, b in zip(before, after):
        assert np.array_equal(a[:45], b[:45]) and np.array_equal(a[195:], b[195:])


def test_what_the_restorer_returns_reaches_the_output(media, tmp_path):
    src = media.faces_lossless(frames=12)
    out = tmp_path / "out.mkv"
    restorer = Negative()
    summary = restore_video(src, out, config(), restorer=restorer)
    assert summary.faces == 12 and restorer.calls >= 3  # batched, but every face restored
    before, after = frames_of(src), frames_of(out)
    for a, b in zip(before, after):
        changed = np.abs(a - b).max(axis=2) > 60
        ys, xs = np.nonzero(changed)
        assert changed.sum() > 2000  # the face really was replaced
        # ...and only around the face: the changed area is compact.
        assert xs.max() - xs.min() < 200 and ys.max() - ys.min() < 200


def test_overlay_draws_on_every_frame_with_a_face(media, tmp_path):
    src = media.faces_lossless(frames=6)
    out = tmp_path / "out.mkv"
    restore_video(src, out, RestoreConfig(model="passthrough", download=False, overlay=True,
                                          encode=RestoreConfig().encode.__class__(codec="ffv1")))
    before, after = frames_of(src), frames_of(out)
    assert all(np.abs(a - b).max() > 100 for a, b in zip(before, after))


def test_timestamps_audio_and_rotation_survive_the_whole_pipeline(media, tmp_path):
    from testkit.media import AudioSpec, face_clip_frames, write_video

    pts = [0, 1, 2, 3, 5, 6, 7, 10, 11, 12, 13, 14]
    src = tmp_path / "rotated_vfr.mp4"
    frames = [np.ascontiguousarray(np.rot90(f, -1)) for f in face_clip_frames(len(pts), 320, 240)]
    write_video(src, iter(frames), pts=pts, rotation=90, audio=AudioSpec(15 / 24))
    out = tmp_path / "out.mp4"
    summary = restore_video(src, out, RestoreConfig(model="passthrough", download=False))
    assert summary.frames == len(pts)
    assert summary.faces >= len(pts) - 2  # the face is upright for the detector
    with av.open(str(src)) as a, av.open(str(out)) as b:
        ta = [f.pts * a.streams.video[0].time_base for f in a.decode(video=0)]
        tb = [f.pts * b.streams.video[0].time_base for f in b.decode(video=0)]
    assert np.allclose(np.diff(np.array(ta, float)), np.diff(np.array(tb, float)), atol=1e-3)
    with av.open(str(out)) as b:
        assert [s.type for s in b.streams] == ["video", "audio"]
        assert int(round(next(b.decode(video=0)).rotation)) % 360 == 90


def test_second_run_reuses_the_face_cache(media, tmp_path):
    src = media.faces_lossless(frames=8)
    notes = []
    restore_video(src, tmp_path / "a.mkv", config(), log=notes.append)
    restore_video(src, tmp_path / "b.mkv", config(), log=notes.append)
    assert any("reusing the face cache" in n for n in notes)
    # The log says which detector ``auto`` chose and why.
    assert any("mtcnn (offline: RetinaFace weights not found" in n for n in notes)
    assert np.array_equal(np.stack(frames_of(tmp_path / "a.mkv")), np.stack(frames_of(tmp_path / "b.mkv")))


def test_on_frame_follows_every_written_frame_against_the_expected_total(media, tmp_path):
    src = media.faces_lossless(frames=6)
    seen = []
    summary = restore_video(src, tmp_path / "a.mkv", config(), on_frame=lambda n, total: seen.append((n, total)))
    assert seen == [(n, 6) for n in range(1, 7)] and summary.frames == 6
    seen.clear()
    restore_video(src, tmp_path / "b.mkv", config(), max_frames=4, on_frame=lambda n, total: seen.append((n, total)))
    assert seen == [(n, 4) for n in range(1, 5)]


def test_a_run_stopped_by_max_frames_ends_its_audio_with_the_video(media, tmp_path):
    out = tmp_path / "preview.mkv"
    restore_video(media.plain(frames=48), out, config(), max_frames=12)  # 2 s of audio in
    ends: dict[str, float] = {}
    with av.open(str(out)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[packet.stream.type] = max(ends.get(packet.stream.type, 0.0), end)
    assert ends["video"] == pytest.approx(0.5, abs=0.05)
    assert 0.4 < ends["audio"] < 0.6  # the preview's own half second, not the whole input's


def test_a_max_frames_run_leaves_no_face_cache_for_the_whole_video(media, tmp_path):
    """A preview must not publish a cache of its first frames: a later full run would find
    no faces in the rest of the video."""
    src = media.faces_lossless(frames=12)
    notes = []
    preview = restore_video(src, tmp_path / "preview.mkv", config(), max_frames=4, log=notes.append)
    assert preview.faces == 4 and not any("face cache written" in n for n in notes)
    full = restore_video(src, tmp_path / "full.mkv", config(), log=notes.append)
    assert full.faces == 12 and any("face cache written" in n for n in notes)
    again = restore_video(src, tmp_path / "again.mkv", config(), max_frames=4, log=notes.append)
    assert again.faces == 4 and any("reusing the face cache" in n for n in notes)  # a prefix of it


def test_undecodable_packets_are_skipped_and_the_rest_restored(tmp_path):
    from testkit.media import face_clip_frames, write_video

    src = tmp_path / "tape.mp4"
    write_video(src, face_clip_frames(24, 160, 120), fps=24)
    with av.open(str(src)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(src.read_bytes())
    for pos, size in (packets[8], packets[16]):  # two P-frames' payloads turned to garbage
        data[pos + 4 : pos + size] = bytes(size - 4)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    notes = []
    summary = restore_video(damaged, tmp_path / "out.mkv", config(), log=notes.append)
    assert 20 <= summary.frames < 24  # before: decoding stopped at the first bad packet (8 frames)
    assert any("undecodable video packet" in n for n in notes)


def test_a_failure_mid_run_leaves_nothing_at_the_target(media, tmp_path):
    class Broken(Negative):
        def restore(self, faces, identities, fidelity):
            raise RuntimeError("network fell over")

    out = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError, match="fell over"):
        restore_video(media.faces_lossless(frames=12), out, config(), restorer=Broken())
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_an_interrupt_while_opening_the_output_leaves_nothing(media, tmp_path, monkeypatch):
    import vidrestore.restore_video as restore_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. SIGTERM arriving while the encoder is set up

    monkeypatch.setattr(restore_module, "VideoWriter", interrupted)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        restore_video(media.faces_lossless(frames=6), out, config())
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file, no face cache folder
