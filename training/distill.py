"""Distillation targets: what an ensemble of trained models says about each training face.

`python -m training.train --teacher runs/a/best.keras --teacher runs/b/best.keras ...` trains a
student on `(1 - w) * label target + w * teacher`, where the teacher is the average of the given
models' softmax outputs on the face and its mirror image, softened by a temperature. An ensemble
knows more than any one of its members (which faces are ambiguous, which classes they sit
between), and a student of the shipped size can learn part of that; the teachers need not fit
the device.

Two modes (`--teacher-mode`):
- fixed: teacher outputs are computed once per run on the un-augmented training faces and cached
  in the run folder (teacher.npy, keyed by teacher.json), so a resumed run does not recompute
  them. Cheap, but the student then hears one opinion per face however it is augmented, and
  teachers trained on those faces mostly repeat the label.
- online: the teachers see each augmented batch exactly as the student does (a "consistent"
  teacher, Beyer et al. 2022, "Knowledge distillation: a good teacher is patient and
  consistent"), so every rotation, blur or crop gets its own soft target, at the cost of each
  teacher's forward pass (face and mirror) on every batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodcam.errors import ModelError
from moodcam.preprocess import FACE_SIZE
from training.data import DataError, sha256_file
from training.evaluate import check_classes, predict_keras
from training.models import trained_classes


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(logits / T) computed from probabilities: p^(1/T), renormalised per row."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def ensemble_model(teachers: Sequence[Path], classes: tuple[str, ...], flip: bool = True):
    """One Keras model: the mean softmax of `teachers`, on the face and its mirror if `flip`.

    One graph rather than a loop over models, so an online teacher costs one call per batch.
    Every member must answer in `classes` (its run's config.json and its output width, checked
    as `make eval` checks a model: training.evaluate.check_classes), else ModelError names it.
    """
    import keras
    from keras import layers, ops

    inp = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    views = [inp]
    if flip:
        views.append(layers.Lambda(lambda x: ops.flip(x, axis=2), name="mirror")(inp))
    outs = []
    for i, path in enumerate(teachers):
        member = keras.models.load_model(path, compile=False)
        try:
            check_classes(path, trained_classes(path), member.output_shape[-1], classes)
        except ModelError as e:
            raise ModelError(f"teacher {e}") from None
        member.name = f"teacher_{i}"  # members share a name ("edge"); a graph needs unique ones
        outs += [member(v) for v in views]
    out = outs[0] if len(outs) == 1 else layers.Average(name="ensemble")(outs)
    return keras.Model(inp, out, name="teachers")


def ensemble_predict(
    teachers: Sequence[Path], faces: np.ndarray, classes: tuple[str, ...], flip: bool = True
) -> np.ndarray:
    """Mean softmax of `teachers` over uint8 faces (N, H, W), with the mirror image if `flip`."""
    return predict_keras(ensemble_model(teachers, classes, flip), faces).astype(np.float32)


def _existing(teachers: Sequence[str | Path]) -> list[Path]:
    paths = [Path(t) for t in teachers]
    for path in paths:
        if not path.is_file():
            raise DataError(f"teacher {path}: model not found")
    return paths


class OnlineTeacher:
    """The teachers' softened ensemble output on each batch the student is trained on.

    Called by the batch feed (training/feed.py) on the augmented faces, float (N, H, W, 1).
    """

    def __init__(
        self, teachers: Sequence[str | Path], classes: tuple[str, ...], temperature: float
    ):
        paths = _existing(teachers)
        soften(np.ones((1, 1), np.float32), temperature)  # refuse a bad temperature at start
        self.model = ensemble_model(paths, classes)
        self.temperature = temperature

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        probs = np.asarray(self.model.predict_on_batch(faces))
        return soften(probs, self.temperature)


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
    paths = _existing(teachers)
    key = {  # the classes too: a hit skips loading the teachers, and with it their check
        "classes": list(classes),
        "teachers": [str(p) for p in paths],
        "sha256": [sha256_file(p) for p in paths],
        "faces_sha256": hashlib.sha256(np.ascontiguousarray(faces).tobytes()).hexdigest(),
        "flip": True,
    }
    cache, meta = cache_dir / "teacher.npy", cache_dir / "teacher.json"
    if cache.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        probs = np.load(cache)
    else:
        probs = ensemble_predict(paths, faces, classes)
        np.save(cache, probs)
        meta.write_text(json.dumps(key, indent=2) + "\n")
    return soften(probs, temperature)


def mix_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * label targets + weight * teacher targets; rows still sum to 1.

    A face without a label among the run's classes (`train --teacher-only-faces`) has label
    targets of zeros, and a mixup blend with one has label targets summing to less than 1: the
    teacher fills whatever share the label part leaves.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"teacher weight must be in [0, 1], got {weight}")
    label_part = (1.0 - weight) * labels
    return (label_part + (1.0 - label_part.sum(axis=1, keepdims=True)) * teacher).astype(np.float32)
