"""MqttSink against a real Mosquitto broker, observed by a real paho subscriber."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from moodcam.config import DeviceConfig, MqttConfig
from moodcam.records import FaceResult, MoodUpdate
from moodcam.sinks.mqtt import MqttSink
from moodcam.urls import parse_mqtt_url
from tests.mosquitto import INSTALL_HINT, Mosquitto, find_mosquitto, free_port, make_pki
from tests.servers import wait_until

LABELS = ("angry", "happy", "sad", "neutral")


class Sub:
    """A real paho subscriber that records (topic, payload, retain) of everything it gets."""

    def __init__(self, port: int, topics: list[str], client_id: str | None = None,
                 clean: bool = True, tls_ca: str | None = None) -> None:  # fmt: skip
        self.topics = topics
        self.msgs: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"sub-{uuid.uuid4().hex[:8]}",
                                  clean_session=clean)  # fmt: skip
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([(t, 1) for t in self.topics])  # every connect: also after a restart

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.msgs.append((msg.topic, msg.payload, bool(msg.retain)))

    def wait_subscribed(self, timeout: float = 5.0) -> Sub:
        assert self.subscribed.wait(timeout), "subscriber did not get SUBACK"
        return self

    def on(self, topic_end: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.msgs if t.endswith(topic_end)]

    def wait_count(self, topic_end: str, n: int, timeout: float = 10.0) -> list[bytes]:
        wait_until(lambda: len(self.on(topic_end)) >= n, timeout, f"{n} message(s) on *{topic_end}")
        return self.on(topic_end)

    def clear(self) -> None:
        with self.lock:
            self.msgs.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scripted_updates(n_changes: int, t0: float = 1000.0) -> list[MoodUpdate]:
    """Frames where the mood changes now and then; most frames bring no change."""
    moods = ["happy", "sad", "neutral", None, "angry"]
    out, t = [], t0
    for i in range(n_changes):
        mood = moods[i % len(moods)]
        for k in range(3):  # one changing frame, then two steady ones
            t += 0.1
            face = FaceResult(box=(10, 20, 30, 40), label=mood or "neutral",
                              scores={lab: 0.25 for lab in LABELS})  # fmt: skip
            out.append(MoodUpdate(t=t, faces=[face] if mood else [], mood=mood,
                                  valence=0.1 * i, arousal=-0.1 * i, changed=k == 0))  # fmt: skip
    return out


def records(updates: list[MoodUpdate]) -> list[dict[str, Any]]:
    return [u.to_record() for u in updates if u.changed]


@pytest.fixture
def mosquitto_bin() -> str:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    return binary


@pytest.fixture
def broker(mosquitto_bin: str, tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def device() -> DeviceConfig:
    return DeviceConfig(id=f"t{uuid.uuid4().hex[:8]}", name="Test cam")


@pytest.fixture
def make_sink(device: DeviceConfig) -> Iterator[Callable[..., MqttSink]]:
    made: list[MqttSink] = []

    def make(port: int, *, dev: DeviceConfig | None = None, **kw: Any) -> MqttSink:
        # Short keepalive and backoff keep the reconnect tests fast.
        opts: dict[str, Any] = {
            "enabled": True,
            "url": f"mqtt://127.0.0.1:{port}",
            "keepalive_s": 5,
            "reconnect_max_s": 1.0,
            "discovery": False,
        }
        opts.update(kw)
        sink = MqttSink(MqttConfig(**opts), dev or device, LABELS)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close(timeout=0.5)


@pytest.fixture
def subs() -> Iterator[Callable[..., Sub]]:
    made: list[Sub] = []

    def make(*args: Any, **kw: Any) -> Sub:
        made.append(Sub(*args, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_one_event_per_change_state_retained_offline_on_close(broker, make_sink, subs, device):
    base = f"moodcam/{device.id}"
    sub = subs(broker.port, [f"{base}/event", f"{base}/state"]).wait_subscribed()
    sink = make_sink(broker.port)
    assert sink.wait_connected(5)
    updates = scripted_updates(6)
    for u in updates:
        sink.handle(u)
    sink.close(timeout=5)
    expected = records(updates)
    assert sink.stats()["events"] == len(expected) == 6
    assert sink.stats()["queued"] == 0 and sink.stats()["dropped"] == 0

    got = sub.wait_count("/event", len(expected))
    time.sleep(0.3)  # anything extra would arrive now
    assert [json.loads(p) for p in sub.on("/event")] == expected
    # State goes out on changes only (coalesced under load), and ends on the last change.
    states = [json.loads(p) for p in sub.wait_count("/state", 1)]
    assert all(s in expected for s in states) and states[-1] == expected[-1]
    assert len(got) == 6

    late = subs(broker.port, [f"{base}/state", f"{base}/availability"]).wait_subscribed()
    late.wait_count("/availability", 1)
    late.wait_count("/state", 1)
    assert json.loads(late.on("/state")[0]) == expected[-1]
    assert late.on("/availability") == [b"offline"]  # sent by close(): a clean close fires no will
    assert all(retain for _, _, retain in late.msgs)


def test_discovery_payloads_and_resend_on_ha_online(broker, make_sink, subs, device):
    sink = make_sink(broker.port, discovery=True)
    assert sink.wait_connected(5)
    pattern = f"homeassistant/sensor/{device.id}/+/config"
    sub = subs(broker.port, [pattern]).wait_subscribed()
    sub.wait_count("/config", 4)
    time.sleep(0.2)
    configs = {t: json.loads(p) for t, p, _ in sub.msgs}
    # A subscriber that was already there when the sink published gets a live copy, whose
    # retain flag the broker clears (MQTT 3.1.1, 3.3.1.3); only one that subscribes after
    # the publish shows whether the broker kept the configs.
    late = subs(broker.port, [pattern]).wait_subscribed()
    late.wait_count("/config", 4)
    time.sleep(0.2)
    assert {t for t, _, _ in late.msgs} == set(configs)
    assert all(r for _, _, r in late.msgs), "discovery configs must be retained"
    assert set(configs) == {f"homeassistant/sensor/{device.id}/{k}/config"
                            for k in ("mood", "valence", "arousal", "camera")}  # fmt: skip
    state_topic = f"moodcam/{device.id}/state"
    for topic, cfg in configs.items():
        key = topic.split("/")[-2]
        if key == "camera":  # the camera's health: its own topic
            assert cfg["state_topic"] == f"moodcam/{device.id}/health" == sink.health_topic
            assert cfg["options"] == ["ok", "degraded", "lost"]
            assert cfg["entity_category"] == "diagnostic"
        else:
            assert cfg["state_topic"] == state_topic == sink.state_topic
        assert cfg["availability_topic"] == f"moodcam/{device.id}/availability"
        assert cfg["payload_available"] == "online" and cfg["payload_not_available"] == "offline"
        assert cfg["unique_id"] == f"moodcam_{device.id}_{key}"
        assert f"value_json.{key}" in cfg["value_template"]  # camera: value_json.camera
        assert cfg["device"]["identifiers"] == [f"moodcam_{device.id}"]
        assert cfg["device"]["name"] == "Test cam" and cfg["device"]["model"] == "moodcam"
    mood = configs[f"homeassistant/sensor/{device.id}/mood/config"]
    assert mood["device_class"] == "enum" and mood["options"] == list(LABELS)
    assert len({c["unique_id"] for c in configs.values()}) == 4

    # Home Assistant restarted: its birth message makes us send discovery again.
    sub.clear()
    sub.client.publish("homeassistant/status", "online", qos=1)
    resent = sub.wait_count("/config", 4)
    unique_ids = {c["unique_id"] for c in configs.values()}
    assert {json.loads(p)["unique_id"] for p in resent} == unique_ids
    sub.clear()
    sub.client.publish("homeassistant/status", "offline", qos=1)  # not a reason to resend
    time.sleep(0.3)
    assert sub.on("/config") == []


def test_no_discovery_when_disabled(broker, make_sink, subs, device):
    sink = make_sink(broker.port, discovery=False)
    assert sink.wait_connected(5)
    sub = subs(broker.port, ["homeassistant/#"]).wait_subscribed()
    sub.client.publish("homeassistant/status", "online", qos=1)
    time.sleep(0.4)
    assert [t for t, _, _ in sub.msgs if device.id in t] == []


SINK_CHILD = """
import sys, time
from moodcam.config import DeviceConfig, MqttConfig
from moodcam.records import MoodUpdate
from moodcam.sinks.mqtt import MqttSink
port, dev = sys.argv[1], sys.argv[2]
cfg = MqttConfig(enabled=True, url=f"mqtt://127.0.0.1:{port}", keepalive_s=5, reconnect_max_s=1.0,
                 discovery=False)
