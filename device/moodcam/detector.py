"""Fast face detection: OpenCV's Haar cascade every few frames, tracking in between.

A full-frame Haar pass is the expensive part of the pipeline on a Pi. `FaceDetector` runs it on
the frame (downscaled to `detect_width` when wider) only every `redetect_every` frames; in between
it searches a small window around each tracked face (`search_margin` face sizes on every side,
shifted by the face's last motion) with the cascade's scale range bounded near the tracked size;
with nobody tracked it runs the full pass every `idle_every` frames. A tracked face its window
search misses is still reported for `COAST_FRAMES` frame(s) and searched for, in a window that
widens with every miss, for `lost_frames` frames; then it is dropped and the next frame gets a full
detection.
A new face shows up at the next full detection (at most `redetect_every` frames later while
others are tracked, `idle_every` when nobody is). A full detection keeps a tracked face it missed
if the face's window search still finds it (Haar is not scale-invariant: a face found at one scale
can be missed at another), so re-detecting never drops a face that is still there.

The settings were chosen on camera-like scenes (bench/scenes.py, PublicTest faces): any
downscaling of a 640x480 frame before the full pass, or a coarser scale step, gave up recall on
small faces against full-frame Haar, so the full pass is full-frame Haar's own (1.1, 5) and the
speed comes from running it rarely.

`naive_detect` is the baseline it is measured against: full resolution, scaleFactor 1.1,
minNeighbors 5, minSize 50, every frame (what the `fer` package does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodcam.boxes import iou
from moodcam.config import DetectorConfig
from moodcam.errors import EXIT_CONFIG, MoodcamError
from moodcam.preprocess import Box, to_gray
from moodcam.records import Frame

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"

# A window search scales the image so the tracked face is about this many pixels wide: plenty for
# the 24x24 cascade, and it keeps the cost of a window search independent of the face's size.
TRACK_FACE_PX = 64
# Size range accepted in a window, relative to the tracked size: faces change size slowly between
# frames, and bounding minSize/maxSize is most of the saving of a window search.
TRACK_MIN_SCALE, TRACK_MAX_SCALE = 0.75, 1.35
# Windows are tiny, so a finer scale step costs little and makes boxes less jumpy.
TRACK_SCALE_FACTOR = 1.1
# A window search that misses at TRACK_FACE_PX looks again at the gray's own scale, where the full
# pass found the face (Haar is not scale-invariant: large dim faces were found there and lost at
# 64 px), asking this many more neighbours than the full pass: a plain second look kept re-finding
# clutter (PublicTest scenes: recall at least full-frame Haar's on every size bucket, false faces
# 57.3 per 1,000 frames with the plain second look, 53.7 with one more neighbour; Haar 55.0).
SECOND_LOOK_EXTRA_NEIGHBOURS = 1
# A tracked face the cascade misses in its window is still reported, at its predicted place, for
# this many frames: the cascade flickers on a face that is still there (sensor noise, dim light),
# and a face that has really gone is dropped after `lost_frames` anyway.
COAST_FRAMES = 1
# Two tracks overlapping this much have locked onto the same face: keep one.
DUPLICATE_IOU = 0.5
# A fresh detection continues a track (keeps its motion) when it overlaps it this much.
MATCH_IOU = 0.3


class DetectorError(MoodcamError):
    """The cascade cannot be loaded; the message names the file. A configuration problem for
    the CLI (EXIT_CONFIG): the file comes from [detector] cascade or the OpenCV install."""

    exit_code = EXIT_CONFIG


def default_cascade_path() -> str:
    """OpenCV's frontal-face cascade as shipped by opencv-python(-headless) 4.x."""
    data = getattr(cv2, "data", None)
    if data is None:  # OpenCV 5 wheels ship no cascades (and the headless one no CascadeClassifier)
        raise DetectorError(
            f"{DEFAULT_CASCADE}: this OpenCV ({cv2.__version__}) ships no Haar cascades; "
            "install opencv-python-headless<5 or set [detector] cascade"
        )
    return str(Path(data.haarcascades) / DEFAULT_CASCADE)


def load_cascade(path: str = "") -> cv2.CascadeClassifier:
    """Load a Haar cascade XML (empty = OpenCV's frontal face); raise DetectorError naming the file."""
    path = path or default_cascade_path()
    if not Path(path).is_file():
        raise DetectorError(f"{path}: no such cascade file")
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError(f"{path}: this OpenCV build has no CascadeClassifier (use opencv<5)")
    cascade = cv2.CascadeClassifier()
    try:
        ok = cascade.load(path)
    except cv2.error:  # some malformed XML raises instead of returning False
        ok = False
    if not ok or cascade.empty():
        raise DetectorError(f"{path}: not a valid Haar cascade XML")
    return cascade


