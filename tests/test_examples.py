"""The examples in examples/ work: the Home Assistant automation refers to the entity that
moodcam's discovery creates, and the MQTT consumer prints events from a real Mosquitto."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from moodcam.config import DeviceConfig, MqttConfig, PlaylistConfig
from moodcam.labels import DEFAULT_CLASSES
from moodcam.records import MoodUpdate
from moodcam.sinks.mqtt import MqttSink
from tests.mosquitto import INSTALL_HINT, Mosquitto, find_mosquitto, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def ha_slugify(text: str) -> str:
    """Home Assistant's `slugify` (python-slugify, separator "_") for plain names: ASCII-folded,
    lower case, every run of other characters one underscore, none at the ends."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "unknown"


def ha_entity_id(component: str, config: dict[str, Any]) -> str:
    """The entity id Home Assistant gives an MQTT-discovered entity on first sight.

    1. `default_entity_id` (HA 2025.10+), e.g. "sensor.kitchen_mood", is taken as it is;
    2. else `object_id` (older, now deprecated): "<component>.<object_id>";
    3. else from the friendly name: an entity with a `device` has `has_entity_name`, so its name
       is "<device name> <entity name>" (the device name alone if the entity name is null), and
       the id is "<component>." + slugify(that). moodcam's discovery has neither 1 nor 2, so
       this rule applies: device "moodcam" + "Mood" -> sensor.moodcam_mood.
    A clash with an existing entity gets "_2" appended; not modelled here.
    """
    if config.get("default_entity_id"):
        return str(config["default_entity_id"])
    if config.get("object_id"):
        return f"{component}.{config['object_id']}"
    parts = [config.get("device", {}).get("name"), config.get("name")]
    return f"{component}.{ha_slugify(' '.join(p for p in parts if p))}"


def discovery(device: DeviceConfig) -> dict[str, dict[str, Any]]:
    """The discovery configs a real MqttSink publishes (no broker needed to ask it)."""
    sink = MqttSink(MqttConfig(enabled=True, url=f"mqtt://127.0.0.1:{free_port()}"), device,
                    DEFAULT_CLASSES)  # fmt: skip
    try:
        return sink.discovery_configs()
    finally:
        sink.close(timeout=0.2)


def mood_sensor(configs: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    [(topic, config)] = [(t, c) for t, c in configs.items() if t.endswith("/mood/config")]
    return topic.split("/")[1], config  # <prefix>/<component>/<node>/<object>/config


def test_entity_id_derivation() -> None:
    assert ha_entity_id("sensor", {"name": "Mood", "device": {"name": "moodcam"}}) == (
        "sensor.moodcam_mood"
    )
    assert ha_entity_id("sensor", {"name": "Mood", "device": {"name": "Salle à manger"}}) == (
        "sensor.salle_a_manger_mood"
    )
    assert ha_entity_id("sensor", {"name": "Mood", "object_id": "cam1_mood"}) == "sensor.cam1_mood"
    assert ha_entity_id("sensor", {"default_entity_id": "sensor.x"}) == "sensor.x"


def test_home_assistant_automation_matches_discovery() -> None:
    yaml = pytest.importorskip("yaml", reason="pyyaml parses the example: pip install pyyaml")
    automation = yaml.safe_load((EXAMPLES / "home_assistant_automation.yaml").read_text("utf-8"))
    component, config = mood_sensor(discovery(DeviceConfig()))
    entity_id = ha_entity_id(component, config)
    assert entity_id == "sensor.moodcam_mood"

    # Either the current syntax (triggers: - trigger: state) or the older one (trigger: platform).
    triggers = automation.get("triggers", automation.get("trigger"))
    [trigger] = [t for t in triggers if (t.get("trigger") or t.get("platform")) == "state"]
    assert trigger["entity_id"] == entity_id
    moods = trigger["to"]
    assert moods and set(moods) <= set(config["options"])

    # Same defaults as the playlist sink: the same mapping, hold time and interval.
    defaults = PlaylistConfig()
    assert automation["variables"]["playlists"] == defaults.playlists
    assert set(defaults.playlists) == set(moods)
    assert trigger["for"] == {"seconds": defaults.hold_s}
    actions = automation.get("actions", automation.get("action"))
    [play] = [
        a for a in actions if (a.get("action") or a.get("service")) == "media_player.play_media"
    ]
    assert play["data"]["media_content_type"] == "playlist"
    assert "trigger.to_state.state" in play["data"]["media_content_id"]
    [delay] = [a["delay"] for a in actions if "delay" in a]
    assert delay["minutes"] * 60 == defaults.min_interval_s
    assert automation["mode"] == "single"  # what makes the delay an interval
    [paused] = [c for c in automation["conditions"] if c["condition"] == "state"]
    assert paused["state"] == "playing" and paused["entity_id"] == play["target"]["entity_id"]


def _lines(stream: Any, out: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip(INSTALL_HINT)
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def test_mqtt_consumer_prints_events(broker: Mosquitto) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "mqtt_consumer.py"), "127.0.0.1", str(broker.port), "cam1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    sink = None
    try:
        first = lines.get(timeout=10)
        assert first.strip() == f"listening to moodcam/cam1/event on 127.0.0.1:{broker.port}"
        sink = MqttSink(MqttConfig(enabled=True, url=f"mqtt://127.0.0.1:{broker.port}"),
                        DeviceConfig(id="cam1"), DEFAULT_CLASSES)  # fmt: skip
        sink.handle(MoodUpdate(t=12.5, mood="happy", valence=0.6, arousal=0.3, changed=True))
        sink.handle(MoodUpdate(t=13.0, mood="happy", changed=False))  # not a change: no event
        sink.handle(MoodUpdate(t=14.0, mood=None, changed=True))
        got = [lines.get(timeout=10).strip() for _ in range(2)]
        assert got == ["t=12.5 mood=happy valence=0.6", "t=14.0 mood=None valence=None"]
        # Not a mood record: one line on stderr (merged here), and it keeps listening.
        publish.single("moodcam/cam1/event", b'{"v": 1, "t": "noon"}', hostname="127.0.0.1",
                       port=broker.port, qos=1)  # fmt: skip
        assert lines.get(timeout=10).strip() == """not a v1 mood record: b'{"v": 1, "t": "noon"}'"""
        sink.handle(MoodUpdate(t=15.0, mood="sad", valence=-0.7, arousal=0.3, changed=True))
        assert lines.get(timeout=10).strip() == "t=15.0 mood=sad valence=-0.7"
        time.sleep(0.3)
        assert lines.empty()
    finally:
        if sink is not None:
            sink.close()
        proc.terminate()
        proc.wait(timeout=5)
