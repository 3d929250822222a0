"""Which paste mask a run uses (``build_masker``): ParseNet when asked for or present, else the
template mask."""

from __future__ import annotations

import torch

from vidrestore.errors import UsageError, WeightsError
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

    ``auto`` uses ParseNet (the official CodeFormer helper's mask) when its weights are
    present, else downloads them where the store allows downloads (the first run, once,
    sha256-checked), else (offline, or the download failed) the template mask, saying why;
    ``parsing`` requires the weights (``store.require``: a download when allowed, else
    ``MissingWeightsError``); ``template`` needs nothing.
    """
    config = config or PasteConfig()
    if kind == "template":
        return TemplateMasker(config, reason="requested")
    if kind not in ("auto", "parsing"):
        raise UsageError(f"unknown paste mask {kind!r}; choose auto, parsing or template")
    from .parsing import ParsingMasker

    if kind == "auto" and store.find("parsenet") is None:
        where = ", ".join(map(str, store.folders()))
        if not store.allow_download:
            return TemplateMasker(config, reason=f"offline: ParseNet weights not found in {where}")
        try:
            path = store.require("parsenet")  # the first run downloads it, later runs find it
        except WeightsError as exc:
            return TemplateMasker(config, reason=f"ParseNet unavailable: {exc}")
        return ParsingMasker(path, device=device, config=config, reason=f"auto: {path.name} fetched")
    path = store.require("parsenet")  # present (auto): only checks its sha256
    return ParsingMasker(path, device=device, config=config)
