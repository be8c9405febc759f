"""The local dashboard (`moodcam web`, the command in moodcam.commands.web): `serve` runs the
page (moodcam.web.app) on [web] bind:port until stopped. It reads the mood log and the camera
health the daemon writes beside it, keeps the history index (moodcam.history) beside the log, and
never touches the camera.
"""

from __future__ import annotations

import logging
import socket
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moodcam.errors import EXIT_SINK, MoodcamError

if TYPE_CHECKING:
    from moodcam.config import Config

log = logging.getLogger("moodcam.web")


def serve(
    cfg: Config,
    config_path: str | None,
    tz: tzinfo,
    tz_name: str,
    max_gap: float,
    token: str | None,
) -> None:
    """Serve the dashboard over `cfg.log.path` on `cfg.web`'s address until SIGTERM or ^C;
    InputError for an unreadable log, ListenError for an address it cannot listen on."""
    import uvicorn

    from moodcam.web.app import Dashboard, create_app

    dash = Dashboard(cfg, config_path, Path(cfg.log.path), tz, tz_name, max_gap)
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
