"""The mood tracker on synthetic frame sequences: media time only, so every test is deterministic."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from moodcam.config import TrackerConfig
from moodcam.labels import DEFAULT_CLASSES, FER2013_CLASSES
from moodcam.preprocess import Box
from moodcam.records import SCHEMA_VERSION, MoodUpdate
from moodcam.tracker import VALENCE_AROUSAL, MoodTracker

LABELS = DEFAULT_CLASSES  # angry, happy, sad, neutral
BOX: Box = (100, 100, 80, 80)


def p(angry: float = 0.0, happy: float = 0.0, sad: float = 0.0, neutral: float = 0.0) -> np.ndarray:
    return np.array([angry, happy, sad, neutral], dtype=np.float32)


HAPPY = p(0.05, 0.85, 0.05, 0.05)
SAD = p(0.05, 0.05, 0.85, 0.05)

Detections = list[tuple[Box, np.ndarray]]


def run(
    tracker: MoodTracker, times: Sequence[float], dets: Callable[[int, float], Detections]
) -> list[MoodUpdate]:
    """Feed one update per time; `dets(i, t)` gives frame i's detections."""
    return [tracker.update(t, dets(i, t)) for i, t in enumerate(times)]


def clock(fps: float, seconds: float, start: float = 0.0) -> list[float]:
    return [start + i / fps for i in range(round(seconds * fps))]


def moods(updates: list[MoodUpdate]) -> list[str | None]:
    return [u.mood for u in updates]


def n_changes(updates: list[MoodUpdate]) -> int:
    return sum(u.changed for u in updates)


def exact(**kw: float) -> TrackerConfig:
    """No smoothing: the smoothed probabilities are the raw ones, so edges can be set exactly."""
    return TrackerConfig(**{"smoothing_s": 0.0, **kw})


# -- a single face over time ---------------------------------------------------------------------


def test_steady_face_gives_a_stable_mood() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    ups = run(tr, clock(30, 5.0), lambda i, t: [(BOX, HAPPY)])
    assert ups[0].mood is None and not ups[0].changed  # not yet seen for hold_s
    first = next(i for i, u in enumerate(ups) if u.mood is not None)
    assert 0.3 - 1e-9 <= ups[first].t <= 0.3 + 1 / 30
    assert set(moods(ups[first:])) == {"happy"}
    assert n_changes(ups) == 1 and ups[first].changed
    assert {f.track_id for u in ups for f in u.faces} == {1}
    assert all(len(u.faces) == 1 and u.faces[0].label == "happy" for u in ups)


def test_a_real_change_shows_within_a_second_at_30_and_5_fps() -> None:
    delays = {}
    for fps in (30, 5):
        tr = MoodTracker(TrackerConfig(), LABELS)
        ups = run(tr, clock(fps, 6.0), lambda i, t: [(BOX, HAPPY if t < 3.0 - 1e-9 else SAD)])
        assert moods(ups)[round(2.9 * fps)] == "happy"
        switch = next(u for u in ups if u.mood == "sad")
        assert switch.changed
        delays[fps] = switch.t - 3.0
        assert set(moods(ups)[ups.index(switch) :]) == {"sad"}  # and it stays
        assert n_changes(ups) == 2  # None -> happy -> sad, nothing in between
    # Smoothing (0.4 s) plus hold (0.3 s): not instant, but well inside a second at both rates...
    for d in delays.values():
        assert 0.3 < d <= 1.0
    # ...and the same behaviour at both rates, up to one 5 fps frame.
    assert abs(delays[30] - delays[5]) <= 1 / 5 + 1e-9


