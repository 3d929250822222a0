"""Finding, downloading and checking weight files.

Files are looked up in this order: the ``--weights-dir`` folder (or ``$VIDRESTORE_WEIGHTS_DIR``),
then the cache (``$VIDRESTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/vidrestore/weights``, else
``~/.cache/vidrestore/weights``). A missing file is downloaded into the cache when downloads
are allowed: streamed to a temporary file beside the target, sha256-checked, then renamed, so
a half-downloaded or corrupt file never sits under the real name.

A file's sha256 is remembered in a ``<file>.sha256`` sidecar together with its size and
mtime, so a 400 MB checkpoint is hashed once, not at every run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

from vidrestore.errors import ChecksumError, MissingWeightsError, UsageError

from .registry import KNOWN_WEIGHTS, KnownWeights

_CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while downloading."""


def default_cache_dir() -> Path:
    """The folder downloads go to (XDG cache convention, overridable by environment)."""
    if env := os.environ.get("VIDRESTORE_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vidrestore" / "weights"


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """What ``WeightStore.verify`` found for one known checkpoint."""

    name: str
    status: Literal["ok", "recorded", "mismatch", "missing"]
    path: Path | None
    sha256: str | None

    @property
    def line(self) -> str:
        what = {
            "ok": "ok (matches the published sha256)",
            "recorded": "present (no published sha256; recorded at first use)",
            "mismatch": "CORRUPT (sha256 differs from the published one)",
            "missing": "missing",
        }[self.status]
        return f"{self.name:22s} {what}" + (f"  {self.path}" if self.path else "")


class WeightStore:
    """Where weight files live, and how to get them.

    Args:
        weights_dir: an offline folder holding weight files under their known file names;
            searched first. Defaults to ``$VIDRESTORE_WEIGHTS_DIR`` when set.
        cache_dir: where downloads go (see ``default_cache_dir``).
        allow_download: fetch missing files from their URL; False for offline use.
        table: the known checkpoints (tests pass their own).
        progress: download progress callback.
    """

    def __init__(
        self,
        weights_dir: Path | str | None = None,
        cache_dir: Path | str | None = None,
        *,
        allow_download: bool = True,
        table: dict[str, KnownWeights] | None = None,
        progress: Progress | None = None,
    ) -> None:
        if weights_dir is None and os.environ.get("VIDRESTORE_WEIGHTS_DIR"):
            weights_dir = os.environ["VIDRESTORE_WEIGHTS_DIR"]
        self.weights_dir = Path(weights_dir).expanduser() if weights_dir else None
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.allow_download = allow_download
        self.table = KNOWN_WEIGHTS if table is None else table
        self.progress = progress

    def entry(self, name: str) -> KnownWeights:
        """The table entry called ``name``; UsageError naming the known ones otherwise."""
        try:
            return self.table[name]
        except KeyError:
            known = ", ".join(sorted(self.table))
            raise UsageError(f"unknown weights {name!r}; known: {known}") from None

    def folders(self) -> list[Path]:
        """The folders searched, in order."""
        return [d for d in (self.weights_dir, self.cache_dir) if d is not None]

    def find(self, name: str) -> Path | None:
        """The path of ``name``'s file if present in a searched folder (no download)."""
        filename = self.entry(name).filename
        for folder in self.folders():
            if (candidate := folder / filename).is_file():
                return candidate
        return None

    def require(self, name: str) -> Path:
        """The checked path of ``name``'s file, downloading it if allowed.

        Raises:
            MissingWeightsError: absent and not downloadable; the message names the file, its
                URL and the folder to put it in.
            ChecksumError: present but its sha256 differs from the published one.
        """
        entry = self.entry(name)
        path = self.find(name)
        if path is not None:
            self._check(entry, path)
            return path
        if not self.allow_download:
            raise self._missing(entry, "downloads are off")
        return self.fetch(name)

    def fetch(self, name: str, *, force: bool = False) -> Path:
        """Download ``name`` into the cache (unless already there and ``force`` is False)."""
        entry = self.entry(name)
        target = self.cache_dir / entry.filename
        if target.is_file() and not force:
            self._check(entry, target)
            return target
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MissingWeightsError(f"cannot create cache folder {self.cache_dir}: {exc.strerror}") from None
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".fetch-") as tmp:
            download = Path(tmp) / "download"
            self._download(entry, download)
            payload = _extract_member(entry, download, Path(tmp)) if entry.member else download
            digest = file_sha256(payload)
            if entry.sha256 and digest != entry.sha256:
                raise ChecksumError(
                    f"downloaded {entry.filename} is corrupt: sha256 {digest[:16]}… != "
                    f"published {entry.sha256[:16]}…; nothing was saved"
                )
            os.replace(payload, target)
        self._remember(target, digest)
        return target

    def verify(self, names: Iterable[str] | None = None) -> list[VerifyResult]:
        """Hash every present file of ``names`` (default: the whole table) and compare."""
        results = []
        for name in names or sorted(self.table):
            entry = self.entry(name)
            path = self.find(name)
            if path is None:
                results.append(VerifyResult(name, "missing", None, None))
                continue
            digest = self._digest(path)
            if entry.sha256 is None:
                status = "recorded"
            else:
                status = "ok" if digest == entry.sha256 else "mismatch"
            results.append(VerifyResult(name, status, path, digest))
        return results

    def import_file(self, source: Path | str, name: str | None = None) -> tuple[KnownWeights, Path]:
        """Copy a user's file into the cache under its known name, checking it first.

        The entry is ``name`` if given, else the one whose published sha256 or file name
        matches. Returns the entry and the new path.
        """
        source = Path(source).expanduser()
        if not source.is_file():
            raise MissingWeightsError(f"no such file: {source}")
        digest = file_sha256(source)
        entry = self.entry(name) if name else self._identify(source, digest)
        if entry.sha256 and digest != entry.sha256:
            raise ChecksumError(
                f"{source} is not {entry.filename}: sha256 {digest[:16]}… != published "
                f"{entry.sha256[:16]}…"
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target = self.cache_dir / entry.filename
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, prefix=".import-", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            shutil.copyfile(source, tmp_path)
            os.replace(tmp_path, target)
        finally:
            tmp_path.unlink(missing_ok=True)
        self._remember(target, digest)
        return entry, target

    def sha256(self, path: Path | str) -> str:
        """The sha256 of a file in the store's folders (remembered beside it; see module doc)."""
        return self._digest(Path(path))

    # -- internals ---------------------------------------------------------------------

    def _identify(self, source: Path, digest: str) -> KnownWeights:
        for entry in self.table.values():
            if entry.sha256 == digest:
                return entry
        for entry in self.table.values():
            if entry.filename == source.name:
                return entry
        raise UsageError(
            f"{source.name} is not a known checkpoint (by sha256 or file name); "
            "name it with --name, or load it directly with --weights FILE"
        )

    def _missing(self, entry: KnownWeights, why: str) -> MissingWeightsError:
        where = self.weights_dir or self.cache_dir
        return MissingWeightsError(
            f"missing weights {entry.filename} ({why}): download {entry.url} and put it in "
            f"{where}, or run `vidrestore weights fetch {entry.name}`"
        )

    def _download(self, entry: KnownWeights, dest: Path) -> None:
        request = urllib.request.Request(entry.url, headers={"User-Agent": "vidrestore"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
                total = response.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                done = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if self.progress:
                        self.progress(done, total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise self._missing(entry, f"download failed: {reason}") from None
        if total is not None and done != total:
            raise self._missing(entry, f"download cut off at {done} of {total} bytes")

    def _check(self, entry: KnownWeights, path: Path) -> None:
        digest = self._digest(path)
        if entry.sha256 and digest != entry.sha256:
            raise ChecksumError(
                f"{path} is corrupt: sha256 {digest[:16]}… != published {entry.sha256[:16]}…; "
                f"delete it and run `vidrestore weights fetch {entry.name}`"
            )

    def _digest(self, path: Path) -> str:
        sidecar = path.with_name(path.name + ".sha256")
        stat = path.stat()
        stamp = f"{stat.st_size} {stat.st_mtime_ns}"
        try:
            digest, recorded = sidecar.read_text().split(maxsplit=1)
            if recorded.strip() == stamp and len(digest) == 64:
                return digest
        except (OSError, ValueError):
            pass
        digest = file_sha256(path)
        self._remember(path, digest)
        return digest

    @staticmethod
    def _remember(path: Path, digest: str) -> None:
        stat = path.stat()
        try:
            path.with_name(path.name + ".sha256").write_text(
                f"{digest} {stat.st_size} {stat.st_mtime_ns}\n"
            )
        except OSError:
            pass  # a read-only weights folder: hash again next time


def _extract_member(entry: KnownWeights, archive: Path, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == entry.member or n.endswith("/" + entry.member)]
            if not names:
                raise ChecksumError(f"{entry.url} does not contain {entry.member}")
            out = folder / "member"
            with zf.open(names[0]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            return out
    except zipfile.BadZipFile:
        raise ChecksumError(f"{entry.url} did not give a zip archive") from None
