"""systemd's sd_notify protocol, without libsystemd: readiness, status, watchdog, stopping.

systemd (Type=notify) passes NOTIFY_SOCKET, an AF_UNIX datagram socket (a path, or '@name' for
the abstract namespace), and with WatchdogSec= also WATCHDOG_USEC (and WATCHDOG_PID, the process
the watchdog is meant for). Each message is one datagram of newline-separated KEY=VALUE lines.
Outside systemd NOTIFY_SOCKET is unset and every method is a cheap no-op, so the daemon calls them
unconditionally.

    notifier = Notifier.from_env()
    ...                                   # load the model, open the camera, read a first frame
    notifier.ready("watching, model moodcam.tflite")
    while running:
        frame = source.read()             # reconnect waits: open_source(..., sleep=notifier.sleep)
        notifier.watchdog()               # every frame: sends at most every interval / 2
    notifier.stopping()

Sending never raises: a notification that cannot be delivered must not stop the sensor. The first
failure is logged as a warning, later ones at debug level.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping

log = logging.getLogger(__name__)

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
STOP_POLL_S = 0.1  # how often Notifier.sleep looks at its should_stop


class Notifier:
    """Talks to the service manager; a no-op when there is none.

    `socket_path` is NOTIFY_SOCKET as systemd passes it; `watchdog_usec` is WATCHDOG_USEC, already
    checked against WATCHDOG_PID by `from_env`. `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        watchdog_usec: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._address = _address(socket_path) if socket_path else None
        self._socket_path = socket_path
        self._clock = clock
        self._sleep = sleep
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # sends may come from the frame loop and the MQTT thread
        self._warned = False
        interval = watchdog_usec / 1e6 if watchdog_usec and watchdog_usec > 0 else None
        # A watchdog is only useful when there is somewhere to send the keep-alives.
        self._wd_interval = interval if self._address is not None else None
        self._next_watchdog = float("-inf")  # the first call always sends

    @classmethod
    def from_env(
        cls,
        environ: MutableMapping[str, str] | None = None,
        *,
        unset_environment: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Notifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (as sd_watchdog_enabled does).

        `unset_environment` removes them, so child processes do not talk to systemd in our name.
        """
        env: MutableMapping[str, str] = os.environ if environ is None else environ
        socket_path = env.get("NOTIFY_SOCKET") or None
        watchdog_usec = _watchdog_usec(env)
        if unset_environment:
            for key in _ENV_KEYS:
                env.pop(key, None)
        return cls(socket_path, watchdog_usec, clock=clock, sleep=sleep)

    # --- what the daemon reads -----------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """WatchdogSec= in seconds, or None when no watchdog watches this process."""
        return self._wd_interval

    # --- messages ----------------------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up is complete (model loaded, first frame read)."""
        lines = ["READY=1"]
        if status is not None:
            lines.append(_status_line(status))
        return self.send(*lines)

    def status(self, text: str) -> bool:
        """STATUS=...: one line shown by `systemctl status moodcam`."""
        return self.send(_status_line(text))

    def watchdog(self) -> bool:
        """WATCHDOG=1, at most every watchdog interval / 2: cheap enough to call every frame.

        Returns True when a keep-alive was actually sent.
        """
        if self._wd_interval is None:
            return False
        now = self._clock()
        if now < self._next_watchdog:
            return False
        # Half the interval, as sd_watchdog_enabled(3) recommends: one late frame is not a restart.
        self._next_watchdog = now + self._wd_interval / 2
        return self.send("WATCHDOG=1")

    def sleep(self, seconds: float, should_stop: Callable[[], bool] | None = None) -> bool:
        """time.sleep that keeps the watchdog fed: for waits longer than the watchdog interval.

        A camera reconnect backs off up to 30 s between attempts; pass this as the source's sleep
        function so a deliberate wait is not mistaken for a hung loop. `should_stop` is polled
        every STOP_POLL_S and ends the wait early (a stop must not wait out a backoff; polled,
        not an Event.wait, because the signal handler that sets the flag runs in this thread).
        Returns True when the wait ended early for it.
        """
        deadline = self._clock() + max(0.0, seconds)
        self.watchdog()
        while True:
            if should_stop is not None and should_stop():
                return True
            left = deadline - self._clock()
            if left <= 0:
                return False
            step = left if self._wd_interval is None else min(left, self._wd_interval / 4)
            if should_stop is not None:
                step = min(step, STOP_POLL_S)
            self._sleep(step)
            self.watchdog()

    def extend_timeout(self, seconds: float) -> bool:
        """EXTEND_TIMEOUT_USEC=...: still starting (or stopping), allow `seconds` more from now."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1e6))}")

    def stopping(self) -> bool:
        """STOPPING=1: shutdown has begun (flushing the log and the MQTT queue)."""
        return self.send("STOPPING=1")

    def send(self, *lines: str) -> bool:
        """Send KEY=VALUE lines as one datagram; False when not sent (no manager, or an error)."""
        if self._address is None:
            return False
        data = "\n".join(lines).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(data, self._address)
            except OSError as e:
                level = logging.DEBUG if self._warned else logging.WARNING
                self._warned = True
                log.log(level, "cannot notify systemd at %s: %s", self._socket_path, e)
                return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _address(socket_path: str) -> bytes | None:
    """NOTIFY_SOCKET to a sendto() address: '@name' is the abstract namespace ('\\0name')."""
    if socket_path.startswith("@"):
        return b"\0" + os.fsencode(socket_path[1:])
    if socket_path.startswith("/"):
        return os.fsencode(socket_path)
    # systemd >= 254 may also pass vsock:...; that is for VMs, not a Pi: ignore, say so once.
    log.warning("NOTIFY_SOCKET=%r is not a unix socket path; not notifying systemd", socket_path)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC, or None when unset, malformed, or meant for another process."""
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog disabled", raw)
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    # Set when the watchdog belongs to a specific process: a child that inherited the
    # environment must not keep the service alive on its parent's behalf.
    if pid and pid.strip() != str(os.getpid()):
        return None
    return usec


def _status_line(text: str) -> str:
    # The protocol is line-based: a newline inside the status would start a new KEY=VALUE.
    return "STATUS=" + " ".join(text.splitlines())
