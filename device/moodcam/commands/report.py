"""`moodcam report`: the mood log summarised per day and hour (moodcam.report), written as text,
CSV, JSON, FHIR or PNG to stdout or atomically to a file; from the history index beside the log
when `moodcam web` keeps one (moodcam.history), else (or with --no-index) from the log."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from moodcam.commands.common import Parser
from moodcam.errors import EXIT_OK, MoodcamError
from moodcam.files import FileRefused, check_output, open_private, shown
from moodcam.report import (
    FORMATS,
    OutputError,
    ReportError,
    check_period,
    default_max_gap,
    local_zone,
    parse_date,
    parse_zone,
    render_csv,
    render_fhir,
    render_json,
    render_png,
    render_text,
    summarize,
    validate_fhir,
)


def register(subparsers: Any) -> None:
    """Add the `report` command to `moodcam`'s subparsers (cli.build_parser)."""
    p = subparsers.add_parser(
        "report",
        help="summarise the mood log per day and hour (text, csv, json, fhir, png)",
        description=(
            "Summarise the mood log (rotated files included) per local day and hour of day: "
            "share of time per mood, time with a face, valence and arousal, mood changes."
        ),
    )
    p.add_argument(
        "log",
        nargs="?",
        metavar="LOG",
        help="the mood log (default: [log] path of --config, else mood.jsonl)",
    )
    p.add_argument("--config", help="TOML config: its [log] path and interval are used")
    p.add_argument(
        "--from",
        dest="first",
        type=parse_date,
        metavar="DATE",
        help="first local day, YYYY-MM-DD (default: the first day in the log)",
    )
    p.add_argument(
        "--to",
        dest="last",
        type=parse_date,
        metavar="DATE",
        help="last local day, inclusive (default: the last day in the log)",
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="what to write")
    p.add_argument("--out", help="output file (default: stdout; required for png)")
    p.add_argument(
        "--tz",
        type=parse_zone,
        metavar="ZONE",
        help="IANA time zone of days and hours (default: the device's local zone)",
    )
    p.add_argument(
        "--max-gap",
        type=float,
        metavar="S",
        help="a line covers at most this many seconds until the next one; longer gaps "
        "are the device being off (default 60, or 2 x [log] interval_s)",
    )
    p.add_argument(
        "--no-index",
        action="store_true",
        help="read the whole log even where `moodcam web` keeps a history index beside it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `moodcam report`; raises MoodcamError (one line for the user) on bad input."""
    cfg = None
    if getattr(args, "config", None):
        from moodcam import config

        cfg = config.load(args.config)
    path = args.log or (cfg.log.path if cfg else "mood.jsonl")
    tz: tzinfo
    if args.tz is None:
        tz, tz_name = local_zone()
    else:
        tz = args.tz if isinstance(args.tz, tzinfo) else parse_zone(args.tz)
        tz_name = str(tz)
    first = _as_date(args.first)
    last = _as_date(args.last)
    if first and last and first > last:
        raise ReportError(f"--from {first} is after --to {last}")
    max_gap = args.max_gap
    if max_gap is None:
        max_gap = default_max_gap(cfg.log.interval_s if cfg else None)
    if args.format == "png" and not args.out:
        raise ReportError("--format png needs --out FILE")
    if first and last:  # before reading the log; a period from the data is checked after
        check_period(first, last, png=args.format == "png")
    if args.out and args.out != "-":
        refuse_output(Path(args.out))  # a device or FIFO: said before a whole log is read

    rep = None
    if not getattr(args, "no_index", False):  # the dashboard's index, when it has one
        from moodcam.history import indexed_report

        rep = indexed_report(path, tz, tz_name, first, last, max_gap, args.format == "png")
    if rep is None:
        rep = summarize(
            path,
            tz,
            tz_name=tz_name,
            first=first,
            last=last,
            max_gap=max_gap,
            timeline=args.format == "png",
        )
    if rep.skipped and (args.format != "text" or args.out):
        print(f"moodcam report: {rep.skipped_note}", file=sys.stderr)

    if args.format == "png":
        _atomic(Path(args.out), lambda f: render_png(rep, f))
        return EXIT_OK
    if args.format == "json":
        text = render_json(rep)
    elif args.format == "csv":
        text = render_csv(rep)
    elif args.format == "fhir":
        device = f"moodcam {cfg.device.id}" if cfg and cfg.device.id != "moodcam" else "moodcam"
        bundle = render_fhir(rep, device)
        validate_fhir(bundle)  # a bug here must not reach a health record
        text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    else:
        text = render_text(rep)
    if not args.out or args.out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _atomic(Path(args.out), lambda f: f.write(text.encode("utf-8")))
    return EXIT_OK


def _as_date(x: date | str | None) -> date | None:
    if x is None or isinstance(x, date):
        return x
    return parse_date(x)


def _atomic(out: Path, write: Any) -> None:
    """Write via a temporary file and rename, so a half-written report never replaces a good one.
    `write` gets the open file, created 0640 (a report is personal data: moodcam.files)."""
    # A short name of its own: out's name plus a suffix could pass the 255-byte limit on a name
    # that is itself fine (an internal error, from the clean-up as well).
    tmp = out.with_name(f".moodcam-report-{os.getpid()}.tmp")
    refuse_output(out)  # the rename below would replace a device node (as root: /dev/null)
    try:
        with open_private(tmp) as f:
            write(f)
        os.replace(tmp, out)
    except OSError as e:
        _remove(tmp)
        raise OutputError(f"{shown(out)}: cannot write the report: {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise


def refuse_output(out: Path) -> None:
    """OutputError naming `out` if it is there and not a regular file (files.check_output)."""
    try:
        check_output(out)
    except FileRefused as e:
        raise OutputError(f"{shown(out)}: cannot write the report: {e}") from None
    except OSError as e:
        raise OutputError(f"{shown(out)}: cannot write the report: {e.strerror or e}") from None


def _remove(path: Path) -> None:
    """Remove a temporary file if it is there; a clean-up never hides the error before it."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def main(argv: Iterable[str] | None = None) -> int:
    """`moodcam report ...` alone (bench/report_bench.py measures its memory without the rest)."""
    parser = Parser(prog="moodcam")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except MoodcamError as e:
        print(f"moodcam report: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