sink = MqttSink(cfg, DeviceConfig(id=dev), ("happy", "sad"))
assert sink.wait_connected(10), sink.connect_error()
sink.handle(MoodUpdate(t=1.0, mood="happy", changed=True))
while sink.stats()["events"] < 1:
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(120)
"""


def test_last_will_offline_when_process_is_killed(broker, subs, device):
    avail = f"moodcam/{device.id}/availability"
    sub = subs(broker.port, [avail]).wait_subscribed()
    # The venv's python: moodcam is installed there (editable).
    proc = subprocess.Popen([sys.executable, "-c", SINK_CHILD, str(broker.port), device.id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        line = wait_line(proc, timeout=20)
        assert line == "ready", proc.stderr.read().decode() if proc.stderr else line
        assert sub.wait_count("/availability", 1)[-1] == b"online"
        proc.send_signal(signal.SIGKILL)  # no chance to say goodbye: the broker's will must
        proc.wait(timeout=5)
        assert sub.wait_count("/availability", 2, timeout=5)[-1] == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    late = subs(broker.port, [avail]).wait_subscribed()
    assert late.wait_count("/availability", 1) == [b"offline"]  # the will is retained


def wait_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    out: list[str] = []
    reader = threading.Thread(
        target=lambda: out.append(proc.stdout.readline().decode().strip() if proc.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return out[0] if out else "(no line)"


def test_broker_restart_mid_run_delivers_every_event(mosquitto_bin, tmp_path, make_sink, subs,
                                                     device, caplog):  # fmt: skip
    caplog.set_level(logging.INFO, logger="moodcam.mqtt")
    # Broker persistence keeps the subscriber's session over the restart, so the subscriber misses
    # nothing whichever of it and the sink reconnects first.
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        base = f"moodcam/{device.id}"
        sub = subs(broker.port, [f"{base}/event"], client_id=f"sub-{device.id}", clean=False)
        sub.wait_subscribed()
        sink = make_sink(broker.port)
        assert sink.wait_connected(5)
        updates = scripted_updates(15)
        per_phase = len(updates) // 3
        for u in updates[:per_phase]:
            sink.handle(u)
        sub.wait_count("/event", 5)
        wait_until(lambda: sink.stats()["events"] == 5, 5, "PUBACKs of the first events")

        broker.stop()
        wait_until(lambda: not sink.stats()["connected"], 5, "the sink to notice the broker left")
        for u in updates[per_phase : 2 * per_phase]:
            sink.handle(u)  # made while the broker is away: must not block, must be kept
        assert sink.stats()["queued"] == 5
        assert sink.connect_error() is not None and str(broker.port) in sink.connect_error()

        broker.start()
        assert sink.wait_connected(10), sink.connect_error()
        for u in updates[2 * per_phase :]:
            sink.handle(u)
        sink.close(timeout=10)
        assert sink.stats()["queued"] == 0 and sink.stats()["dropped"] == 0

        expected = records(updates)
        got = [json.loads(p) for p in sub.wait_count("/event", len(expected), timeout=15)]
        time.sleep(0.3)
        got = [json.loads(p) for p in sub.on("/event")]
        # At least once: every event arrives, in order of first arrival; duplicates (an event
        # whose PUBACK was lost in the outage) would be allowed, though none are expected here.
        first_seen = list({r["t"]: r for r in got}.values())
        assert first_seen == expected
        assert len(got) - len(expected) <= 5 + 32  # at most the in-flight ones twice
    finally:
        broker.stop()
    text = caplog.text
    assert "lost the connection" in text and "connected to" in text


class TcpProxy:
    """Loopback TCP proxy in front of the broker, to lose PUBACKs and cut connections on demand."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drop_to_client = False  # swallow broker -> client bytes (PUBACKs never arrive)
        self.conns: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (to_client and self.drop_to_client):
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection, like a Wi-Fi outage; new ones are accepted again."""
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.conns.clear()

    def close(self) -> None:
        self.server.close()
        self.cut()


def test_lost_pubacks_are_resent_after_reconnect_at_least_once(broker, make_sink, subs, device):
    """The broker got the events but the sink never heard back: they are sent again (DUP)."""
    sub = subs(broker.port, [f"moodcam/{device.id}/event"]).wait_subscribed()
    proxy = TcpProxy(broker.port)
    try:
        sink = make_sink(proxy.port)
        assert sink.wait_connected(5)
        updates = scripted_updates(7)
        proxy.drop_to_client = True
        for u in updates[:15]:  # 5 changes: reach the broker, but their PUBACKs are lost
            sink.handle(u)
        sub.wait_count("/event", 5)
        time.sleep(0.2)
        assert sink.stats()["queued"] == 5 and sink.stats()["events"] == 0  # still unacknowledged

        proxy.cut()
        proxy.drop_to_client = False
        wait_until(lambda: not sink.stats()["connected"], 5, "the sink to see the cut")
        for u in updates[15:]:  # 2 more changes while the link is down
            sink.handle(u)
        assert sink.wait_connected(10), sink.connect_error()
        sink.close(timeout=5)
        stats = sink.stats()
        assert (stats["events"], stats["queued"], stats["dropped"]) == (7, 0, 0)

        expected = records(updates)
        got = [json.loads(p) for p in sub.wait_count("/event", 5 + 7)]
        time.sleep(0.3)
        got = [json.loads(p) for p in sub.on("/event")]
        # At least once, not exactly once: the five unacknowledged events arrive twice, in order.
        assert got == expected[:5] + expected[:5] + expected[5:]
    finally:
        proxy.close()


def test_reconnect_republishes_online_and_last_state(broker, make_sink, subs, device):
    sink = make_sink(broker.port)
    assert sink.wait_connected(5)
    update = MoodUpdate(t=5.0, mood="sad", valence=-0.5, arousal=0.1, changed=True)
    sink.handle(update)
    wait_until(lambda: sink.stats()["events"] == 1 and sink.stats()["queued"] == 0, 5, "the event")
    broker.restart()  # no persistence: the broker forgot every retained message
    wait_until(lambda: sink.stats()["connects"] == 2, 10, "the sink to reconnect")
    base = f"moodcam/{device.id}"
    sub = subs(broker.port, [f"{base}/state", f"{base}/availability"]).wait_subscribed()
    assert json.loads(sub.wait_count("/state", 1)[0]) == update.to_record()
    assert sub.wait_count("/availability", 1)[0] == b"online"
    assert sub.on("/event") == []


def test_a_restart_with_nobody_in_view_replaces_the_previous_runs_retained_mood(
    broker, make_sink, subs, device
):
    """Run 1 ends on "happy" (retained). Run 2 sees nobody: its first frame (no change, mood
    None) must still set the retained state, or Home Assistant and `moodcam playlist --mqtt`
    keep showing run 1's mood while availability says online. No event: nothing changed."""
    first = make_sink(broker.port)
    assert first.wait_connected(5)
    happy = MoodUpdate(t=5.0, mood="happy", valence=0.8, arousal=0.4, changed=True)
    first.handle(happy)
    first.close(timeout=5)
    base = f"moodcam/{device.id}"
    sub = subs(broker.port, [f"{base}/state", f"{base}/event"]).wait_subscribed()
    assert json.loads(sub.wait_count("/state", 1)[0])["mood"] == "happy"  # retained from run 1
    sub.clear()

    second = make_sink(broker.port)
    assert second.wait_connected(5)
    for k in range(3):  # frames with nobody in view: the tracker reports no change
        second.handle(MoodUpdate(t=10.0 + k, mood=None, changed=False))
    second.close(timeout=5)
    assert json.loads(sub.wait_count("/state", 1)[0]) == MoodUpdate(t=10.0).to_record()
    assert sub.on("/event") == [] and second.stats()["events"] == 0
    late = subs(broker.port, [f"{base}/state"]).wait_subscribed()
    assert json.loads(late.wait_count("/state", 1)[0])["mood"] is None


