"""A real Mosquitto broker for tests: own config, free loopback port, start/stop/restart.

    with Mosquitto(tmp_path) as broker:
        client.connect("127.0.0.1", broker.port)

Needs the `mosquitto` binary (Debian: apt-get install mosquitto); `find_mosquitto()` says where
it is or None, so tests can skip with a clear reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import free_port, tail_log, terminate, wait_listening

INSTALL_HINT = "mosquitto not found: apt-get install mosquitto mosquitto-clients"


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary; Debian puts it in /usr/sbin, often not on a user's PATH."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


class Mosquitto:
    """One broker process on 127.0.0.1:`port`, configured from a file written into `workdir`.

    `extra` lines are appended to the listener block (e.g. `password_file ...`, `certfile ...`).
    `persistence` keeps sessions and retained messages across `restart()` (saved on stop).
    """

    def __init__(self, workdir: Path, port: int | None = None, *, anonymous: bool = True,
                 persistence: bool = False, extra: tuple[str, ...] = ()) -> None:  # fmt: skip
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = self.workdir / f"mosquitto-{self.port}.conf"
        self.log_path = self.workdir / f"mosquitto-{self.port}.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if anonymous else 'false'}",
            *extra,
            f"persistence {'true' if persistence else 'false'}",
            "log_dest stderr",  # to our log file: after dropping root it may not open files
            "log_type all",
        ]
        if persistence:
            lines.append(f"persistence_location {self.workdir}/")
            lines.append(f"persistence_file mq-{self.port}.db")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto` and cannot read tmp_path
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        assert self.proc is None, "already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process until stop()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()  # the child has its own copy
        try:
            wait_listening(self.proc, self.port, timeout, "mosquitto", self.log)
        except RuntimeError:
            self.proc = None
            raise
        return self

    def stop(self) -> None:
        """SIGTERM (so a persistent broker saves its state), then wait for the port to close."""
        if self.proc is None:
            return
        terminate(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return tail_log(self.log_path)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_pki(d: Path, servers: dict[str, str] | None = None) -> dict[str, Path]:
    """A test CA (`ca.crt`) and, per `servers` entry name -> subjectAltName, a server
    certificate `<name>.crt` / `<name>.key` it signed (default: `server` for IP:127.0.0.1).
    Returns {file name: path}. Skips the test when openssl is missing."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found (apt-get install openssl): needed to make test certificates")
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=moodcam test CA")  # fmt: skip
    for name, san in (servers or {"server": "IP:127.0.0.1"}).items():
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={san.split(':', 1)[1]}")  # fmt: skip
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "1",
                "-extfile", f"{name}.ext")  # fmt: skip
        (d / f"{name}.key").chmod(0o600)
    return {p.name: p for p in d.iterdir()}
