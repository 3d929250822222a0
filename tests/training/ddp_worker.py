"""Run by ``torchrun`` in test_ddp: train a tiny stage, then save this rank's weights.

Usage: ddp_worker.py CONFIG_JSON OUT_DIR (the config as a mapping of the stage config).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from vidrestore.training.stages import STAGES
from vidrestore.training.trainer import Trainer

from vidrestore.config import from_mapping


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    stage = STAGES[spec.pop("stage")]
    trainer = Trainer(stage, from_mapping(stage.config_type, spec), log=lambda line: None)
    result = trainer.run()
    rank = int(os.environ.get("RANK", "0"))
    torch.save({"trained": {n: m.state_dict() for n, m in trainer.stage.trained().items()},
                "history": result.history}, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
