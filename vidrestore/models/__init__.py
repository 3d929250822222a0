"""The restoration networks: CodeFormer, its VQGAN, ID-CodeFormer and CodeFormer++.

Names on the CLI and their configs live in ``registry``; checkpoint files are read and
loaded strictly by ``checkpoint`` (``load_checkpoint`` here).
"""

from .checkpoint import LoadReport, load_strict, read_state_dict
from .codeformer import CodeFormer, CodeFormerConfig, CodeFormerOutput
from .codeformer_pp import CodeFormerPP, CodeFormerPPConfig, CodeFormerPPOutput
from .idcodeformer import IDCodeFormer, IDCodeFormerConfig
from .registry import (
    MODELS,
    ModelSpec,
    build_model,
    get_spec,
    load_checkpoint,
    model_names,
)
from .vqgan import VQAutoEncoder, VQGANConfig, VQGANOutput

__all__ = [
    "CodeFormer",
    "CodeFormerConfig",
    "CodeFormerOutput",
    "CodeFormerPP",
    "CodeFormerPPConfig",
    "CodeFormerPPOutput",
    "IDCodeFormer",
    "IDCodeFormerConfig",
    "LoadReport",
    "MODELS",
    "ModelSpec",
    "VQAutoEncoder",
    "VQGANConfig",
    "VQGANOutput",
    "build_model",
    "get_spec",
    "load_checkpoint",
    "load_strict",
    "model_names",
    "read_state_dict",
]
