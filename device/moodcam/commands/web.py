"""`moodcam web`: the local dashboard (moodcam.web).

    moodcam web [--config FILE] [--log FILE] [--bind ADDRESS] [--port N] [--tz ZONE]

Serves the page on [web] bind:port (127.0.0.1:8080 by default) until stopped. Building
`moodcam`'s parser loads no numpy (every command imports it where it runs), so the dashboard's
service runs this command as it is.
"""

from __future__ import annotations

import argparse
from typing import Any

from moodcam.errors import EXIT_OK


def register(subparsers: Any) -> None:
    """Add the `web` command to `moodcam`'s subparsers (commands.build_parser)."""
    p = subparsers.add_parser(
        "web",
        help="the local dashboard: live mood, history charts, device health (a browser page)",
        description="Serve the dashboard page: the mood now (live), today, the last 7 and 30 "
        "days, any period with the report's downloads, the device's checks and a framing help. "
        "Read-only; listens on 127.0.0.1 unless [web] says otherwise (with a token).",
    )
    p.add_argument("--config", help="TOML config: [log], [web], [source] and [detector] are used")
    p.add_argument("--log", help="the mood log (default: [log] path of the config)")
    p.add_argument("--bind", help="address to listen on (default: [web] bind)")
    p.add_argument("--port", type=int, help="TCP port (default: [web] port)")
    p.add_argument("--tz", metavar="ZONE", help="IANA zone of days and hours (default: local)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `moodcam web`; MoodcamError (one line for the user) on bad settings."""
    from moodcam import config
    from moodcam.config import ConfigError
    from moodcam.credentials import read_password_file
    from moodcam.report import default_max_gap, local_zone, parse_zone
    from moodcam.web import serve

    cfg = config.load(args.config)
    if args.log:
        cfg.log.path = args.log
    overrides = {k: v for k, v in (("bind", args.bind), ("port", args.port)) if v is not None}
    if overrides:  # validated as the file's values are
        values = {k: getattr(cfg.web, k) for k in ("bind", "port", "token_file", "max_failures")}
        cfg.web = config.from_dict({"web": values | overrides}, cfg.path).web
    token = None
    if cfg.web.token_file:
        try:
            token = read_password_file(cfg.web.token_file, "[web]")
        except ValueError as e:
            raise ConfigError(f"{cfg.path}: {e}") from None
    if args.tz:
        try:
            tz, tz_name = parse_zone(args.tz), args.tz
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"--tz: {e}") from None
    else:
        tz, tz_name = local_zone()
    # As `moodcam report --config` counts gaps, so that both read the same index.
    serve(cfg, args.config, tz, tz_name, default_max_gap(cfg.log.interval_s), token)
    return EXIT_OK
