"""A real `moodcam web` for the tests: a mood log written by the daemon's own writer (three days
up to now and a change a minute ago), a config, the server as a child process on a free
loopback port; and the little HTTP client the tests use."""

from __future__ import annotations

import base64
import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moodcam.config import LogConfig
from moodcam.records import MoodUpdate
from moodcam.sinks.moodlog import MoodLogWriter
from tests.servers import free_port, tail_log, terminate, wait_listening
from tests.test_report import upd

SECRETS = {"mqtt": "mqtt-password-7f3a9", "user": "broker-user-51c2", "token": "web-token-9d81e"}
LAST_MOOD = "sad"


@dataclass
class Served:
    port: int
    folder: Path
    log: Path
    config: Path
    proc: subprocess.Popen
    token: str | None = None

    def get(self, path: str, method: str = "GET", auth: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        """(status, headers with lower-case names, body) of one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        token = self.token if auth is None else auth
        if token:
            h["Authorization"] = "Basic " + base64.b64encode(f"me:{token}".encode()).decode()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            stream = r.getheader("content-type", "").startswith("text/event-stream")
            body = _event(r) if stream else r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            conn.close()

    def wait_history(self, timeout: float = 60.0) -> None:
        """Until the history index is built (it listens before: /api/report is 503 meanwhile)."""
        deadline = time.monotonic() + timeout
        while (status := self.get("/api/report")[0]) == 503:
            assert time.monotonic() < deadline, "history index not built in time"
            time.sleep(0.1)
        assert status == 200, status

    def append(self, mood: str | None, t: float | None = None) -> None:
        """A mood change written as the daemon writes it."""
        cfg = LogConfig(path=str(self.log), interval_s=10.0, fsync=False)
        with MoodLogWriter(cfg) as w:
            w.handle(upd(time.time() if t is None else t, mood))


def _event(r: http.client.HTTPResponse) -> bytes:
    """An event stream's bytes up to the end of its first event."""
    buf = b""
    while not (b"data: " in buf and buf.endswith(b"\n\n")):
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def write_history(log: Path, days: float = 3.0) -> None:
    """Lines every 30 s (a face some of the time) for `days`, then LAST_MOOD from a minute ago."""
    now = time.time()
    t = now - days * 86400
    moods = ("happy", "neutral", None, "happy", "angry", "sad", None, "neutral")
    updates: list[MoodUpdate] = []
    i = 0
    while t < now - 90:
        updates.append(upd(t, moods[(i // 40) % len(moods)]))
        t += 30
        i += 1
    updates.append(upd(now - 60, LAST_MOOD))
    updates.append(upd(now - 5, LAST_MOOD, changed=False))  # a periodic line: the daemon runs
    cfg = LogConfig(path=str(log), interval_s=0.0, fsync=False)
    with MoodLogWriter(cfg) as w:
        for u in updates:
            w.handle(u)


def write_config(folder: Path, port: int, *, bind: str = "127.0.0.1", token: bool = False,
                 max_failures: int = 5) -> Path:  # fmt: skip
    """A config naming the log and secrets in files (which no page may show)."""
    (folder / "mqtt.pw").write_text(SECRETS["mqtt"] + "\n")
    web = f'bind = "{bind}"\nport = {port}\nmax_failures = {max_failures}\n'
    if token:
        (folder / "token").write_text(SECRETS["token"] + "\n")
        web += f'token_file = "{folder / "token"}"\n'
    config = folder / "moodcam.toml"
    config.write_text(
        f'[log]\npath = "{folder / "mood.jsonl"}"\ninterval_s = 10.0\n'
        f'[mqtt]\nusername = "{SECRETS["user"]}"\npassword_file = "{folder / "mqtt.pw"}"\n'
        f"[web]\n{web}"
    )
    return config


@contextmanager
def serve(folder: Path, *, token: bool = False, max_failures: int = 5) -> Iterator[Served]:
    """`moodcam web` over a fresh log in `folder`, stopped (SIGTERM) at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "mood.jsonl"
    if not log.exists():
        write_history(log)
    port = free_port()
    config = write_config(folder, port, token=token, max_failures=max_failures)
    out = folder / "web.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "moodcam.cli", "web", "--config", str(config),
                                 "--tz", "UTC"], stdout=f, stderr=subprocess.STDOUT, cwd=folder)  # fmt: skip
    try:
        wait_listening(proc, port, 60, "moodcam web", lambda: tail_log(out))
        served = Served(port, folder, log, config, proc, SECRETS["token"] if token else None)
        served.wait_history()
        yield served
    finally:
        terminate(proc)
