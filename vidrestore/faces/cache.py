"""The per-video face cache: detection and tracking done once, reused by later runs.

A run on a video writes, as it goes, every frame's tracked faces (box, landmarks, score,
track id, whether the frame was detected) to a binary record file, and at the end each
track's identity vector. A later run on the same file with the same detection and tracking
settings (a re-run, another restorer, another fidelity) reads the faces back instead of
running the detector; smoothing, alignment and identity conditioning are redone from them, so
smoothing settings may differ between runs.

The key is the video's fingerprint (size, mtime and a hash of its first and last MiB) plus the
settings that change detection or tracking. Entries are built in a temporary folder and
renamed into place only by ``CacheWriter.commit`` at the end of a complete run, one that
decoded the whole video: a cache from an interrupted or ``--max-frames`` run is never used. Memory is flat: records are appended per frame and read back
through a memory map.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vidrestore.errors import OutputError
from vidrestore.io.fingerprint import FileStamp, content_digest

from .face import Face

FORMAT_VERSION = 4
"""2: only runs that saw the whole video publish an entry (version 1 entries could come from
a ``--max-frames`` run and hold only the first frames, so they are not trusted). 3: the
video's digest is ``io.fingerprint.content_digest`` (the batch ledger's). 4: the detection
scale is ``auto`` by default (small videos upscaled, so other faces are found): entries of
version 3 were made at scale 1 under the same settings."""

RECORD = np.dtype(
    [
        ("frame", "<i8"),
        ("track", "<i4"),
        ("score", "<f4"),
        ("box", "<f4", (4,)),
        ("landmarks", "<f4", (5, 2)),
    ]
)
"""One face of one frame in ``faces.bin``; records are in frame order."""

FRAME = np.dtype([("frame", "<i8"), ("flags", "u1")])
"""One frame in ``frames.bin``: bit 0 the frame was detected, bit 1 it starts a new shot."""

def fingerprint(path: str | Path) -> dict[str, Any]:
    """Size, mtime (ns) and content digest (``io.fingerprint``) of a file."""
    stamp = FileStamp.of(path)
    return {"size": stamp.size, "mtime_ns": stamp.mtime_ns, "sha256_ends": content_digest(path)}


class FaceCache:
    """The face cache of one input video.

    Args:
        video: the input file.
        folder: where entries live (see ``beside``).
    """

    def __init__(self, video: str | Path, folder: str | Path) -> None:
        self.video = Path(video)
        self.folder = Path(folder)
        self.fingerprint = fingerprint(self.video)

    @classmethod
    def beside(cls, video: str | Path, output: str | Path) -> "FaceCache":
        """A cache in ``.vidrestore-faces/`` next to ``output``."""
        return cls(video, Path(output).parent / ".vidrestore-faces")

    def key(self, settings: Mapping[str, Any]) -> str:
        """Hex key of this video with ``settings`` (JSON-able detection/tracking settings)."""
        blob = json.dumps(
            {"version": FORMAT_VERSION, "video": self.fingerprint, "settings": settings},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def path(self, settings: Mapping[str, Any]) -> Path:
        return self.folder / f"{self.video.stem}.{self.key(settings)}.faces"

    def load(self, settings: Mapping[str, Any]) -> "CachedFaces | None":
        """The complete entry for ``settings``, or None (absent, incomplete or unreadable)."""
        folder = self.path(settings)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if not meta.get("complete") or meta.get("key") != self.key(settings):
                return None
            return CachedFaces(folder, meta)
        except (OSError, ValueError, KeyError):
            return None

    def writer(self, settings: Mapping[str, Any]) -> "CacheWriter":
        """A writer that builds the entry for ``settings``."""
        return CacheWriter(self.path(settings), {"key": self.key(settings), "settings": dict(settings),
                                                 "video": str(self.video), "fingerprint": self.fingerprint})


class CacheWriter:
    """Streams faces into a temporary entry; ``commit`` publishes it, ``abort`` drops it."""

    def __init__(self, target: Path, meta: dict[str, Any]) -> None:
        self.target = target
        self.meta = meta
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        except OSError as exc:
            raise OutputError(f"cannot create face cache in {target.parent}: {exc.strerror or exc}") from None
        # A writer dropped without commit (a crash, a stage never closed) removes its files.
        self._cleanup = weakref.finalize(self, _remove_entry, self._tmp)
        self._fh = open(self._tmp / "faces.bin", "wb")
        self._frames_fh = open(self._tmp / "frames.bin", "wb")
        self.frames = 0
        self.faces = 0
        self._last_frame: int | None = None

    def add(self, index: int, faces: Sequence[Face], detected: bool, cut: bool = False) -> None:
        """Append frame ``index``'s faces (frames in increasing order); a write that fails
        (a full disk) is an ``OutputError``."""
        try:
            self._add(index, faces, detected, cut)
        except OSError as exc:
            raise OutputError(f"cannot write the face cache in {self.target.parent}: "
                              f"{exc.strerror or exc}") from None

    def _add(self, index: int, faces: Sequence[Face], detected: bool, cut: bool) -> None:
        if self._last_frame is not None and index <= self._last_frame:
            raise ValueError(f"frames must be added in order: {index} after {self._last_frame}")
        self._last_frame = index
        self.frames += 1
        self._frames_fh.write(np.array([(index, int(detected) | int(cut) << 1)], FRAME).tobytes())
        if not faces:
            return
        rec = np.zeros(len(faces), RECORD)
        rec["frame"] = index
        for i, f in enumerate(faces):
            rec[i]["track"] = f.track_id
            rec[i]["score"] = f.score
            rec[i]["box"] = f.box
            rec[i]["landmarks"] = np.asarray(f.landmarks).reshape(5, 2)
        self._fh.write(rec.tobytes())
        self.faces += len(faces)

    def commit(self, identities: Mapping[int, np.ndarray], identity_backend: str | None, **meta: Any) -> Path:
        """Write the track identities and metadata, then move the entry into place (an
        ``OutputError`` if that fails: a full disk, the folder removed)."""
        try:
            return self._commit(identities, identity_backend, **meta)
        except OSError as exc:
            raise OutputError(f"cannot write the face cache in {self.target.parent}: "
                              f"{exc.strerror or exc}") from None

    def _commit(self, identities: Mapping[int, np.ndarray], identity_backend: str | None, **meta: Any) -> Path:
        self._fh.close()
        self._frames_fh.close()
        ids = sorted(identities)
        vectors = (np.stack([np.asarray(identities[t], np.float32) for t in ids]) if ids
                   else np.zeros((0, 0), np.float32))
        np.savez(self._tmp / "identity.npz", track=np.asarray(ids, np.int64), vector=vectors)
        info = {**self.meta, **meta, "frames": self.frames, "faces": self.faces,
                "last_frame": self._last_frame, "identity_backend": identity_backend, "complete": True}
        (self._tmp / "meta.json").write_text(json.dumps(info, indent=1, default=str))
        if self.target.exists():
            shutil.rmtree(self.target, ignore_errors=True)
        os.replace(self._tmp, self.target)
        self._cleanup.detach()
        return self.target

    def abort(self) -> None:
        """Drop the unfinished entry."""
        self._fh.close()
        self._frames_fh.close()
        self._cleanup()


def _remove_entry(tmp: Path) -> None:
    """Delete an unfinished entry, and the cache folder too if that leaves it empty."""
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.parent.rmdir()
    except OSError:
        pass


class CachedFaces:
    """A complete cache entry, read through a memory map."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.meta = meta
        path = folder / "faces.bin"
        size = path.stat().st_size
        if size % RECORD.itemsize or size // RECORD.itemsize != meta["faces"]:
            raise ValueError("face cache records do not match their metadata")
        self._records = np.memmap(path, RECORD, "r") if size else np.zeros(0, RECORD)
        self._frames = self._records["frame"]
        frames_path = folder / "frames.bin"
        if frames_path.stat().st_size != FRAME.itemsize * meta["frames"]:
            raise ValueError("face cache frame table does not match its metadata")
        self._frame_table = np.memmap(frames_path, FRAME, "r") if meta["frames"] else np.zeros(0, FRAME)
        with np.load(folder / "identity.npz") as z:
            self.identities = {int(t): v.astype(np.float32) for t, v in zip(z["track"], z["vector"])}
        self.identity_backend: str | None = meta.get("identity_backend")

    def frame(self, index: int) -> tuple[list[Face], bool, bool] | None:
        """Frame ``index``'s faces (fresh objects), whether it was detected and whether it
        starts a shot; None if the cache has no such frame."""
        pos = int(np.searchsorted(self._frame_table["frame"], index))
        if pos >= len(self._frame_table) or self._frame_table[pos]["frame"] != index:
            return None
        flags = int(self._frame_table[pos]["flags"])
        lo = int(np.searchsorted(self._frames, index, "left"))
        hi = int(np.searchsorted(self._frames, index, "right"))
        rows = self._records[lo:hi]
        faces = [
            Face(box=np.array(r["box"], np.float32), landmarks=np.array(r["landmarks"], np.float32),
                 score=float(r["score"]), track_id=int(r["track"]))
            for r in rows
        ]
        return faces, bool(flags & 1), bool(flags & 2)

    def close(self) -> None:
        self._records = self._frames = self._frame_table = None
