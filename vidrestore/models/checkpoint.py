"""Reading checkpoint files and loading them into networks strictly.

A checkpoint is ``{"params_ema": state_dict}`` (official CodeFormer releases),
``{"params": state_dict}`` (BasicSR training snapshots), a bare state dict, or a
``.safetensors`` file. Loading is strict: every tensor must fit by name and shape; the only
tolerated gap is an explicit list of *new* layers that a caller declares (ID-CodeFormer's
identity layers when starting from CodeFormer weights), and the returned ``LoadReport`` says
which layers stayed untrained.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from vidrestore.errors import MissingWeightsError, WeightsError, WeightsMismatchError

StateDict = dict[str, Tensor]
PARAM_KEYS = ("params_ema", "params")


@dataclass(frozen=True)
class LoadReport:
    """What a load did.

    source: where the tensors came from (a path or a label).
    param_key: ``"params_ema"``, ``"params"`` or None for a bare state dict.
    loaded: number of tensors copied into the network.
    untrained: network tensors left at their initialisation (new layers), sorted.
    """

    source: str
    param_key: str | None
    loaded: int
    untrained: tuple[str, ...] = ()

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
        return line


def read_state_dict(path: str | Path) -> tuple[StateDict, str | None]:
    """Read a checkpoint file on the CPU without unpickling code.

    Returns ``(state_dict, param_key)``; ``param_key`` says which wrapper key held it.
    Raises MissingWeightsError if the file does not exist, WeightsError if it cannot be read
    as weights.
    """
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
    return unwrap_state_dict(data, str(path))


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
