"""The stdout sink: one readable, flushed line per mood change (or per frame)."""

from __future__ import annotations

import io
import time

import pytest

from moodcam.config import StdoutConfig
from moodcam.records import FaceResult, MoodUpdate
from moodcam.sinks.console import ConsoleSink


def face(label: str, p: float) -> FaceResult:
    rest = (1 - p) / 3
    scores = {k: (p if k == label else rest) for k in ("angry", "happy", "sad", "neutral")}
    return FaceResult(box=(0, 0, 50, 50), label=label, scores=scores)


SCRIPT = [
    MoodUpdate(t=0.0),  # nothing known yet, nothing changed: no line
    MoodUpdate(
        t=12.4, faces=[face("happy", 0.91)], mood="happy", valence=0.62, arousal=0.41, changed=True
    ),
    MoodUpdate(t=12.5, faces=[face("happy", 0.93)], mood="happy", valence=0.64, arousal=0.40),
    MoodUpdate(
        t=13.0,
        faces=[face("sad", 0.7), face("neutral", 0.55)],
        mood="neutral",
        valence=-0.081,
        arousal=0.2,
        changed=True,
    ),
    MoodUpdate(t=20.25, faces=[], mood=None, changed=True),
]


class FlushCountingIO(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_lines_on_mood_changes() -> None:
    out = FlushCountingIO()
    sink = ConsoleSink(StdoutConfig(), stream=out)
    for u in SCRIPT:
        sink.handle(u)
    assert out.getvalue().splitlines() == [
        "12.40s  mood happy   (faces 1: happy 0.91)  valence +0.62 arousal 0.41",
        "13.00s  mood neutral (faces 2: sad 0.70, neutral 0.55)  valence -0.08 arousal 0.20",
        "20.25s  mood none    (faces 0)  valence n/a arousal n/a",
    ]
    assert out.flushes == 3  # each line flushed as it is written
    sink.close()


def test_every_frame() -> None:
    out = io.StringIO()
    sink = ConsoleSink(StdoutConfig(every_frame=True), stream=out)
    for u in SCRIPT:
        sink.handle(u)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0] == "0.00s  mood none    (faces 0)  valence n/a arousal n/a"
    assert lines[2] == "12.50s  mood happy   (faces 1: happy 0.93)  valence +0.64 arousal 0.40"


def test_epoch_times_are_local_clock_time() -> None:
    t = 1_763_000_000.25  # a live source: UTC epoch seconds
    out = io.StringIO()
    ConsoleSink(StdoutConfig(), stream=out).handle(MoodUpdate(t=t, mood="sad", changed=True))
    clock = time.strftime("%H:%M:%S", time.localtime(t))
    assert out.getvalue() == f"{clock}.25  mood sad     (faces 0)  valence n/a arousal n/a\n"


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleSink(StdoutConfig()).handle(MoodUpdate(t=1.0, mood="angry", changed=True))
    assert capsys.readouterr().out.startswith("1.00s  mood angry   (faces 0)")


def test_closed_stream_does_not_stop_the_daemon(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    sink = ConsoleSink(StdoutConfig(every_frame=True), stream=out)
    out.close()  # like a closed pipe: `moodcam run | head -1`
    for u in SCRIPT:
        sink.handle(u)
    sink.close()
    assert len([r for r in caplog.records if r.name == "moodcam.stdout"]) == 1
