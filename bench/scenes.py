"""The scene benchmark: what the whole device path makes of camera-like frames, beside its peers.

    python -m bench.scenes --split PublicTest              # tuning (the default)
    python -m bench.scenes --split PrivateTest --out bench/scenes.json   # the report (make bench-scenes)

On the same frames (bench/scene_gen.py: stills, 15 fps video segments and ten-second steady
segments -- one seated face, no change, for counting flicker -- built from FER2013 faces of one
split) it runs, each in this process's one thread:
- moodcam: the device's own `FaceDetector`, crop, int8 `Classifier` and, in video, `MoodTracker`,
  as `moodcam classify` (stills) and `moodcam run` (video) run them, for each configuration named
  (`--config NAME=FILE`; `shipped` is the defaults);
- full-frame Haar: OpenCV's cascade on the whole frame, scaleFactor 1.1, minNeighbors 5, minSize
  the configured `min_face` (every still, every `HAAR_EVERY`-th video frame: it is the slow one);
- the peer, `fer` 25.10.3's own pipeline: full-frame Haar (1.1, 5, minSize 50) on every frame, its
  crop (square box, 10 px offsets, 40 px padding with the bottom rows' mean, 64x64), its model
  (argmax over the four classes' outputs), and in video the mode of its last 10 labels.

A truth face is found when a detection overlaps it by IoU >= `MATCH_IOU` (one detection per face);
a detection that matches no face present is a false face. Figures are written as JSON; README's
table is generated from it (convert/figures.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np

from bench import scene_gen as gen

MATCH_IOU = 0.4
HAAR_EVERY = 3  # video frames between two full-frame Haar passes (recall on those frames only)
PEER_MIN_FACE = 50  # fer's FER(min_face_size=50)
PEER_WINDOW = 10  # frames in the peer's mode-of-labels smoothing
SETTLE_S = 1.0  # a mood is judged right or wrong this long after the last change


# --------------------------------------------------------------------------- matching


def assign(truth: list, found: list, thresh: float = MATCH_IOU) -> list[int | None]:
    """For each truth box, the index of the detection it is matched to (best IoU first, each
    detection used once), or None."""
    from moodcam.boxes import iou

    pairs = sorted(
        ((iou(tuple(t), tuple(f)), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
        reverse=True,
    )
    out: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for v, i, j in pairs:
        if v < thresh:
            break
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


def false_faces(truth_all: list, found: list, thresh: float = MATCH_IOU) -> int:
    """Detections overlapping no face at all (a face partly out of the frame is no false face)."""
    from moodcam.boxes import iou

    return sum(1 for f in found if all(iou(tuple(t), tuple(f)) < thresh for t in truth_all))


# --------------------------------------------------------------------------- the three pipelines


class Peer:
    """fer 25.10.3's FER.detect_emotions on a gray frame, to the letter (see fer/fer.py)."""

    PADDING, OFFSETS = 40, (10, 10)

    def __init__(self, model_path: str, labels: tuple[str, ...]) -> None:
        from moodcam.detector import load_cascade
        from moodcam.speed import PeerModel

        self.model = PeerModel(model_path)
        self.cascade = load_cascade()
        self.labels = labels

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        import cv2

        found = self.cascade.detectMultiScale(
            gray,
            scaleFactor=1.1,
            minNeighbors=5,
            flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(PEER_MIN_FACE, PEER_MIN_FACE),
        )
        return [tuple(int(v) for v in b) for b in found]  # type: ignore[misc]

    def classify(self, gray: np.ndarray, boxes: list) -> list[int]:
        import cv2

        p, (ox, oy) = self.PADDING, self.OFFSETS
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, p, p, p, p, cv2.BORDER_CONSTANT, value=[mean] * 3)
        out = []
        for x, y, w, h in boxes:
            if h > w:  # fer's tosquare
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, y1 = max(0, x - ox + p), max(0, y - oy + p)
            face = padded[y1 : y + h + oy + p, x1 : x + w + ox + p]
            scores = self.model.scores(face, self.labels)
            out.append(int(np.argmax(scores)))
        return out


