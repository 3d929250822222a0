"""Random access by index equals sequential decoding; rotated / 10-bit videos fall back to PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from vidrestore.errors import InputError
from vidrestore.io.random_access import RandomAccessReader
from vidrestore.io.reader import VideoReader


def sequential(path):
    return [f.image for f in VideoReader(path).frames()]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_random_order_matches_sequential_decode(media, backend):
    path = media.plain(frames=24)
    truth = sequential(path)
    with RandomAccessReader(path, backend=backend) as reader:
        assert reader.backend == backend and len(reader) == 24
        order = [17, 3, 4, 5, 23, 0, 3, -1]
        frames = reader.get_batch(order)
    for i, frame in zip(order, frames):
        assert frame.index == i % 24
        assert np.abs(frame.image.astype(int) - truth[i].astype(int)).mean() < 1.0


def test_rotated_video_falls_back_to_pyav_and_is_upright(media):
    path = media.rotated(90)
    with RandomAccessReader(path) as reader:
        assert reader.backend == "pyav" and "rotat" in reader.reason
        frame = reader[5]
    assert frame.image.shape == (64, 48, 3)
    assert np.array_equal(frame.image, sequential(path)[5])
    with pytest.raises(InputError, match="rotat"):
        RandomAccessReader(path, backend="decord")


def test_high_bit_depth_falls_back_and_keeps_16_bits(media):
    with RandomAccessReader(media.ten_bit()) as reader:
        assert reader.backend == "pyav"
        assert reader[2].image.dtype == np.uint16


def test_out_of_range_index(media):
    with RandomAccessReader(media.plain(frames=24)) as reader, pytest.raises(IndexError):
        reader[24]
