"""Shared bits of the engine tests (imported by name: the tests folder is not a package)."""

from __future__ import annotations

import pytest
import torch

CPU = torch.device("cpu")

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