class Moodcam:
    """The device path for one configuration."""

    def __init__(self, cfg: Any, clf: Any) -> None:
        from moodcam.detector import FaceDetector

        self.cfg, self.clf = cfg, clf
        self.detector = FaceDetector(cfg.detector)

    def still(self, gray: np.ndarray) -> tuple[list, list[int]]:
        """As `moodcam classify` does for each image."""
        from moodcam.preprocess import crop_face

        self.detector.reset()
        boxes = self.detector.detect(gray)
        labels = [
            int(np.argmax(self.clf.scores(crop_face(gray, b, self.clf.margin)))) for b in boxes
        ]
        return boxes, labels

    def pipeline(self) -> Any:
        """A fresh `moodcam run` frame step (detector state, tracker) for one video."""
        from moodcam.daemon import Pipeline
        from moodcam.tracker import MoodTracker

        self.detector.reset()
        return Pipeline(self.detector, self.clf, MoodTracker(self.cfg.tracker, self.clf.labels), [])


# --------------------------------------------------------------------------- worker

_W: dict[str, Any] = {}


def _init(
    split: str,
    seed: int,
    configs: dict[str, str],
    peer_path: str,
    data: str | None,
    baselines: bool = True,
) -> None:
    import cv2

    from moodcam import config as mconfig
    from moodcam.classifier import Classifier

    cv2.setNumThreads(1)
    _W["pool"] = gen.load_pool(split, data)
    _W["seed"] = seed
    cfgs = {name: mconfig.load(path or None) for name, path in configs.items()}
    first = next(iter(cfgs.values()))
    clf = Classifier(first.classifier.model, first.classifier.card or None, threads=1)
    _W["moodcam"] = {name: Moodcam(cfg, clf) for name, cfg in cfgs.items()}
    _W["labels"] = clf.labels
    _W["peer"] = Peer(peer_path, clf.labels)
    _W["haar_min"] = first.detector.min_face
    _W["baselines"] = baselines


def _haar(gray: np.ndarray) -> list:
    from moodcam.detector import naive_detect

    return naive_detect(gray, _W["peer"].cascade, min_size=_W["haar_min"])


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def run_still(i: int) -> dict[str, Any]:
    """One still through every pipeline: per truth face, who found it and with which label."""
    from moodcam.preprocess import to_gray

    scene = gen.still(_W["pool"], i, _W["seed"])
    gray = to_gray(scene.image)
    truth = [f.box for f in scene.faces]
    rec: dict[str, Any] = {
        "i": i,
        "faces": [{"size": f.box[2], "label": f.label} for f in scene.faces],
        "ms": {},
    }
    for name, mc in _W["moodcam"].items():
        (boxes, labels), dt = _timed(mc.still, gray)
        m = assign(truth, boxes)
        rec[name] = {
            "found": [j is not None for j in m],
            "label": [labels[j] if j is not None else None for j in m],
            "false": false_faces(truth, boxes),
        }
        rec["ms"][name] = dt * 1000
    if not _W["baselines"]:
        return rec
    boxes, dt = _timed(_haar, gray)
    rec["haar"] = {
        "found": [j is not None for j in assign(truth, boxes)],
        "false": false_faces(truth, boxes),
    }
    rec["ms"]["haar"] = dt * 1000
    peer = _W["peer"]
    t0 = time.perf_counter()
    boxes = peer.detect(gray)
    labels = peer.classify(gray, boxes)
    rec["ms"]["peer"] = (time.perf_counter() - t0) * 1000
    m = assign(truth, boxes)
    rec["peer"] = {
        "found": [j is not None for j in m],
        "label": [labels[j] if j is not None else None for j in m],
        "false": false_faces(truth, boxes),
    }
    return rec


def _peer_mood(history: deque) -> int | None:
    """The mode of the last labels; a tie goes to the label seen most recently."""
    if not history:
        return None
    counts = Counter(history)
    top = max(counts.values())
    return next(lbl for lbl in reversed(history) if counts[lbl] == top)


def run_segment(j: int) -> dict[str, Any]:
    """One video segment through every pipeline, frame by frame, as a live stream would run."""
    return _run_video(gen.segment(_W["pool"], j, _W["seed"]))


def run_steady(k: int) -> dict[str, Any]:
    """One steady segment (a seated face, no change: for counting flicker), as `run_segment`."""
    return _run_video(gen.steady(_W["pool"], k, _W["seed"]))


