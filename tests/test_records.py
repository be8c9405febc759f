"""The mood record (schema v1) in its one home, moodcam.records: what is encoded decodes to the
same mood, and every way a line can fail to be a v1 record is refused by `is_v1` and `decode`."""

from __future__ import annotations

import math

import pytest

from moodcam.records import (
    MAX_LINE,
    FaceResult,
    MoodUpdate,
    decode,
    encode,
    is_v1,
    newer_schema,
    parse_line,
    parse_record,
)


def test_an_encoded_update_decodes_to_the_same_mood() -> None:
    face = FaceResult((1, 2, 30, 40), "happy", {"happy": 0.9, "sad": 0.1})
    update = MoodUpdate(t=1.7e9 + 0.25, faces=[face], mood="happy", valence=0.5, arousal=0.25)
    line = encode(update.to_record())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    rec = parse_line(line)
    assert rec is not None and is_v1(rec)
    back = decode(rec)
    assert back is not None
    assert (back.t, back.mood, back.valence, back.arousal) == (update.t, "happy", 0.5, 0.25)


def test_nan_is_written_as_null_and_still_a_v1_record() -> None:
    line = encode(MoodUpdate(t=5.0, mood=None, valence=math.nan).to_record())
    rec = parse_line(line)
    assert rec is not None and rec["valence"] is None and decode(rec) is not None


GOOD = {"v": 1, "t": 1.7e9, "faces": [], "mood": "sad", "valence": -0.5, "arousal": None}


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": "1"},
        {"t": "1700000000"},
        {"t": math.nan},
        {"t": math.inf},
        {"t": True},
        {"mood": "excited"},
        {"mood": 3},
        {"valence": "high"},
        {"valence": -math.inf},
        {"arousal": math.nan},
    ],
)
def test_a_record_that_is_not_v1_is_refused(change: dict) -> None:
    assert is_v1(GOOD) and decode(GOOD) is not None
    bad = GOOD | change
    assert not is_v1(bad) and decode(bad) is None


def test_a_newer_schema_is_told_apart_from_a_broken_record() -> None:
    assert newer_schema(GOOD | {"v": 3}) == 3
    assert newer_schema(GOOD) == newer_schema(GOOD | {"v": "9"}) == 0


def test_lines_that_are_no_json_object_parse_to_none() -> None:
    assert parse_line(b'{"v": 1, "t": 2') is None  # torn: no newline
    assert parse_line(b"[1, 2]\n") is None and parse_record(b"\xff\xfe") is None
    assert parse_record(b'{"v": 1}' + b" " * MAX_LINE) is None  # longer than any record
