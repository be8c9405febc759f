"""Camera-like scenes built from FER2013 faces: the inputs of the scene benchmark (bench/scenes.py).

A face crop is a lab picture; a user's camera sees a room. Each scene here is a 640x480 BGR frame
(or a 15 fps video segment of them) with real FER2013 faces of the four classes composited in, and
its ground truth: every face's box (the pasted 48x48 crop, resized) and FER2013 label. Every draw
comes from `numpy.random.default_rng([seed, kind, index])`, so scene `i` is the same on every
machine and a run can be rebuilt or extended without changing the scenes before it.

Tuning uses scenes made from PublicTest faces; the report, PrivateTest faces (the `split`).

Stills (`still(i)`), each drawn independently:
- background: cluttered (60 %: gradients, blotches, shapes, lines, text: `demo.scenes`) or plain
  (a wall: gradient and soft blotches);
- faces: none (10 %), one (65 %) or two (25 %), side lengths log-uniform in 40-250 px, anywhere in
  the frame up to its edges, two faces never overlapping;
- light: normal (50 %), a lighting gradient across the frame (x0.3 to x1.2, 25 %) or dim (x0.2 to
  x0.5 with more sensor noise, 25 %);
- defocus blur (20 %, sigma 0.5-1.5), Gaussian sensor noise (sd 2-6, dim 6-12), JPEG (quality 50-95).

Video segments (`segment(j)`): `SEGMENT_S` seconds at `FPS`, one background, light and noise level
for the whole segment with fresh noise and JPEG every frame; no face (5 %), one (70 %) or two
(25 %); each face still with a slight sway (35 %), drifting across the frame (30 %), walking in or
out through an edge (15 %) or towards or away from the camera (20 %). In 70 % of the segments the
first face changes expression once, at 1.0-1.6 s: its crop cross-fades over `FADE_S` to another
face of another class (FER2013 has no sequences of one person, so a change of face stands for a
change of expression); the other segments are steady, for counting flicker. A face counts as
present in a frame (recall counts it) while at least `VISIBLE` of it is inside the frame; a
detection of a face less visible than that is neither a hit nor a false face.

Steady segments (`steady(k)`): `STEADY_S` seconds of one seated face (still, with the sway), no
expression change, the face's size, place, background, light and noise drawn as for a segment.
They are what flicker is counted on: the video segments hold about a minute of steady face in
all, too little to tell a setting that changes its mood twice a minute from one that never does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from demo.scenes import FRAME_H, FRAME_W, clutter_background, paste_face
from moodcam.labels import DEFAULT_CLASSES, FER2013_CLASSES
from moodcam.records import Box

FPS = 15.0
SEGMENT_S = 3.0
FADE_S = 0.2
MIN_FACE, MAX_FACE = 40, 250
VISIBLE = 0.75  # the share of a face inside the frame for it to count as present
# Face-size buckets (box side, px) the benchmark reports on.
SIZE_BUCKETS = ((40, 48), (48, 70), (70, 100), (100, 150), (150, 251))
# The kind in every scene's seed, so stills, segments and steady segments never share draws.
STILL, SEGMENT, STEADY = 1, 2, 3
STEADY_S = 10.0


@dataclass
class FacePool:
    """FER2013 faces of one split and the four classes: `images` (N, 48, 48), `labels` index
    DEFAULT_CLASSES, `rows` are the faces' lines in fer2013.csv (for provenance)."""

    images: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    split: str

    def draw(self, rng: np.random.Generator, not_label: int | None = None) -> int:
        """A random face's index (of another class than `not_label`, when given)."""
        while True:
            k = int(rng.integers(len(self.labels)))
            if not_label is None or int(self.labels[k]) != not_label:
                return k


def load_pool(split: str, data: str | None = None) -> FacePool:
    """The faces of `split` (PublicTest to tune, PrivateTest to report) of the four classes,
    without FER2013's near-blank images."""
    from training import data as fer

    cache = Path(__file__).resolve().parent.parent / ".cache"
    return pool_of(fer.load_fer2013(fer.find_fer2013(fer.data_dir(data)), cache_dir=cache), split)


