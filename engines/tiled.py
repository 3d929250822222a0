"""Running an image-to-image engine over a whole frame in overlapping tiles.

The frame is cut into windows of one fixed size (the engine's tile), overlapping by at least
``2·pad`` pixels; each window is enlarged by the network, and only the part of it at least
``pad`` pixels from a window edge that borders other windows is kept (the image's own
borders are kept from the window that touches them). This is the scheme of Real-ESRGAN's
``tile`` / ``tile_pad`` options, with every window the same size, so compiled and ONNX
artifacts serve a whole video, and memory is that of ``batch`` tiles, whatever the frame's
size. With ``pad`` at least the network's receptive field the result equals a single
whole-frame pass.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidrestore.imaging import max_value

from .base import Engine, is_out_of_memory


def spans(length: int, window: int, pad: int) -> list[tuple[int, int, int]]:
    """Windows of ``window`` pixels covering ``[0, length)``: ``(start, keep_from, keep_to)``,
    the kept parts tiling the range, each at least ``pad`` from an inner window edge.

    Raises:
        ValueError: ``window`` longer than ``length`` or not longer than ``2·pad``.
    """
    if window > length:
        raise ValueError(f"window {window} is longer than the image side {length}")
    if window == length:
        return [(0, 0, length)]
    if window <= 2 * pad:
        raise ValueError(f"window {window} must be longer than twice the pad {pad}")
    out = [(0, 0, window - pad)]
    while out[-1][2] < length:
        keep_from = out[-1][2]
        start = keep_from - pad
        if start + window >= length:
            out.append((length - window, keep_from, length))
        else:
            out.append((start, keep_from, start + window - pad))
    return out


def tile_shape(height: int, width: int, tile: int, multiple: int = 1, pad: int = 0) -> tuple[int, int]:
    """The window size for a frame: at most ``tile`` a side, the fewest windows that cover the
    frame with ``pad`` margins, each as small as covers it (so little is computed twice:
    576 lines in three windows of 214 rather than 256), the frame's side where it is smaller;
    multiples of ``multiple`` (the frame is padded up to one)."""
    def side(n: int) -> int:
        n = math.ceil(n / multiple) * multiple
        top = max(multiple, tile // multiple * multiple)
        if n <= top:
            return n
        count = math.ceil((n - 2 * pad) / max(top - 2 * pad, 1))
        size = math.ceil((n + 2 * pad * (count - 1)) / count)
        return min(top, math.ceil(size / multiple) * multiple)

    return side(height), side(width)


class TiledUpscaler:
    """Enlarges whole frames with an image engine, tile by tile (module doc).

    Args:
        engine: an image engine (``image_network.build_image_engine``) whose inputs are
            ``tile`` (h, w) tiles and outputs ``scale`` times larger.
        scale: its enlargement.
        tile: ``(h, w)`` of its input tiles.
        pad: the margin discarded at inner window edges (pixels of the input; rounded down
            to a multiple of ``multiple``).
        multiple: frame sides are padded (reflected) up to a multiple of this first (2 for
            the pixel-unshuffling ×2 network), and windows start on multiples of it, so every
            window folds the same 2×2 pixel blocks as a whole-frame pass would.
        batch: tiles per engine call.
    """

    def __init__(self, engine: Engine, *, scale: int, tile: tuple[int, int], pad: int, multiple: int = 1,
                 batch: int = 1) -> None:
        self.engine = engine
        self.scale = scale
        if tile[0] % multiple or tile[1] % multiple:
            raise ValueError(f"tiles {tile} must be multiples of {multiple}")
        self.tile = tile
        self.pad = pad - pad % multiple  # window starts stay on the network's pixel blocks
        self.multiple = multiple
        self.batch = max(1, batch)
        self.device = torch.device(engine.info.device)
        self.name = f"{engine.info.label} ×{scale}, tiles {tile[0]}×{tile[1]} (pad {self.pad})"

    def upscale(self, image: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 / uint16 RGB → (scale·H)×(scale·W)×3 of the same dtype."""
        height, width = image.shape[:2]
        top = max_value(image)
        m = self.multiple
        padded = np.pad(image, ((0, -height % m), (0, -width % m), (0, 0)), mode="reflect") \
            if height % m or width % m else image
        th, tw = self.tile
        rows = spans(padded.shape[0], th, self.pad)
        cols = spans(padded.shape[1], tw, self.pad)
        s = self.scale
        out = np.empty((padded.shape[0] * s, padded.shape[1] * s, 3), image.dtype)
        windows = [(r, c) for r in rows for c in cols]
        for first in range(0, len(windows), self.batch):
            chunk = windows[first : first + self.batch]
            tiles = np.stack([padded[r[0] : r[0] + th, c[0] : c[0] + tw] for r, c in chunk])
            enlarged = self._run(tiles, top)
            for (r, c), big in zip(chunk, enlarged):
                y0, y1 = (r[1] - r[0]) * s, (r[2] - r[0]) * s
                x0, x1 = (c[1] - c[0]) * s, (c[2] - c[0]) * s
                out[r[1] * s : r[2] * s, c[1] * s : c[2] * s] = big[y0:y1, x0:x1]
        return out[: height * s, : width * s]

    def _run(self, tiles: np.ndarray, top: float) -> np.ndarray:
        """N×h×w×3 tiles → N×(s·h)×(s·w)×3 of their dtype; a batch that runs out of memory is
        split in half and retried (down to one tile), and later calls keep the smaller size."""
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device).permute(0, 3, 1, 2)
                x = x.float().mul_(1.0 / top)
                y = self.engine.run(x, None, 0.0)
                y = y.float().clamp_(0, 1).mul_(top).round_().permute(0, 2, 3, 1)
                return y.to(torch.int32).cpu().numpy().astype(tiles.dtype)
        except Exception as exc:
            if not is_out_of_memory(exc) or len(tiles) == 1:
                raise
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.batch = max(1, len(tiles) // 2)
        half = self.batch
        return np.concatenate([self._run(tiles[:half], top), self._run(tiles[half:], top)])
