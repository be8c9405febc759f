"""Training-time augmentation: what a Pi camera does to a face that FER2013's crops don't show.

Geometry (flip, small rotation, scale, shift), lighting (brightness, contrast, gamma), optics
(blur, low resolution, sensor noise) and occlusion. Plain numpy + OpenCV on uint8 48x48 faces,
so the augmented face is the same kind of array the device feeds the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    max_rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    max_shift: float = 0.08  # fraction of the face size
    contrast: tuple[float, float] = (0.6, 1.4)
    max_brightness: float = 40.0
    gamma: tuple[float, float] = (0.7, 1.5)
    p_blur: float = 0.2
    p_lowres: float = 0.2
    lowres_size: tuple[int, int] = (14, 36)
    p_noise: float = 0.2
    max_noise_std: float = 10.0
    p_erase: float = 0.25
    erase_frac: tuple[float, float] = (0.1, 0.35)


# Named strengths for `train --augment`. "camera" is the full set the product model learns from;
# "light" keeps the geometry and halves the camera effects, for a last phase that lets the
# model fit the faces themselves after it has learned to ignore the camera.
PRESETS = {
    "camera": AugmentConfig(),
    "light": AugmentConfig(
        max_rotate_deg=10.0,
        scale=(0.9, 1.1),
        max_shift=0.06,
        contrast=(0.8, 1.2),
        max_brightness=20.0,
        gamma=(0.85, 1.2),
        p_blur=0.1,
        p_lowres=0.1,
        p_noise=0.1,
        max_noise_std=6.0,
        p_erase=0.1,
    ),
}


def move(face: np.ndarray, angle: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """The face rotated by `angle` degrees and scaled about its centre, then moved by `shift`
    (x, y) pixels; edges replicated, same shape out."""
    size = face.shape[0]
    centre = (size - 1) / 2
    m = cv2.getRotationMatrix2D((centre, centre), angle, scale)
    m[:, 2] += shift
    return cv2.warpAffine(
        np.ascontiguousarray(face),
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def augment_face(
    face: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """One random variation of a uint8 gray face; same shape and dtype out."""
    size = face.shape[0]
    x = face
    if rng.random() < cfg.flip:
        x = x[:, ::-1]
    angle = rng.uniform(-cfg.max_rotate_deg, cfg.max_rotate_deg)
    scale = rng.uniform(*cfg.scale)
    x = move(x, angle, scale, rng.uniform(-cfg.max_shift, cfg.max_shift, 2) * size)
    f = x.astype(np.float32)
    if rng.random() < cfg.p_lowres:
        s = int(rng.integers(cfg.lowres_size[0], cfg.lowres_size[1] + 1))
        small = cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.p_blur:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.4, 1.3))
    f = (f - 128.0) * rng.uniform(*cfg.contrast) + 128.0 + rng.uniform(-1, 1) * cfg.max_brightness
    f = np.clip(f, 0, 255)
    f = 255.0 * (f / 255.0) ** rng.uniform(*cfg.gamma)
    if rng.random() < cfg.p_noise:
        f = f + rng.normal(0, rng.uniform(1, cfg.max_noise_std), f.shape)
    if rng.random() < cfg.p_erase:
        eh, ew = (rng.uniform(*cfg.erase_frac, 2) * size).astype(int)
        y0, x0 = rng.integers(0, size - eh), rng.integers(0, size - ew)
        f[y0 : y0 + eh, x0 : x0 + ew] = rng.uniform(0, 255)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


def augment_batch(
    faces: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    return np.stack([augment_face(f, rng, cfg) for f in faces])
