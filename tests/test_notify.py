"""moodcam.notify against a real AF_UNIX datagram socket standing in for systemd's notify socket."""

from __future__ import annotations

import logging
import os
import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodcam.notify import Notifier


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET, with SO_PASSCRED as systemd sets it."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # systemd checks NotifyAccess=main against the sender's pid from these credentials.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def recv(self) -> tuple[bytes, int]:
        """One datagram and the pid of its sender."""
        data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(
            struct.unpack("iII", d)[0]
            for level, kind, d in anc
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        )
        return data, pid

    def pending(self) -> list[bytes]:
        """Every datagram already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096))
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2.0)
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    path = tmp_path / "notify"
    assert len(str(path)) < 100, "sun_path holds 108 bytes"
    fake = FakeSystemd(str(path))
    for key in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield fake
    fake.close()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_messages_are_the_exact_datagrams(systemd: FakeSystemd) -> None:
    n = Notifier.from_env()
    assert n.enabled
    assert n.ready()
    assert n.ready("model loaded, camera 640x480")
    assert n.status("camera lost, reconnecting")
    assert n.extend_timeout(30)
    assert n.stopping()
    got = [systemd.recv() for _ in range(5)]
    assert [d for d, _ in got] == [
        b"READY=1",
        b"READY=1\nSTATUS=model loaded, camera 640x480",
        b"STATUS=camera lost, reconnecting",
        b"EXTEND_TIMEOUT_USEC=30000000",
        b"STOPPING=1",
    ]
    # Sent from this process: what NotifyAccess=main requires.
    assert {pid for _, pid in got} == {os.getpid()}


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"moodcam-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(b"\0" + name.encode())
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        n = Notifier.from_env()
        assert n.ready("hello") and n.watchdog()
        assert fake.recv()[0] == b"READY=1\nSTATUS=hello"
        assert fake.recv()[0] == b"WATCHDOG=1"
    finally:
        fake.close()


def test_status_newlines_cannot_inject_keys(systemd: FakeSystemd) -> None:
    Notifier.from_env().status("line one\nREADY=1")
    assert systemd.recv()[0] == b"STATUS=line one READY=1"


def test_watchdog_interval_from_watchdog_usec(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # WatchdogSec=30
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier.from_env().watchdog_interval_s == 30.0
    monkeypatch.delenv("WATCHDOG_PID")  # no pid: the watchdog is ours
    assert Notifier.from_env().watchdog_interval_s == 30.0


def test_watchdog_pid_mismatch_disables_it(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    n = Notifier.from_env()
    assert n.watchdog_interval_s is None
    assert not n.watchdog()
    assert n.ready()  # notifications still work; only the watchdog is someone else's
    assert systemd.pending() == [b"READY=1"]


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_bad_or_absent_watchdog_usec_means_no_watchdog(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    n = Notifier.from_env()
    assert n.watchdog_interval_s is None
    assert not n.watchdog()
    assert systemd.pending() == []


def test_watchdog_is_rate_limited_to_half_the_interval(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    clock = FakeClock()
    n = Notifier.from_env(clock=clock)
    sent = []
    # A 30 fps frame loop for 40 s calls watchdog() 1200 times.
    for frame in range(1200):
        clock.t = 1000.0 + frame / 30
        sent.append(n.watchdog())
    # Every 15 s, the first one at once: frames 0, 450 and 900.
    assert [i for i, s in enumerate(sent) if s] == [0, 450, 900]
    assert systemd.pending() == [b"WATCHDOG=1"] * 3


def test_watchdog_boundary(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    clock = FakeClock()
    n = Notifier.from_env(clock=clock)
    assert n.watchdog()
    clock.t += 4.999
    assert not n.watchdog()
    clock.t += 0.001
    assert n.watchdog()
    assert systemd.pending() == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_no_notify_socket_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier.from_env()
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert not any([n.ready("x"), n.status("x"), n.watchdog(), n.stopping(), n.extend_timeout(1)])
    assert not Notifier().ready()


def test_unset_environment(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier.from_env(unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert n.watchdog_interval_s == 30.0 and n.ready()
    assert systemd.recv()[0] == b"READY=1"


def test_environ_mapping_is_injectable(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": "/nonexistent/notify", "WATCHDOG_USEC": "4000000"}
    n = Notifier.from_env(env, unset_environment=True)
    assert n.watchdog_interval_s == 4.0
    assert env == {}
    assert os.environ["NOTIFY_SOCKET"]  # the process environment was not touched


def test_unreachable_socket_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone"
    FakeSystemd(str(path)).close()
    path.unlink()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier.from_env()
    with caplog.at_level(logging.DEBUG, logger="moodcam.notify"):
        assert not n.ready()
        assert not n.watchdog()
        assert not n.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def test_manager_restarting_its_socket_is_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd re-creates the notify socket on daemon-reexec; sends go to the path each time."""
    path = tmp_path / "notify"
    first = FakeSystemd(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    n = Notifier.from_env()
    assert n.status("one")
    first.close()
    path.unlink()
    assert not n.status("lost")
    second = FakeSystemd(str(path))
    try:
        assert n.status("two")
        assert second.recv()[0] == b"STATUS=two"
    finally:
        second.close()
        n.close()


def test_not_a_unix_socket_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    n = Notifier.from_env()
    assert not n.enabled and not n.ready()


def test_sleep_keeps_the_watchdog_fed(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 30 s reconnect back-off under WatchdogSec=30 must not look like a hang."""
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    clock = FakeClock()
    naps: list[float] = []

    def fake_sleep(s: float) -> None:
        naps.append(s)
        clock.t += s

    n = Notifier.from_env(clock=clock, sleep=fake_sleep)
    start = clock.t
    n.sleep(30.0)
    assert clock.t == pytest.approx(start + 30.0)
    assert max(naps) <= 7.5  # a quarter of the interval per nap
    # Fed at t = 0, 15 and 30: never more than half the interval apart.
    assert systemd.pending() == [b"WATCHDOG=1"] * 3


def test_sleep_without_watchdog_is_one_plain_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    clock = FakeClock()
    naps: list[float] = []

    def fake_sleep(s: float) -> None:
        naps.append(s)
        clock.t += s

    Notifier.from_env(clock=clock, sleep=fake_sleep).sleep(12.5)
    assert naps == [12.5]
