"""Where moods go: each sink gets every MoodUpdate and decides what to do with it."""

from __future__ import annotations

from typing import Protocol

from moodcam.records import MoodUpdate


class Sink(Protocol):
    def handle(self, update: MoodUpdate) -> None:
        """Called once per processed frame, from the frame loop: must not block on I/O for long."""

    def close(self) -> None:
        """Flush and release (LEDs off, last log line synced, MQTT offline and queue drained)."""
