"""`python -m moodcam.web ...`: `moodcam web ...` without the rest of the command line, whose
module imports numpy (and so 15 MiB more resident memory in a process that never uses it).
moodcam-web.service starts the dashboard this way."""

from __future__ import annotations

import argparse
import logging
import sys

from moodcam.errors import MoodcamError
from moodcam.web import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moodcam")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["web", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except MoodcamError as e:
        print(f"moodcam web: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
