"""``python -m guard.training``: the same entry point as ``guard train-sentiment``."""

from guard.training.cli import main

raise SystemExit(main())