def _run_video(seg: gen.Segment) -> dict[str, Any]:
    from moodcam.preprocess import to_gray
    from moodcam.records import Frame

    frames: list[dict[str, Any]] = []
    pipes = {name: mc.pipeline() for name, mc in _W["moodcam"].items()}
    peer, history = _W["peer"], deque(maxlen=PEER_WINDOW)
    for i, image in enumerate(seg.frames):
        required = [f for f in seg.faces[i] if f.required]
        truth = [f.box for f in required]
        anywhere = [f.in_frame for f in seg.faces[i]]  # no detection of these is a false face
        fr: dict[str, Any] = {
            "truth": [{"size": f.box[2], "label": f.label, "box": f.box} for f in required],
            "ms": {},
        }
        for name, pipe in pipes.items():
            update, dt = _timed(pipe.process, Frame(image, seg.t(i), i))
            boxes = [f.box for f in update.faces]
            m = assign(truth, boxes)
            probs = [np.array([f.scores[k] for k in _W["labels"]]) for f in update.faces]
            labels = [_W["labels"].index(f.label) for f in update.faces]
            fr[name] = {
                "found": [k is not None for k in m],
                "label": [labels[k] if k is not None else None for k in m],
                "false": false_faces(anywhere, boxes),
                "mood": None if update.mood is None else _W["labels"].index(update.mood),
                # For replaying the tracker offline while tuning it (bench/scenes.py --dump).
                "dets": [
                    (list(map(int, f.box)), [round(float(v), 4) for v in p])
                    for f, p in zip(update.faces, probs, strict=True)
                ],
            }
            fr["ms"][name] = dt * 1000
        frames.append(fr)
        if not _W["baselines"]:
            continue
        gray = to_gray(image)
        if i % HAAR_EVERY == 0:
            boxes, dt = _timed(_haar, gray)
            fr["haar"] = {
                "found": [k is not None for k in assign(truth, boxes)],
                "false": false_faces(anywhere, boxes),
            }
            fr["ms"]["haar"] = dt * 1000
        t0 = time.perf_counter()
        boxes = peer.detect(gray)
        labels = peer.classify(gray, boxes)
        if boxes:  # fer's video users smooth the largest face's label
            history.append(labels[int(np.argmax([b[2] * b[3] for b in boxes]))])
        fr["ms"]["peer"] = (time.perf_counter() - t0) * 1000
        m = assign(truth, boxes)
        fr["peer"] = {
            "found": [k is not None for k in m],
            "label": [labels[k] if k is not None else None for k in m],
            "false": false_faces(anywhere, boxes),
            "mood": _peer_mood(history),
        }
    return {
        "j": seg.index,
        "fps": seg.fps,
        "change_t": seg.change_t,
        "new_label": seg.new_label,
        "conditions": seg.conditions,
        "frames": frames,
    }


# --------------------------------------------------------------------------- figures


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def _paired(right_a: list[bool], right_b: list[bool]) -> dict[str, Any]:
    from training.compare import mcnemar_p

    only_a = sum(a and not b for a, b in zip(right_a, right_b, strict=True))
    only_b = sum(b and not a for a, b in zip(right_a, right_b, strict=True))
    return {
        "faces": len(right_a),
        "only_moodcam_right": only_a,
        "only_peer_right": only_b,
        "mcnemar_p": round(mcnemar_p(only_a, only_b), 4),
    }


def _recall_table(faces: list[tuple[int, dict[str, bool]]], names: list[str]) -> dict[str, Any]:
    """Recall overall and per size bucket, for each pipeline, over (size, {name: found})."""
    out: dict[str, Any] = {}
    buckets = ["all"] + [f"{lo}-{hi - 1}" for lo, hi in gen.SIZE_BUCKETS]
    for b in buckets:
        sel = [f for s, f in faces if b == "all" or gen.size_bucket(s) == b]
        out[b] = {"faces": len(sel)} | {n: _pct(sum(f[n] for f in sel), len(sel)) for n in names}
    return out


