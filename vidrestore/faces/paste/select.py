"""Which paste mask a run uses (``build_masker``): ParseNet when asked for or present, else the
template mask."""

from __future__ import annotations

import torch

from vidrestore.errors import UsageError
from vidrestore.names import MaskName
from vidrestore.weights import WeightStore

from .config import PasteConfig
from .masks import FaceMasker, TemplateMasker


def build_masker(
    kind: MaskName,
    store: WeightStore,
    device: torch.device | str = "cpu",
    config: PasteConfig | None = None,
) -> FaceMasker:
    """The paste mask maker ``kind``.

    ``auto`` uses ParseNet when ``parsenet`` weights are already present (never downloads),
    else the template mask; ``parsing`` requires the weights (``store.require``: a download
    when allowed, else ``MissingWeightsError``); ``template`` needs nothing.
    """
    config = config or PasteConfig()
    if kind == "template":
        return TemplateMasker(config, reason="requested")
    if kind not in ("auto", "parsing"):
        raise UsageError(f"unknown paste mask {kind!r}; choose auto, parsing or template")
    if kind == "auto" and store.find("parsenet") is None:
        where = ", ".join(map(str, store.folders()))
        return TemplateMasker(config, reason=f"ParseNet weights not found in {where}")
    from .parsing import ParsingMasker

    path = store.require("parsenet")  # present (auto): only checks its sha256
    return ParsingMasker(path, device=device, config=config)
