"""The camera health in a small file beside the mood log, for `moodcam web` (which reads what the
daemon writes and never the camera). MQTT carries the same record when it is on; this needs no
broker. Written whole (temporary file, then rename) at each change of health, and `stopped`
when the daemon exits; a daemon that was killed leaves its last state, which the dashboard
weighs against the age of the log's last line."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moodcam.files import open_private
from moodcam.records import MoodUpdate
from moodcam.sinks import Sink

if TYPE_CHECKING:
    from moodcam.config import Config

log = logging.getLogger("moodcam.health")


def health_path(log_path: str | os.PathLike[str]) -> Path:
    """`<log>.health.json` (not taken for a rotated log file: those end in a number)."""
    p = Path(log_path)
    return p.with_name(p.name + ".health.json")


def read_health(log_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last health the daemon wrote beside this log, or None."""
    try:
        with open(health_path(log_path), "rb") as f:
            data = json.loads(f.read(4096))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class HealthFile(Sink):
    """`set_health` writes the record; frames are not its business. On whenever the mood log
    is (its row in SINKS is the [log] section's): the file lives beside the log."""

    def __init__(self, log_path: str | os.PathLike[str]) -> None:
        self.path = health_path(log_path)
        self._failed = False

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> HealthFile:
        return cls(cfg.log.path)

    def handle(self, update: MoodUpdate) -> None:
        pass

    def set_health(self, health: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open_private(tmp) as f:
                f.write(json.dumps(health, separators=(",", ":")).encode())
            os.replace(tmp, self.path)
            self._failed = False
        except (OSError, ValueError) as e:  # the log's own sink reports a failing disk
            if not self._failed:
                log.warning("camera health file %s: cannot write: %s", self.path, e)
            self._failed = True

    def close(self) -> None:
        self.set_health({"camera": "stopped", "since": round(time.time(), 3), "detail": ""})
