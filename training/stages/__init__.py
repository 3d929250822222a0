"""The training stages, by the name ``python -m training STAGE`` takes."""

from .base import Stage
from .cft import CFTStage
from .dam import DAMStage
from .tgrn import TGRNStage
from .transformer import TransformerStage
from .vqgan import VQGANStage

STAGES: dict[str, type[Stage]] = {s.name: s for s in (VQGANStage, TransformerStage, CFTStage, DAMStage, TGRNStage)}
"""Stage name → stage class (explicit; CLI order)."""

__all__ = ["STAGES", "Stage"]