def test_smoothing_uses_real_time_not_frame_count() -> None:
    # Valence is linear in the smoothed probabilities, so equal valence at equal media time
    # means equal smoothed state, whatever the frame rate.
    at = {}
    for fps in (30, 5, 2):
        tr = MoodTracker(TrackerConfig(smoothing_s=0.8), LABELS)
        # The last happy frame is at t = 1.0 on every grid: each frame's scores count for the
        # time since the previous frame, so that is where the step starts at every rate.
        ups = run(tr, clock(fps, 4.0), lambda i, t: [(BOX, HAPPY if t < 1.0 + 1e-9 else SAD)])
        at[fps] = {round(u.t, 6): u.valence for u in ups}
    for t in (1.2, 1.6, 2.0, 3.0):
        assert at[30][t] == pytest.approx(at[5][t], abs=1e-9)
    for t in (1.5, 2.0, 3.0):
        assert at[30][t] == pytest.approx(at[2][t], abs=1e-9)
    # One time constant after the step, 1 - 1/e of the way from happy to sad (float32 inputs).
    v_happy = float(HAPPY @ np.array([VALENCE_AROUSAL[k][0] for k in LABELS]))
    v_sad = float(SAD @ np.array([VALENCE_AROUSAL[k][0] for k in LABELS]))
    expected = v_sad + (v_happy - v_sad) * np.exp(-1.0)
    assert at[5][1.8] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("fps", [30, 5])
@pytest.mark.parametrize(
    "cfg",
    [TrackerConfig(), exact(hysteresis=0.1, hold_s=0.0)],
    ids=["default", "hysteresis-only"],
)
def test_noisy_alternating_scores_do_not_flicker(fps: int, cfg: TrackerConfig) -> None:
    a, b = p(happy=0.55, sad=0.45), p(happy=0.45, sad=0.55)
    tr = MoodTracker(cfg, LABELS)
    ups = run(tr, clock(fps, 20.0), lambda i, t: [(BOX, a if i % 2 else b)])
    assert n_changes(ups) == 1  # None -> a label, then never again
    assert len(set(moods(ups)) - {None}) == 1


def test_without_hysteresis_the_same_noise_does_flicker() -> None:
    # The control for the test above: it would catch flicker if there were any.
    a, b = p(happy=0.55, sad=0.45), p(happy=0.45, sad=0.55)
    tr = MoodTracker(exact(hysteresis=0.0, hold_s=0.0), LABELS)
    ups = run(tr, clock(30, 2.0), lambda i, t: [(BOX, a if i % 2 else b)])
    assert n_changes(ups) == len(ups)


# -- hysteresis and hold edges (no smoothing, so the numbers are exact) --------------------------


def test_a_lead_of_exactly_the_hysteresis_never_switches() -> None:
    tr = MoodTracker(exact(hysteresis=0.1, hold_s=0.0), LABELS)
    assert tr.update(0.0, [(BOX, p(happy=1.0))]).mood == "happy"
    ups = run(tr, clock(10, 5.0, start=0.1), lambda i, t: [(BOX, p(happy=0.45, sad=0.55))])
    assert set(moods(ups)) == {"happy"}
    u = tr.update(5.2, [(BOX, p(happy=0.44, sad=0.56))])  # lead 0.12 > 0.1, hold 0: at once
    assert u.mood == "sad" and u.changed


def test_hold_must_pass_in_full_and_a_lapse_restarts_it() -> None:
    tr = MoodTracker(exact(hysteresis=0.1, hold_s=0.5), LABELS)
    ups = run(tr, clock(10, 1.0), lambda i, t: [(BOX, p(happy=1.0))])
    assert ups[-1].mood == "happy"
    lead, no_lead = p(happy=0.3, sad=0.7), p(happy=0.5, sad=0.5)
    # Leads from 1.0 to 1.4 (0.4 s < hold), lapses at 1.5, leads again from 1.6.
    seq = [lead] * 5 + [no_lead] + [lead] * 6
    ups = run(tr, clock(10, 1.2, start=1.0), lambda i, t: [(BOX, seq[i])])
    assert moods(ups)[:11] == ["happy"] * 11  # 1.0 .. 2.0: no 0.5 s stretch yet
    assert ups[11].t == pytest.approx(2.1) and ups[11].mood == "sad" and ups[11].changed
    # Exactly hold_s after the lead began (1.6 + 0.5) is enough: the boundary counts.


