"""Measure the crop margin that makes a Haar box framed like a FER2013 face.

FER2013 faces were cropped by a detector with its own framing. Upscale each face, pad it with
its own edge so the cascade sees context, detect, and ask: how much bigger than the Haar box is
the FER2013 crop? The median of that, per side, is the margin the device adds to its boxes.
"""

from __future__ import annotations

import cv2
import numpy as np

UPSCALE = 4
PAD = 0.5  # of the upscaled face, on each side


def haar_margin(faces: np.ndarray, cascade_path: str | None = None) -> tuple[float, int]:
    """(median margin per side as a fraction of the box, number of faces it was measured on)."""
    cascade = cv2.CascadeClassifier(
        cascade_path or cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    )
    size = faces.shape[1] * UPSCALE
    pad = int(size * PAD)
    margins = []
    for face in faces:
        big = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
        canvas = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        boxes = cascade.detectMultiScale(
            canvas, scaleFactor=1.1, minNeighbors=5, minSize=(size // 3, size // 3)
        )
        if len(boxes) != 1:
            continue
        x, y, w, h = boxes[0]
        cx, cy = x + w / 2 - pad, y + h / 2 - pad
        if abs(cx - size / 2) > size * 0.15 or abs(cy - size / 2) > size * 0.15:
            continue  # off-centre: the cascade found something else
        margins.append((size / w - 1) / 2)
    if not margins:
        return 0.0, 0
    return float(np.median(margins)), len(margins)