def _largest_first(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (-b[2] * b[3], b[0], b[1]))


_naive_cascade: cv2.CascadeClassifier | None = None


def naive_detect(gray: np.ndarray, cascade: cv2.CascadeClassifier | None = None,
                 min_size: int = 50) -> list[Box]:  # fmt: skip
    """Baseline: full-frame Haar on every frame, scaleFactor 1.1, minNeighbors 5, minSize 50x50 --
    the `fer` package's FER.find_faces defaults (its min_face_size is 50).

    Returns every face found, largest first."""
    global _naive_cascade
    if cascade is None:
        if _naive_cascade is None:
            _naive_cascade = load_cascade()
        cascade = _naive_cascade
    found = cascade.detectMultiScale(to_gray(gray), scaleFactor=1.1, minNeighbors=5,
                                     minSize=(min_size, min_size))  # fmt: skip
    return _largest_first([tuple(int(v) for v in b) for b in found])  # type: ignore[misc]


@dataclass
class DetectorStats:
    """Counters for the benchmark. `frames` = detect() calls = full_detections + tracking_frames
    + idle_frames (nobody tracked, no full detection due).
    A tracking frame searches one window per tracked face; a full detection also searches the
    window of any tracked face its downscaled pass missed. `window_searches` counts both."""

    frames: int = 0
    full_detections: int = 0
    tracking_frames: int = 0
    idle_frames: int = 0
    window_searches: int = 0
    tracks_lost: int = 0  # window searches that did not find their face
    tracks_dropped: int = 0  # tracks given up after `lost_frames` misses (a full detection follows)


@dataclass
class CallInfo:
    """What the last detect() call did."""

    full: bool = False  # a full-frame detection ran
    window_searches: int = 0
    tracks_lost: int = 0


@dataclass
class _BoxTrack:
    box: Box  # full-frame pixels
    dx: float = 0.0  # last per-frame motion of the centre, for predicting the search window
    dy: float = 0.0
    missed: int = 0  # consecutive window searches that did not find it (0: found this frame)