def test_first_label_waits_for_hold_and_faces_carry_their_frames_label() -> None:
    tr = MoodTracker(exact(hold_s=0.5), LABELS)
    seq = [p(happy=0.6, sad=0.4), p(happy=0.4, sad=0.6)] * 3
    ups = run(tr, clock(10, 0.6), lambda i, t: [(BOX, seq[i])])
    for u, raw in zip(ups[:5], ["happy", "sad"] * 3, strict=False):
        assert u.mood is None and not u.changed
        assert u.faces[0].label == raw  # this frame's argmax
    assert ups[5].mood == "sad" and ups[5].changed  # seen for 0.5 s: labelled at t = 0.5
    assert ups[5].faces[0].label == "sad"


def test_first_label_is_the_smoothed_argmax_not_the_raw_one() -> None:
    tr = MoodTracker(TrackerConfig(smoothing_s=0.4, hold_s=0.3), LABELS)
    ups = run(tr, clock(10, 0.3), lambda i, t: [(BOX, HAPPY)])
    u = tr.update(0.3, [(BOX, SAD)])  # one sad frame when the label is due
    assert [x.mood for x in ups] == [None] * 3
    assert u.mood == "happy"  # the mood is the smoothed argmax ...
    # ... while the face says what this frame shows, its label its own scores' argmax.
    assert u.faces[0].label == "sad" and u.faces[0].scores["sad"] == pytest.approx(0.85)


def test_hold_zero_labels_at_once() -> None:
    tr = MoodTracker(exact(hold_s=0.0), LABELS)
    u = tr.update(10.0, [(BOX, p(angry=0.7, neutral=0.3))])
    assert u.mood == "angry" and u.changed


def test_of_two_qualified_challengers_the_stronger_wins() -> None:
    tr = MoodTracker(exact(hysteresis=0.1, hold_s=0.2), LABELS)
    run(tr, clock(10, 0.3), lambda i, t: [(BOX, p(neutral=1.0))])
    ups = run(
        tr, clock(10, 0.3, start=0.3), lambda i, t: [(BOX, p(sad=0.35, angry=0.45, neutral=0.2))]
    )
    assert moods(ups) == ["neutral", "neutral", "angry"]


# -- several faces -------------------------------------------------------------------------------

BIG: Box = (300, 100, 200, 200)
SMALL: Box = (50, 100, 80, 80)
SMALL2: Box = (150, 300, 80, 80)


def mood_with(dominant: str, dets: Detections) -> MoodUpdate:
    tr = MoodTracker(TrackerConfig(hold_s=0.0, dominant=dominant), LABELS)
    return run(tr, clock(10, 1.0), lambda i, t: dets)[-1]


def test_dominant_largest_face() -> None:
    u = mood_with("largest", [(SMALL, p(sad=0.9, neutral=0.1)), (BIG, p(happy=0.6, neutral=0.4))])
    assert u.mood == "happy"
    assert u.valence == pytest.approx(0.6 * 0.8 + 0.4 * 0.0)  # the dominant face's estimate


def test_dominant_most_confident_face() -> None:
    u = mood_with(
        "most_confident", [(SMALL, p(sad=0.9, neutral=0.1)), (BIG, p(happy=0.6, neutral=0.4))]
    )
    assert u.mood == "sad"
    assert u.valence == pytest.approx(0.9 * -0.7)


def test_dominant_majority_and_its_tie_break() -> None:
    dets = [(BIG, p(happy=0.9, sad=0.1)), (SMALL, p(sad=0.8, happy=0.2)), (SMALL2, SAD)]
    u = mood_with("majority", dets)
    assert u.mood == "sad"  # two sad faces outvote one bigger happy face
    # The dominant face is the largest sad one (SMALL, listed first of the two equal sizes).
    assert u.valence == pytest.approx(0.8 * -0.7 + 0.2 * 0.8)
    assert mood_with("majority", dets[:2]).mood == "happy"  # 1:1, the largest face decides


