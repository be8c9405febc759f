"""The sink contract (moodcam.sinks.Sink): every sink the config can enable is built by one table,
keeps the same five members, and fails to start with one SinkError naming the config and section."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from moodcam import config
from moodcam.errors import EXIT_SINK, SinkError
from moodcam.records import MoodUpdate
from moodcam.sinks import SINKS, Sink, build_sinks, close_sinks, sink_error, sink_stats
from tests.mosquitto import Mosquitto, find_mosquitto, free_port

LABELS = ("angry", "happy", "sad", "neutral")


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's default pin factory, as LedSink.from_config uses it, on mock PWM pins."""
    previous = Device.pin_factory
    Device.pin_factory = factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    Device.pin_factory = previous


def every_sink(tmp_path: Path, mqtt_port: int, **sections: dict[str, Any]) -> config.Config:
    data: dict[str, dict[str, Any]] = {
        "log": {"path": str(tmp_path / "mood.jsonl"), "interval_s": 0},
        "leds": {"enabled": True},
        "mqtt": {"enabled": True, "url": f"mqtt://127.0.0.1:{mqtt_port}", "drain_s": 2},
        "playlist": {"enabled": True, "port": free_port()},  # no MPD there: it retries
        "stdout": {"enabled": True},
    }
    for name, values in sections.items():
        data[name].update(values)
    return config.from_dict(data, str(tmp_path / "moodcam.toml"))


def test_the_table_names_every_sink_class_once_each_a_sink_with_its_own_from_config() -> None:
    sections = [section for section, _, _ in SINKS]
    assert sections == ["log", "log", "leds", "mqtt", "playlist", "stdout"]  # log: + health file
    for section, module, name in SINKS:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Sink), name
        assert "from_config" in vars(cls) and "handle" in vars(cls), f"{name} keeps the contract"
        assert isinstance(getattr(config.Config(), section).enabled, bool)


def test_every_sink_built_from_config_keeps_the_contract(
    tmp_path: Path, mock_pins: MockFactory
) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with Mosquitto(tmp_path / "broker") as broker:
        sinks = build_sinks(every_sink(tmp_path, broker.port), LABELS)
        assert [type(s).__name__ for s in sinks] == [
            "MoodLogWriter",
            "HealthFile",
            "LedSink",
            "MqttSink",
            "PlaylistSink",
            "ConsoleSink",
        ]
        health = {"camera": "ok", "since": 1.0, "detail": "test"}
        for t, mood in enumerate(("happy", "sad")):
            for sink in sinks:
                sink.handle(MoodUpdate(t=float(t), mood=mood, changed=True))
                sink.set_health(health)  # a no-op for all but MQTT and the health file
        assert json.loads((tmp_path / "mood.jsonl.health.json").read_text()) == health
        close_sinks(sinks)
    assert json.loads((tmp_path / "mood.jsonl.health.json").read_text())["camera"] == "stopped"
    for sink in sinks:
        assert isinstance(sink.stats(), dict) and sink.events_lost == 0, type(sink).__name__
    stats = sink_stats(sinks)
    assert stats["MoodLogWriter"]["lines_written"] == 2
    assert stats["LedSink"] == {"changes": 2}
    assert stats["MqttSink"]["events"] == 2 and stats["MqttSink"]["dropped"] == 0
    assert stats["PlaylistSink"]["connected"] is False  # no MPD on that port
    assert "ConsoleSink" not in stats and "HealthFile" not in stats  # no counters, no entry
    assert "refused" in sink_error(sinks) or "unreachable" in sink_error(sinks).lower()


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("log", {"path": "/"}, r"moodcam.toml: \[log\] path .*"),
        ("leds", {}, r"moodcam.toml: \[leds\] LEDs on GPIO17.*in use"),  # claimed below
        ("mqtt", {"password_file": "/nonexistent/pw"}, r"moodcam.toml: \[mqtt\] .*/nonexistent/pw"),
        ("playlist", {"password_file": "/nonexistent/pw"}, r"/nonexistent/pw"),
    ],
)
def test_a_sink_that_cannot_start_is_one_sink_error_and_the_started_ones_are_closed(
    tmp_path: Path, mock_pins: MockFactory, section: str, values: dict, message: str
) -> None:
    port = free_port()  # no broker: the MQTT sink starts anyway and retries in the background
    cfg = every_sink(tmp_path, port, **{section: values})
    if section == "leds":
        from gpiozero import LED

        busy = LED(cfg.leds.rgb_pins[0])  # someone else holds the red pin
    with pytest.raises(SinkError, match=message) as e:
        build_sinks(cfg, LABELS)
    assert e.value.exit_code == EXIT_SINK
    if section == "leds":
        busy.close()
    if section in ("mqtt", "playlist"):  # the LEDs started before it were closed: pins free
        from moodcam.sinks.leds import LedSink

        LedSink(cfg.leds).close()
