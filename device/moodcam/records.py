"""The values that flow between pipeline stages, and the mood-log / MQTT record they become."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # readers of the log (report, playlist) need neither numpy nor OpenCV
    import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels

SCHEMA_VERSION = 1


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
