"""The one way vidrestore imports torchvision and the libraries built on it (facexlib, lpips).

Why it is needed: on x86_64 every torchvision wheel on PyPI is a CUDA build. Beside the CPU
build of torch (``pip install torch==2.13.0`` with ``torchvision==0.28.0``, as
``constraints.txt`` pins) its compiled ops do not load, and ``import torchvision`` fails with
``RuntimeError: operator torchvision::nms does not exist``: its meta-kernel registrations
need the ops' schemas. There is no PyPI pair for x86_64 with a CPU torchvision (the CPU wheels
live on download.pytorch.org), so a patch-free import is possible only on machines whose
torch and torchvision match (a CUDA machine, or aarch64 with torch 2.9.1 / torchvision 0.24.1).

What ``import_needing_torchvision`` does there, and only there (where torchvision's own ops
do not load): it defines the two op *schemas* torchvision declares (``torchvision::nms``,
``torchvision::qnms``), without kernels, so ``import torchvision`` succeeds; torchvision's
modules are not changed, and a call of a compiled op still fails as torchvision makes it
fail (``torchvision_ops_missing`` tells). The one such call a vidrestore component makes —
facexlib's RetinaFace NMS, through ``torchvision.ops.nms`` — is routed to vidrestore's own
NMS by ``faces.detect.retinaface``. Where the ops load, it is a plain ``import_module``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_schemas = None  # the torch.library.Library holding the schemas, kept alive once defined


def _compiled_ops_load() -> bool:
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018 - resolving the op is the check
        return True
    except (AttributeError, RuntimeError):
        pass
    try:  # torchvision registers its ops when its extension loads
        import torchvision  # noqa: F401
    except RuntimeError:
        return False
    return bool(getattr(importlib.import_module("torchvision.extension"), "_has_ops", lambda: False)())


def _define_schemas() -> None:
    global _schemas
    if _schemas is not None:
        return
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _schemas = lib


def import_needing_torchvision(name: str) -> ModuleType:
    """Import module ``name`` (torchvision, or a facexlib / lpips module that imports it).

    See the module docstring for what happens where torchvision's compiled ops do not load.
    """
    if _schemas is None and not _compiled_ops_load():
        _define_schemas()
    return importlib.import_module(name)


def torchvision_ops_missing() -> bool:
    """Whether torchvision imports here only by ``import_needing_torchvision``'s schemas (its
    compiled ops, ``torchvision.ops.nms`` among them, then fail when called)."""
    return _schemas is not None
