"""``python -m training``: see ``training.cli``."""

from .cli import main

raise SystemExit(main())
