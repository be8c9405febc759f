"""Make the demo clip: FER2013 PublicTest faces in a cluttered 640x480 scene, moods changing.

    python -m demo.make_clip            # writes demo/clip.mp4 and demo/clip.json (ground truth)

Desktop only (needs FER2013). The clip is committed, so `make demo` needs no data set. Faces
are chosen by their FER2013 label and by the Haar cascade finding them, never by what the
model says about them, so the demo shows the model as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from demo.scenes import FaceMotion, _haar_finds, make_clip, write_clip
from moodcam.labels import FER2013_CLASSES
from training import data as fer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FPS = 15.0
SEGMENT_S = 3.0
# The story: one person whose mood changes; a second person joins for a while.
STORY = ("neutral", "happy", "happy", "sad", "angry", "neutral")
VISITOR = "happy"


def pick_faces(faces: fer.FaceSet, label: str, n: int, seed: int) -> list[tuple[int, np.ndarray]]:
    """n PublicTest faces of `label` that the Haar cascade finds, as (CSV line, face)."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    idx = np.nonzero(
        (faces.usage == "PublicTest") & (faces.labels == FER2013_CLASSES.index(label))
    )[0]
    rng = np.random.default_rng(seed)
    picked = []
    for i in rng.permutation(idx):
        if _haar_finds(cascade, faces.images[i]):
            picked.append((int(faces.rows[i]), faces.images[i]))
            if len(picked) == n:
                break
    return picked


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m demo.make_clip", description=__doc__.splitlines()[0]
    )
    p.add_argument("--data")
    p.add_argument("--out", type=Path, default=HERE / "clip.mp4")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    faces = fer.load_fer2013(fer.find_fer2013(fer.data_dir(args.data)), cache_dir=ROOT / ".cache")
    per_label = {lbl: pick_faces(faces, lbl, STORY.count(lbl) + 1, args.seed) for lbl in set(STORY)}
    n_seg = int(SEGMENT_S * FPS)
    frames, truth, boxes = [], [], []
    used: dict[str, int] = {}
    for s, label in enumerate(STORY):
        line, face = per_label[label][used.get(label, 0)]
        used[label] = used.get(label, 0) + 1
        # The main face drifts across the frame; the visitor is in segments 2-3, smaller.
        x0 = 60 + 60 * s
        motions = [FaceMotion(face, (x0, 110, 170, 170), (x0 + 60, 130, 170, 170))]
        visitor = None
        if s in (2, 3):
            vline, vface = per_label[VISITOR][-1]
            motions.append(FaceMotion(vface, (470, 250, 120, 120), (460, 240, 125, 125)))
            visitor = {"label": VISITOR, "csv_line": vline}
        clip = make_clip(motions, n_seg, seed=args.seed + 10 * s, fps=FPS)
        frames += clip.frames
        boxes += [[list(b) for b in fb] for fb in clip.boxes]
        truth.append(
            {
                "start_s": s * SEGMENT_S,
                "end_s": (s + 1) * SEGMENT_S,
                "label": label,
                "csv_line": line,
                "visitor": visitor,
                "boxes_first_frame": [list(b) for b in clip.boxes[0]],
            }
        )
    write_clip(args.out, frames, fps=FPS)
    meta = {
        "source": "FER2013 PublicTest faces (Goodfellow et al. 2013, research use) in a synthetic scene",
        "data_sha256": faces.sha256,
        "fps": FPS,
        "frames": len(frames),
        "size": [frames[0].shape[1], frames[0].shape[0]],
        "segments": truth,
        "boxes": boxes,  # every frame's ground-truth face boxes, for recall in `moodcam bench`
        "command": "python -m demo.make_clip " + " ".join(argv or sys.argv[1:]),
    }
    boxes_json = json.dumps(meta.pop("boxes"), separators=(",", ":"))
    text = json.dumps(meta, indent=2)[:-2] + f',\n  "boxes": {boxes_json}\n}}\n'
    args.out.with_suffix(".json").write_text(text)
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(frames)} frames) and its ground truth"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