def still_figures(recs: list[dict], names: list[str]) -> dict[str, Any]:
    pipes = [*names, "haar", "peer"]
    faces = [
        (f["size"], {n: r[n]["found"][k] for n in pipes})
        for r in recs
        for k, f in enumerate(r["faces"])
    ]
    out: dict[str, Any] = {
        "stills": len(recs),
        "faces": len(faces),
        "no_face_stills": sum(1 for r in recs if not r["faces"]),
        "recall": _recall_table(faces, pipes),
        "false_faces_per_1000": {
            n: round(1000 * sum(r[n]["false"] for r in recs) / len(recs), 1) for n in pipes
        },
        "ms_median": {n: round(float(np.median([r["ms"][n] for r in recs])), 3) for n in pipes},
    }
    acc, pairs = {}, {}
    for n in [*names, "peer"]:
        rights = [
            r[n]["label"][k] == f["label"]
            for r in recs
            for k, f in enumerate(r["faces"])
            if r[n]["found"][k]
        ]
        acc[n] = _pct(sum(rights), len(rights))
    for n in names:
        both = [
            (r[n]["label"][k] == f["label"], r["peer"]["label"][k] == f["label"])
            for r in recs
            for k, f in enumerate(r["faces"])
            if r[n]["found"][k] and r["peer"]["found"][k]
        ]
        pairs[n] = _paired([a for a, _ in both], [b for _, b in both])
    out["accuracy_on_found"] = acc
    out["paired_vs_peer"] = pairs
    return out


def _dominant_truth(fr: dict) -> int | None:
    """The label of the largest face present (what the device mood should say)."""
    if not fr["truth"]:
        return None
    return max(fr["truth"], key=lambda f: f["size"])["label"]


def _delay(seg: dict, name: str) -> float | None:
    """Seconds from the change to the frame from which the mood stays right (None: never), over
    the frames the face is present on."""
    frames, t0 = seg["frames"], seg["change_t"]
    start = None
    for i, fr in enumerate(frames):
        t = i / seg["fps"]
        truth = _dominant_truth(fr)
        if t < t0 or truth is None:
            continue
        right = fr[name]["mood"] == truth
        if right and start is None:
            start = t
        elif not right:
            start = None
    return None if start is None else round(start - t0, 3)


def video_figures(
    segs: list[dict], names: list[str], steady: list[dict] | None = None
) -> dict[str, Any]:
    """Figures of the video segments; flicker on the steady segments when there are any."""
    pipes = [*names, "haar", "peer"]
    frames = [fr for s in segs for fr in s["frames"]]
    haar_frames = [fr for fr in frames if "haar" in fr]
    faces = [
        (t["size"], {n: fr[n]["found"][k] for n in pipes})
        for fr in haar_frames
        for k, t in enumerate(fr["truth"])
    ]
    out: dict[str, Any] = {
        "segments": len(segs),
        "frames": len(frames),
        "fps": segs[0]["fps"] if segs else None,
        "recall_frames": len(haar_frames),
        "recall": _recall_table(faces, pipes),
        "false_faces_per_1000": {
            n: round(1000 * sum(fr[n]["false"] for fr in haar_frames) / max(len(haar_frames), 1), 1)
            for n in pipes
        },
    }
    acc = {}
    for n in [*names, "peer"]:
        rights = [
            fr[n]["label"][k] == t["label"]
            for fr in frames
            for k, t in enumerate(fr["truth"])
            if fr[n]["found"][k]
        ]
        acc[n] = _pct(sum(rights), len(rights))
    out["per_frame_accuracy_on_found"] = acc
    # The mood a user reads, against the largest face present, on frames SETTLE_S after the
    # segment's start or change; and the per-frame label of the largest face found on them.
    mood: dict[str, Any] = {}
    for n in [*names, "peer"]:
        settled = end = end_raw = settled_raw = n_settled = n_end = 0
        for s in segs:
            t_ref = s["change_t"] if s["change_t"] is not None else 0.0
            for i, fr in enumerate(s["frames"]):
                truth = _dominant_truth(fr)
                if truth is None or i / s["fps"] < t_ref + SETTLE_S:
                    continue
                raw = _largest_found_label(fr, n)
                right, right_raw = fr[n]["mood"] == truth, raw == truth
                n_settled, settled, settled_raw = (
                    n_settled + 1,
                    settled + right,
                    settled_raw + right_raw,
                )
                if i == len(s["frames"]) - 1:
                    n_end, end, end_raw = n_end + 1, end + right, end_raw + right_raw
        mood[n] = {
            "settled_frames": n_settled,
            "mood_right": _pct(settled, n_settled),
            "per_frame_label_right": _pct(settled_raw, n_settled),
            "segment_ends": n_end,
            "mood_right_at_end": _pct(end, n_end),
            "per_frame_label_right_at_end": _pct(end_raw, n_end),
        }
    out["smoothed_mood"] = mood
    out["delay"] = {n: _delay_summary(segs, n) for n in [*names, "peer"]}
    calm = steady or segs
    out["flicker_steady_segments"] = len(steady or [])
    out["flicker_minutes"] = round(_steady_seconds(calm) / 60, 2)
    out["flicker_per_min"] = {n: _flicker(calm, n) for n in [*names, "peer"]}
    out["flicker_per_min_on_faces_all_find"] = {
        n: _flicker(calm, n, [*names, "peer"]) for n in [*names, "peer"]
    }
    ms = {n: [fr["ms"][n] for fr in frames if n in fr["ms"]] for n in pipes}
    out["ms_median"] = {n: round(float(np.median(v)), 3) for n, v in ms.items() if v}
    out["ms_mean"] = {n: round(float(np.mean(v)), 3) for n, v in ms.items() if v}
    out["speedup_vs_haar"] = {
        n: round(out["ms_mean"]["haar"] / out["ms_mean"][n], 2) for n in names
    }
    return out


