"""The table of known checkpoints: where each file comes from and how to check it.

The table is explicit and local (never filled by scanning a folder). ``sha256`` is None only
where no published hash could be found; such a file is checked against the hash recorded the
first time it was fetched (trust on first use), and ``vidrestore weights verify`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWeights:
    """One checkpoint file vidrestore knows how to find, fetch and check.

    Attributes:
        name: short name used on the command line (``vidrestore weights fetch NAME``).
        filename: file name in the weights folder and the cache.
        url: official download address.
        sha256: published sha256 of the file, or None if unknown.
        license: the file's licence, as its publisher states it.
        network: what loads it (a model name of ``vidrestore.models`` or a face component).
        key: the entry of the checkpoint dict that holds the state dict, if any.
        description: one line for ``weights list``.
        member: for a ``url`` that is a zip archive, the file inside it to keep.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    license: str
    network: str
    key: str | None
    description: str
    member: str | None = None


_CODEFORMER = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/"
_FACEXLIB = "https://github.com/xinntao/facexlib/releases/download/"
_S_LAB = "S-Lab License 1.0 (non-commercial)"

_TABLE = (
    KnownWeights(
        "codeformer", "codeformer.pth", _CODEFORMER + "codeformer.pth",
        None, _S_LAB, "codeformer", "params_ema",
        "CodeFormer (official, Stage III) for codeformer / id-codeformer / codeformer++",
    ),
    KnownWeights(
        "codeformer-vqgan", "vqgan_code1024.pth", _CODEFORMER + "vqgan_code1024.pth",
        None, _S_LAB, "vqgan", "params_ema",
        "CodeFormer Stage I VQGAN (codebook 1024), the start of Stage II training",
    ),
    KnownWeights(
        "codeformer-stage2", "codeformer_stage2.pth", _CODEFORMER + "codeformer_stage2.pth",
        None, _S_LAB, "codeformer", "params_ema",
        "CodeFormer after Stage II (w = 0 transformer), the start of Stage III training",
    ),
    KnownWeights(
        "retinaface-resnet50", "detection_Resnet50_Final.pth",
        _FACEXLIB + "v0.1.0/detection_Resnet50_Final.pth",
        None, "MIT (facexlib)", "retinaface_resnet50", None,
        "RetinaFace ResNet-50 face detector (facexlib)",
    ),
    KnownWeights(
        "retinaface-mobilenet", "detection_mobilenet0.25_Final.pth",
        _FACEXLIB + "v0.1.0/detection_mobilenet0.25_Final.pth",
        None, "MIT (facexlib)", "retinaface_mobile0.25", None,
        "RetinaFace MobileNet-0.25 face detector (facexlib), faster, less accurate",
    ),
    KnownWeights(
        "parsenet", "parsing_parsenet.pth", _FACEXLIB + "v0.2.2/parsing_parsenet.pth",
        None, "MIT (facexlib)", "parsenet", None,
        "ParseNet face parsing (facexlib), refines the paste-back mask",
    ),
    KnownWeights(
        "arcface-ir-se50", "recognition_arcface_ir_se50.pth",
        _FACEXLIB + "v0.1.0/recognition_arcface_ir_se50.pth",
        None, "MIT (facexlib)", "arcface_ir_se50", None,
        "ArcFace IR-SE50 identity encoder (torch, differentiable: identity loss and tracks)",
    ),
    KnownWeights(
        "arcface-w600k-r50", "w600k_r50.onnx",
        "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        None, "insightface models: non-commercial research only", "arcface_onnx", None,
        "insightface buffalo_l ArcFace R50 (ONNX), inside buffalo_l.zip",
        member="w600k_r50.onnx",
    ),
    KnownWeights(
        "vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
        None, "BSD-3-Clause (torchvision)", "vgg16", None,
        "VGG-16 ImageNet backbone for the perceptual loss (training only)",
    ),
    KnownWeights(
        "alexnet", "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        None, "BSD-3-Clause (torchvision)", "alexnet", None,
        "AlexNet ImageNet backbone for LPIPS (training and evaluation only)",
    ),
)

KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in _TABLE}
