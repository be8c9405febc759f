"""Where moods go: each sink gets every MoodUpdate and decides what to do with it.

Every sink is a `Sink`: `handle` each update, `close` at the end, `set_health` when the camera's
health changes (most ignore it), `stats()` its counters as a dict (read after close for the run's
summary; `last_error` and `lines_dropped` are the keys the daemon reads), `events_lost` the mood
events it promised to deliver and could not. `build_sinks` makes the ones a config enables from
`SINKS`, one row per sink, each sink's `from_config` raising `SinkError` when it cannot start.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from moodcam.records import MoodUpdate

if TYPE_CHECKING:
    from moodcam.config import Config

log = logging.getLogger("moodcam")


class Sink:
    """The contract every sink keeps (see the module docstring)."""

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> Sink:
        """The sink for `cfg`'s section; SinkError naming the config and the section if it
        cannot start (GPIO pin busy, log path unusable, unreadable password file)."""
        raise NotImplementedError

    def handle(self, update: MoodUpdate) -> None:
        """Called once per processed frame, from the frame loop: must not block on I/O for long."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release (LEDs off, last log line synced, MQTT offline and queue drained)."""

    def set_health(self, health: dict[str, Any]) -> None:
        """The camera's health changed (moodcam.daemon.health_record); ignored by default."""

    def stats(self) -> dict[str, Any]:
        """This sink's counters (a copy)."""
        return {}

    @property
    def events_lost(self) -> int:
        """Mood events this sink promised to deliver and gave up on (MQTT); 0 for the others."""
        return 0


# Every sink in the order the daemon feeds them: (config section, module, class).
SINKS: tuple[tuple[str, str, str], ...] = (
    ("log", "moodcam.sinks.moodlog", "MoodLogWriter"),
    ("log", "moodcam.sinks.healthfile", "HealthFile"),  # beside the log, for `moodcam web`
    ("leds", "moodcam.sinks.leds", "LedSink"),
    ("mqtt", "moodcam.sinks.mqtt", "MqttSink"),
    ("playlist", "moodcam.sinks.playlist", "PlaylistSink"),
    ("stdout", "moodcam.sinks.console", "ConsoleSink"),
)


def build_sinks(cfg: Config, labels: tuple[str, ...]) -> list[Sink]:
    """Every sink the config enables, in `SINKS` order; imported only when enabled (no paho or
    gpiozero for a run without them). A sink that cannot start raises SinkError and the ones
    already started are closed."""
    sinks: list[Sink] = []
    try:
        for section, module, name in SINKS:
            if getattr(cfg, section).enabled:
                sink_class: type[Sink] = getattr(importlib.import_module(module), name)
                sinks.append(sink_class.from_config(cfg, labels))
    except BaseException:
        close_sinks(sinks)
        raise
    return sinks


def close_sinks(sinks: list[Sink]) -> None:
    for sink in reversed(sinks):
        try:
            sink.close()
        except Exception as e:  # one failing sink must not stop the others flushing
            log.error("closing %s failed: %s", type(sink).__name__, e)


def sink_stats(sinks: list[Sink]) -> dict[str, dict[str, Any]]:
    """Each sink's counters by class name (log lines, MQTT events, LED changes, playlist
    switches), read after close so they include the final flush."""
    return {type(sink).__name__: stats for sink in sinks if (stats := sink.stats())}


def sink_error(sinks: list[Sink]) -> str:
    """The last failure a sink recorded (its stats' last_error), for the exit message."""
    errors = [e for sink in sinks if (e := sink.stats().get("last_error"))]
    return errors[-1] if errors else "no detail"