def test_unlabelled_faces_do_not_decide_the_mood() -> None:
    tr = MoodTracker(TrackerConfig(hold_s=0.3), LABELS)
    run(tr, clock(10, 1.0), lambda i, t: [(SMALL, SAD)])
    u = tr.update(1.0, [(SMALL, SAD), (BIG, HAPPY)])  # a big face arrives: not labelled yet
    assert u.mood == "sad" and not u.changed
    ups = run(tr, clock(10, 0.5, start=1.1), lambda i, t: [(SMALL, SAD), (BIG, HAPPY)])
    assert moods(ups) == ["sad", "sad", "happy", "happy", "happy"]  # labelled at 1.3


def test_the_followed_face_keeps_the_mood_until_another_is_clearly_larger() -> None:
    a, b = (100, 100, 80, 80), (300, 100, 136, 136)  # b: 2.89x a's area
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    run(tr, clock(10, 1.0), lambda i, t: [(a, SAD)])
    ups = run(tr, clock(10, 1.0, start=1.0), lambda i, t: [(a, SAD), (b, HAPPY)])
    assert set(moods(ups)) == {"sad"}  # a bit larger is not enough to take the mood over
    bigger = (300, 100, 139, 139)  # 3.02x a's area (the default dominant_margin is 3)
    assert tr.update(2.0, [(a, SAD), (bigger, HAPPY)]).mood == "happy"
    # Once the followed face goes, the largest labelled face left takes over at once.
    assert tr.update(2.1, [(a, SAD)]).mood == "happy"  # b is still live (face_timeout_s)
    assert run(tr, clock(10, 1.2, start=2.2), lambda i, t: [(a, SAD)])[-1].mood == "sad"
    # dominant_margin = 1: always the largest face of the moment.
    tr = MoodTracker(TrackerConfig(hold_s=0.0, dominant_margin=1.0), LABELS)
    run(tr, clock(10, 1.0), lambda i, t: [(a, SAD)])
    assert tr.update(1.0, [(a, SAD), (b, HAPPY)]).mood == "happy"


def test_a_face_the_model_is_unsure_of_gets_no_label() -> None:
    unsure = p(0.3, 0.25, 0.2, 0.25)  # near chance: what a patch of clutter scores
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    ups = run(tr, clock(10, 2.0), lambda i, t: [(BOX, unsure)])
    assert moods(ups) == [None] * 20 and ups[-1].faces[0].label == "angry"
    assert ups[-1].valence is not None  # valence/arousal still follow the live face
    sure = p(0.4, 0.25, 0.2, 0.15)
    assert tr.update(2.0, [(BOX, sure)]).mood is None  # smoothed: 0.3 -> 0.32, not yet
    assert run(tr, clock(10, 2.0, start=2.1), lambda i, t: [(BOX, sure)])[-1].mood == "angry"
    off = MoodTracker(TrackerConfig(hold_s=0.0, min_confidence=0.0), LABELS)
    assert off.update(0.0, [(BOX, unsure)]).mood == "angry"


# -- track identity ------------------------------------------------------------------------------


def test_a_moving_face_keeps_its_id_and_a_face_elsewhere_gets_a_new_one() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    ups = run(tr, clock(30, 2.0), lambda i, t: [((100 + 3 * i, 100 + i, 80, 80), HAPPY)])
    assert {u.faces[0].track_id for u in ups} == {1}  # moved 180 px, 3 px a frame
    u = tr.update(2.0, [((280, 160, 80, 80), HAPPY), ((500, 50, 90, 90), SAD)])
    assert [f.track_id for f in u.faces] == [1, 2]
    # A face that jumps well over a face size away is someone else.
    u = tr.update(2.1, [((280, 160, 80, 80), HAPPY), ((500, 300, 90, 90), SAD)])
    assert [f.track_id for f in u.faces] == [1, 3]


