"""One run's use of a video's face cache: replay a complete entry, or record a new one.

A run whose detection and tracking settings match a complete entry replays it (the detector
never runs); otherwise it records every frame's tracked faces as it goes and publishes the
entry at the end, only if the run was complete (see ``faces.cache``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vidrestore.errors import OutputError

from .cache import CachedFaces, CacheWriter, FaceCache
from .face import Face


class CacheSession:
    """The face cache as one run sees it.

    Args:
        cache: the video's cache.
        settings: the run's detection and tracking settings (the entry's key).
        log: receives one-line notes (reused, written, a frame missing from the entry).

    Attributes:
        state: ``hit`` (replaying), ``writing``, then ``written`` or ``dropped``.
    """

    def __init__(self, cache: FaceCache, settings: Mapping[str, Any], log: Callable[[str], None]) -> None:
        self._log = log
        self._cached: CachedFaces | None = cache.load(settings)
        self._writer: CacheWriter | None = None
        self._missing_said = False
        if self._cached is None:
            self._writer = cache.writer(settings)
            self.state = "writing"
        else:
            self.state = "hit"
            log(f"faces: reusing the face cache {self._cached.folder}")

    @property
    def hit(self) -> bool:
        return self._cached is not None

    def identities(self, backend: str | None) -> dict[int, np.ndarray]:
        """The replayed entry's per-track vectors, if they came from identity ``backend``."""
        if self._cached is None or self._cached.identity_backend != backend:
            return {}
        return dict(self._cached.identities)

    def replay(self, index: int) -> tuple[list[Face], bool, bool]:
        """Frame ``index``'s faces, whether it was detected, whether it starts a shot (no
        faces for a frame the entry lacks, with a warning once)."""
        entry = self._cached.frame(index)
        if entry is None and not self._missing_said:
            self._missing_said = True
            self._log(f"faces: warning: the face cache {self._cached.folder} has no frame {index}; "
                      "such frames are left as they are (delete the cache entry to detect again)")
        return entry if entry is not None else ([], False, False)

    def record(self, index: int, faces: Sequence[Face], detected: bool, cut: bool) -> None:
        """Add a tracked frame to the entry being written (nothing when replaying)."""
        if self._writer is not None:
            self._writer.add(index, faces, detected, cut)

    def close(self, publish: bool, identities: Mapping[int, np.ndarray], identity_backend: str | None,
              detector: str) -> None:
        """Publish the entry being written (``publish``: the run was complete) or drop it."""
        if self._writer is not None:
            if publish:
                try:
                    path = self._writer.commit(identities, identity_backend, detector=detector)
                except OutputError as exc:  # the run's output is whole: the cache is a bonus
                    self._writer.abort()
                    self.state = "dropped"
                    self._log(f"faces: warning: the face cache was not kept ({exc})")
                else:
                    self.state = "written"
                    self._log(f"faces: face cache written to {path}")
            else:
                self._writer.abort()
                self.state = "dropped"
            self._writer = None
        if self._cached is not None:
            self._cached.close()
