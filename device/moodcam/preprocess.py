"""Face preprocessing, shared byte for byte by training, conversion and the device.

A face reaches the model as a FACE_SIZE x FACE_SIZE uint8 grayscale image. FER2013 images are
already that, so `prepare_face` leaves them untouched; camera crops are cut from the frame with a
margin around the detector's box (so the framing matches FER2013's) and resized here.
The model itself maps pixels 0..255 to its input range (a Rescaling layer, folded into the int8
input scale at conversion), so nothing else happens to the pixels on the way in.
"""

from __future__ import annotations

import cv2
import numpy as np

from moodcam.records import Box  # re-exported: the one definition lives there

FACE_SIZE = 48
# Extra border around a Haar box, as a fraction of its width/height on each side. Haar boxes are
# tighter than FER2013's framing; training/margin.py (haar_margin) measures the value that matches.
DEFAULT_MARGIN = 0.0


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, gray+alpha, BGR, BGRA) to a 2-D uint8 gray image."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (1, 2):  # gray, or gray + alpha: the alpha goes
        return np.ascontiguousarray(image[:, :, 0])
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a gray, gray+alpha, BGR or BGRA image, got shape {image.shape}")


def expand_box(box: Box, margin: float) -> Box:
    """Grow a box by `margin` of its size on every side (the result may leave the frame)."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    return x - dx, y - dy, w + 2 * dx, h + 2 * dy


def crop_face(image: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut the face `box` (plus margin) out of a frame (gray or colour); parts outside the frame
    repeat the edge."""
    gray = image  # any channel count: the crop keeps it, prepare_face greys it
    x, y, w, h = expand_box(box, margin)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {box}")
    fh, fw = gray.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"face box {box} lies outside the {fw}x{fh} frame")
    crop = gray[y0:y1, x0:x1]
    pad = (y0 - y, y + h - y1, x0 - x, x + w - x1)
    if any(pad):
        crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE)
    return crop


def prepare_face(face: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """A face crop of any size and channel count to the model's size x size uint8 gray image."""
    gray = to_gray(face)
    if gray.shape == (size, size):
        return np.ascontiguousarray(gray)
    if gray.shape[0] == 0 or gray.shape[1] == 0:
        raise ValueError("empty face image")
    # INTER_AREA averages when shrinking (no aliasing); INTER_LINEAR when enlarging.
    shrinking = gray.shape[0] > size or gray.shape[1] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)
