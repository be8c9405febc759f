"""MQTT for every part of moodcam that talks to a broker: one client factory (`make_client`:
TLS, username, password file, client id, last will), the device's topics (`device_topic`),
short-lived side clients (`probe_broker`, `publish_retained`, `read_retained`), a background
listener (`subscribe`) and Home Assistant discovery (`discovery_configs`). The MQTT sink
(moodcam.sinks.mqtt), `moodcam doctor`, `moodcam playlist --mqtt` and bench/soak.py use it.

Credentials: the password is read from ``cfg.password_file`` and handed straight to paho (which
alone keeps it); it is never stored, logged, put in an exception or in a ``repr``.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from moodcam.config import DeviceConfig, MqttConfig
from moodcam.credentials import read_password_file
from moodcam.urls import BrokerAddress, parse_mqtt_url, redact_url

log = logging.getLogger("moodcam.mqtt")


def read_password(path: str) -> str:
    """The MQTT password in `path`; ValueError naming the file (only)."""
    return read_password_file(path, "MQTT")


def configure_auth_and_tls(client: mqtt.Client, cfg: MqttConfig, address: BrokerAddress) -> str:
    """Username, password (from its file) and TLS on `client`; returns the username used."""
    username = address.username or cfg.username
    if cfg.password_file:
        if not username:
            raise ValueError(
                f"MQTT password_file {cfg.password_file} is set but no username "
                "(give one in the URL, mqtt://user@host, or in [mqtt] username)"
            )
        client.username_pw_set(username, read_password(cfg.password_file))
    elif username:
        client.username_pw_set(username)
    if address.tls:
        try:
            client.tls_set(
                ca_certs=cfg.ca_file or None,
                certfile=cfg.cert_file or None,
                keyfile=cfg.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError, ValueError) as e:
            files = ", ".join(f for f in (cfg.ca_file, cfg.cert_file, cfg.key_file) if f)
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
            files = files or "system CAs"
            raise ValueError(f"MQTT TLS setup failed ({files}): {why}") from None
    elif cfg.ca_file or cfg.cert_file or cfg.key_file:
        log.warning(
            "MQTT ca_file/cert_file/key_file are ignored for %s (use mqtts://)", redact_url(cfg.url)
        )
    return username


def connect_failure(address: BrokerAddress, err: BaseException | None) -> str:
    """One line on why a connection attempt failed: a TLS failure (the broker answered, but its
    certificate was not accepted, or the handshake failed) is not called "unreachable"."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"TLS: certificate of the broker at {address} not accepted: "
            f"{err.verify_message or err.reason} (check [mqtt] ca_file and the host name)"
        )
    if isinstance(err, ssl.SSLError):
        return f"TLS handshake with the broker at {address} failed: {err.reason or err}"
    why = (getattr(err, "strerror", None) or str(err) or type(err).__name__) if err else ""
    return f"broker unreachable at {address}" + (f": {why}" if why else "")


