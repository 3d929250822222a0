"""``python -m vidrestore.training`` (and, from the repository root, ``python -m training``):
see ``vidrestore.training.cli``."""

from vidrestore.training.cli import main

raise SystemExit(main())