def pool_of(faces: Any, split: str) -> FacePool:
    """The pool of one split of a loaded FER2013 (`training.data.FaceSet`)."""
    from training import data as fer

    faces = faces.split(split)
    keep = np.isin(faces.labels, [FER2013_CLASSES.index(c) for c in DEFAULT_CLASSES])
    keep &= faces.images.reshape(len(faces), -1).std(axis=1) > fer.BLANK_STD
    lut = {FER2013_CLASSES.index(c): i for i, c in enumerate(DEFAULT_CLASSES)}
    labels = np.array([lut[int(v)] for v in faces.labels[keep]], dtype=np.int64)
    return FacePool(faces.images[keep], labels, faces.rows[keep], split)


@dataclass
class TruthFace:
    box: Box  # may reach past the frame's edges (a face walking in or out)
    label: int  # index into DEFAULT_CLASSES
    face: int  # index into the pool
    visible: float = 1.0  # the share of the box inside the frame

    @property
    def required(self) -> bool:
        """Present enough to be found: recall counts it (a detection of a face less visible is
        not counted either way, and is no false face)."""
        return self.visible >= VISIBLE

    @property
    def in_frame(self) -> Box:
        """The box clipped to the frame."""
        x, y, w, h = self.box
        x0, y0 = max(x, 0), max(y, 0)
        return x0, y0, max(0, min(x + w, FRAME_W) - x0), max(0, min(y + h, FRAME_H) - y0)


@dataclass
class Scene:
    """One still: the frame and its faces."""

    index: int
    image: np.ndarray
    faces: list[TruthFace]
    conditions: dict[str, object]


@dataclass
class Segment:
    """One video segment: frames, and per frame the faces in it (any part inside the frame)."""

    index: int
    frames: list[np.ndarray] = field(default_factory=list)
    faces: list[list[TruthFace]] = field(default_factory=list)
    fps: float = FPS
    change_t: float | None = None  # when the first face's expression changes (fade midpoint)
    new_label: int | None = None  # its class after the change
    conditions: dict[str, object] = field(default_factory=dict)

    def t(self, i: int) -> float:
        return i / self.fps


# --------------------------------------------------------------------------- pieces


