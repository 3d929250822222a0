"""The table of known checkpoints: where each file comes from and how to check it.

The table is explicit and local (never filled by scanning a folder). The sha256 values are
not published by the models' authors; each was found in several independent public records
of the official download (package build recipes, lock files, LFS pointers) that agree. Where
none could be found (``sha256`` None) a file is checked against the hash recorded the first
time it was fetched (trust on first use), and ``vidrestore weights verify`` says so. For an
archive (``member`` set) the hash is that of the member file kept.
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
_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"

_TABLE = (
    KnownWeights(
        "codeformer", "codeformer.pth", _CODEFORMER + "codeformer.pth",
        "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7", _S_LAB, "codeformer", "params_ema",
        "CodeFormer (official, Stage III) for codeformer / id-codeformer / codeformer++",
    ),
    KnownWeights(
        "codeformer-vqgan", "vqgan_code1024.pth", _CODEFORMER + "vqgan_code1024.pth",
        "4d1c6741b3cffcbdc2cd1a12b2c3c2442282e042d5de66909cb643d4fa31b20f", _S_LAB, "vqgan", "params_ema",
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
        "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d", "MIT (facexlib)", "retinaface_resnet50", None,
        "RetinaFace ResNet-50 face detector (facexlib)",
    ),
    KnownWeights(
        "retinaface-mobilenet", "detection_mobilenet0.25_Final.pth",
        _FACEXLIB + "v0.1.0/detection_mobilenet0.25_Final.pth",
        "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220", "MIT (facexlib)", "retinaface_mobile0.25", None,
        "RetinaFace MobileNet-0.25 face detector (facexlib), faster, less accurate",
    ),
    KnownWeights(
        "parsenet", "parsing_parsenet.pth", _FACEXLIB + "v0.2.2/parsing_parsenet.pth",
        "3d558d8d0e42c20224f13cf5a29c79eba2d59913419f945545d8cf7b72920de2", "MIT (facexlib)", "parsenet", None,
        "ParseNet face parsing (facexlib), refines the paste-back mask",
    ),
    KnownWeights(
        "bisenet", "parsing_bisenet.pth", _FACEXLIB + "v0.2.0/parsing_bisenet.pth",
        "468e13ca13a9b43cc0881a9f99083a430e9c0a38abd935431d1c28ee94b26567",
        "MIT (face-parsing.PyTorch)", "bisenet", None,
        "BiSeNet face parsing (facexlib), an alternative paste-back mask",
    ),
    KnownWeights(
        "arcface-ir-se50", "recognition_arcface_ir_se50.pth",
        _FACEXLIB + "v0.1.0/recognition_arcface_ir_se50.pth",
        "a035c768259b98ab1ce0e646312f48b9e1e218197a0f80ac6765e88f8b6ddf28", "MIT (facexlib)", "arcface_ir_se50", None,
        "ArcFace IR-SE50 identity encoder (torch, differentiable: identity loss and tracks)",
    ),
    KnownWeights(
        "arcface-w600k-r50", "w600k_r50.onnx",
        "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43", "insightface models: non-commercial research only", "arcface_onnx", None,
        "insightface buffalo_l ArcFace R50 (ONNX), inside buffalo_l.zip",
        member="w600k_r50.onnx",
    ),
    KnownWeights(
        "realesrgan-x2plus", "RealESRGAN_x2plus.pth", _REAL_ESRGAN + "v0.2.1/RealESRGAN_x2plus.pth",
        "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", "BSD-3-Clause (Real-ESRGAN)",
        "realesrgan-x2plus", "params_ema",
        "Real-ESRGAN x2plus RRDBNet: the background upsampler of --upscale 2",
    ),
    KnownWeights(
        "realesrgan-x4plus", "RealESRGAN_x4plus.pth", _REAL_ESRGAN + "v0.1.0/RealESRGAN_x4plus.pth",
        "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", "BSD-3-Clause (Real-ESRGAN)",
        "realesrgan-x4plus", "params_ema",
        "Real-ESRGAN x4plus RRDBNet: the background upsampler of --upscale 4",
    ),
    KnownWeights(
        "vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", "BSD-3-Clause (torchvision)", "vgg16", None,
        "VGG-16 ImageNet backbone for the perceptual loss (training only)",
    ),
    KnownWeights(
        "alexnet", "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02", "BSD-3-Clause (torchvision)", "alexnet", None,
        "AlexNet ImageNet backbone for LPIPS (training and evaluation only)",
    ),
)

KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in _TABLE}

DEFAULT_RUN: tuple[str, ...] = ("codeformer", "retinaface-resnet50", "parsenet")
"""The files a default run (``vidrestore IN -o OUT``) downloads when they are missing: the
restorer, the face detector and the paste-back mask (``vidrestore weights fetch --all``)."""
