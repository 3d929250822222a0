"""The image-network kind of the engines (Real-ESRGAN's RRDBNet): backends agree, and the tiled
runner gives a whole-frame pass's result with memory of one tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import CPU

from vidrestore.engines import ImageNetworkIO, TiledUpscaler, build_image_engine, tile_shape
from vidrestore.engines.tiled import spans
from vidrestore.errors import UsageError
from vidrestore.imaging import psnr
from vidrestore.models.rrdbnet import UPSAMPLERS, RRDBNet

TILE = (96, 96)


@pytest.fixture(scope="module")
def tiny_x2() -> RRDBNet:
    """A tiny ×2 RRDBNet with seeded random weights whose output varies inside [0, 1]
    (its last convolution scaled and centred on 0.5), so clamping hides nothing."""
    torch.manual_seed(0)
    net = RRDBNet(UPSAMPLERS[2].tiny).eval()
    with torch.no_grad():
        net.conv_last.weight.mul_(3.0)
        net.conv_last.bias.fill_(0.5)
    return net


def frame(height=150, width=200, dtype=np.uint8) -> np.ndarray:
    from skimage import data

    import cv2

    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    return image.astype(np.uint16) * 257 if dtype == np.uint16 else image


@pytest.mark.parametrize("length,window,pad", [(200, 96, 38), (150, 96, 38), (96, 96, 10), (1000, 256, 16),
                                               (257, 256, 16)])
def test_spans_tile_the_range_with_margins(length, window, pad):
    cuts = spans(length, window, pad)
    assert cuts[0][1] == 0 and cuts[-1][2] == length
    assert all(a[2] == b[1] for a, b in zip(cuts, cuts[1:]))  # kept parts tile the range
    for i, (start, keep_from, keep_to) in enumerate(cuts):
        assert 0 <= start and start + window <= length  # every window full size
        assert i == 0 or keep_from - start >= pad
        assert i == len(cuts) - 1 or start + window - keep_to >= pad


def test_tile_shape_follows_small_frames_and_wastes_little_on_large_ones():
    assert tile_shape(144, 176, 256, 2, 16) == (144, 176)
    assert tile_shape(143, 175, 256, 2, 16) == (144, 176)  # padded up to the pixel blocks
    h, w = tile_shape(576, 720, 256, 2, 16)
    assert (h, w) == (214, 204) and h % 2 == w % 2 == 0
    rows, cols = spans(576, h, 16), spans(720, w, 16)
    assert (len(rows), len(cols)) == (3, 4)  # as few windows as 256² ones would need
    assert len(rows) * h * len(cols) * w < 1.3 * 576 * 720  # (256² windows: 1.9× the frame)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiles_give_the_whole_frame_pass(tiny_x2, dtype):
    image = frame(dtype=dtype)
    top = np.iinfo(dtype).max
    engine = build_image_engine(tiny_x2, ImageNetworkIO("tiny-x2", 2, TILE), backend="torch", precision="fp32",
                                device=CPU)
    # Pad 38 covers this network's receptive field (about 37 input pixels).
    tiled = TiledUpscaler(engine, scale=2, tile=TILE, pad=38, multiple=2).upscale(image)
    with torch.no_grad():
        x = torch.from_numpy(image.astype(np.float32) / top).permute(2, 0, 1)[None]
        whole = (tiny_x2(x).clamp(0, 1) * top).round()[0].permute(1, 2, 0).numpy()
    assert tiled.shape == (300, 400, 3) and tiled.dtype == dtype
    assert np.abs(tiled.astype(np.float64) - whole).max() <= 1  # rounding only
    assert whole.std() > 0.02 * top  # the output really varies


def test_too_small_a_pad_shows_at_the_seams(tiny_x2):
    image = frame()
    engine = build_image_engine(tiny_x2, ImageNetworkIO("tiny-x2", 2, TILE), backend="torch", precision="fp32",
                                device=CPU)
    tight = TiledUpscaler(engine, scale=2, tile=TILE, pad=2, multiple=2).upscale(image)
    wide = TiledUpscaler(engine, scale=2, tile=TILE, pad=38, multiple=2).upscale(image)
    assert np.abs(tight.astype(int) - wide.astype(int)).max() > 2


def test_odd_frames_are_padded_and_cropped_back(tiny_x2):
    image = frame(75, 101)
    tile = tile_shape(75, 101, 96, 2)
    engine = build_image_engine(tiny_x2, ImageNetworkIO("tiny-x2", 2, tile), backend="torch", precision="fp32",
                                device=CPU)
    out = TiledUpscaler(engine, scale=2, tile=tile, pad=16, multiple=2).upscale(image)
    assert out.shape == (150, 202, 3)


def test_bf16_agrees_with_fp32(tiny_x2):
    x = torch.rand(2, 3, *TILE, generator=torch.Generator().manual_seed(1))
    io = ImageNetworkIO("tiny-x2", 2, TILE)
    eager = build_image_engine(tiny_x2, io, backend="torch", precision="fp32", device=CPU).run(x, None, 0.0)
    bf16 = build_image_engine(tiny_x2, io, backend="torch", precision="bf16", device=CPU).run(x, None, 0.0)
    assert bf16.dtype == torch.float32 and bf16.shape == (2, 3, 192, 192)
    assert psnr(bf16.numpy(), eager.numpy(), peak=1.0) > 30
    assert next(tiny_x2.parameters()).dtype == torch.float32  # the engine cast a copy


@pytest.mark.slow
def test_onnxruntime_agrees_with_eager_and_is_cached(tiny_x2, shared_cache):
    x = torch.rand(2, 3, *TILE, generator=torch.Generator().manual_seed(1))
    io = ImageNetworkIO("tiny-x2", 2, TILE)
    eager = build_image_engine(tiny_x2, io, backend="torch", precision="fp32", device=CPU).run(x, None, 0.0)
    ort = build_image_engine(tiny_x2, io, backend="onnxruntime", precision="fp32", device=CPU,
                             cache=shared_cache, batch=(1, 4, 4))
    assert ort.info.backend == "onnxruntime" and ort.info.inputs == ("x",)
    assert psnr(ort.run(x, None, 0.0).numpy(), eager.numpy(), peak=1.0) > 60
    again = build_image_engine(tiny_x2, io, backend="onnxruntime", precision="fp32", device=CPU,
                               cache=shared_cache, batch=(1, 4, 4))
    assert again.info.artifact == ort.info.artifact  # built once, then taken from the cache


def test_tensorrt_is_not_offered_for_image_networks(tiny_x2):
    with pytest.raises(UsageError, match="does not run image networks"):
        build_image_engine(tiny_x2, ImageNetworkIO("tiny-x2", 2, TILE), backend="tensorrt", precision="fp32",
                           device=CPU)
