"""`moodcam classify`: the faces in images, one JSON line per face; nothing written to disk."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from moodcam.commands.common import (
    MAX_IMAGE_PIXELS,
    add_model_args,
    classifier_for,
    load_config,
    one_line,
)
from moodcam.errors import EXIT_INPUT, EXIT_OK, InputError
from moodcam.files import MAX_IMAGE_BYTES, FileRefused, read_regular, shown

if TYPE_CHECKING:  # imported where used: `moodcam web` and `report` build this parser too
    import numpy as np


def register(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser(
        "classify",
        help="classify faces in images, one JSON line per face",
        description="Find the faces in each image and print one JSON line per face: "
        '{"path", "box", "label", "scores"}. Nothing is written to disk.',
    )
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    c.add_argument("--no-detect", action="store_true", help="each image is an already cropped face")
    c.add_argument("--config", help="TOML config (detector and classifier sections are used)")
    add_model_args(c)
    c.set_defaults(func=run)
    return c


def read_image(path: str) -> np.ndarray:
    """Decode an image file to an 8-bit OpenCV array; InputError naming the file if it cannot."""
    import cv2
    import numpy as np

    try:
        # /dev/zero or a FIFO would be read forever; a multi-gigabyte file is no photo.
        data = np.frombuffer(read_regular(path, MAX_IMAGE_BYTES, "an image"), np.uint8)
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such image file") from None
    except FileRefused as e:
        raise InputError(f"{shown(path)}: {e}") from None
    except OSError as e:
        raise InputError(f"{shown(path)}: cannot read: {e.strerror or e}") from None
    if data.size == 0:
        raise InputError(f"{shown(path)}: empty file")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        # OpenCV raises (rather than returning None) for some malformed headers and for images
        # above OPENCV_IO_MAX_IMAGE_PIXELS; its message spans lines and names C++ sources.
        if "MAX_IMAGE_PIXELS" in str(e):
            raise InputError(
                f"{shown(path)}: image too large (more than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
            ) from None
        raise InputError(f"{shown(path)}: not an image OpenCV can decode ({e.err})") from None
    if image is None or image.size == 0:
        raise InputError(f"{shown(path)}: not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:  # when cv2 came in before our limit
        raise InputError(
            f"{shown(path)}: image too large ({image.shape[1]}x{image.shape[0]}, more than "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
        )
    return _to_uint8(path, image)


def _to_uint8(path: str, image: np.ndarray) -> np.ndarray:
    """16-bit PNGs, float TIFFs and the like, scaled to 8 bits (the model sees 0..255)."""
    import cv2
    import numpy as np

    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.integer):
        return cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(np.iinfo(image.dtype).max)))
    if np.issubdtype(image.dtype, np.floating):
        # Float images are 0..1 by convention (OpenCV, TIFF); NaN becomes black.
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"{shown(path)}: unsupported pixel type {image.dtype}")


def run(args: argparse.Namespace) -> int:
    import cv2

    from moodcam.preprocess import crop_face, to_gray

    cfg = load_config(args.config)
    clf = classifier_for(cfg, args)
    detector = None
    status = EXIT_OK
    for path in args.images:
        try:
            image = read_image(path)
            gray = to_gray(image)
            if args.no_detect:
                boxes = [(0, 0, gray.shape[1], gray.shape[0])]
                crops = [gray]
            else:
                if detector is None:
                    from moodcam.detector import FaceDetector

                    detector = FaceDetector(cfg.detector)
                detector.reset()
                boxes = detector.detect(gray)
                crops = [crop_face(gray, b, clf.margin) for b in boxes]
                if not boxes:
                    print(f"moodcam classify: {shown(path)}: no face found", file=sys.stderr)
            results = [clf.classify(crop) for crop in crops]
        except (InputError, ValueError, cv2.error) as e:
            # One line per bad image, and on to the next: one corrupt file must not hide the rest.
            why = str(e) if isinstance(e, InputError) else f"{shown(path)}: {one_line(e)}"
            print(f"moodcam classify: {one_line(why)}", file=sys.stderr)
            status = EXIT_INPUT
            continue
        for box, (label, scores) in zip(boxes, results, strict=True):
            record = {
                "path": path,
                "box": [int(v) for v in box],
                "label": label,
                "scores": {k: round(v, 4) for k, v in scores.items()},
            }
            print(json.dumps(record), flush=True)
    return status
