"""What every test server (Mosquitto, MPD) does the same way: find a port, wait for it, stop."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, port: int, timeout: float, name: str,
                   log: Callable[[], str]) -> None:  # fmt: skip
    """Return once 127.0.0.1:`port` accepts connections; RuntimeError (with the server's log)
    if the process exits first or `timeout` passes (the process is then stopped)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                terminate(proc)
                raise RuntimeError(f"{name} did not listen on {port}:\n{log()}") from None
            time.sleep(0.02)


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM (so a server can save its state), SIGKILL if it has not gone within 5 s."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail_log(path: Path) -> str:
    """The end of a server's log file, for failure messages."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `pred` until it returns something truthy (returned); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
