"""MQTT sink: mood state, mood-change events, availability and Home Assistant discovery.

Topics (``P`` = ``cfg.topic_prefix``, ``D`` = ``device.id``, ``H`` = ``cfg.discovery_prefix``):

- ``P/D/state``        retained JSON (``MoodUpdate.to_record()``) of the latest mood change; sent on
  the run's first frame (so a previous run's retained mood does not outlive it), on every change
  (coalesced if changes come faster than the broker acks: only the latest state matters) and
  once after each (re)connect.
- ``P/D/event``        one QoS 1 message per mood change; frames without a change send nothing.
- ``P/D/availability`` ``online`` (retained) on connect; ``offline`` (retained) as last will and
  published explicitly by ``close()``.
- ``P/D/health``       retained JSON ``{"camera": "ok" | "degraded" | "lost", "since": <UTC epoch
  s of the change>, "detail": "<one line>"}``, set by the daemon through ``set_health()``:
  ``degraded`` while the camera is being reconnected, ``ok`` once frames come again, ``lost``
  when it gave up (the daemon then exits 6). Sent on every change (only the latest matters) and
  once after each (re)connect; read back by ``moodcam doctor`` (``read_retained``).
- ``H/sensor/D/{mood,valence,arousal,camera}/config`` retained discovery configs, re-sent when
  ``H/status`` says ``online`` (Home Assistant restarted).

Delivery guarantee: **at least once**, for every event produced while the process runs, across
broker outages, unless the bounded queue overflows (the oldest events are then dropped and counted
in ``stats["dropped"]``). How:

1. ``handle()`` only appends to our own bounded deque (``cfg.queue_size``) and wakes a sender
   thread, so the frame loop never waits for the network. At most ``queue_size`` events wait
   there, plus at most ``INFLIGHT`` handed to paho.
2. The sender hands events to paho only while connected and keeps at most ``INFLIGHT`` of them
   unacknowledged. An event leaves our books only on its PUBACK (``on_publish``).
3. An event handed to paho whose PUBACK has not come when the connection drops stays in paho's
   ``_out_messages``: paho 2.x re-sends unacknowledged QoS 1 publishes (DUP flag) after the next
   CONNACK whatever ``clean_session`` is (``_messages_reconnect_reset_out`` / ``_handle_connack``;
   the paho README says so for clean sessions too). So the backlog of an outage lives in our
   deque, where we control the bound and drop the *oldest*; paho's own ``max_queued_messages``
   would refuse the *newest* instead, and by default is unbounded.
4. After a reconnect nothing new is handed over until the re-sent in-flight events are acked, so
   events reach the broker in order.

Not exactly once: if the connection drops after the broker got an event but before its PUBACK
reached us, the event is sent again and a subscriber sees it twice. Exactly once would need QoS 2
plus session state kept on both ends (``clean_session=False``, broker persistence) and still
would not survive a crash of this process, whose queue is in RAM. Events carry their time ``t``,
so consumers can drop duplicates; the JSONL mood log is the durable record. We use MQTT 3.1.1
with a clean session: the only thing we subscribe to is ``H/status``, and discovery is re-sent on
every connect anyway.

The client (credentials, TLS, last will), the topics and the discovery configs come from
moodcam.comms.mqtt; this module is the delivery.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from moodcam.comms.mqtt import (
    connect_failure,
    device_topic,
    discovery_configs,
    make_client,
    publish_discovery,
)
from moodcam.config import Config, DeviceConfig, MqttConfig
from moodcam.errors import SinkError
from moodcam.records import MoodUpdate
from moodcam.sinks import Sink
from moodcam.urls import parse_mqtt_url

log = logging.getLogger("moodcam.mqtt")

INFLIGHT = 32  # events handed to paho but not yet acknowledged (bounds paho's own queue)


class MqttSink(Sink):
    """Publishes mood changes to an MQTT broker; see the module docstring for the contract."""

    def __init__(self, cfg: MqttConfig, device: DeviceConfig, labels: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.device = device
        self.labels = tuple(labels)
        self.address = parse_mqtt_url(cfg.url)
        self.state_topic = device_topic(cfg, device.id, "state")
        self.event_topic = device_topic(cfg, device.id, "event")
        self.availability_topic = device_topic(cfg, device.id, "availability")
        self.status_topic = f"{cfg.discovery_prefix}/status"

        self._cond = threading.Condition()  # guards everything below; never held while in paho
        self._queue: collections.deque[bytes] = collections.deque()
        self._inflight: dict[int, str] = {}  # mid -> "event" | "state" | "health"
        self._publishing = False  # the sender is inside client.publish()
        self._early_acks: set[int] = set()  # PUBACKs that beat publish() returning the mid
        self._last_state: bytes | None = None
        self._state_pending = False
        self._last_health: bytes | None = None
        self._health_pending = False
        self._resync = False  # after a reconnect: wait for re-sent in-flight events first
        self._connected = False
        self._closing = False
        self._closed = False
        self._connect_error: str | None = None
        self._outage_logged = False
        self._stats = {
            "published": 0,
            "events": 0,
            "queued": 0,
            "dropped": 0,
            "connects": 0,
            "connect_failures": 0,
        }
        self.health_topic = device_topic(cfg, device.id, "health")

        self._client = self._make_client()
        self._client.connect_async(self.address.host, self.address.port, keepalive=cfg.keepalive_s)
        self._client.loop_start()  # paho's own network thread: connects and reconnects for us
        self._sender = threading.Thread(target=self._send_loop, name="moodcam-mqtt", daemon=True)
        self._sender.start()

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> MqttSink:
        try:
            return cls(cfg.mqtt, cfg.device, labels)
        except ValueError as e:
            raise SinkError(f"{cfg.path}: [mqtt] {e}") from None

    def __repr__(self) -> str:
        user = f"{self._username}@" if self._username else ""
        scheme = "mqtts" if self.address.tls else "mqtt"
        return f"MqttSink({scheme}://{user}{self.address}, device={self.device.id!r})"

    # ---- setup -------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        client, _, self._username = make_client(
            cfg,
            f"moodcam-{self.device.id}",
            address=self.address,
            will_topic=self.availability_topic,
        )
        # paho waits 1 s, doubling up to the cap, between attempts, also while close() drains
        # the queue. The cap is what a broker that is back waits for us: 60 s made a 37 s outage
        # outlast a 5 s exit drain (exit 7), so the default is 2 s; one attempt is one connect.
        client.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
        client.max_inflight_messages_set(0)  # we bound in-flight messages ourselves
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # ---- the Sink ------------------------------------------------------------------------------

    def handle(self, update: MoodUpdate) -> None:
        """Queue the state and one event if the mood changed; never waits for the network.

        The first update of the run sets the retained state even without a change: the broker
        may still hold the mood a previous run left there (a restart with nobody in view)."""
        first = self._last_state is None
        if not (update.changed or first):
            return  # keep the network quiet: only changes are news
        payload = json.dumps(update.to_record(), separators=(",", ":")).encode()
        with self._cond:
            if self._closing:
                log.debug("MQTT sink closed; mood change at t=%s not sent", update.t)
                return
            if update.changed:
                if len(self._queue) >= self.cfg.queue_size:
                    self._queue.popleft()  # drop the oldest: the newest moods matter most
                    self._stats["dropped"] += 1
                self._queue.append(payload)
            self._last_state = payload
            self._state_pending = True
            self._cond.notify_all()

    def set_health(self, health: dict[str, Any]) -> None:
        """Publish `health` (retained) on ``P/D/health``; never waits for the network."""
        payload = json.dumps(health, separators=(",", ":")).encode()
        with self._cond:
            if self._closed:
                return
            self._last_health = payload
            self._health_pending = True
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (up to `timeout` s, default `[mqtt] drain_s`), publish
        ``offline``, disconnect."""
        timeout = self.cfg.drain_s if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
            # Drain: wait until every event and the latest state and health are acknowledged.
            while (
                self._queue
                or self._inflight
                or ((self._state_pending or self._health_pending) and self._connected)
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            lost = len(self._queue) + self._events_inflight()
            self._queue.clear()  # given up: counted as dropped below, no longer queued
            self._inflight = {m: k for m, k in self._inflight.items() if k != "event"}
            connected = self._connected
            self._closed = True
            self._cond.notify_all()
        self._sender.join(timeout=2.0)
        if lost:
            with self._cond:
                self._stats["dropped"] += lost
            log.warning(
                "MQTT: %d event(s) not delivered to %s within %.1f s of closing",
                lost,
                self.address,
                timeout,
            )
        if connected:
            info = self._client.publish(self.availability_topic, "offline", qos=1, retain=True)
            # If the connection went away meanwhile, the last will says offline instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.2, deadline - time.monotonic()))
        self._client.disconnect()
        # loop_stop() joins paho's thread without a bound; a connect attempt to a dead host can
        # sit in its connect timeout, so join from a helper and give up waiting after a while.
        stopper = threading.Thread(target=self._client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(timeout=max(1.0, deadline - time.monotonic()))
        with self._cond:
            self._connected = False

    # ---- for doctor / bench / tests ----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """published: messages the broker acknowledged (all topics); events: mood-change events
        acknowledged; queued: events not yet acknowledged; dropped: events given up (queue full or
        undelivered at close); connects: successful connections; connect_failures: attempts
        that failed (unreachable, refused, TLS); connected: now."""
        with self._cond:
            out: dict[str, Any] = dict(self._stats)
            out["queued"] = len(self._queue) + self._events_inflight()
            out["connected"] = self._connected
            return out

    @property
    def events_lost(self) -> int:
        """Mood events this sink gave up on (queue overflow, or still undelivered at close)."""
        return int(self.stats()["dropped"])

    def connect_error(self) -> str | None:
        """Why we are not connected, e.g. 'broker unreachable at host:1883: ...'; None if fine."""
        with self._cond:
            return None if self._connected else self._connect_error

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or `timeout` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._connected:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # ---- sender thread -----------------------------------------------------------------------

    def _next_message(self) -> tuple[str, str, bytes, bool] | None:
        """Under the lock: the next (kind, topic, payload, retain) we may hand to paho now."""
        if not self._connected or self._closed:
            return None
        if self._resync:
            if self._inflight:
                return None  # paho is re-sending earlier events; keep the order
            self._resync = False
        kinds = self._inflight.values()
        if self._state_pending and self._last_state is not None and "state" not in kinds:
            # At most one state in flight, so an older state re-sent after a reconnect can never
            # overwrite a newer retained one.
            self._state_pending = False
            return "state", self.state_topic, self._last_state, True
        if self._health_pending and self._last_health is not None and "health" not in kinds:
            self._health_pending = False  # one in flight, like the state, so order holds
            return "health", self.health_topic, self._last_health, True
        if self._queue and self._events_inflight() < INFLIGHT:
            return "event", self.event_topic, self._queue.popleft(), False
        return None

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                msg = self._next_message()
                while msg is None:
                    if self._closed:
                        return
                    self._cond.wait(1.0)  # every change notifies; the timeout is a safety net
                    msg = self._next_message()
                kind, topic, payload, retain = msg
                self._publishing = True
                self._early_acks.clear()
            # Never call paho holding our lock: paho calls on_publish holding its own lock.
            try:
                info = self._client.publish(topic, payload, qos=1, retain=retain)
            except Exception:  # a bug, not the network: say so and do not retry forever
                log.exception("MQTT publish to %s failed", topic)
                with self._cond:
                    self._publishing = False
                    self._stats["dropped"] += kind == "event"
                continue
            with self._cond:
                self._publishing = False
                if info.mid in self._early_acks:
                    self._count_ack(kind)
                else:
                    # Not connected any more (rc NO_CONN) is fine: paho keeps it and re-sends.
                    self._inflight[info.mid] = kind
                self._early_acks.clear()

    def _events_inflight(self) -> int:
        return sum(1 for k in self._inflight.values() if k == "event")

    def _count_ack(self, kind: str) -> None:
        if kind == "event":
            self._stats["events"] += 1

    # ---- paho callbacks (paho's network thread) ----------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            with self._cond:
                self._stats["connect_failures"] += 1
                self._connect_error = f"broker at {self.address} refused the connection: {reason}"
                first = not self._outage_logged
                self._outage_logged = True
            if first:
                log.warning("MQTT %s; retrying in the background", self._connect_error)
            return
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        if self.cfg.discovery:
            client.subscribe(self.status_topic, qos=1)  # clean session: subscribe every time
            self._publish_discovery(client)
        with self._cond:
            self._connected = True
            self._connect_error = None
            self._stats["connects"] += 1
            self._state_pending = self._last_state is not None  # re-send the last known state
            self._health_pending = self._last_health is not None
            self._resync = bool(self._inflight)
            queued = len(self._queue) + len(self._inflight)
            was_down = self._outage_logged
            self._outage_logged = False
            self._cond.notify_all()
        level = logging.WARNING if was_down else logging.INFO
        log.log(
            level,
            "MQTT connected to %s as %s (%d event(s) to send)",
            self.address,
            self.device.id,
            queued,
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError`, so the reason is still at hand.
        error = connect_failure(self.address, sys.exception())
        with self._cond:
            self._stats["connect_failures"] += 1
            self._connect_error = error
            first = not self._outage_logged
            self._outage_logged = True
            self._cond.notify_all()
        if first:
            log.warning(
                "MQTT %s; retrying in the background (every %g s at most)",
                self._connect_error,
                self.cfg.reconnect_max_s,
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            closing = self._closed
            if was_connected and not closing:
                self._connect_error = f"lost the connection to the broker at {self.address}"
                self._outage_logged = True
            queued = len(self._queue) + len(self._inflight)
            self._cond.notify_all()
        if was_connected and not closing:
            log.warning(
                "MQTT lost the connection to %s (%s); %d event(s) held, reconnecting",
                self.address,
                reason,
                queued,
            )

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._cond:
            self._stats["published"] += 1
            kind = self._inflight.pop(mid, None)
            if kind is not None:
                self._count_ack(kind)
            elif self._publishing:
                self._early_acks.add(mid)  # the sender will match it when publish() returns
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.status_topic and message.payload.strip() == b"online":
            log.info("MQTT: Home Assistant is online; re-sending discovery")
            self._publish_discovery(client)
            with self._cond:
                self._state_pending = self._last_state is not None
                self._cond.notify_all()

    # ---- Home Assistant discovery ------------------------------------------------------------

    def discovery_configs(self) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config for this device's sensors (moodcam.comms.mqtt)."""
        return discovery_configs(self.cfg, self.device, self.labels)

    def _publish_discovery(self, client: mqtt.Client) -> None:
        publish_discovery(client, self.cfg, self.device, self.labels)
