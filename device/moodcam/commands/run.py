"""`moodcam run`: the daemon over a camera, a video file or a folder of images."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from moodcam.commands.common import (
    DEMO_CLIP,
    EXIT_HELP,
    add_model_args,
    apply_flags,
    check_writable,
    load_config,
    nonempty,
    security_warnings,
)
from moodcam.errors import SinkError
from moodcam.files import FileRefused, open_private, shown

DESCRIPTION = """Watch a camera, a video file or a folder of images: find faces, classify each, smooth them into
a mood, and hand every frame's mood to the sinks: a mood log (mood.jsonl in this folder unless
--no-log or the config's [log] path says otherwise), a line per mood change on stdout, and, when
the config or flags enable them, MQTT, LEDs and an MPD playlist. Flags override the config file.

A file or folder ends at its end (exit 0, after every queued MQTT message is sent); a camera runs
until SIGTERM or Ctrl-C. To try it without a camera: moodcam run --source demo/clip.mp4
--clock wall, then moodcam report mood.jsonl."""


def register(sub: Any) -> argparse.ArgumentParser:
    from moodcam import config

    defaults = config.Config()
    r = sub.add_parser(
        "run",
        help="the daemon: watch a camera or video, publish the mood",
        description=DESCRIPTION,
        epilog=EXIT_HELP,
    )
    r.add_argument("--config", type=nonempty, help="TOML config file (every key has a default)")
    r.add_argument(
        "--source",
        type=nonempty,
        help="auto | picamera2 | camera index | /dev/videoN or /dev/v4l/by-id/... | video file "
        f"(or file:// URL) | rtsp:// or http:// URL | image folder (default: [source] uri, "
        f"{defaults.source.uri})",
    )
    r.add_argument(
        "--realtime",
        action="store_true",
        help="pace a file source to real time (default: as fast as it can)",
    )
    r.add_argument(
        "--clock",
        choices=("media", "wall"),
        help="a file's frame times: media (seconds into the file) or wall (the run's start plus "
        "media time: a log `moodcam report` can read) (default: [source] clock, "
        f"{defaults.source.clock})",
    )
    log_choice = r.add_mutually_exclusive_group()
    log_choice.add_argument(
        "--log",
        type=nonempty,
        metavar="FILE",
        help=f"mood log file, JSON Lines (default: [log] path, {defaults.log.path})",
    )
    log_choice.add_argument("--no-log", action="store_true", help="write no mood log")
    r.add_argument(
        "--log-interval",
        type=float,
        metavar="SECONDS",
        help="a log line at least this often, and on every mood change; 0 = a line "
        f"per frame (default: [log] interval_s, {defaults.log.interval_s:g})",
    )
    r.add_argument(
        "--mqtt",
        type=nonempty,
        metavar="URL",
        help="publish to this broker: mqtt://[user@]host[:port] or mqtts://... "
        "(default: [mqtt] url when [mqtt] enabled; off)",
    )
    r.add_argument(
        "--device-id",
        type=nonempty,
        help=f"id in MQTT topics and Home Assistant (default: [device] id, {defaults.device.id})",
    )
    r.add_argument("--quiet", action="store_true", help="no mood lines on stdout")
    r.add_argument("--summary", action="store_true", help="print a summary when the source ends")
    r.add_argument(
        "--summary-json",
        metavar="FILE",
        help="write the run's counters (frames, faces, changes, each sink's stats) to FILE at exit",
    )
    add_model_args(r)
    r.set_defaults(func=run)
    return r


def run(args: argparse.Namespace) -> int:
    from moodcam.daemon import Daemon
    from moodcam.notify import Notifier
    from moodcam.sources import SourceError

    cfg = apply_flags(load_config(args.config), args)
    for warning in security_warnings(cfg):
        logging.getLogger("moodcam").warning("%s", warning)
    if args.summary_json:
        check_writable(Path(args.summary_json), "--summary-json")  # before the run, not after
    daemon = Daemon(cfg, Notifier.from_env())
    try:
        code = daemon.run()
    except SourceError as e:
        if e.kind != "camera" or cfg.source.uri.strip() != "auto" or not DEMO_CLIP.is_file():
            raise
        # The default source found no camera: a newcomer's first run. Say how to try it anyway.
        clip = os.path.relpath(DEMO_CLIP)
        clip = clip if not clip.startswith("..") else str(DEMO_CLIP)
        raise SourceError(
            f"{e}; to try moodcam without a camera: moodcam run --source {clip}", e.kind
        ) from None
    if args.summary:
        s = daemon.summary
        shares = ", ".join(
            f"{m} {100 * n / max(1, s.frames):.0f}%" for m, n in sorted(s.moods.items())
        )
        print(
            f"summary: {s.frames} frames, {s.faces} faces, {s.changes} mood changes in {s.seconds:.1f} s "
            f"({s.frames / max(s.seconds, 1e-9):.0f} frames/s); mood share of frames: {shares or 'none'}"
        )
        if cfg.log.enabled:
            print(f"mood log: {cfg.log.path}")
    if args.summary_json:
        try:  # mood shares of the run: personal data, 0640 like the log
            with open_private(args.summary_json) as f:
                f.write((json.dumps(daemon.summary.to_json(), indent=2) + "\n").encode())
        except (OSError, FileRefused) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise SinkError(f"--summary-json {shown(args.summary_json)}: {why}") from None
    return code
