"""Shared fixtures: small videos made by the tests themselves, cached per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from testkit.media import AudioSpec, face_clip_frames, gradient_frames, write_video


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs torch on one intra-op thread (restored after).

    On a 2-core machine whose other core is busy, OpenMP threads waiting at barriers make
    small networks 5–40× slower; no result depends on the thread count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> "MediaFactory":
    """Makes (and caches) named test videos in a session folder."""
    return MediaFactory(tmp_path_factory.mktemp("media"))


class MediaFactory:
    """Each method writes its video once per session and returns its path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _make(self, name: str, build) -> Path:
        path = self.folder / name
        if not path.exists():
            build(path)
        return path

    def plain(self, frames: int = 24, size=(64, 48)) -> Path:
        """A short 8-bit H.264 clip with AAC audio."""
        w, h = size
        return self._make(f"plain_{frames}_{w}x{h}.mp4", lambda p: write_video(
            p, gradient_frames(frames, w, h), fps=24, audio=AudioSpec(frames / 24)))

    def vfr(self) -> Path:
        """Variable frame rate: uneven steps between timestamps, with audio."""
        pts = [0, 1, 2, 4, 5, 9, 10, 11, 15, 16, 17, 30, 31, 32, 33, 40]
        return self._make("vfr.mkv", lambda p: write_video(
            p, gradient_frames(len(pts), 64, 48), fps=24, pts=pts,
            time_base=__import__("fractions").Fraction(1, 24),
            audio=AudioSpec(41 / 24, codec="libopus")))

    def rotated(self, degrees: int = 90) -> Path:
        """A 64×48 stored picture shown rotated by ``degrees``."""
        return self._make(f"rot{degrees}.mp4", lambda p: write_video(
            p, gradient_frames(12, 64, 48), rotation=degrees, audio=AudioSpec(0.5)))

    def odd(self) -> Path:
        """An odd-sized (65×47) clip, lossless."""
        return self._make("odd.mkv", lambda p: write_video(
            p, gradient_frames(10, 65, 47), codec="ffv1", pix_fmt="yuv420p"))

    def ten_bit(self) -> Path:
        """10-bit 4:2:0 lossless with FLAC audio and subtitles."""
        return self._make("tenbit.mkv", lambda p: write_video(
            p, gradient_frames(10, 64, 48, dtype=np.uint16), codec="ffv1", pix_fmt="yuv420p10le",
            audio=AudioSpec(10 / 24, codec="flac"), subtitles=[(0.05, 0.3, "ten bits")]))

    def pix_fmt(self, pix_fmt: str, codec: str = "ffv1") -> Path:
        """A lossless clip in ``pix_fmt`` (yuv422p, yuv444p, gray...)."""
        return self._make(f"fmt_{pix_fmt}_{codec}.mkv", lambda p: write_video(
            p, gradient_frames(6, 64, 48), codec=codec, pix_fmt=pix_fmt))

    def faces(self, frames: int = 24, size=(320, 240)) -> Path:
        """The astronaut's face moving across the frame, with audio."""
        w, h = size
        return self._make(f"faces_{frames}_{w}x{h}.mp4", lambda p: write_video(
            p, face_clip_frames(frames, w, h), fps=24, audio=AudioSpec(frames / 24),
            options={"crf": "12"}))

    def faces_lossless(self, frames: int = 12, size=(320, 240)) -> Path:
        """The same moving face, lossless (FFV1), for exact comparisons."""
        w, h = size
        return self._make(f"faces_lossless_{frames}_{w}x{h}.mkv", lambda p: write_video(
            p, face_clip_frames(frames, w, h), fps=24, codec="ffv1", pix_fmt="yuv444p"))
