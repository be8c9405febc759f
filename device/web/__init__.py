"""`moodcam web`: the local dashboard (see moodcam.web.app).

    moodcam web [--config FILE] [--log FILE] [--bind ADDRESS] [--port N] [--tz ZONE]

Serves the page on [web] bind:port (127.0.0.1:8080 by default) until stopped. Reads the mood
log and the camera health the daemon writes beside it, keeps the history index
(moodcam.history) beside the log, and never touches the camera.
"""

from __future__ import annotations

import argparse
import logging
import socket
from pathlib import Path
from typing import Any

from moodcam.errors import EXIT_OK, EXIT_SINK, MoodcamError

log = logging.getLogger("moodcam.web")


def register(subparsers: Any) -> None:
    """Add the `web` command to `moodcam`'s subparsers (cli.build_parser)."""
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
    max_gap = default_max_gap(cfg.log.interval_s)

    import uvicorn

    from moodcam.web.app import Dashboard, create_app

    dash = Dashboard(cfg, args.config, Path(cfg.log.path), tz, tz_name, max_gap)
    dash.open()  # the index: an unreadable log is said here, in one line with its status
    app = create_app(dash, token, cfg.web.max_failures)
    listener = listen(cfg.web.bind, cfg.web.port)
    log.info("moodcam web: http://%s:%d/ (%s)", _host(cfg.web.bind), cfg.web.port,
             "token required" if token else "no token: this machine only")  # fmt: skip

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # SIGTERM is how systemd stops it: after the graceful shutdown, exit 0 (as the
            # daemon does) instead of uvicorn raising the signal again to die by it.
            getattr(self, "_captured_signals", []).clear()

    server = Server(
        uvicorn.Config(
            app,
            host=cfg.web.bind,
            port=cfg.web.port,
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            http="h11",
            loop="asyncio",
        )
    )
    server.run(sockets=[listener])
    return EXIT_OK


class ListenError(MoodcamError):
    """The dashboard cannot listen where [web] says (the port taken, an address not here)."""

    exit_code = EXIT_SINK


def listen(bind: str, port: int) -> socket.socket:
    """A listening socket on bind:port, made here so that a port in use is one line (uvicorn
    would log and exit 1)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ListenError(
            f"cannot listen on {_host(bind)}:{port}: {e.strerror or e} ([web] bind and port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def _host(bind: str) -> str:
    return f"[{bind}]" if ":" in bind else bind
