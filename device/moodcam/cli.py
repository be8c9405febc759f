"""The `moodcam` command's entry point (pyproject's script, `python -m moodcam.cli`); the
commands are in moodcam.commands."""

from __future__ import annotations

import sys

from moodcam.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
