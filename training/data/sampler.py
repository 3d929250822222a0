"""The order samples are drawn in: an endless, seeded stream that survives resumes.

Epoch ``e`` is a permutation of the dataset seeded by ``(seed, e)``; the stream is epoch 0,
then epoch 1, ... Global batch ``k`` is stream items ``[k·G, (k+1)·G)`` with ``G = B ·
world_size``, and rank ``r`` takes the ``r``-th block of ``B`` of it. So:

- the position in the data is a function of the step alone: resuming at step ``k`` starts
  the stream at ``k·G``, nothing else needs saving;
- ``world_size`` processes of batch ``B`` see the same samples per step as one process of
  batch ``B·world_size``;
- a dataset smaller than a batch still works (a batch spans epochs).

Each item is a key ``(epoch, index)`` that the dataset turns into a sample (its
augmentation seeded by the key).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

_PERMUTATION = 0x5EED


class StreamSampler(Sampler[tuple[int, int]]):
    """Endless per-rank stream of ``(epoch, index)`` keys from step ``start_step`` on.

    Args:
        size: dataset length.
        batch_size: per-process batch.
        rank / world_size: this process and how many there are.
        seed: the run's seed.
        start_step: the first global step to produce a batch for.
        shuffle: permute each epoch (False: 0..size-1 in order).
    """

    def __init__(
        self, size: int, batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0,
        start_step: int = 0, shuffle: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError("empty dataset")
        self.size, self.batch_size = size, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.start_step, self.shuffle = seed, start_step, shuffle
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of epoch ``epoch``."""
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = (
                np.random.default_rng([self.seed, epoch, _PERMUTATION]).permutation(self.size)
                if self.shuffle else np.arange(self.size)
            )
        return self._perms[epoch]

    def keys(self, step: int) -> list[tuple[int, int]]:
        """This rank's keys for global step ``step``."""
        first = step * self.batch_size * self.world_size + self.rank * self.batch_size
        out = []
        for offset in range(first, first + self.batch_size):
            epoch, position = divmod(offset, self.size)
            out.append((epoch, int(self.permutation(epoch)[position])))
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        while True:
            yield from self.keys(step)
            step += 1