def test_unreachable_at_start_bounded_queue_drops_oldest(mosquitto_bin, tmp_path, make_sink,
                                                         subs, device, caplog):  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="moodcam.mqtt")
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        sub = subs(broker.port, [f"moodcam/{device.id}/event"], client_id=f"sub-{device.id}",
                   clean=False).wait_subscribed()  # fmt: skip
        broker.stop()  # the session is saved; now nothing listens on the port

        sink = make_sink(broker.port, queue_size=5)  # must not raise
        wait_until(sink.connect_error, 5, "a connect error")
        assert sink.connect_error().startswith(f"broker unreachable at 127.0.0.1:{broker.port}")
        updates = scripted_updates(12)
        for u in updates:
            sink.handle(u)
        # handle() never waits for the network: all twelve handed over, queued or dropped,
        # while nothing listens.
        stats = sink.stats()
        assert (stats["queued"], stats["dropped"], stats["connected"]) == (5, 7, False)
        time.sleep(1.5)  # let it retry at least once more: still only one log line

        broker.start()
        assert sink.wait_connected(10), sink.connect_error()
        sink.close(timeout=5)
        expected = records(updates)[-5:]  # the oldest were dropped, the newest kept
        got = sub.wait_count("/event", 5)
        time.sleep(0.3)
        assert [json.loads(p) for p in sub.on("/event")] == expected
        assert sink.stats()["dropped"] == 7 and sink.stats()["events"] == 5
    finally:
        broker.stop()
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1 and unreachable[0].levelno == logging.WARNING
    assert len(got) == 5


