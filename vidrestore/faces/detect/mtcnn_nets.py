"""MTCNN's three networks, with parameter names matching facenet-pytorch's weight files.

``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (MIT) ship in the facenet-pytorch wheel; only the
files are used (installed with ``--no-deps``), the package is never imported: it pins old
torch and numpy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from vidrestore.errors import MissingWeightsError


class PNet(nn.Module):
    """Proposal net: fully convolutional, a 12×12 window per output cell (stride 2).

    ``forward(x: N×3×H×W)`` → ``(reg N×4×h×w, prob N×h×w)``, prob = face probability.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x).softmax(1)[:, 1]


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    # The weights were converted from a width-major (Caffe/TF) layout: the dense layers
    # expect the feature map flattened in W, H, C order, not PyTorch's C, H, W.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """Refine net on 24×24 crops: ``forward(x: N×3×24×24)`` → ``(reg N×4, prob N)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_whc(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), self.dense5_1(x).softmax(1)[:, 1]


class ONet(nn.Module):
    """Output net on 48×48 crops: ``forward(x)`` → ``(reg N×4, landmarks N×10, prob N)``.

    Landmarks are 5 x then 5 y, as fractions of the crop's side.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_whc(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x).softmax(1)[:, 1]


def default_weights_dir() -> Path | None:
    """The folder holding facenet-pytorch's ``pnet.pt``, ``rnet.pt``, ``onet.pt``, if installed."""
    spec = importlib.util.find_spec("facenet_pytorch")  # locates the package without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "data"
        if all((folder / f"{n}.pt").is_file() for n in ("pnet", "rnet", "onet")):
            return folder
    return None


def load_nets(weights_dir: Path | str | None = None) -> tuple[PNet, RNet, ONet]:
    """The three nets with their weights (strict load, ``weights_only``), in eval mode."""
    folder = Path(weights_dir) if weights_dir else default_weights_dir()
    if folder is None:
        raise MissingWeightsError(
            "MTCNN weights not found: install them with `pip install --no-deps facenet-pytorch==2.6.0`"
        )
    nets = (PNet(), RNet(), ONet())
    for name, net in zip(("pnet", "rnet", "onet"), nets):
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise MissingWeightsError(f"MTCNN weights file missing: {path}")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        net.eval().requires_grad_(False)
    return nets
