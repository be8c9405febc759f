"""Human-readable mood lines on stdout, e.g.

    12.40s  mood happy   (faces 1: happy 0.91)  valence +0.62 arousal 0.41

Times below 1e9 are media seconds (file sources); larger ones are UTC epochs (live sources) and
are shown as local clock time.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from moodcam.config import StdoutConfig
from moodcam.records import MEDIA_TIME_LIMIT, MoodUpdate
from moodcam.sinks import Sink

if TYPE_CHECKING:
    from moodcam.config import Config

log = logging.getLogger("moodcam.stdout")


def format_time(t: float) -> str:
    if t > MEDIA_TIME_LIMIT:
        lt = time.localtime(t)
        return time.strftime("%H:%M:%S", lt) + f".{int((t % 1) * 100):02d}"
    return f"{t:.2f}s"


def format_update(update: MoodUpdate) -> str:
    """One line for an update (no newline)."""
    mood = update.mood if update.mood is not None else "none"
    faces = ", ".join(f"{f.label} {f.scores.get(f.label, 0.0):.2f}" for f in update.faces)
    faces = f"faces {len(update.faces)}" + (f": {faces}" if faces else "")
    valence = "n/a" if update.valence is None else f"{update.valence:+.2f}"
    arousal = "n/a" if update.arousal is None else f"{update.arousal:.2f}"
    # "neutral" is the longest default label: pad to it so the columns line up.
    return f"{format_time(update.t)}  mood {mood:<8}({faces})  valence {valence} arousal {arousal}"


class ConsoleSink(Sink):
    """Prints a line per mood change (or per frame with `cfg.every_frame`), flushed at once.

    `stream` defaults to the `sys.stdout` of construction time. A closed pipe (`moodcam run |
    head`) switches the sink off with one log message instead of stopping the daemon.
    """

    def __init__(self, cfg: StdoutConfig, stream: TextIO | None = None) -> None:
        self.cfg = cfg
        self.stream = stream if stream is not None else sys.stdout
        self._dead = False

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> ConsoleSink:
        return cls(cfg.stdout)

    def handle(self, update: MoodUpdate) -> None:
        if self._dead or not (update.changed or self.cfg.every_frame):
            return
        try:
            self.stream.write(format_update(update) + "\n")
            self.stream.flush()  # a pipe or journald should see the change now, not at 4 KiB
        except (ValueError, OSError) as e:  # BrokenPipeError is an OSError; ValueError: closed
            self._dead = True
            log.warning("stdout sink: cannot write (%s); no more mood lines on stdout", e)

    def close(self) -> None:
        if not self._dead:
            with contextlib.suppress(ValueError, OSError):
                self.stream.flush()