def test_big_steps_and_size_changes_fall_back_to_centre_distance() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    tr.update(0.0, [((100, 100, 80, 80), HAPPY)])
    # 60 px sideways: IoU 0.14, under 0.3, but the centre moved 0.75 face sizes.
    u = tr.update(0.2, [((160, 100, 80, 80), HAPPY)])
    assert u.faces[0].track_id == 1
    # Leaning in: the box grows 1.5x around an offset centre (IoU 0.28).
    u = tr.update(0.4, [((170, 120, 120, 120), HAPPY)])
    assert u.faces[0].track_id == 1
    # Nearby but 3x the size is not the same face.
    u = tr.update(0.6, [((150, 100, 360, 360), HAPPY)])
    assert u.faces[0].track_id == 2


def test_ids_follow_boxes_not_list_order() -> None:
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    left, right = (50, 100, 80, 80), (400, 100, 80, 80)
    first = tr.update(0.0, [(left, HAPPY), (right, SAD)])
    ids = {f.box: f.track_id for f in first.faces}
    u = tr.update(0.1, [((405, 100, 80, 80), SAD), ((55, 100, 80, 80), HAPPY)])
    assert [f.track_id for f in u.faces] == [ids[right], ids[left]]
    assert [f.label for f in u.faces] == ["sad", "happy"]


# -- faces leaving, time jumps -------------------------------------------------------------------


def test_a_face_that_leaves_clears_the_mood_once_after_the_timeout() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)  # face_timeout_s = 1.0
    times = clock(30, 5.0)
    last_seen = 59  # frames 0..59 have the face (t < 2.0)
    ups = run(tr, times, lambda i, t: [(BOX, HAPPY)] if i <= last_seen else [])
    gone = last_seen + 30  # the first frame a full second after it was last seen
    assert moods(ups)[last_seen + 1 : gone] == ["happy"] * 29  # a live face holds the mood
    assert all(u.faces == [] and u.valence is not None for u in ups[last_seen + 1 : gone])
    assert set(moods(ups)[gone:]) == {None}
    assert ups[gone].changed and n_changes(ups[gone:]) == 1
    assert all(u.valence is None and u.arousal is None for u in ups[gone:])
    assert n_changes(ups) == 2


def test_a_short_dropout_keeps_the_face_and_its_mood() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    ups = run(tr, clock(30, 4.0), lambda i, t: [] if 45 <= i < 60 else [(BOX, HAPPY)])
    assert n_changes(ups) == 1
    assert {f.track_id for u in ups for f in u.faces} == {1}


def test_time_going_backwards_resets() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    ups = run(tr, clock(30, 5.0), lambda i, t: [(BOX, HAPPY)])
    assert ups[-1].mood == "happy"
    u = tr.update(0.0, [(BOX, p(sad=1.0))])  # the next file starts at media time 0
    assert u.faces[0].track_id == 2  # a new face, not the old track
    assert u.mood is None and u.changed  # sinks hear that the old mood is gone
    assert (u.valence, u.arousal) == VALENCE_AROUSAL["sad"]  # nothing smoothed in from before
    ups = run(tr, clock(30, 1.0, start=1 / 30), lambda i, t: [(BOX, p(sad=1.0))])
    assert n_changes(ups) == 1 and ups[-1].mood == "sad"


def test_reset_forgets_faces() -> None:
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    assert tr.update(100.0, [(BOX, HAPPY)]).mood == "happy"
    tr.reset()
    u = tr.update(100.1, [])
    assert u.mood is None and u.changed and u.valence is None


# -- valence / arousal ---------------------------------------------------------------------------

