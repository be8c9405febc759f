"""Security, end to end, with a real Mosquitto: credentials and topic permissions.

(a) The MQTT password (read from `[mqtt] password_file`) appears nowhere a user or another local
    account can see it: not on the command line of a running `moodcam run` (/proc/<pid>/cmdline),
    not in its environment, not in its log output even with --debug, not in the mood log, not in
    `moodcam doctor` output (right or wrong password), not in exceptions.
(b) MQTT over TLS (the test's own CA, made with openssl) with username/password and an ACL file:
    user cam1 may write only `moodcam/cam1/#` and `homeassistant/#`. moodcam's own topics arrive;
    a client authenticated as cam1 publishing under `moodcam/cam2/...` reaches no subscriber.
(c) File modes: the mood log is 0640 (tests/test_moodlog.py::test_mode_0640_even_with_umask_0 and
    tests/test_cli.py::test_run_over_a_folder_writes_the_log); what the installer lays down
    (tests/test_install.py: nothing world-writable, config 0640 root:moodcam, never as root).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from moodcam import errors
from tests.mosquitto import INSTALL_HINT, Mosquitto, find_mosquitto, make_pki

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Corr3ct-Horse-Battery-St4ple"
WRONG = "Wr0ng-Horse-Battery-St4ple"
WATCHER_SECRET = "watcher-pw-1"

pytestmark = pytest.mark.skipif(
    find_mosquitto() is None or shutil.which("mosquitto_passwd") is None, reason=INSTALL_HINT
)


def moodcam_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "moodcam.cli", *args]


def passwd_file(path: Path, users: dict[str, str]) -> Path:
    for i, (user, pw) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *create, str(path), user, pw], check=True,
                       capture_output=True)  # fmt: skip
    path.chmod(0o600)
    return path


def secret_file(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)  # what the README asks of users
    return path


def scenes_folder(folder: Path) -> Path:
    """The test faces, each pasted at 160 px into a 640x480 scene: what a camera sees (a 48 px
    crop filling its whole image is below what the detector's full pass looks for)."""
    import cv2

    from demo.scenes import load_faces, make_scene
    from tests.conftest import CLEAN_SEED

    if not folder.is_dir():
        folder.mkdir(parents=True)
        for stem, face in load_faces():
            scene = make_scene([(face, (200, 120, 160, 160))], seed=CLEAN_SEED)
            cv2.imwrite(str(folder / f"{stem}.png"), scene)
    return folder


def write_config(path: Path, *, url: str, password_file: Path, device_id: str = "cam1",
                 ca_file: Path | None = None, log: Path | None = None, fps: float = 5.0) -> Path:  # fmt: skip
    """A daemon config: the test faces in scenes, paced at `fps` (so the process lives a few
    seconds)."""
    lines = [
        "[device]",
        f'id = "{device_id}"',
        "[source]",
        f'uri = "{scenes_folder(path.parent / "scenes")}"',
        f"fps = {fps}",
        "realtime = true",
        "[log]",
        f"enabled = {'true' if log else 'false'}",
        *([f'path = "{log}"', "interval_s = 0"] if log else []),
        "[mqtt]",
        "enabled = true",
        f'url = "{url}"',
        f'password_file = "{password_file}"',
        *([f'ca_file = "{ca_file}"'] if ca_file else []),
        "[stdout]",
        "enabled = false",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Watcher:
    """A subscriber to `#` that records every (topic, payload) it is sent."""

    client: mqtt.Client
    got: list[tuple[str, bytes]] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.got]

    def wait_for(self, topic: str, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, payload in self.got:
                    if t == topic:
                        return payload
            time.sleep(0.05)
        raise AssertionError(f"{topic} never arrived; got {sorted(set(self.topics()))}")


@pytest.fixture
def watcher_factory() -> Iterator:
    made: list[mqtt.Client] = []

    def make(port: int, username: str, password: str, ca: Path | None = None) -> Watcher:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watcher-{len(made)}")
        client.username_pw_set(username, password)
        if ca is not None:
            client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        w = Watcher(client)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with w.lock:
                w.got.append((msg.topic, msg.payload))

        client.on_connect = lambda c, *_a: c.subscribe("#", qos=1)
        client.on_subscribe = lambda *_a: w.subscribed.set()
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        made.append(client)
        assert w.subscribed.wait(10), "the watcher could not subscribe"
        return w

    yield make
    for client in made:
        client.disconnect()
        client.loop_stop()


def run_and_watch_cmdline(cmd: list[str], timeout: float = 60) -> tuple[
    subprocess.CompletedProcess[str], list[bytes], list[bytes]]:  # fmt: skip
    """Run `cmd`; while it runs, read its /proc/<pid>/cmdline and environ as another local user
    (or `ps`) would. Returns the finished process and what was read."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)  # fmt: skip
    cmdlines, environs = [], []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            cmdlines.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes())
            environs.append(Path(f"/proc/{proc.pid}/environ").read_bytes())
        except OSError:
            break
        time.sleep(0.2)
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), cmdlines, environs


# --- (a) credentials ----------------------------------------------------------------------------


def test_password_never_in_cmdline_logs_mood_log_or_doctor(tmp_path: Path, watcher_factory) -> None:
    passwd = passwd_file(tmp_path / "passwd", {"cam1": SECRET, "watcher": WATCHER_SECRET})
    good, wrong = secret_file(tmp_path / "good.pw", SECRET), secret_file(tmp_path / "bad.pw", WRONG)
    with Mosquitto(tmp_path / "broker", anonymous=False,
                   extra=(f"password_file {passwd}",)) as broker:  # fmt: skip
        watcher = watcher_factory(broker.port, "watcher", WATCHER_SECRET)
        url = f"mqtt://cam1@127.0.0.1:{broker.port}"
        log = tmp_path / "mood.jsonl"
        cfg = write_config(tmp_path / "good.toml", url=url, password_file=good, log=log)
        proc, cmdlines, environs = run_and_watch_cmdline(
            moodcam_cmd("--debug", "run", "--config", str(cfg))
        )
        assert proc.returncode == 0, proc.stderr
        assert len(cmdlines) >= 3, "the daemon ended before its command line could be read"
        # It did log in with the password: its availability and state reached the watcher.
        assert watcher.wait_for("moodcam/cam1/availability") in (b"online", b"offline")
        watcher.wait_for("moodcam/cam1/state")

        # A wrong password: refused, said so, retried in the background; never echoed.
        bad_cfg = write_config(tmp_path / "bad.toml", url=url, password_file=wrong, fps=30)
        bad = subprocess.run(moodcam_cmd("--debug", "run", "--config", str(bad_cfg)),
                             capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
        assert "refused" in bad.stderr or "not authori" in bad.stderr.lower(), bad.stderr

        doctors = [
            subprocess.run(
                moodcam_cmd("doctor", "--config", str(c), "--timeout", "3"),
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=60,
            )
            for c in (cfg, bad_cfg)
        ]
        assert any(ln.startswith("ok") and "broker" in ln for ln in doctors[0].stdout.splitlines())
        assert doctors[1].returncode == errors.EXIT_BROKER, doctors[1].stdout
        broker_log = broker.log()

    seen = {
        "cmdline": b"\n".join(cmdlines).decode(errors="replace"),
        "environ": b"\n".join(environs).decode(errors="replace"),
        "run output": proc.stdout + proc.stderr,
        "wrong-password run output": bad.stdout + bad.stderr,
        "doctor": "".join(d.stdout + d.stderr for d in doctors),
        "mood log": log.read_text(encoding="utf-8"),
        "config files": cfg.read_text() + bad_cfg.read_text(),
        "broker log": broker_log,  # the broker gets it, over the wire, but must not log it
    }
    assert seen["mood log"], "the daemon wrote no mood log"
    assert str(cfg) in seen["cmdline"]  # what /proc shows is the config path, nothing more
    for where, text in seen.items():
        assert SECRET not in text and WRONG not in text, f"a password leaked into the {where}"


def test_exceptions_and_reprs_never_carry_the_password(tmp_path: Path) -> None:
    from moodcam import config
    from moodcam.config import DeviceConfig, MqttConfig
    from moodcam.sinks.mqtt import MqttSink
    from moodcam.urls import parse_mqtt_url

    # A password typed into the URL is refused, by the config and by the sink, without echo.
    for url in (f"mqtt://cam1:{SECRET}@broker", f"mqtts://cam1:{SECRET}@broker:8883"):
        with pytest.raises(config.ConfigError) as cerr:
            config.from_dict({"mqtt": {"url": url}}, "c.toml")
        with pytest.raises(ValueError) as verr:
            parse_mqtt_url(url)
        for e in (cerr.value, verr.value):
            assert SECRET not in str(e) and SECRET not in repr(e.args)
    # Unreadable or TLS-broken setups name the file, never its contents.
    pw = secret_file(tmp_path / "pw", SECRET)
    cfg = MqttConfig(url="mqtts://cam1@127.0.0.1:1", password_file=str(pw),
                     ca_file=str(tmp_path / "missing-ca.pem"))  # fmt: skip
    with pytest.raises(ValueError) as err:
        MqttSink(cfg, DeviceConfig(id="cam1"), ("happy", "sad"))
    assert "missing-ca.pem" in str(err.value) and SECRET not in str(err.value)
    # A sink that cannot connect: its repr, stats and error mention the user, not the password.
    sink = MqttSink(MqttConfig(url="mqtt://cam1@127.0.0.1:1", password_file=str(pw),
                               reconnect_max_s=1), DeviceConfig(id="cam1"), ("happy", "sad"))  # fmt: skip
    try:
        time.sleep(0.5)
        shown = [repr(sink), str(sink.stats()), str(sink.connect_error())]
        shown += [repr(v) for k, v in vars(sink).items() if k != "_client"]  # paho alone keeps it
    finally:
        sink.close(timeout=0.5)
    assert "cam1" in shown[0]
    for text in shown:
        assert SECRET not in text


# --- (b) TLS, passwords and ACLs -------------------------------------------------------------------

# cam1 writes only its own device's topics and Home Assistant discovery (README's ACL); it may
# read its own topics (doctor reads its health back) and homeassistant/status (discovery is
# re-sent when Home Assistant comes online).
ACL = """\
user cam1
topic readwrite moodcam/cam1/#
topic write homeassistant/#
topic read homeassistant/status

user watcher
topic read #
"""


def test_tls_password_and_acl_keep_cam1_to_its_own_topics(tmp_path: Path, watcher_factory) -> None:
    pki = make_pki(tmp_path / "pki")
    ca = pki["ca.crt"]
    passwd = passwd_file(tmp_path / "passwd", {"cam1": SECRET, "watcher": WATCHER_SECRET})
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    acl.chmod(0o600)
    extra = (
        f"cafile {ca}",
        f"certfile {pki['server.crt']}",
        f"keyfile {pki['server.key']}",
        "require_certificate false",
        f"password_file {passwd}",
        f"acl_file {acl}",
    )
    pw = secret_file(tmp_path / "cam1.pw", SECRET)
    with Mosquitto(tmp_path / "broker", anonymous=False, extra=extra) as broker:
        watcher = watcher_factory(broker.port, "watcher", WATCHER_SECRET, ca=ca)
        url = f"mqtts://cam1@127.0.0.1:{broker.port}"

        # moodcam itself, over TLS with the password: its own topics all arrive.
        cfg = write_config(tmp_path / "cam1.toml", url=url, password_file=pw, ca_file=ca)
        proc = subprocess.run(moodcam_cmd("run", "--config", str(cfg)), capture_output=True,
                              text=True, cwd=ROOT, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(watcher.wait_for("moodcam/cam1/state"))["v"] >= 1
        watcher.wait_for("moodcam/cam1/event")
        watcher.wait_for("moodcam/cam1/availability")
        assert any(t.startswith("homeassistant/sensor/cam1/") for t in watcher.topics())

        # The same credentials, pretending to be cam2: the broker drops it (MQTT 3.1.1 still
        # acknowledges, so the publisher cannot tell), and no subscriber ever sees it.
        spoof = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="spoofer")
        spoof.username_pw_set("cam1", SECRET)
        spoof.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        spoof.connect("127.0.0.1", broker.port)
        spoof.loop_start()
        try:
            spoofed = spoof.publish("moodcam/cam2/event", b'{"mood": "angry"}', qos=1)
            spoofed.wait_for_publish(5)
            spoof.publish("moodcam/cam2/state", b"{}", qos=1, retain=True).wait_for_publish(5)
            control = spoof.publish("moodcam/cam1/spoof-control", b"allowed", qos=1)
            control.wait_for_publish(5)
        finally:
            spoof.disconnect()
            spoof.loop_stop()
        # Publishes from one client arrive in order: once the later allowed one is here, the
        # denied ones would have been too.
        assert watcher.wait_for("moodcam/cam1/spoof-control") == b"allowed"
        assert not [t for t in watcher.topics() if t.startswith("moodcam/cam2/")]

        # moodcam configured as cam2 but holding cam1's credentials cannot speak for cam2 either.
        cfg2 = write_config(tmp_path / "cam2.toml", url=url, password_file=pw, ca_file=ca,
                            device_id="cam2", fps=30)  # fmt: skip
        proc2 = subprocess.run(moodcam_cmd("run", "--config", str(cfg2)), capture_output=True,
                               text=True, cwd=ROOT, timeout=60)  # fmt: skip
        # It ran and published (MQTT 3.1.1 acknowledges a denied publish, so it cannot tell) ...
        assert proc2.returncode == 0, proc2.stderr
        # ... and nobody heard it as cam2.
        assert not [t for t in watcher.topics() if t.startswith("moodcam/cam2/")]

        # Plain MQTT on the TLS port gets nowhere; neither does TLS without our CA.
        plain = subprocess.run(
            moodcam_cmd("doctor", "--config", str(cfg), "--mqtt", f"mqtt://cam1@127.0.0.1:{broker.port}",
                        "--timeout", "2"),
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert plain.returncode == errors.EXIT_BROKER, plain.stdout
        broker_log = broker.log()  # (its last lines: before doctor adds its own)

        # doctor, with cam1's credentials under that ACL, reads the health the run left.
        doc = subprocess.run(moodcam_cmd("doctor", "--config", str(cfg), "--timeout", "3"),
                             capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
        daemon_lines = [ln for ln in doc.stdout.splitlines() if ln.split()[1:2] == ["daemon"]]
        assert len(daemon_lines) == 1 and "camera OK since" in daemon_lines[0], doc.stdout
    # The broker's own word for it: the spoofed publishes, and moodcam's as cam2, were denied.
    assert "denied publish from spoofer" in broker_log.lower(), broker_log
    assert "denied publish from moodcam-cam2" in broker_log.lower(), broker_log
    for text in (proc.stdout, proc.stderr, plain.stdout, plain.stderr):
        assert SECRET not in text


def test_the_service_environment_has_no_secrets() -> None:
    """The unit passes no credentials through Environment= (visible to `systemctl show`)."""
    unit = (ROOT / "systemd" / "moodcam.service").read_text()
    env_lines = [ln for ln in unit.splitlines() if ln.startswith("Environment")]
    assert all("PASS" not in ln.upper() and "SECRET" not in ln.upper() for ln in env_lines)
    assert "--config /etc/moodcam/moodcam.toml" in unit  # settings by path, never inline


def test_clear_text_passwords_and_open_password_files_are_warned_about(tmp_path: Path) -> None:
    from moodcam import config
    from moodcam.commands.common import security_warnings

    pw = secret_file(tmp_path / "pw", SECRET)

    def warnings(url: str, mode: int) -> list[str]:
        pw.chmod(mode)
        mqtt_cfg = {"enabled": True, "url": url, "password_file": str(pw)}
        return security_warnings(config.from_dict({"mqtt": mqtt_cfg}, "c.toml"))

    assert warnings("mqtts://cam1@broker.lan", 0o600) == []
    assert warnings("mqtt://cam1@127.0.0.1:1883", 0o640) == []  # loopback: never on the wire
    assert warnings("mqtt://cam1@localhost", 0o600) == []
    clear, readable = warnings("mqtt://cam1@broker.lan", 0o644)
    assert "clear text" in clear and "broker.lan" in clear and "mqtts://" in clear
    assert str(pw) in readable and "every local user" in readable
    for text in (clear, readable):
        assert SECRET not in text