def _largest_found_label(fr: dict, name: str) -> int | None:
    """The per-frame label of the largest truth face's detection (None if it was missed)."""
    if not fr["truth"]:
        return None
    k = max(range(len(fr["truth"])), key=lambda k: fr["truth"][k]["size"])
    return fr[name]["label"][k]


def _delay_summary(segs: list[dict], name: str) -> dict[str, Any]:
    """Delay after a change the pipeline itself sees clearly: the changed face is the one the mood
    should follow at the segment's end, and the pipeline's per-frame label of it is right on most
    frames after the change that show it (a model error is not a smoothing delay)."""
    delays = []
    for s in segs:
        if s["change_t"] is None or _dominant_truth(s["frames"][-1]) != s["new_label"]:
            continue
        after = [
            fr for i, fr in enumerate(s["frames"]) if i / s["fps"] >= s["change_t"] and fr["truth"]
        ]
        raw = [_largest_found_label(fr, name) == _dominant_truth(fr) for fr in after]
        if not raw or sum(raw) <= len(raw) / 2:
            continue
        d = _delay(s, name)
        delays.append(math.inf if d is None else d)
    if not delays:
        return {"changes": 0}
    arr = np.array(delays)
    return {
        "changes": len(delays),
        "reached": int(np.isfinite(arr).sum()),
        "median_s": _finite(np.percentile(arr, 50, method="higher")),
        "p90_s": _finite(np.percentile(arr, 90, method="higher")),
    }


def _finite(v: float) -> float | None:
    return round(float(v), 3) if math.isfinite(v) else None


def _is_steady(seg: dict) -> bool:
    """One face, present in every frame, whose expression does not change."""
    return seg["change_t"] is None and all(len(fr["truth"]) == 1 for fr in seg["frames"])


def _steady_seconds(segs: list[dict]) -> float:
    """Seconds of steady face among `segs`."""
    return sum(len(s["frames"]) / s["fps"] for s in segs if _is_steady(s))


def _flicker(segs: list[dict], name: str, found_by: list[str] | None = None) -> float | None:
    """Mood changes per minute on a steady face: segments with one face, present in every frame,
    whose expression does not change; counted after the first mood. With `found_by`, only the
    segments whose face each of those pipelines found on most frames: a setting that finds more
    (small, dim, ambiguous) faces is then compared with another on the same faces."""
    changes, seconds = 0, 0.0
    for s in segs:
        if not _is_steady(s):
            continue
        if found_by and any(
            sum(fr[n]["found"][0] for fr in s["frames"]) <= len(s["frames"]) / 2 for n in found_by
        ):
            continue
        moods = [fr[name]["mood"] for fr in s["frames"]]
        seen = [m for m in moods if m is not None]
        changes += sum(1 for a, b in itertools.pairwise(seen) if a != b)
        seconds += len(moods) / s["fps"]
    return round(60.0 * changes / seconds, 2) if seconds else None


# --------------------------------------------------------------------------- run


