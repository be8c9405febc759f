"""The mood tracker: per-frame face classifications -> a steady device mood and valence/arousal.

Called once per processed frame with that frame's faces (box + the classifier's probability vector)
and the frame time. It

1. **Tracks faces across frames.** Detections are matched to live tracks greedily by IoU (>= 0.3);
   what is left is matched by centre distance relative to face size (at most one face size apart,
   sizes within 2x). Unmatched detections start new tracks with increasing integer ids. A track
   is forgotten on the first processed frame that lacks it once it has gone unseen for
   `face_timeout_s`.
2. **Smooths each face's probabilities** with an exponential moving average in continuous time:
   `s += alpha * (p - s)` with `alpha = 1 - exp(-dt / smoothing_s)` and `dt` the real time since
   the track was last seen. A constant input therefore decays identically at 5 fps and at 30 fps
   (`smoothing_s = 0` turns smoothing off).
3. **Labels each track with hysteresis** (the label the mood is made of; each face in the update
   keeps its own frame's label, the argmax of its scores). A track's first label is its smoothed
   argmax once it has been seen for `hold_s` and its smoothed top score has reached
   `min_confidence` (the model scores a patch of clutter the cascade took for a face near chance;
   such "faces" were most of the mood changes on steady faces in the scene benchmark). After that
   its label switches to another class only when that class's smoothed probability has led the
   current label's by more than `hysteresis`, continuously, for `hold_s` (a lead that lapses
   restarts the clock). Noise that alternates frame to frame cannot pass both tests, so the mood
   does not flicker.
4. **Picks the device mood** from one dominant face, chosen by `dominant`: `largest` (box area;
   the face the mood follows keeps it while it is live until another labelled face has
   `dominant_margin` times its area, so that two faces of about one size, or a brief false face a
   little larger than the real one, do not toss the mood between them), `most_confident` (highest
   smoothed probability) or `majority` (the most common face label; ties go to the label of the
   largest face). Only labelled faces compete for the mood; the mood is None when no live face has
   a label yet. Faces that were missed for a frame or two (still within `face_timeout_s`) keep
   counting, so a detector dropout does not blank the mood.

Time may jump backwards (a new file starts, media time restarts at 0): the tracker then resets.
Any backwards step does, so live sources should stamp frames from a clock that does not step back
(e.g. epoch time taken once at start plus monotonic time since).

Valence/arousal: an estimate, not a measurement
------------------------------------------------
The model only outputs category probabilities; it never measures valence or arousal. The tracker
turns the dominant face's *smoothed* probabilities into a point on Russell's circumplex of affect
(Russell 1980, "A circumplex model of affect", J. Pers. Soc. Psychol. 39(6):1161-1178; see also
Posner, Russell & Peterson 2005) as the probability-weighted mean of fixed per-class coordinates:

    valence = sum_k p_k * V_k / sum_k p_k,    arousal = sum_k p_k * A_k / sum_k p_k

(dividing by the sum only matters for int8 outputs whose dequantised probabilities do not sum to
exactly 1). Valence runs from -1 (unpleasant) to +1 (pleasant); arousal from 0 (calm, sleepy) to 1
(activated). The per-class coordinates:

    class      valence  arousal
    happy        +0.8     0.6
    angry        -0.6     0.8
    sad          -0.7     0.3
    neutral       0.0     0.2
    disgust      -0.6     0.5
    fear         -0.6     0.9
    surprise     +0.2     0.9

These are hand-placed approximations of where each category sits in the circumplex as commonly
drawn in affective computing (happy: pleasant and moderately activated; angry and afraid:
unpleasant and highly activated, close together as in Russell's Figure 1; sad: unpleasant and
deactivated; neutral: near the centre of valence and calm). They are not values from one published
table, and categories have wide spread on both axes in rated data, so treat the output as a coarse,
continuous summary of the class probabilities, comparable over time for one device, not as a
calibrated psychological measurement. Disgust (not among Russell's 1980 terms) is placed as
unpleasant with moderate arousal; surprise, whose valence depends on context, slightly pleasant
with high arousal (like "astonished"). Valence/arousal are None when no face is live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from moodcam.boxes import iou as box_iou
from moodcam.config import TrackerConfig
from moodcam.preprocess import Box
from moodcam.records import FaceResult, MoodUpdate

# (valence in [-1, 1], arousal in [0, 1]) per FER2013 class; see the module docstring.
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "happy": (0.8, 0.6),
    "angry": (-0.6, 0.8),
    "sad": (-0.7, 0.3),
    "neutral": (0.0, 0.2),
    "disgust": (-0.6, 0.5),
    "fear": (-0.6, 0.9),
    "surprise": (0.2, 0.9),
}

IOU_MATCH = 0.3  # a detection overlapping a track this much is the same face
MAX_SHIFT = 1.0  # fallback: centres at most this many face sizes apart...
MAX_SIZE_RATIO = 2.0  # ...and face sizes (sqrt of area) within this factor
# Slack for comparing probabilities and times, so that a lead of exactly `hysteresis` or a hold of
# exactly `hold_s` is judged the same whatever the rounding: classifier outputs are float32 (~1e-7
# apart) and epoch times in float64 resolve ~4e-7 s.
EPS = 1e-6

DOMINANT_MODES = ("largest", "most_confident", "majority")


class _MoodTrack:
    """One face followed over time. Slots: many of these are touched every frame."""

    __slots__ = ("area", "box", "first_seen", "id", "label", "last_seen", "lead_since", "probs")

    def __init__(self, track_id: int, t: float, box: Box, probs: np.ndarray) -> None:
        self.id = track_id
        self.box = box
        self.area = _area(box)
        self.first_seen = t
        self.last_seen = t
        self.probs = np.array(probs, dtype=np.float64)  # smoothed; updated in place afterwards
        self.label = -1  # index into labels; -1 until the face has been seen for hold_s
        # Per class: the time it started leading the current label by > hysteresis, else None.
        self.lead_since: list[float | None] = [None] * len(self.probs)


class MoodTracker:
    """Per-face smoothing with hysteresis, the device mood, and a valence/arousal estimate."""

    def __init__(self, cfg: TrackerConfig, labels: tuple[str, ...]) -> None:
        if cfg.dominant not in DOMINANT_MODES:
            raise ValueError(
                f"tracker dominant {cfg.dominant!r} is not one of {', '.join(DOMINANT_MODES)}"
            )
        unknown = [name for name in labels if name not in VALENCE_AROUSAL]
        if unknown:
            raise ValueError(
                f"no valence/arousal coordinates for class(es) {', '.join(unknown)}; "
                f"known: {', '.join(VALENCE_AROUSAL)}"
            )
        if len(labels) < 2:
            raise ValueError("the tracker needs at least two classes")
        self.cfg = cfg
        self.labels = tuple(labels)
        self._n = len(self.labels)
        self._valence = np.array([VALENCE_AROUSAL[k][0] for k in self.labels])
        self._arousal = np.array([VALENCE_AROUSAL[k][1] for k in self.labels])
        self._scratch = np.empty(self._n)  # reused by the smoothing step: no per-frame arrays
        self._tracks: list[_MoodTrack] = []  # in creation (= id) order
        self._next_id = 1
        self._last_t: float | None = None
        self._followed: _MoodTrack | None = None  # the dominant face of the last update
        # The mood of the previous update. Deliberately not cleared by reset(): sinks must still
        # hear "mood -> None" when a new file starts while they show the old file's mood.
        self._mood: str | None = None

    def reset(self) -> None:
        """Forget every face and the time base (a new source or file starts).

        Track ids keep increasing (they stay unique for this tracker's life), and the previous
        update's mood is kept so that the next update's `changed` tells sinks about the switch.
        """
        self._tracks = []
        self._followed = None
        self._last_t = None

    def update(self, t: float, detections: Sequence[tuple[Box, np.ndarray]]) -> MoodUpdate:
        """Feed one processed frame: its time in seconds and its faces (box, probabilities)."""
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t}")
        # Validate everything before touching state, so a bad call leaves the tracker as it was.
        probs = [self._as_probs(p) for _, p in detections]
        if self._last_t is not None and t < self._last_t:
            self.reset()  # time went backwards: a new file or a restarted stream
        self._last_t = t

        matched = self._associate([box for box, _ in detections])
        seen: set[int] = set()
        faces: list[FaceResult] = []
        for (box, _), p, track in zip(detections, probs, matched, strict=True):
            if track is None:
                track = _MoodTrack(self._next_id, t, box, p)
                self._next_id += 1
                self._tracks.append(track)
            else:
                self._observe(track, t, box, p)
            self._update_label(track, t)
            seen.add(track.id)
            # A face's label is what this frame shows (its scores' argmax); the smoothing and the
            # hysteresis make the mood. Measured on camera-like scenes (bench/scenes.py), a
            # face's smoothed, held label was wrong more often than its own frame's: it lags every
            # change, and the same face gives nearly the same scores frame after frame, so
            # averaging does not undo a mistake.
            faces.append(
                FaceResult(
                    box=box,
                    label=self.labels[int(np.argmax(p))],
                    scores=dict(zip(self.labels, p.tolist(), strict=True)),
                    track_id=track.id,
                )
            )

        # Forget faces unseen for face_timeout_s; only rebuild the list when one goes.
        timeout = self.cfg.face_timeout_s - EPS
        if any(tr.id not in seen and t - tr.last_seen >= timeout for tr in self._tracks):
            self._tracks = [
                tr for tr in self._tracks if tr.id in seen or t - tr.last_seen < timeout
            ]

        dominant = self._dominant()
        mood = None
        valence = arousal = None
        if dominant is not None:
            if dominant.label >= 0:
                mood = self.labels[dominant.label]
            valence, arousal = self._valence_arousal(dominant.probs)
        changed = mood != self._mood
        self._mood = mood
        return MoodUpdate(
            t=t, faces=faces, mood=mood, valence=valence, arousal=arousal, changed=changed
        )

    # -- per-face state ------------------------------------------------------------------------

    def _as_probs(self, p: np.ndarray) -> np.ndarray:
        arr = np.asarray(p)
        if arr.shape != (self._n,):
            raise ValueError(
                f"expected {self._n} probabilities ({', '.join(self.labels)}), got shape {arr.shape}"
            )
        return arr

    def _observe(self, track: _MoodTrack, t: float, box: Box, p: np.ndarray) -> None:
        """Move the track to this frame's box and blend in this frame's probabilities."""
        dt = t - track.last_seen
        tau = self.cfg.smoothing_s
        # Continuous-time EMA: the weight depends on the real time elapsed, not on frame count.
        alpha = 1.0 if tau <= 0 else -math.expm1(-dt / tau)
        s, tmp = track.probs, self._scratch
        np.subtract(p, s, out=tmp)
        tmp *= alpha
        s += tmp
        track.box = box
        track.area = _area(box)
        track.last_seen = t

    def _update_label(self, track: _MoodTrack, t: float) -> None:
        hold = self.cfg.hold_s - EPS
        if track.label < 0:
            # A new face gets its first label once it has been seen for hold_s and the model
            # is confident enough that it is a face with an expression.
            top = int(np.argmax(track.probs))
            if t - track.first_seen >= hold and track.probs[top] >= self.cfg.min_confidence - EPS:
                track.label = top
            return
        s = track.probs.tolist()  # plain floats: faster than indexing numpy per class
        current = track.label
        margin = s[current] + self.cfg.hysteresis + EPS
        since = track.lead_since
        best, best_p = -1, -1.0
        for k, pk in enumerate(s):
            if k == current:
                continue
            if pk > margin:
                if since[k] is None:
                    since[k] = t
                if t - since[k] >= hold and pk > best_p:
                    best, best_p = k, pk
            else:
                since[k] = None  # the lead lapsed: its hold restarts from zero
        if best >= 0:
            track.label = best
            # Leads were measured against the old label; against the new one they start afresh.
            for k in range(self._n):
                since[k] = None

    # -- association ---------------------------------------------------------------------------

    def _associate(self, boxes: list[Box]) -> list[_MoodTrack | None]:
        """The live track each box continues, or None for a new face (greedy, best pairs first)."""
        out: list[_MoodTrack | None] = [None] * len(boxes)
        tracks = self._tracks
        if not tracks or not boxes:
            return out
        taken = [False] * len(tracks)
        # Pass 1: overlap. Sorting (-iou, track index, box index) makes ties deterministic.
        pairs = []
        for ti, tr in enumerate(tracks):
            for bi, box in enumerate(boxes):
                iou = box_iou(tr.box, box)
                if iou >= IOU_MATCH:
                    pairs.append((-iou, ti, bi))
        _assign(sorted(pairs), tracks, taken, out)
        if all(taken) or all(o is not None for o in out):
            return out
        # Pass 2: a face that moved (or changed size) too much between frames to overlap.
        pairs = []
        for ti, tr in enumerate(tracks):
            if taken[ti]:
                continue
            for bi, box in enumerate(boxes):
                if out[bi] is None:
                    d = _relative_shift(tr.box, box)
                    if d <= MAX_SHIFT:
                        pairs.append((d, ti, bi))
        _assign(sorted(pairs), tracks, taken, out)
        return out

    # -- the device mood -----------------------------------------------------------------------

    def _dominant(self) -> _MoodTrack | None:
        """The face that decides the mood: among labelled faces if any, else among all live ones.

        With no labelled face the mood is None, but valence/arousal still follow a live face.
        """
        if not self._tracks:
            return None
        labelled = [tr for tr in self._tracks if tr.label >= 0]
        pool = labelled or self._tracks
        mode = self.cfg.dominant
        if mode == "largest":
            largest = max(pool, key=lambda tr: (tr.area, -tr.id))  # ties: the older face
            kept = self._followed
            if (
                kept is not None
                and kept.label >= 0
                and kept in labelled
                and largest.area < self.cfg.dominant_margin * kept.area
            ):
                return kept
            self._followed = largest if largest.label >= 0 else None
            return largest
        if mode == "most_confident":
            return max(pool, key=lambda tr: (float(tr.probs.max()), tr.area, -tr.id))
        if mode == "majority" and labelled:
            counts = [0] * self._n
            for tr in labelled:
                counts[tr.label] += 1
            top = max(counts)
            # Ties between labels go to the largest face among the tied labels.
            pool = [tr for tr in labelled if counts[tr.label] == top]
        return max(pool, key=lambda tr: (tr.area, -tr.id))  # ties: the older face

    def _valence_arousal(self, s: np.ndarray) -> tuple[float | None, float | None]:
        total = float(s.sum())
        if total <= 0.0:
            return None, None  # a degenerate all-zero output says nothing
        return float(s @ self._valence) / total, float(s @ self._arousal) / total


def _assign(
    pairs: list[tuple[float, int, int]],
    tracks: list[_MoodTrack],
    taken: list[bool],
    out: list[_MoodTrack | None],
) -> None:
    for _, ti, bi in pairs:
        if not taken[ti] and out[bi] is None:
            taken[ti] = True
            out[bi] = tracks[ti]


def _area(box: Box) -> int:
    return max(int(box[2]), 0) * max(int(box[3]), 0)


def _relative_shift(a: Box, b: Box) -> float:
    """Centre distance in face sizes (mean sqrt area); inf if the sizes differ too much."""
    sa, sb = math.sqrt(_area(a)), math.sqrt(_area(b))
    if sa <= 0 or sb <= 0 or max(sa, sb) > MAX_SIZE_RATIO * min(sa, sb):
        return math.inf
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return math.hypot(dx, dy) / ((sa + sb) / 2)