# The table of the module docstring; the four product classes are fixed by the design brief.
TABLE = {
    "happy": (0.8, 0.6),
    "angry": (-0.6, 0.8),
    "sad": (-0.7, 0.3),
    "neutral": (0.0, 0.2),
    "disgust": (-0.6, 0.5),
    "fear": (-0.6, 0.9),
    "surprise": (0.2, 0.9),
}


def test_the_table_is_the_documented_one() -> None:
    assert VALENCE_AROUSAL == TABLE
    assert all(-1 <= v <= 1 and 0 <= a <= 1 for v, a in TABLE.values())
    assert set(FER2013_CLASSES) <= set(TABLE)


@pytest.mark.parametrize("labels", [DEFAULT_CLASSES, FER2013_CLASSES], ids=["4-class", "7-class"])
def test_one_hot_scores_give_the_table_values(labels: tuple[str, ...]) -> None:
    for k, name in enumerate(labels):
        tr = MoodTracker(TrackerConfig(), labels)
        assert tr.update(0.0, []).valence is None
        onehot = np.zeros(len(labels), dtype=np.float32)
        onehot[k] = 1.0
        u = tr.update(0.1, [(BOX, onehot)])
        assert (u.valence, u.arousal) == TABLE[name]


def test_valence_is_the_expected_value_and_tolerates_int8_sums() -> None:
    tr = MoodTracker(TrackerConfig(), LABELS)
    u = tr.update(0.0, [(BOX, p(happy=0.5, sad=0.5))])
    assert u.valence == pytest.approx(0.05) and u.arousal == pytest.approx(0.45)
    # Dequantised int8 outputs come in steps of 1/256 and need not sum to 1.
    tr = MoodTracker(TrackerConfig(), LABELS)
    u = tr.update(0.0, [(BOX, p(happy=128 / 256, sad=127 / 256))])
    assert u.valence == pytest.approx((128 * 0.8 - 127 * 0.7) / 255)


# -- records and bad input -----------------------------------------------------------------------


def test_to_record_has_the_mood_log_schema() -> None:
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    u = tr.update(12.3456, [(BOX, HAPPY), ((400, 50, 60, 60), SAD)])
    rec = json.loads(json.dumps(u.to_record()))  # plain JSON types only
    assert set(rec) == {"v", "t", "faces", "mood", "valence", "arousal"}
    assert rec["v"] == SCHEMA_VERSION and rec["t"] == 12.346 and rec["mood"] == "happy"
    assert isinstance(rec["valence"], float) and isinstance(rec["arousal"], float)
    assert [set(f) for f in rec["faces"]] == [{"box", "label", "scores"}] * 2
    assert rec["faces"][0] == {
        "box": [100, 100, 80, 80],
        "label": "happy",
        "scores": {"angry": 0.05, "happy": 0.85, "sad": 0.05, "neutral": 0.05},
    }
    assert rec["faces"][1]["label"] == "sad"
    empty = MoodTracker(TrackerConfig(), LABELS).update(0.0, []).to_record()
    assert empty["faces"] == [] and empty["mood"] is None and empty["valence"] is None


def test_bad_input_is_refused_and_leaves_the_tracker_unchanged() -> None:
    tr = MoodTracker(TrackerConfig(hold_s=0.0), LABELS)
    tr.update(0.0, [(BOX, HAPPY)])
    with pytest.raises(ValueError, match="expected 4 probabilities"):
        tr.update(0.1, [(BOX, HAPPY), (SMALL, np.ones(7))])
    with pytest.raises(ValueError, match="finite"):
        tr.update(float("nan"), [])
    u = tr.update(0.2, [(BOX, HAPPY)])
    assert u.mood == "happy" and not u.changed and u.faces[0].track_id == 1
    with pytest.raises(ValueError, match="valence/arousal"):
        MoodTracker(TrackerConfig(), ("happy", "contempt"))
    with pytest.raises(ValueError, match="dominant"):
        MoodTracker(TrackerConfig(dominant="loudest"), LABELS)
