"""Reading checkpoint files and loading them into networks strictly.

A checkpoint is ``{"params_ema": state_dict}`` (official CodeFormer releases),
``{"params": state_dict}`` (BasicSR training snapshots), a bare state dict, or a
``.safetensors`` file. Loading is strict: every tensor must fit by name and shape; the only
tolerated gap is an explicit list of *new* layers that a caller declares (ID-CodeFormer's
identity layers when starting from CodeFormer weights), and the returned ``LoadReport`` says
which layers stayed untrained.

Checkpoints written by ``vidrestore.training`` also hold a ``"metadata"`` entry beside
``params_ema`` (in a ``.safetensors`` file: the header's ``"vidrestore"`` entry, as JSON):
the model, its network config, the stage and step, the recognizer (ArcFace file by name and
sha256) its identity layers were trained with, and the run's settings
(``CheckpointMetadata``). ``read_checkpoint`` returns it with the tensors.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from vidrestore.config import from_mapping, to_mapping
from vidrestore.errors import ConfigError, MissingWeightsError, WeightsError, WeightsMismatchError

StateDict = dict[str, Tensor]
PARAM_KEYS = ("params_ema", "params")
METADATA_KEY = "metadata"
"""The entry of a checkpoint dict that holds its ``CheckpointMetadata`` (plain data)."""
SAFETENSORS_METADATA_KEY = "vidrestore"
METADATA_FORMAT = 1
STAND_IN_RECOGNIZER = "stand-in"
"""The recognizer name of smoke runs: a random stand-in network, not an ArcFace."""


@dataclass(frozen=True)
class Recognizer:
    """The identity network a checkpoint's identity layers (or identity loss) were trained with.

    name: its weights name (``arcface-ir-se50``), or ``stand-in`` (a smoke run's random net).
    file: its file name. sha256: the file's sha256 (None for the stand-in).
    """

    name: str
    file: str | None = None
    sha256: str | None = None

    def describe(self) -> str:
        if self.name == STAND_IN_RECOGNIZER:
            return "the smoke runs' random stand-in recognizer"
        digest = f", sha256 {self.sha256[:12]}…" if self.sha256 else ""
        return f"{self.name} ({self.file}{digest})"


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a training run records beside its weights.

    model: registry name of the network. network: its config as plain data (what
        ``ModelSpec.config_type`` reads). stage: the training stage that wrote it. run: the
        run's name. step: optimiser steps done. recognizer: see ``Recognizer`` (None: no
        identity network took part). settings: the run's whole config as plain data.
    """

    model: str
    network: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    run: str | None = None
    step: int | None = None
    recognizer: Recognizer | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    format: int = METADATA_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what is saved; JSON-able)."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: object, source: str = "checkpoint") -> "CheckpointMetadata":
        """Read saved metadata; WeightsError if it is not what training writes."""
        if isinstance(data, Mapping) and data.get("format", METADATA_FORMAT) != METADATA_FORMAT:
            raise WeightsError(f"{source}: metadata format {data.get('format')} is not {METADATA_FORMAT} "
                               "(written by another vidrestore version)")
        try:
            return from_mapping(cls, data, where=f"{source} metadata")
        except ConfigError as exc:
            raise WeightsError(str(exc)) from None

    def describe(self) -> str:
        """One line for logs: ``id-codeformer from stage cft (run ia_cft, step 150000), ...``."""
        line = f"{self.model} network"
        if self.stage:
            where = ", ".join(p for p in (f"run {self.run}" if self.run else "",
                                          f"step {self.step}" if self.step is not None else "") if p)
            line += f" from stage {self.stage}" + (f" ({where})" if where else "")
        if self.recognizer is not None:
            line += f", recognizer {self.recognizer.describe()}"
        return line


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file as read: its state dict, which key held it, and its metadata."""

    state_dict: StateDict
    param_key: str | None
    metadata: CheckpointMetadata | None = None


@dataclass(frozen=True)
class LoadReport:
    """What a load did.

    source: where the tensors came from (a path or a label).
    param_key: ``"params_ema"``, ``"params"`` or None for a bare state dict.
    loaded: number of tensors copied into the network.
    untrained: network tensors left at their initialisation (new layers), sorted.
    metadata: the checkpoint's training metadata, if it has any.
    """

    source: str
    param_key: str | None
    loaded: int
    untrained: tuple[str, ...] = ()
    metadata: CheckpointMetadata | None = None

    @property
    def complete(self) -> bool:
        """True when every tensor of the network came from the checkpoint."""
        return not self.untrained

    def summary(self) -> str:
        """One line for logs."""
        key = f"[{self.param_key}]" if self.param_key else "[bare state dict]"
        line = f"loaded {self.loaded} tensors from {self.source} {key}"
        if self.untrained:
            line += f"; {len(self.untrained)} new tensors untrained ({_first(self.untrained)})"
        if self.metadata is not None:
            line += f"; {self.metadata.describe()}"
        return line


def read_state_dict(path: str | Path) -> tuple[StateDict, str | None]:
    """Read a checkpoint file on the CPU without unpickling code.

    Returns ``(state_dict, param_key)``; ``param_key`` says which wrapper key held it.
    Raises MissingWeightsError if the file does not exist, WeightsError if it cannot be read
    as weights.
    """
    checkpoint = read_checkpoint(path)
    return checkpoint.state_dict, checkpoint.param_key


def read_checkpoint(path: str | Path) -> Checkpoint:
    """``read_state_dict`` plus the checkpoint's metadata (None when it has none)."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                data: object = load_file(str(path), device="cpu")
            except SafetensorError as exc:
                raise ValueError(str(exc)) from None
        else:
            with warnings.catch_warnings():  # e.g. notes on the pickle protocol
                warnings.simplefilter("ignore")
                data = torch.load(path, map_location="cpu", weights_only=True)
            raw_meta = data.get(METADATA_KEY) if isinstance(data, Mapping) else None
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise WeightsError(
                f"refusing {path}: it holds Python objects beyond tensors, which would run code "
                "when unpickled; save a plain state dict (or safetensors) instead"
            ) from None
        raise WeightsError(f"cannot read weights from {path}: not a checkpoint torch can read "
                           "(damaged, or not a torch file)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail torch.load in any way
        raise WeightsError(f"cannot read weights from {path}: not a checkpoint torch can read "
                           f"({type(exc).__name__}: {_first_line(exc)})") from None
    if path.suffix == ".safetensors":
        raw_meta = _safetensors_metadata(path)
    if isinstance(data, Mapping) and METADATA_KEY in data:
        data = {k: v for k, v in data.items() if k != METADATA_KEY}
    state, key = unwrap_state_dict(data, str(path))
    metadata = CheckpointMetadata.from_dict(raw_meta, str(path)) if raw_meta is not None else None
    return Checkpoint(state, key, metadata)


def _safetensors_metadata(path: Path) -> object:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        text = (fh.metadata() or {}).get(SAFETENSORS_METADATA_KEY)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise WeightsError(f"{path}: its {SAFETENSORS_METADATA_KEY!r} header entry is not JSON") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0].strip()


