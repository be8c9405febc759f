"""The one place that names classes.

FER2013's `emotion` column indexes FER2013_CLASSES; a model's output order is whatever its
card says, and the default product model uses DEFAULT_CLASSES in that order.
"""

from __future__ import annotations

# FER2013's own encoding: emotion 0..6 in this order.
FER2013_CLASSES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)

DEFAULT_CLASSES: tuple[str, ...] = ("angry", "happy", "sad", "neutral")

# Each mood's colour: the RGB LED's default ([leds] colors) and the report chart's hue.
MOOD_COLORS: dict[str, str] = {
    "angry": "#ff0000",
    "happy": "#ffb000",
    "sad": "#0040ff",
    "neutral": "#ffffff",
}

# FER+ (fer2013new.csv) vote columns, mapped to the names above.
FERPLUS_COLUMNS: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}


def parse_class_list(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse "angry,happy,sad,neutral" (or a list) into a validated tuple of FER2013 names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(s.strip().lower() for s in items if s.strip())
    unknown = [n for n in names if n not in FER2013_CLASSES]
    if unknown:
        raise ValueError(
            f"unknown class name(s) {', '.join(unknown)}; known: {', '.join(FER2013_CLASSES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class list repeats a name: {','.join(names)}")
    if len(names) < 2:
        raise ValueError("a class list needs at least two classes")
    return names