def test_close_gives_up_after_timeout_when_broker_is_away(make_sink, caplog):
    caplog.set_level(logging.INFO, logger="moodcam.mqtt")
    sink = make_sink(free_port())  # nothing listens there
    for u in scripted_updates(3):
        sink.handle(u)
    sink.close(timeout=1.0)  # returns, giving the three up (how fast: not a test's business)
    assert (sink.stats()["queued"], sink.stats()["dropped"], sink.stats()["events"]) == (0, 3, 0)
    assert "3 event(s) not delivered" in caplog.text


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://example.org:1883", "scheme must be mqtt or mqtts"),
    ("mqtt://", "no host"),
    ("mqtt://broker:notaport", "port"),
    ("mqtt://broker:70000", "port"),
    ("mqtt://alice:hunter2@broker:1883", "password_file"),
    ("mqtt://broker:1883/some/topic", "path"),
    ("broker.local:1883", "scheme"),
])  # fmt: skip
def test_bad_url_is_one_clear_line(url: str, fragment: str, device: DeviceConfig) -> None:
    with pytest.raises(ValueError) as err:
        MqttSink(MqttConfig(enabled=True, url=url), device, LABELS)
    msg = str(err.value)
    assert "\n" not in msg and "bad MQTT URL" in msg and fragment in msg
    assert "hunter2" not in msg
    assert url.replace("hunter2", "***") in msg