def plain_background(rng: np.random.Generator) -> np.ndarray:
    """A wall: a gradient between two colours and soft blotches, no edges to speak of."""
    w, h = FRAME_W, FRAME_H
    c0, c1 = rng.uniform(60, 220, 3), rng.uniform(60, 220, 3)
    f = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
    ramp = f[None, :, None] if f.size == w else f[:, None, None]
    img = c0 * (1 - ramp) + c1 * ramp
    img = np.broadcast_to(img, (h, w, 3))
    blot = cv2.resize(
        rng.normal(0, 12, (h // 60, w // 60, 3)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.clip(img + blot, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if rng.random() < 0.6:
        return clutter_background(int(rng.integers(2**31))), "clutter"
    return plain_background(rng), "plain"


def _light(rng: np.random.Generator) -> tuple[np.ndarray | float, str, float]:
    """A per-pixel gain (or a scalar) and the sensor noise sd that goes with it."""
    r = rng.random()
    if r < 0.5:
        return 1.0, "normal", float(rng.uniform(2, 6))
    if r < 0.75:
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        proj = xx * math.cos(ang) + yy * math.sin(ang)
        f = (proj - proj.min()) / (np.ptp(proj) + 1e-6)
        lo, hi = rng.uniform(0.3, 0.6), rng.uniform(0.9, 1.2)
        return (lo + (hi - lo) * f)[..., None], "gradient", float(rng.uniform(2, 6))
    return float(rng.uniform(0.2, 0.5)), "dim", float(rng.uniform(6, 12))


def _camera(
    img: np.ndarray,
    gain: np.ndarray | float,
    noise: float,
    blur: float,
    quality: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """What the sensor and encoder make of a lit scene: gain, defocus, noise, JPEG."""
    x = img.astype(np.float32) * gain
    if blur > 0:
        x = cv2.GaussianBlur(x, (0, 0), blur)
    x += rng.normal(0, noise, x.shape).astype(np.float32)
    out = np.clip(x, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR) if ok else out


def _size(rng: np.random.Generator) -> int:
    return round(math.exp(rng.uniform(math.log(MIN_FACE), math.log(MAX_FACE))))


def _place(rng: np.random.Generator, size: int, avoid: Sequence[Box]) -> Box | None:
    """A box of `size` inside the frame that keeps clear of `avoid` (None if none was found)."""
    for _ in range(30):
        x, y = int(rng.integers(0, FRAME_W - size + 1)), int(rng.integers(0, FRAME_H - size + 1))
        box = (x, y, size, size)
        if all(not _near(box, b) for b in avoid):
            return box
    return None


def _near(a: Box, b: Box, gap: float = 0.1) -> bool:
    """Boxes overlap or come closer than `gap` of the smaller one."""
    g = gap * min(a[2], b[2])
    return not (
        a[0] + a[2] + g <= b[0]
        or b[0] + b[2] + g <= a[0]
        or a[1] + a[3] + g <= b[1]
        or b[1] + b[3] + g <= a[1]
    )


def visible_share(box: Box) -> float:
    x, y, w, h = box
    iw = max(0, min(x + w, FRAME_W) - max(x, 0))
    ih = max(0, min(y + h, FRAME_H) - max(y, 0))
    return iw * ih / float(w * h)


# --------------------------------------------------------------------------- stills


def still(pool: FacePool, i: int, seed: int = 0) -> Scene:
    """Still `i` of the set (see the module docstring for what is drawn)."""
    rng = np.random.default_rng([seed, STILL, i])
    img, bg = _background(rng)
    r = rng.random()
    n = 0 if r < 0.1 else (1 if r < 0.75 else 2)
    faces: list[TruthFace] = []
    for _ in range(n):
        box = _place(rng, _size(rng), [f.box for f in faces])
        if box is None:
            continue
        k = pool.draw(rng)
        paste_face(img, pool.images[k], box)
        faces.append(TruthFace(box, int(pool.labels[k]), k))
    gain, light, noise = _light(rng)
    blur = float(rng.uniform(0.5, 1.5)) if rng.random() < 0.2 else 0.0
    quality = int(rng.integers(50, 96))
    image = _camera(img, gain, noise, blur, quality, rng)
    cond = {
        "background": bg,
        "light": light,
        "noise": round(noise, 1),
        "blur": round(blur, 2),
        "jpeg": quality,
    }
    return Scene(i, image, faces, cond)


# --------------------------------------------------------------------------- video


def _path(rng: np.random.Generator, size: int, avoid: Sequence[Box]) -> tuple[str, Box, Box] | None:
    """A face's motion over the segment: its kind and its first and last box."""
    start = _place(rng, size, avoid)
    if start is None:
        return None
    r = rng.random()
    x, y, s, _ = start
    if r < 0.35:  # still: the sway is added per frame
        return "still", start, start
    if r < 0.65:  # drifting: up to one face width per second, kept inside
        d = rng.uniform(0.3, 1.0) * s * SEGMENT_S
        ang = rng.uniform(0, 2 * np.pi)
        ex = int(np.clip(x + d * math.cos(ang), 0, FRAME_W - s))
        ey = int(np.clip(y + d * math.sin(ang), 0, FRAME_H - s))
        return "drift", start, (ex, ey, s, s)
    if r < 0.8:  # walking in or out through the left or right edge
        outside = (-s - 5, y, s, s) if rng.random() < 0.5 else (FRAME_W + 5, y, s, s)
        return ("enter", outside, start) if rng.random() < 0.5 else ("leave", start, outside)
    # towards or away from the camera: the size changes by up to 1.6x about the face's centre
    f = rng.uniform(1.2, 1.6)
    s2 = int(np.clip(round(s * (f if rng.random() < 0.5 else 1 / f)), MIN_FACE, MAX_FACE))
    cx, cy = x + s / 2, y + s / 2
    ex = int(np.clip(cx - s2 / 2, 0, FRAME_W - s2))
    ey = int(np.clip(cy - s2 / 2, 0, FRAME_H - s2))
    return "approach", start, (ex, ey, s2, s2)


def segment(pool: FacePool, j: int, seed: int = 0) -> Segment:
    """Video segment `j` of the set (see the module docstring)."""
    rng = np.random.default_rng([seed, SEGMENT, j])
    look = _look(rng)
    r = rng.random()
    n = 0 if r < 0.05 else (1 if r < 0.75 else 2)
    tracks: list[tuple[str, Box, Box, int, float]] = []  # kind, start, end, face, sway phase
    for _ in range(n):
        p = _path(rng, _size(rng), [t[1] for t in tracks] + [t[2] for t in tracks])
        if p is not None:
            tracks.append((*p, pool.draw(rng), float(rng.uniform(0, 2 * np.pi))))
    seg = Segment(j)
    change_face = None
    if tracks and rng.random() < 0.7:
        seg.change_t = float(rng.uniform(1.0, 1.6))
        change_face = pool.draw(rng, not_label=int(pool.labels[tracks[0][3]]))
        seg.new_label = int(pool.labels[change_face])
    _film(seg, pool, tracks, change_face, round(SEGMENT_S * FPS), look, rng)
    return seg


def steady(pool: FacePool, k: int, seed: int = 0) -> Segment:
    """Steady segment `k`: one face, seated (still with a slight sway), no expression change,
    `STEADY_S` seconds; the rest drawn as for `segment`. For counting flicker: three-second
    segments hold too little steady face time to tell 0 from 2 changes a minute."""
    rng = np.random.default_rng([seed, STEADY, k])
    look = _look(rng)
    box = _place(rng, _size(rng), [])
    assert box is not None  # nothing to avoid: the first place drawn is taken
    tracks = [("still", box, box, pool.draw(rng), float(rng.uniform(0, 2 * np.pi)))]
    seg = Segment(k)
    _film(seg, pool, tracks, None, round(STEADY_S * FPS), look, rng)
    return seg


Look = tuple[np.ndarray, str, "np.ndarray | float", str, float, int]


def _look(rng: np.random.Generator) -> Look:
    """A segment's room, light, noise and JPEG quality: (bg, bg kind, gain, light, noise, q)."""
    bg, bg_kind = _background(rng)
    gain, light, noise = _light(rng)
    return bg, bg_kind, gain, light, noise, int(rng.integers(50, 96))


def _film(
    seg: Segment,
    pool: FacePool,
    tracks: list[tuple[str, Box, Box, int, float]],
    change_face: int | None,
    n_frames: int,
    look: Look,
    rng: np.random.Generator,
) -> None:
    """Render the segment's frames: each face moved along its path, fresh noise and JPEG."""
    bg, bg_kind, gain, light, noise, quality = look
    for i in range(n_frames):
        t, f = i / FPS, i / max(n_frames - 1, 1)
        img = bg.copy()
        present = []
        for k, (kind, a, b, face, phase) in enumerate(tracks):
            box = tuple(round(p + (q - p) * f) for p, q in zip(a, b, strict=True))
            if kind == "still":  # a seated person is never quite still
                amp = max(1.0, 0.03 * a[2])
                box = (
                    box[0] + round(amp * math.sin(2 * math.pi * 0.4 * t + phase)),
                    box[1] + round(0.5 * amp * math.sin(2 * math.pi * 0.3 * t + phase)),
                    box[2],
                    box[3],
                )
            pixels, label = pool.images[face], int(pool.labels[face])
            if k == 0 and seg.change_t is not None and change_face is not None:
                w = float(np.clip((t - seg.change_t) / FADE_S + 0.5, 0.0, 1.0))
                if w > 0:
                    pixels = cv2.addWeighted(pixels, 1 - w, pool.images[change_face], w, 0)
                if w >= 0.5:
                    face, label = change_face, int(pool.labels[change_face])
            paste_face(img, pixels, box)  # type: ignore[arg-type]
            visible = visible_share(box)  # type: ignore[arg-type]
            if visible > 0:
                present.append(TruthFace(box, label, face, round(visible, 3)))  # type: ignore[arg-type]
        seg.frames.append(_camera(img, gain, noise, 0.0, quality, rng))
        seg.faces.append(present)
    seg.conditions = {
        "background": bg_kind,
        "light": light,
        "noise": round(noise, 1),
        "jpeg": quality,
        "motion": [t[0] for t in tracks],
    }


def size_bucket(side: int) -> str:
    for lo, hi in SIZE_BUCKETS:
        if lo <= side < hi:
            return f"{lo}-{hi - 1}"
    return f"{SIZE_BUCKETS[-1][0]}-{SIZE_BUCKETS[-1][1] - 1}" if side >= MAX_FACE else "<40"
