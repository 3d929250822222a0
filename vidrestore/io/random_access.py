"""Random access to frames by index, for frame-level benchmarking and inspection.

decord is fast at random access, but it returns wrong shapes for rotated videos and only
8-bit pixels; for those (and when decord is missing) this falls back to PyAV: an index of
every frame's timestamp is built from the packets once, then each request seeks to the
key frame before it and decodes forward (sequential requests just keep decoding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vidrestore.errors import InputError

from .colour import ColourModel
from .frame import Frame
from .probe import open_input, probe, video_stream
from .reader import upright


class RandomAccessReader:
    """Frames by index: ``len(reader)``, ``reader[i]``, ``reader.get_batch([i, j, ...])``.

    Args:
        path: the video.
        backend: ``auto`` (decord where it decodes correctly, else PyAV), ``decord`` or ``pyav``.

    Attributes:
        backend: the backend in use.
        reason: why it was chosen (e.g. "rotated video: decord mis-decodes rotation").
    """

    def __init__(self, path: str | Path, backend: str = "auto") -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        self.colour = ColourModel.for_video(self.info)
        self.backend, self.reason = self._choose(backend)
        if self.backend == "decord":
            import decord

            self._vr = decord.VideoReader(str(self.path))
            self._pts = None
        else:
            self._container = open_input(self.path)
            self._stream = video_stream(self._container, self.path)
            self._pts = self._index()
            self._next_index: int | None = None
            self._decoder = None

    def _choose(self, wanted: str) -> tuple[str, str]:
        if wanted == "pyav":
            return "pyav", "requested"
        problem = None
        if self.info.rotation:
            problem = "rotated video: decord mis-decodes rotation"
        elif self.info.bit_depth > 8:
            problem = f"{self.info.bit_depth}-bit video: decord decodes 8 bits only"
        try:
            import decord  # noqa: F401
        except ImportError:
            problem = problem or "decord is not installed"
        if problem and wanted == "decord":
            raise InputError(f"cannot use decord for {self.path.name}: {problem}")
        return ("pyav", problem) if problem else ("decord", "fast random access")

    def _index(self) -> list[int]:
        with open_input(self.path) as container:
            stream = video_stream(container, self.path)
            pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
        if not pts:
            raise InputError(f"no timestamped video packets in {self.path}")
        return sorted(pts)

    def __len__(self) -> int:
        return len(self._vr) if self.backend == "decord" else len(self._pts)

    def __getitem__(self, index: int) -> Frame:
        return self.get_batch([index])[0]

    def get_batch(self, indices: Sequence[int]) -> list[Frame]:
        """The frames at ``indices`` (any order, repeats allowed)."""
        n = len(self)
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"frame {i} out of range (video has {n})")
        indices = [i % n for i in indices]
        if self.backend == "decord":
            images = self._vr.get_batch(list(indices)).asnumpy()
            times = self._vr.get_frame_timestamp(list(indices))[:, 0]
            tb = self.info.time_base
            return [Frame(i, int(round(t / tb)), tb, image) for i, t, image in zip(indices, times, images)]
        return [self._decode_at(i) for i in indices]

    def _decode_at(self, index: int) -> Frame:
        target = self._pts[index]
        if self._next_index != index or self._decoder is None:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            self._decoder = self._container.decode(self._stream)
        for av_frame in self._decoder:
            if av_frame.pts is None or av_frame.pts < target:
                continue
            self._next_index = index + 1
            image = upright(self.colour.to_rgb(av_frame), self.info.rotation)
            return Frame(index, av_frame.pts, self._stream.time_base, image)
        raise InputError(f"frame {index} of {self.path} could not be decoded")

    def close(self) -> None:
        if self.backend == "pyav":
            self._container.close()

    def __enter__(self) -> "RandomAccessReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["RandomAccessReader"]