def test_url_defaults() -> None:
    a = parse_mqtt_url("mqtt://broker")
    assert (a.tls, a.host, a.port, a.username) == (False, "broker", 1883, "")
    b = parse_mqtt_url("mqtts://bob@10.0.0.2")
    assert (b.tls, b.host, b.port, b.username) == (True, "10.0.0.2", 8883, "bob")
    assert parse_mqtt_url("mqtt://[::1]:1999").port == 1999


def test_password_from_file_never_logged(mosquitto_bin, tmp_path, make_sink, device, caplog):
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip(INSTALL_HINT.replace("mosquitto not", "mosquitto_passwd not"))
    caplog.set_level(logging.DEBUG)  # everything, from every logger
    secret, wrong = "s3cret-Pa55-word", "not-the-Pa55"
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "alice", secret], check=True,
                   capture_output=True)  # fmt: skip
    good_file, bad_file = tmp_path / "good.pw", tmp_path / "bad.pw"
    good_file.write_text(secret + "\n")  # the trailing newline must be stripped
    bad_file.write_text(wrong + "\n")
    with Mosquitto(tmp_path / "broker", anonymous=False,
                   extra=(f"password_file {passwd}",)) as broker:  # fmt: skip
        sink = make_sink(broker.port, username="alice", password_file=str(good_file))
        assert sink.wait_connected(5), sink.connect_error()
        sink.handle(MoodUpdate(t=1.0, mood="happy", changed=True))
        sink.close(timeout=5)
        assert sink.stats()["events"] == 1

        # The user may come from the URL; a wrong password is refused, and said so plainly.
        other = DeviceConfig(id=device.id + "b")
        bad = make_sink(broker.port, dev=other, url=f"mqtt://alice@127.0.0.1:{broker.port}",
                        password_file=str(bad_file))  # fmt: skip
        err = wait_until(bad.connect_error, 5, "the broker to refuse a wrong password")
        assert "refused" in err and f"127.0.0.1:{broker.port}" in err
        assert not bad.stats()["connected"]
        shown = [caplog.text, repr(sink), repr(bad), err, str(sink.stats()), str(bad.stats())]
        bad.close(timeout=0.5)

    for text in [*shown, caplog.text]:
        assert secret not in text and wrong not in text
    assert "alice" in repr(sink)

    missing = tmp_path / "nope.pw"
    with pytest.raises(ValueError, match=r"nope\.pw"):
        MqttSink(MqttConfig(url="mqtt://alice@h", password_file=str(missing)), device, LABELS)
    with pytest.raises(ValueError, match="no username"):
        MqttSink(MqttConfig(url="mqtt://h", password_file=str(good_file)), device, LABELS)