def make_client(
    cfg: MqttConfig,
    client_id: str,
    *,
    address: BrokerAddress | None = None,
    will_topic: str | None = None,
) -> tuple[mqtt.Client, BrokerAddress, str]:
    """The one way moodcam makes a paho client: MQTT 3.1.1, clean session, paho 2.x callbacks,
    `cfg`'s username, password file and TLS, `client_id`, and, with `will_topic`, ``offline``
    (retained, QoS 1) as last will. Returns (client, broker address, username used);
    ValueError naming the setting that is wrong (URL, password file, TLS files)."""
    address = address or parse_mqtt_url(cfg.url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    username = configure_auth_and_tls(client, cfg, address)
    if will_topic is not None:
        client.will_set(will_topic, "offline", qos=1, retain=True)
    return client, address, username


def _side_client(cfg: MqttConfig, device_id: str, role: str) -> tuple[mqtt.Client, BrokerAddress]:
    """A short-lived client beside the daemon's own session: the sink's credentials and TLS, its
    own client id (moodcam-<id>-<role>) and no last will, so that session is left alone."""
    client, address, _ = make_client(cfg, f"moodcam-{device_id}-{role}")
    return client, address


def subscribe(
    cfg: MqttConfig,
    topics: list[str],
    on_message: Callable[[mqtt.MQTTMessage], None],
    client_id: str,
    *,
    address: BrokerAddress | None = None,
    on_refused: Callable[[str], None] | None = None,
    on_unreachable: Callable[[], None] | None = None,
    on_subscribed: Callable[[], None] | None = None,
) -> mqtt.Client:
    """A client that listens to `topics` (QoS 1) in the background until `stop(client)`:
    subscribed again on every reconnect (clean session), reconnecting with backoff up to
    ``reconnect_max_s``. `on_message` gets each message; `on_refused` the broker's reason when
    it refuses the connection, `on_unreachable` a failed attempt, `on_subscribed` each
    (re)subscription. ValueError as `make_client`."""
    client, address, _ = make_client(cfg, client_id, address=address)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            if on_refused is not None:
                on_refused(str(reason))
            return
        c.subscribe([(t, 1) for t in topics])
        if on_subscribed is not None:
            on_subscribed()

    client.on_connect = on_connect
    if on_unreachable is not None:
        client.on_connect_fail = lambda _c, _u: on_unreachable()
    client.on_message = lambda _c, _u, msg: on_message(msg)
    client.reconnect_delay_set(1, max(1, round(cfg.reconnect_max_s)))
    client.connect_async(address.host, address.port, keepalive=cfg.keepalive_s)
    client.loop_start()
    return client


def stop(client: mqtt.Client) -> None:
    """Disconnect and stop the client's network thread."""
    client.disconnect()
    client.loop_stop()


def probe_broker(cfg: MqttConfig, device_id: str, timeout: float = 5.0) -> str | None:
    """Connect once with the sink's credentials and TLS, publish nothing: None if it worked,
    else one line saying why (for `moodcam doctor`). Uses its own client id and no last will,
    so a running daemon's session and availability are left alone."""
    client, address = _side_client(cfg, device_id, "doctor")
    done = threading.Event()
    result: list[str | None] = ["no answer"]

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result[0] = (
            None
            if not reason.is_failure
            else f"broker at {address} refused the connection: {reason}"
        )
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except (OSError, ssl.SSLError) as e:
        return connect_failure(address, e)
    client.loop_start()
    try:
        if not done.wait(timeout):
            return f"broker at {address} did not answer within {timeout:g} s"
        return result[0]
    finally:
        client.disconnect()
        client.loop_stop()


def device_topic(cfg: MqttConfig, device_id: str, leaf: str) -> str:
    """``P/D/leaf``: one of the device's own topics (state, event, availability, health)."""
    return f"{cfg.topic_prefix}/{device_id}/{leaf}"


def publish_retained(
    cfg: MqttConfig, topic: str, payload: bytes, device_id: str, timeout: float = 5.0
) -> bool:
    """Publish one retained QoS 1 message and disconnect; True once the broker acknowledged it.
    For a daemon that stops before its sink exists (no camera at start): its own client id and
    no last will, no `online`, no discovery, so a running daemon's session is left alone."""
    client, address = _side_client(cfg, device_id, "start")
    try:
        client.connect(address.host, address.port, keepalive=10)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout)
        return info.is_published()
    except (RuntimeError, ValueError):
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def read_retained(
    cfg: MqttConfig, topics: list[str], device_id: str, timeout: float = 1.0
) -> dict[str, bytes]:
    """The retained payloads of `topics` (topic -> payload; absent if none), for `moodcam
    doctor` to show what a running daemon reports (``P/D/health``, ``P/D/availability``).
    Connection problems are ``probe_broker``'s to report: here they just give ``{}``."""
    client, address = _side_client(cfg, device_id, "doctor-read")
    got: dict[str, bytes] = {}
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if not reason.is_failure:
            c.subscribe([(t, 1) for t in topics])

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got[msg.topic] = msg.payload

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    try:
        client.connect(address.host, address.port, keepalive=10)
    except (OSError, ssl.SSLError):
        return {}
    client.loop_start()
    try:
        # The broker sends retained messages right after SUBACK; give them a moment to land.
        if subscribed.wait(timeout):
            deadline = time.monotonic() + min(0.5, timeout)
            while len(got) < len(topics) and time.monotonic() < deadline:
                time.sleep(0.02)
        return dict(got)
    finally:
        client.disconnect()
        client.loop_stop()


# ---- Home Assistant discovery ---------------------------------------------------------------


def discovery_configs(
    cfg: MqttConfig, device: DeviceConfig, labels: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Home Assistant discovery: topic -> config for the mood, valence, arousal and camera-health
    sensors of `device` (retained under ``H/sensor/D/<key>/config``)."""
    dev_id = device.id
    common = {
        "state_topic": device_topic(cfg, dev_id, "state"),
        "availability_topic": device_topic(cfg, dev_id, "availability"),
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": {
            "identifiers": [f"moodcam_{dev_id}"],
            "name": device.name,
            "model": "moodcam",
            "manufacturer": "moodcam",
        },
        "origin": {"name": "moodcam"},
    }
    sensors = {
        # A null mood renders as "None", which Home Assistant shows as unknown.
        "mood": {
            "name": "Mood",
            "value_template": "{{ value_json.mood }}",
            "device_class": "enum",
            "options": list(labels),
            "icon": "mdi:emoticon-outline",
        },
        "valence": {
            "name": "Valence",
            "value_template": "{{ value_json.valence }}",
            "state_class": "measurement",
            "icon": "mdi:emoticon-happy-outline",
        },
        "arousal": {
            "name": "Arousal",
            "value_template": "{{ value_json.arousal }}",
            "state_class": "measurement",
            "icon": "mdi:lightning-bolt-outline",
        },
        # The camera's health (the health topic), so an automation can tell "no mood"
        # from "no camera".
        "camera": {
            "name": "Camera",
            "state_topic": device_topic(cfg, dev_id, "health"),
            "value_template": "{{ value_json.camera }}",
            "device_class": "enum",
            "options": ["ok", "degraded", "lost"],
            "entity_category": "diagnostic",
            "icon": "mdi:camera",
        },
    }
    prefix = cfg.discovery_prefix
    return {
        f"{prefix}/sensor/{dev_id}/{key}/config": {
            **common,
            **extra,
            "unique_id": f"moodcam_{dev_id}_{key}",
        }
        for key, extra in sensors.items()
    }


def publish_discovery(
    client: mqtt.Client, cfg: MqttConfig, device: DeviceConfig, labels: tuple[str, ...]
) -> None:
    """Publish (retained, QoS 1) the discovery configs, unless ``[mqtt] discovery`` is off."""
    if not cfg.discovery:
        return
    for topic, config in discovery_configs(cfg, device, labels).items():
        client.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)
