"""The `moodcam` command: one module per subcommand, each with `register(subparsers)` and
`run(args) -> exit status`; `main` parses, sets up logging and turns a MoodcamError into one line
on stderr and its exit status (moodcam.errors); --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable

from moodcam import __version__
from moodcam.commands.common import EXIT_HELP, HelpFormatter, Parser, one_line
from moodcam.errors import EXIT_INTERNAL, MoodcamError
from moodcam.files import printable

# In the order `moodcam --help` lists them.
COMMANDS = ("run", "doctor", "classify", "playlist", "report", "web", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(  # its subparsers are Parsers too (argparse makes them of its own class)
        prog="moodcam",
        description="Privacy-first mood sensor.",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moodcam {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="log debug details and show tracebacks"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"moodcam.commands.{name}").register(sub)
    # `moodcam run ... --debug` as well as `moodcam --debug run ...` (SUPPRESS: not given after
    # the command, the value before it stands).
    for command in sub.choices.values():
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="as moodcam --debug"
        )
        command.formatter_class = HelpFormatter  # every command shows its flags' defaults
    return parser


class OneLineFormatter(logging.Formatter):
    """A log record is one line: characters that are not printable in its message (a newline in
    a file name, an escape sequence) are shown escaped, so a name cannot split or forge lines of
    the log (the journal reads it line by line). A traceback (--debug) keeps its lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.isprintable():
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
            record.msg, record.args = printable(message), None
        return super().format(record)


# Python's levels as syslog priorities, for the journal's <N> line prefix (sd-daemon(3)).
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(OneLineFormatter):
    """Under systemd, stderr is the journal: each line starts with its syslog priority (`<4>`),
    so `journalctl -p warning` shows moodcam's warnings and errors, and without a time of its
    own (the journal stamps every line)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{SYSLOG_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def stderr_is_journal() -> bool:
    """systemd connected stderr to the journal: JOURNAL_STREAM names its device and inode."""
    try:
        dev, ino = (int(x) for x in os.environ.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def quiet_native_stderr() -> None:
    """Send what C and C++ libraries write to file descriptor 2 to /dev/null, and keep Python's
    sys.stderr (moodcam's one line, its log) on the real stderr through a copy of it.

    TFLite printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every start,
    OpenCV "[ WARN:0@0.04] global cap_v4l.cpp ... can't open camera by index" before moodcam's
    own line on a missing camera, libpng "libpng error: PNG input buffer is incomplete" for a
    truncated image: each says again, in a library's terms, what moodcam's one line says.
    --debug leaves them. One process-wide switch rather than a redirect around each call: the
    daemon's other threads write their log meanwhile."""
    try:
        sys.stderr.flush()
        real = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, AttributeError, ValueError):  # no stderr to begin with: nothing to quiet
        return
    encoding, errors = sys.stderr.encoding, sys.stderr.errors
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = open(real, "w", buffering=1, encoding=encoding, errors=errors)  # noqa: SIM115
    # faulthandler (PYTHONFAULTHANDLER=1 in the unit) writes to the descriptor it was given,
    # 2 by default, now /dev/null: the stacks the watchdog's SIGABRT prints go to the real one.
    if faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and not args.debug:  # the command itself, not a caller in the same process
        quiet_native_stderr()
    handler = logging.StreamHandler(sys.stderr)
    journal = stderr_is_journal()
    handler.setFormatter(
        JournalFormatter("%(levelname)s %(name)s: %(message)s")
        if journal
        else OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, handlers=[handler])
    error_prefix = "<3>" if journal else ""
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MoodcamError as e:
        # --debug adds the traceback and keeps the exit status: systemd's
        # RestartPreventExitStatus=3 4 must still see a bad config or model under --debug.
        if args.debug:
            traceback.print_exc()
        print(f"{error_prefix}moodcam {args.command}: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        line = f"moodcam {args.command}: internal error: {e.__class__.__name__}: {one_line(e)}"
        print(
            error_prefix + (line if args.debug else f"{line} (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_INTERNAL
