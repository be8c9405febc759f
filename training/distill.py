"""Distillation targets: what an ensemble of trained models says about each training face.

`python -m training.train --teacher runs/a/best.keras --teacher runs/b/best.keras ...` trains a
student on `(1 - w) * label target + w * teacher`, where the teacher is the average of the given
models' softmax outputs on the face and its mirror image, softened by a temperature. An ensemble
knows more than any one of its members (which faces are ambiguous, which classes they sit
between), and a student of the shipped size can learn part of that; the teachers need not fit
the device.

Teacher outputs are computed once per run on the un-augmented training faces and cached in the
run folder (teacher.npy, keyed by teacher.json), so a resumed run does not recompute them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.data import DataError, sha256_file
from training.evaluate import predict_keras


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(logits / T) computed from probabilities: p^(1/T), renormalised per row."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _check_teacher_classes(path: Path, classes: tuple[str, ...]) -> None:
    """A teacher from a run folder carries its class list in config.json; it must match."""
    cfg = path.parent / "config.json"
    if cfg.exists():
        taught = tuple(json.loads(cfg.read_text()).get("classes", classes))
        if taught != classes:
            raise DataError(
                f"{path}: teacher was trained on classes {','.join(taught)}, "
                f"this run uses {','.join(classes)}"
            )


def ensemble_predict(teachers: Sequence[Path], faces: np.ndarray, flip: bool = True) -> np.ndarray:
    """Mean softmax of `teachers` over uint8 faces (N, H, W), with the mirror image if `flip`."""
    import keras

    views = [faces, faces[:, :, ::-1]] if flip else [faces]
    total = None
    for path in teachers:
        model = keras.models.load_model(path, compile=False)
        for view in views:
            p = predict_keras(model, view).astype(np.float64)
            total = p if total is None else total + p
    return (total / (len(teachers) * (2 if flip else 1))).astype(np.float32)


def teacher_targets(
    teachers: Sequence[str | Path],
    faces: np.ndarray,
    classes: tuple[str, ...],
    temperature: float,
    cache_dir: Path,
) -> np.ndarray:
    """Softened ensemble outputs for `faces`, one row per face; cached in `cache_dir`.

    The cache holds the unsoftened ensemble outputs, keyed by the teachers' bytes and the faces,
    so a changed teacher or data set recomputes rather than silently reusing stale targets; the
    temperature is applied after the cache.
    """
    paths = [Path(t) for t in teachers]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: teacher model not found")
        _check_teacher_classes(path, classes)
    key = {
        "teachers": [str(p) for p in paths],
        "sha256": [sha256_file(p) for p in paths],
        "faces_sha256": hashlib.sha256(np.ascontiguousarray(faces).tobytes()).hexdigest(),
        "flip": True,
    }
    cache, meta = cache_dir / "teacher.npy", cache_dir / "teacher.json"
    if cache.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        probs = np.load(cache)
    else:
        probs = ensemble_predict(paths, faces)
        if probs.shape[1] != len(classes):
            raise DataError(
                f"{paths[0]}: teachers have {probs.shape[1]} outputs, "
                f"this run has {len(classes)} classes"
            )
        np.save(cache, probs)
        meta.write_text(json.dumps(key, indent=2) + "\n")
    return soften(probs, temperature)


def mix_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * label targets + weight * teacher targets; rows still sum to 1."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"teacher weight must be in [0, 1], got {weight}")
    return ((1.0 - weight) * labels + weight * teacher).astype(np.float32)
