"""The restoration networks: CodeFormer, its VQGAN, ID-CodeFormer and CodeFormer++.

Names on the CLI and their configs live in ``registry``; checkpoint files (and the metadata
training writes into them) are read and loaded strictly by ``checkpoint`` (``load_checkpoint``
and ``load_model`` here).
"""

from .checkpoint import (
    Checkpoint,
    CheckpointMetadata,
    LoadReport,
    Recognizer,
    load_strict,
    read_checkpoint,
    read_state_dict,
)
from .codeformer import CodeFormer, CodeFormerConfig, CodeFormerOutput
from .codeformer_pp import CodeFormerPP, CodeFormerPPConfig, CodeFormerPPFaithful, CodeFormerPPOutput
from .idcodeformer import IDCodeFormer, IDCodeFormerConfig
from .registry import (
    MODELS,
    ModelSpec,
    build_model,
    get_spec,
    load_checkpoint,
    load_model,
    model_names,
)
from .vqgan import VQAutoEncoder, VQGANConfig, VQGANOutput

__all__ = [
    "Checkpoint",
    "CheckpointMetadata",
    "CodeFormerPPFaithful",
    "Recognizer",
    "load_model",
    "read_checkpoint",
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