class FaceDetector:
    """Haar face detector, fast: downscaled full detections plus windowed tracking in between.

    Stateful (it tracks faces across calls): use one per video stream, and `reset()` on a cut.
    """

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        self.cfg = cfg or DetectorConfig()
        self.cascade_path = self.cfg.cascade or default_cascade_path()
        self._cascade = load_cascade(self.cascade_path)
        win = self._cascade.getOriginalWindowSize()
        self._win = max(int(win[0]), int(win[1]), 1) if win else 24
        self.stats = DetectorStats()
        self.last = CallInfo()
        self._tracks: list[_BoxTrack] = []
        self._since_full = 0
        self._force_full = True

    def reset(self) -> None:
        """Forget tracked faces (the next call runs a full detection); counters are kept."""
        self._tracks = []
        self._force_full = True

    def reset_stats(self) -> None:
        self.stats = DetectorStats()

    @property
    def tracked(self) -> list[Box]:
        """The faces currently tracked, in full-frame pixels."""
        return [t.box for t in self._tracks]

    def detect_frame(self, frame: Frame) -> list[Box]:
        """Detect on a Frame: its free gray image (picamera2 lores Y) if any, boxes in image pixels."""
        h, w = frame.image.shape[:2]
        gray = frame.gray if frame.gray is not None else to_gray(frame.image)
        return self.detect(gray, frame_size=(w, h))

    def detect(
        self, frame_gray: np.ndarray, frame_size: tuple[int, int] | None = None
    ) -> list[Box]:
        """Faces in a gray frame as (x, y, w, h) boxes in full-frame pixels, largest first, at most
        `max_faces`.

        `frame_size` = (width, height) of the full frame when `frame_gray` is a smaller image of
        it (e.g. picamera2's lores Y plane); the boxes are then scaled up to full-frame pixels.
        """
        gray = to_gray(frame_gray)
        gh, gw = gray.shape[:2]
        fw, fh = frame_size or (gw, gh)
        # Full-frame pixels -> gray pixels, per axis (lores may not keep the exact aspect ratio).
        view = _View(gray, gw / fw, gh / fh, fw, fh)
        self.stats.frames += 1
        self.last = CallInfo()

        every = self.cfg.redetect_every if self._tracks else self.cfg.idle_every
        if self._force_full or self._since_full >= every:
            self._full_detection(view)
        elif self._tracks:
            self._track(view)
        else:  # nobody tracked: an empty room costs one full pass per idle_every frames
            self.stats.idle_frames += 1
            self._since_full += 1
        return [t.box for t in self._tracks if t.missed <= COAST_FRAMES]

    # ------------------------------------------------------------------ full detection

    def _full_detection(self, v: _View) -> None:
        cfg = self.cfg
        gh, gw = v.gray.shape[:2]
        # Never upscale: if gray is already at or below detect_width (lores), use it as is.
        s = min(1.0, cfg.detect_width / gw)
        small = (
            v.gray
            if s == 1.0
            else cv2.resize(
                v.gray, (max(1, round(gw * s)), max(1, round(gh * s))), interpolation=cv2.INTER_AREA
            )
        )
        # min_face is in full-frame pixels; below the cascade window OpenCV can't go anyway.
        min_px = max(self._win, round(cfg.min_face * v.gx * s))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
            minSize=(min_px, min_px),
        )  # fmt: skip
        boxes = [v.to_frame(b, s, 0, 0) for b in found]
        self.stats.full_detections += 1
        self.last.full = True
        new: list[_BoxTrack] = []
        matched: set[int] = set()
        for b in boxes:
            # Keep a face's motion estimate across the re-detection when it matches a track.
            j = max(range(len(self._tracks)), key=lambda k: iou(self._tracks[k].box, b), default=-1)
            t = _BoxTrack(b)
            if j >= 0 and iou(self._tracks[j].box, b) > MATCH_IOU:
                t.dx, t.dy = _centre_shift(self._tracks[j].box, b)
                matched.add(j)
            new.append(t)
        # A tracked face the downscaled pass missed (Haar is not scale-invariant: a face found at
        # one scale can be missed at another) gets its window search rather than being dropped.
        for k, old in enumerate(self._tracks):
            if k not in matched:
                kept = self._search_or_keep(v, old)
                if kept is not None:
                    new.append(kept)
        self._tracks = self._dedup(new)[: cfg.max_faces]
        self._since_full = 1
        self._force_full = False

    # ------------------------------------------------------------------ tracking

    def _track(self, v: _View) -> None:
        self.stats.tracking_frames += 1
        kept = [t for t in (self._search_or_keep(v, old) for old in self._tracks) if t is not None]
        if len(kept) < len(self._tracks):
            self._force_full = True  # find a lost face (or where it went) again next frame
        tracks = self._dedup(kept)
        if len(tracks) < len(kept):
            self._force_full = True  # two windows converged onto one face: re-detect both
        self._tracks = tracks
        self._since_full += 1

    def _search_or_keep(self, v: _View, t: _BoxTrack) -> _BoxTrack | None:
        """The track found again in its window; else, for up to `lost_frames` frames, the track
        kept (not reported) at its predicted place, so that a face the cascade misses for a
        frame or two (noise, a blink, a hand) is searched for again where it will be, without
        the cost of a full detection; else None (dropped)."""
        found = self._search(v, t)
        if found is not None:
            return found
        if t.missed >= self.cfg.lost_frames:
            self.stats.tracks_dropped += 1
            return None
        x, y, w, h = t.box
        return _BoxTrack((round(x + t.dx), round(y + t.dy), w, h), t.dx, t.dy, t.missed + 1)

    def _search(self, v: _View, t: _BoxTrack) -> _BoxTrack | None:
        """Look for a tracked face in a window around its predicted position."""
        cfg = self.cfg
        gh, gw = v.gray.shape[:2]
        self.stats.window_searches += 1
        self.last.window_searches += 1
        x, y, w, h = t.box
        px, py = x + t.dx, y + t.dy  # predicted: shifted by its last motion
        # Where a face is grows less certain with every frame it was missed: widen the window.
        m = cfg.search_margin * (1 + t.missed)
        # The window in full-frame pixels -> gray pixels, clipped to the frame.
        x0, y0 = max(0, int((px - m * w) * v.gx)), max(0, int((py - m * h) * v.gy))
        x1 = min(gw, int(np.ceil((px + w + m * w) * v.gx)))
        y1 = min(gh, int(np.ceil((py + h + m * h) * v.gy)))
        face_g = w * v.gx  # tracked face width in gray pixels
        # Search at the scale that puts the face at ~TRACK_FACE_PX, never upscaling the gray; if
        # that misses, once more at the gray's own scale (SECOND_LOOK_EXTRA_NEIGHBOURS).
        s = min(1.0, TRACK_FACE_PX / max(face_g, 1.0))
        window, pred = (x0, y0, x1, y1), (round(px), round(py), w, h)
        box = self._search_window(v, window, s, face_g * s, pred, cfg.min_neighbors)
        second_look = box is None and s < 1.0
        if second_look:
            extra = cfg.min_neighbors + SECOND_LOOK_EXTRA_NEIGHBOURS
            box = self._search_window(v, window, 1.0, face_g, pred, extra)
        if box is None:
            self.stats.tracks_lost += 1
            self.last.tracks_lost += 1
            return None
        dx, dy = _centre_shift(t.box, box)
        # A face only the second look found was lost where its motion put it: its motion starts
        # afresh from where it was found (averaging the old motion in gave 57.3 false faces per
        # 1,000 frames on PublicTest scenes instead of 53.7, with no more recall).
        if t.missed and not second_look:  # t.box was moved by its motion: average over the gap
            dx, dy = (
                (dx + t.missed * t.dx) / (t.missed + 1),
                (dy + t.missed * t.dy) / (t.missed + 1),
            )
        return _BoxTrack(box, dx, dy)

    def _search_window(
        self,
        v: _View,
        window: tuple[int, int, int, int],
        s: float,
        face_px: float,
        pred: Box,
        neighbours: int,
    ) -> Box | None:
        """The face nearest `pred` in a window of the gray image (x0, y0, x1, y1) scaled by s,
        among sizes near `face_px` (the tracked size at that scale), found with `neighbours`."""
        x0, y0, x1, y1 = window
        if (x1 - x0) * s < self._win or (y1 - y0) * s < self._win:
            return None
        roi = v.gray[y0:y1, x0:x1]
        if s < 1.0:
            size = (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s)))
            roi = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
        lo = max(self._win, int(face_px * TRACK_MIN_SCALE))
        hi = max(lo + 1, int(np.ceil(face_px * TRACK_MAX_SCALE)))
        found = self._cascade.detectMultiScale(
            roi,
            scaleFactor=min(self.cfg.scale_factor, TRACK_SCALE_FACTOR),
            minNeighbors=neighbours,
            minSize=(lo, lo),
            maxSize=(hi, hi),
        )
        if not len(found):
            return None
        cands = [v.to_frame(b, s, x0, y0) for b in found]
        # Another face may poke into the window: take the one nearest the prediction.
        return max(cands, key=lambda c: (iou(c, pred), -_centre_dist(c, pred)))

    @staticmethod
    def _dedup(tracks: list[_BoxTrack]) -> list[_BoxTrack]:
        """Found before missed, then largest first, dropping any track that overlaps one already
        kept (the same face twice)."""
        out: list[_BoxTrack] = []
        for t in sorted(tracks, key=lambda t: (t.missed, -t.box[2] * t.box[3], t.box[0], t.box[1])):
            if all(iou(t.box, d.box) < DUPLICATE_IOU for d in out):
                out.append(t)
        return out


@dataclass
class _View:
    """A gray frame and its mapping to full-frame pixels (gx, gy: gray pixels per frame pixel)."""

    gray: np.ndarray
    gx: float
    gy: float
    fw: int
    fh: int

    def to_frame(self, b: np.ndarray, s: float, ox: int, oy: int) -> Box:
        """A detection in a ROI at (ox, oy) of gray, scaled by s, to full-frame pixels (clipped)."""
        sx, sy = 1.0 / (self.gx * s), 1.0 / (self.gy * s)
        x = max(0, round(ox / self.gx + b[0] * sx))
        y = max(0, round(oy / self.gy + b[1] * sy))
        w, h = round(b[2] * sx), round(b[3] * sy)
        return (x, y, max(1, min(w, self.fw - x)), max(1, min(h, self.fh - y)))


def _centre_shift(a: Box, b: Box) -> tuple[float, float]:
    return (b[0] + b[2] / 2) - (a[0] + a[2] / 2), (b[1] + b[3] / 2) - (a[1] + a[3] / 2)


def _centre_dist(a: Box, b: Box) -> float:
    dx, dy = _centre_shift(a, b)
    return float(np.hypot(dx, dy))
