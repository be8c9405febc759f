"""Synthetic but realistic test scenes: real face crops pasted onto a cluttered background.

Faces are FER2013 crops (tests/fixtures/faces/, extracted by `extract_fer_faces`), upscaled to
120-200 px when pasted because 48 px faces are too small and too soft for a Haar cascade at 1x.
Everything is deterministic for a given seed, so a scene's ground-truth boxes are exact.

Run `python -m demo.scenes extract` to rebuild the fixtures from the FER2013 CSV.
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from moodcam.boxes import iou

Box = tuple[int, int, int, int]  # x, y, w, h

FRAME_W, FRAME_H = 640, 480
FACES_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces"
FER_CSV = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
)
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FIXTURE_LABELS = ("angry", "happy", "sad", "neutral")
# Container -> fourcc that this opencv-python wheel's FFmpeg can write (avc1/H.264 cannot).
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


# --------------------------------------------------------------------------- geometry


def lerp_box(a: Box, b: Box, f: float) -> Box:
    """The box a fraction `f` of the way from `a` to `b` (each of x, y, w, h interpolated)."""
    return tuple(round(p + (q - p) * f) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


def matched(truth: Sequence[Box], found: Sequence[Box], thresh: float = 0.4) -> int:
    """How many ground-truth boxes have a detection with IoU >= thresh (one detection each)."""
    used: set[int] = set()
    hits = 0
    for t in truth:
        best, best_j = thresh, -1
        for j, d in enumerate(found):
            v = iou(t, d)
            if j not in used and v >= best:
                best, best_j = v, j
        if best_j >= 0:
            used.add(best_j)
            hits += 1
    return hits


# --------------------------------------------------------------------------- images


def clutter_background(seed: int = 0, size: tuple[int, int] = (FRAME_W, FRAME_H)) -> np.ndarray:
    """A BGR frame of gradients, blotchy texture, shapes, lines and text: edges everywhere,
    so a detector cannot succeed just because the background is flat."""
    w, h = size
    rng = np.random.default_rng(seed)
    # Gradient between two random colours in a random direction.
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = xx * np.cos(ang) + yy * np.sin(ang)
    f = ((proj - proj.min()) / (np.ptp(proj) + 1e-6))[..., None]
    img = c0 * (1 - f) + c1 * f
    # Low-frequency blotches (like a wall, a sofa, out-of-focus room).
    blot = cv2.resize(
        rng.normal(0, 30, (h // 40, w // 40, 3)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    img = np.clip(img + blot, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(25, 40))):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(0, 5)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(10, 120))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(rng.integers(10, 120))), color, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), s // 2, color, -1, cv2.LINE_AA)
        elif kind == 2:
            cv2.ellipse(img, (x, y), (s, s // 3), float(rng.uniform(0, 180)), 0, 360, color, -1)
        elif kind == 3:
            pts = rng.integers(0, [w, h], (5, 2)).astype(np.int32)
            cv2.polylines(img, [pts], False, color, int(rng.integers(1, 5)), cv2.LINE_AA)
        else:
            cv2.putText(
                img,
                "".join(chr(int(c)) for c in rng.integers(65, 91, 5)),
                (x, y),
                cv2.FONT_HERSHEY_SIMPLEX,
                float(rng.uniform(0.5, 2.0)),
                color,
                2,
            )
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def paste_face(image: np.ndarray, face: np.ndarray, box: Box) -> None:
    """Paste a gray face crop, resized to `box`, into a BGR image in place.

    The crop gets a mild skin tint and a feathered border so it does not sit in the frame as a
    hard-edged grey square (a hard square edge is itself a strong Haar feature)."""
    x, y, w, h = box
    fh, fw = image.shape[:2]
    up = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bgr = np.stack([up * 0.85, up * 0.95, np.minimum(up * 1.08, 255)], axis=-1)
    feather = max(2, w // 25)
    mask = np.zeros((h, w), np.float32)
    mask[feather:-feather, feather:-feather] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), feather / 2)[..., None]
    # Clip to the frame so faces may enter or leave at the edges.
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return
    src = bgr[y0 - y : y1 - y, x0 - x : x1 - x]
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    dst = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(dst * (1 - m) + src * m, 0, 255).astype(np.uint8)


def load_faces(labels: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """The fixture faces as (file stem, 48x48 gray) pairs, sorted by name."""
    out = []
    for p in sorted(FACES_DIR.glob("*.png")):
        if labels is None or p.stem.split("_")[0] in labels:
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FileNotFoundError(f"{p}: unreadable fixture image")
            out.append((p.stem, img))
    if not out:
        raise FileNotFoundError(f"{FACES_DIR}: no face fixtures; run python -m demo.scenes extract")
    return out


def make_scene(faces: Sequence[tuple[np.ndarray, Box]], seed: int = 0) -> np.ndarray:
    """A cluttered BGR frame with each (face, box) pasted in; the boxes are the ground truth."""
    img = clutter_background(seed)
    for face, box in faces:
        paste_face(img, face, box)
    return img


# --------------------------------------------------------------------------- clips


@dataclass
class FaceMotion:
    """A face moving linearly from box `start` (first frame) to box `end` (last frame)."""

    face: np.ndarray
    start: Box
    end: Box


@dataclass
class Clip:
    frames: list[np.ndarray] = field(default_factory=list)  # BGR
    boxes: list[list[Box]] = field(default_factory=list)  # ground truth per frame
    fps: float = 25.0


def make_clip(
    motions: Sequence[FaceMotion],
    n_frames: int,
    seed: int = 0,
    noise: float = 3.0,
    fps: float = 25.0,
) -> Clip:
    """Faces moving over a fixed cluttered background, with fresh sensor noise every frame."""
    bg = clutter_background(seed)
    rng = np.random.default_rng(seed + 1)
    clip = Clip(fps=fps)
    for i in range(n_frames):
        f = i / max(n_frames - 1, 1)
        img = bg.copy()
        boxes = []
        for m in motions:
            box = lerp_box(m.start, m.end, f)
            paste_face(img, m.face, box)
            boxes.append(box)
        if noise > 0:
            img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
        clip.frames.append(img)
        clip.boxes.append(boxes)
    return clip


def benchmark_clip(n_frames: int = 100, seed: int = 7) -> Clip:
    """The standard clip for detector recall / speed comparisons (~4 faces a frame, 96-190 px):
    one crossing the frame, one growing (walking towards the camera), a small still one, and a
    fast one moving diagonally that passes in front of the first."""
    faces = [f for _, f in load_faces()]
    motions = [
        FaceMotion(faces[0], (20, 40, 150, 150), (470, 120, 150, 150)),
        FaceMotion(faces[4 % len(faces)], (450, 300, 100, 100), (330, 200, 190, 190)),
        FaceMotion(faces[8 % len(faces)], (250, 330, 96, 96), (250, 330, 96, 96)),
        FaceMotion(faces[10 % len(faces)], (560, 20, 120, 120), (40, 250, 120, 120)),
    ]
    return make_clip(motions, n_frames, seed=seed)


def write_clip(path: str | Path, frames: Sequence[np.ndarray], fps: float = 25.0) -> Path:
    """Write BGR frames as a video (.mp4 -> mp4v, .avi -> MJPG); raises if nothing was written."""
    path = Path(path)
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{path}: use .mp4 or .avi")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {fourcc}")
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.release()
    if not path.exists() or path.stat().st_size == 0:
        raise RuntimeError(f"{path}: VideoWriter wrote nothing")
    return path


# --------------------------------------------------------------------------- fixtures


def _haar_finds(cascade: cv2.CascadeClassifier, face: np.ndarray) -> bool:
    """True when the face, pasted onto clutter at 120, 160 and 200 px, is found (IoU >= 0.6) both
    by the naive detector (full frame, 1.1, 5) and at the fast detector's scale (half, 1.2, 4)."""
    for k, s in enumerate((120, 160, 200)):
        box = (60 + 150 * k, 80 + 40 * k, s, s)
        gray = cv2.cvtColor(make_scene([(face, box)], seed=100 + k), cv2.COLOR_BGR2GRAY)
        naive = [tuple(b) for b in cascade.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))]
        half = cv2.resize(gray, (FRAME_W // 2, FRAME_H // 2), interpolation=cv2.INTER_AREA)
        fast = [tuple(int(v) * 2 for v in b) for b in cascade.detectMultiScale(half, 1.2, 4)]
        if matched([box], naive, 0.6) != 1 or matched([box], fast, 0.6) != 1:  # type: ignore[arg-type]
            return False
    return True


def extract_fer_faces(
    csv_path: Path = FER_CSV, out_dir: Path = FACES_DIR, per_label: int = 3, max_rows: int = 2000
) -> list[tuple[str, int]]:
    """Pick the first `per_label` FER2013 faces per fixture label that the Haar cascade finds after
    upscaling, save them as <label>_<csvline>.png and write the provenance README.

    csvline is the 1-based line number in fer2013.csv (line 1 is the header). Reading stops as soon
    as every label is full, so the big CSV is never read whole."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    out_dir.mkdir(parents=True, exist_ok=True)
    picked: list[tuple[str, int]] = []
    counts = dict.fromkeys(FIXTURE_LABELS, 0)
    with gzip.open(csv_path, "rt", newline="") as f:
        reader = csv.reader(f)
        next(reader)  # header
        for n, row in enumerate(reader):
            line = n + 2
            if n >= max_rows or all(c >= per_label for c in counts.values()):
                break
            label = FER_CLASSES[int(row[0])]
            if counts.get(label, per_label) >= per_label:
                continue
            face = np.array(row[1].split(), dtype=np.uint8).reshape(48, 48)
            if _haar_finds(cascade, face):
                cv2.imwrite(str(out_dir / f"{label}_{line}.png"), face)
                counts[label] += 1
                picked.append((label, line))
    _write_readme(out_dir, picked, csv_path)
    return picked


def _write_readme(out_dir: Path, picked: list[tuple[str, int]], csv_path: Path) -> None:
    rows = "\n".join(f"| {label}_{line}.png | {label} | {line} |" for label, line in picked)
    (out_dir / "README.md").write_text(f"""# Face fixtures

48x48 grayscale face crops from **FER2013** ({csv_path.name}), used by the detector and source
tests (pasted, upscaled to 120-200 px, onto synthetic cluttered scenes by `tests/scenes.py`).

Source: I. J. Goodfellow, D. Erhan, P. L. Carrier, A. Courville, M. Mirza, B. Hamner, W. Cukierski,
Y. Tang, D. Thaler, D.-H. Lee, Y. Zhou, C. Ramaiah, F. Feng, R. Li, X. Wang, D. Athanasakis,
J. Shawe-Taylor, M. Milakov, J. Park, R. Ionescu, M. Popescu, C. Grozea, J. Bergstra, J. Xie,
L. Romaszko, B. Xu, Z. Chuang, Y. Bengio: "Challenges in Representation Learning: A report on three
machine learning contests", ICONIP 2013 (arXiv:1307.0414). The dataset was released for the
Kaggle "Challenges in Representation Learning: Facial Expression Recognition" contest and is
for research use only; these few crops are kept here solely as test fixtures.

Selection (`python -m demo.scenes extract`): reading the CSV in order, the first 3 faces per
label (angry, happy, sad, neutral) that OpenCV's haarcascade_frontalface_default.xml finds
(IoU >= 0.6) when pasted onto clutter at 120, 160 and 200 px, both at full resolution
(scaleFactor 1.1, minNeighbors 5) and at half resolution (1.2, 4). `csvline` is the 1-based line
number in fer2013.csv, the header being line 1.

| file | label | csvline |
|---|---|---|
{rows}
""")


if __name__ == "__main__":
    if sys.argv[1:] == ["extract"]:
        for label, line in extract_fer_faces():
            print(f"{label}_{line}.png")
    else:
        print("usage: python -m demo.scenes extract")