def run(
    split: str,
    stills: int,
    segments: int,
    configs: dict[str, str],
    seed: int = 0,
    steady: int = 0,
    workers: int = 2,
    data: str | None = None,
    dump: str | None = None,
    baselines_from: str | None = None,
) -> dict[str, Any]:
    """Build the scenes, run every pipeline on them (in `workers` processes of one thread each),
    and return the figures.

    `baselines_from`: for tuning only, take full-frame Haar's and the peer's records from an
    earlier run's dump of the same scenes instead of running them again (their timings are then
    not from this run, and the output says so)."""
    import multiprocessing as mp

    from moodcam.speed import machine
    from training.evaluate import peer_model

    args = (split, seed, configs, str(peer_model()), data, baselines_from is None)
    names = list(configs)
    t0 = time.time()
    if workers > 1:
        with mp.get_context("fork").Pool(workers, _init, args) as pool:
            srecs = pool.map(run_still, range(stills), chunksize=8)
            vrecs = pool.map(run_segment, range(segments), chunksize=2)
            steady_recs = pool.map(run_steady, range(steady), chunksize=1)
    else:
        _init(*args)
        srecs = [run_still(i) for i in range(stills)]
        vrecs = [run_segment(j) for j in range(segments)]
        steady_recs = [run_steady(k) for k in range(steady)]
    if baselines_from:
        old = json.loads(Path(baselines_from).read_text())
        _merge_baselines(srecs, vrecs, steady_recs, old)
    if dump:
        Path(dump).write_text(
            json.dumps({"stills": srecs, "segments": vrecs, "steady": steady_recs})
        )
    from moodcam import config as mconfig

    cfgs = {n: mconfig.load(p or None) for n, p in configs.items()}
    return {
        "split": split,
        "seed": seed,
        "generator": "bench/scene_gen.py",
        "frame": [gen.FRAME_W, gen.FRAME_H],
        "configs": {
            n: {"file": p or "(defaults)", "detector": vars(c.detector), "tracker": vars(c.tracker)}
            for (n, p), c in zip(configs.items(), cfgs.values(), strict=True)
        },
        "haar_every": HAAR_EVERY,
        "threads_per_worker": 1,
        "workers": workers,
        "seconds": round(time.time() - t0, 1),
        "baselines_from": baselines_from,
        "machine": machine(),
        "stills": still_figures(srecs, names),
        "video": video_figures(vrecs, names, steady_recs),
    }


def _merge_baselines(srecs: list[dict], vrecs: list[dict], steady: list[dict], old: dict) -> None:
    """Copy full-frame Haar's and the peer's records (and timings) from an earlier dump."""
    old.setdefault("steady", [])
    if any(
        len(old[k]) < len(v)
        for k, v in (("stills", srecs), ("segments", vrecs), ("steady", steady))
    ):
        raise SystemExit("--baselines-from: that dump has fewer scenes than this run")
    for new, prev in zip(srecs, old["stills"], strict=False):
        for key in ("haar", "peer"):
            new[key] = prev[key]
            new["ms"][key] = prev["ms"][key]
    for seg, prev in zip(
        [*vrecs, *steady], [*old["segments"][: len(vrecs)], *old["steady"]], strict=False
    ):
        for fr, pf in zip(seg["frames"], prev["frames"], strict=True):
            for key in ("haar", "peer"):
                if key in pf:
                    fr[key] = pf[key]
                    fr["ms"][key] = pf["ms"][key]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--split",
        default="PublicTest",
        choices=("PublicTest", "PrivateTest"),
        help="the faces the scenes are made of: PublicTest to tune, PrivateTest to report",
    )
    p.add_argument("--stills", type=int, default=1000)
    p.add_argument("--segments", type=int, default=200)
    p.add_argument(
        "--steady", type=int, default=40, help="ten-second steady segments, for counting flicker"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a moodcam configuration to run (repeatable); default: shipped=(defaults)",
    )
    p.add_argument("--data", help="FER2013 folder (default $MOODCAM_DATA or ../shared/data)")
    p.add_argument(
        "--baselines-from",
        metavar="DUMP",
        help="tuning only: reuse Haar's and the peer's records from an earlier --dump",
    )
    p.add_argument("--dump", help="also write every per-frame record here (for offline tuning)")
    p.add_argument("--out", help="write the figures here (default: print them)")
    a = p.parse_args(argv)
    configs = dict(c.split("=", 1) for c in a.config) if a.config else {"shipped": ""}
    if a.stills < 1 or a.segments < 1 or a.steady < 0:
        p.error("--stills and --segments must be at least 1, --steady at least 0")
    result = run(
        a.split,
        a.stills,
        a.segments,
        configs,
        a.seed,
        a.steady,
        a.workers,
        a.data,
        a.dump,
        a.baselines_from,
    )
    text = json.dumps(result, indent=2) + "\n"
    if a.out:
        Path(a.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