def unwrap_state_dict(data: object, source: str = "checkpoint") -> tuple[StateDict, str | None]:
    """Pick the state dict out of a loaded checkpoint (``params_ema`` > ``params`` > bare).

    A ``module.`` prefix on every key (DataParallel / DDP saves) is removed.
    """
    if not isinstance(data, Mapping):
        raise WeightsError(f"{source}: expected a mapping of tensors, got {type(data).__name__}")
    param_key = next((k for k in PARAM_KEYS if k in data), None)
    state = data[param_key] if param_key else data
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"{source}: [{param_key}] is not a non-empty state dict")
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise WeightsError(f"{source}: not a state dict (non-tensor entries: {_first(bad)})")
    out = dict(state)
    if all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out, param_key


def load_strict(
    net: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "state dict",
    param_key: str | None = None,
    new_prefixes: Iterable[str] = (),
) -> LoadReport:
    """Copy ``state_dict`` into ``net``; anything that does not fit raises WeightsMismatchError.

    ``new_prefixes`` names the network's new layers that may be absent from the checkpoint
    (they keep their initialisation and are listed in ``LoadReport.untrained``). Every other
    network tensor must be present, no checkpoint tensor may be left over, shapes must match.
    """
    expected = net.state_dict()
    prefixes = tuple(new_prefixes)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)}≠{tuple(expected[k].shape)}"
        for k in state_dict
        if k in expected and state_dict[k].shape != expected[k].shape
    ]
    untrained = tuple(sorted(k for k in missing if prefixes and k.startswith(prefixes)))
    missing = [k for k in missing if k not in set(untrained)]
    if missing or unexpected or shapes:
        raise WeightsMismatchError(
            f"{source} does not fit {type(net).__name__}: "
            + mismatch_summary(missing, unexpected, shapes)
        )
    net.load_state_dict(state_dict, strict=False)
    return LoadReport(source, param_key, len(state_dict), untrained)


def load_weights_file(net: nn.Module, path: str | Path, *, what: str,
                      rename: Callable[[str], str] | None = None) -> nn.Module:
    """Load a component's checkpoint file (a detector, a face parser, an identity network)
    into ``net`` strictly, and return ``net``.

    The file is read by ``read_state_dict`` (no code is unpickled; a damaged file is a
    ``WeightsError``), its keys renamed by ``rename`` when given; a file that does not fit is a
    ``WeightsMismatchError`` naming ``what`` (e.g. ``"RetinaFace resnet50"``).
    """
    state_dict, param_key = read_state_dict(path)
    if rename is not None:
        state_dict = {rename(k): v for k, v in state_dict.items()}
    load_strict(net, state_dict, source=f"{path} ({what})", param_key=param_key)
    return net


def mismatch_summary(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    """``"3 missing (a, b, c), 1 unexpected (d), 0 shape mismatches"`` style one-liner."""
    return (
        f"{len(missing)} missing{_listed(missing)}, {len(unexpected)} unexpected"
        f"{_listed(unexpected)}, {len(shapes)} shape mismatches{_listed(shapes)}"
    )


def _listed(names: list[str]) -> str:
    return f" ({_first(names)})" if names else ""


def _first(names: Iterable[str], n: int = 3) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")