def test_tls_with_own_ca(mosquitto_bin, tmp_path, make_sink, subs, device):
    pki = make_pki(tmp_path / "pki")
    d = tmp_path / "pki"
    extra = (f"cafile {pki['ca.crt']}", f"certfile {pki['server.crt']}",
             f"keyfile {pki['server.key']}")  # fmt: skip
    with Mosquitto(tmp_path / "broker", extra=extra) as broker:
        sub = subs(broker.port, [f"moodcam/{device.id}/event"], tls_ca=str(d / "ca.crt"))
        sub.wait_subscribed()
        sink = make_sink(broker.port, url=f"mqtts://127.0.0.1:{broker.port}",
                         ca_file=str(d / "ca.crt"))  # fmt: skip
        assert sink.wait_connected(5), sink.connect_error()
        sink.handle(MoodUpdate(t=2.0, mood="sad", changed=True))
        sink.close(timeout=5)
        assert json.loads(sub.wait_count("/event", 1)[0])["mood"] == "sad"
        # Without our CA (system CAs only) the broker's certificate must be refused.
        untrusting = make_sink(broker.port, dev=DeviceConfig(id=device.id + "x"),
                               url=f"mqtts://127.0.0.1:{broker.port}")  # fmt: skip
        err = wait_until(untrusting.connect_error, 5, "a certificate error")
        assert f"127.0.0.1:{broker.port}" in err and not untrusting.stats()["connected"]
