"""The values that flow between pipeline stages, and the mood record they become: one JSON object
per mood-log line and MQTT message (DESIGN.md "Mood log"), schema v1. This module encodes it
(`MoodUpdate.to_record`, `encode`) and decodes and validates it (`parse_record`, `is_v1`,
`decode`); moodcam.logreader reads the log's lines, moodcam.sinks.moodlog writes them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moodcam.labels import FER2013_CLASSES

if TYPE_CHECKING:  # readers of the log (report, playlist) need neither numpy nor OpenCV
    import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels

SCHEMA_VERSION = 1
# A record's `t` below this is media time (seconds into a video file), above it a UTC epoch:
# 2001-09-09T01:46:40Z, older than any live record and longer than any video.
MEDIA_TIME_LIMIT = 1e9
# A record is well under a kilobyte; a line longer than this is not a mood record.
MAX_LINE = 1 << 20
_NUM = (int, float)  # not bool: type() checks, since bool is an int subclass
_LABELS = frozenset(FER2013_CLASSES)


@dataclass
class Frame:
    """One captured frame. `t`: UTC epoch seconds for live sources, media time for files."""

    image: np.ndarray  # uint8, BGR (H, W, 3) or gray (H, W)
    t: float
    index: int
    gray: np.ndarray | None = (
        None  # a free gray image when the camera gives one (picamera2 lores Y)
    )
    # A picture of its own (an image folder's file), unrelated to the frame before: faces are
    # detected afresh instead of searched for where the last picture had them.
    still: bool = False


@dataclass
class FaceResult:
    box: Box
    label: str
    scores: dict[str, float]
    track_id: int = -1

    def to_record(self) -> dict[str, Any]:
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "scores": {k: round(float(p), 4) for k, p in self.scores.items()},
        }


@dataclass
class MoodUpdate:
    """What the pipeline knows after one processed frame; every sink gets one per frame.

    `changed` is true on the frame where the smoothed mood switched (including to/from None).
    """

    t: float
    faces: list[FaceResult] = field(default_factory=list)
    mood: str | None = None
    valence: float | None = None
    arousal: float | None = None
    changed: bool = False

    def to_record(self) -> dict[str, Any]:
        """The mood-log line and MQTT payload of DESIGN.md (schema version `v`)."""
        return {
            "v": SCHEMA_VERSION,
            "t": round(float(self.t), 3),
            "faces": [f.to_record() for f in self.faces],
            "mood": self.mood,
            "valence": None if self.valence is None else round(float(self.valence), 4),
            "arousal": None if self.arousal is None else round(float(self.arousal), 4),
        }


# --- encoding --------------------------------------------------------------------------------


def encode(record: dict[str, Any]) -> bytes:
    """One mood-log line (UTF-8, newline-terminated) for `record`."""
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # NaN/inf are not JSON (jq and most consumers reject them): write null instead.
        text = json.dumps(_finite(record), ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


# --- decoding --------------------------------------------------------------------------------


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """A line's JSON object (newline already cut off, or an MQTT payload); None if it is longer
    than MAX_LINE or not a JSON object."""
    if len(raw) > MAX_LINE:
        return None
    try:
        rec = json.loads(raw)  # UnicodeDecodeError and JSONDecodeError are both ValueError
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A whole line's JSON object (with its newline); None if torn or not a JSON object."""
    return parse_record(raw[:-1]) if raw.endswith(b"\n") else None


def is_v1(rec: dict[str, Any]) -> bool:
    """A schema v1 record: `v` 1, `t` a finite number, `mood` a FER2013 label or null, `valence`
    and `arousal` finite numbers or null (`faces` is not checked: no reader needs it)."""
    t, mood, val, aro = rec.get("t"), rec.get("mood"), rec.get("valence"), rec.get("arousal")
    # x - x == 0 is false for NaN and infinities (Python's json accepts both).
    return not (
        rec.get("v") != SCHEMA_VERSION
        or type(t) not in _NUM
        or t - t != 0
        or (mood is not None and (type(mood) is not str or mood not in _LABELS))
        or (val is not None and (type(val) not in _NUM or val - val != 0))
        or (aro is not None and (type(aro) not in _NUM or aro - aro != 0))
    )


def newer_schema(rec: dict[str, Any]) -> int:
    """The record's schema version when a newer moodcam than this one wrote it, else 0."""
    v = rec.get("v")
    return v if type(v) is int and v > SCHEMA_VERSION else 0


def decode(rec: dict[str, Any]) -> MoodUpdate | None:
    """The MoodUpdate of a v1 record (without its faces); None if it is not one."""
    if not is_v1(rec):
        return None
    return MoodUpdate(
        t=float(rec["t"]),
        mood=rec.get("mood"),
        valence=rec.get("valence"),
        arousal=rec.get("arousal"),
    )
