"""The engine artifact cache: compiled packages, ONNX graphs and TensorRT plans on disk.

One folder per artifact under the cache root (``$VIDRESTORE_ENGINE_DIR``, else
``$XDG_CACHE_HOME/vidrestore/engines``, else ``~/.cache/vidrestore/engines``)::

    codeformer-onnxruntime-fp32-cpu-3f9c0e1a2b4d5e6f/
        model.onnx      the artifact
        meta.json       its key, size, build time

The folder name ends with a digest of the ``EngineKey``: everything that makes an artifact
unusable elsewhere (network and weights, backend, precision, device, library versions, face
size, batch profile). A folder is built under a temporary name and renamed into place when
complete, so a crash or a concurrent build never leaves a half-written artifact under a real
name; of two concurrent builds the first rename wins and the other is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

FORMAT = 1
"""Bumped when the layout of an artifact or the way it is exported changes."""


def default_engine_dir() -> Path:
    """The cache root (XDG convention, overridable by ``$VIDRESTORE_ENGINE_DIR``)."""
    if env := os.environ.get("VIDRESTORE_ENGINE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vidrestore" / "engines"


def model_hash(net: nn.Module) -> str:
    """sha256 (first 16 hex digits) of a network's architecture and every tensor's bytes.

    Identifies the weights whatever file they came from (``.pth``, safetensors, seeded).
    """
    digest = hashlib.sha256()
    digest.update(type(net).__name__.encode())
    digest.update(repr(getattr(net, "config", None)).encode())
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def device_kind(device: torch.device) -> str:
    """What an artifact compiled for ``device`` depends on: ``cpu-avx512``, ``cuda-NVIDIA_H100…-sm90``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index).replace(" ", "_")
        major, minor = torch.cuda.get_device_capability(index)
        return f"cuda-{name}-sm{major}{minor}"
    capability = torch.backends.cpu.get_cpu_capability().lower()
    return f"{device.type}-{capability}"


@dataclass(frozen=True)
class EngineKey:
    """Everything an artifact depends on.

    Attributes:
        model: registry name.
        model_hash: ``model_hash`` of the network (architecture + weights).
        backend: ``compiled``, ``onnxruntime``, ``tensorrt``.
        precision: ``fp32`` / ``fp16`` / ``bf16``.
        device: ``device_kind``.
        versions: ``(("torch", "2.13.0"), ...)``: the libraries that made and will read it.
        face_size: S.
        batch: ``(min, opt, max)`` batch profile.
        variant: backend detail that changes the artifact (export options).
    """

    model: str
    model_hash: str
    backend: str
    precision: str
    device: str
    versions: tuple[tuple[str, str], ...]
    face_size: int
    batch: tuple[int, int, int]
    variant: str = ""
    format: int = FORMAT

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def folder_name(self) -> str:
        device = self.device.split("-")[0]
        return f"{self.model}-{self.backend}-{self.precision}-{device}-{self.digest()}"


@dataclass(frozen=True)
class CachedEngine:
    """One artifact folder as ``engines list`` shows it."""

    folder: Path
    artifact: Path
    size: int
    key: dict
    built_seconds: float | None
    created: float | None

    def line(self) -> str:
        k = self.key
        batch = "-".join(str(b) for b in k.get("batch", ()))
        return (f"{self.folder.name:60s} {_size(self.size):>9s}  {k.get('device', '?')}  "
                f"face {k.get('face_size', '?')}  batch {batch}  weights {k.get('model_hash', '?')}")


class EngineCache:
    """Artifact folders under ``root`` (see module doc).

    Args:
        root: the cache root (default ``default_engine_dir()``).
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_engine_dir()

    def folder(self, key: EngineKey) -> Path:
        return self.root / key.folder_name

    def lookup(self, key: EngineKey, artifact: str) -> Path | None:
        """The artifact file for ``key`` if a complete one is cached."""
        folder = self.folder(key)
        path = folder / artifact
        return path if (folder / "meta.json").is_file() and path.exists() else None

    def get_or_build(self, key: EngineKey, artifact: str, build: Callable[[Path], None],
                     log: Callable[[str], None] = lambda line: None) -> tuple[Path, bool]:
        """The cached artifact for ``key``, building it first if absent.

        ``build(path)`` must write the artifact at ``path`` (in a private temporary folder;
        it may write other files beside it). Returns ``(path, built)``: ``built`` is False
        on a cache hit.
        """
        if (path := self.lookup(key, artifact)) is not None:
            return path, False
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".build-"))
        try:
            start = time.perf_counter()
            build(tmp / artifact)
            seconds = time.perf_counter() - start
            meta = {"key": asdict(key), "artifact": artifact, "built_seconds": round(seconds, 2),
                    "created": time.time()}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            final = self.folder(key)
            try:
                os.rename(tmp, final)
            except OSError:  # another process published the same key first: use theirs
                if self.lookup(key, artifact) is None:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            log(f"engine artifact written to {final} ({seconds:.0f} s)")
            return final / artifact, True
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def entries(self) -> list[CachedEngine]:
        """Every complete artifact folder, sorted by name."""
        found = []
        if not self.root.is_dir():
            return found
        for folder in sorted(self.root.iterdir()):
            meta_path = folder / "meta.json"
            if folder.name.startswith(".") or not meta_path.is_file():
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            found.append(CachedEngine(folder, folder / meta.get("artifact", ""), size, meta.get("key", {}),
                                      meta.get("built_seconds"), meta.get("created")))
        return found

    def remove(self, entry: CachedEngine) -> None:
        shutil.rmtree(entry.folder)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
