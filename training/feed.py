"""Batches for Keras `fit`: shuffled and augmented on the fly, reproducible per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from training.augment import PRESETS, AugmentConfig, augment_batch
from training.distill import mix_targets


class AugmentedFaces(keras.utils.PyDataset):
    """Shuffled, augmented batches; (seed, epoch) seeds each epoch, so a resumed run repeats it."""

    def __init__(
        self,
        x: np.ndarray,
        t: np.ndarray,
        batch: int,
        seed: int,
        augment: AugmentConfig | None = PRESETS["camera"],
        teacher: Callable[[np.ndarray], np.ndarray] | None = None,
        teacher_weight: float = 0.0,
        mixup: float = 0.0,
    ):
        """`mixup` > 0 blends each face with another of its batch (weight ~ Beta(mixup, mixup))
        and their targets alike. `teacher`, if given, scores each batch as augmented and mixed
        (an online teacher, training/distill.py); the targets are then mixed with its output by
        `teacher_weight`.
        """
        super().__init__()
        self.x, self.t, self.batch, self.seed, self.augment = x, t, batch, seed, augment
        self.teacher, self.teacher_weight, self.mixup = teacher, teacher_weight, mixup
        self.epoch = 0
        self._reshuffle()

    def _reshuffle(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.epoch])
        self.order = self.rng.permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.order[i * self.batch : (i + 1) * self.batch]
        faces = augment_batch(self.x[idx], self.rng, self.augment) if self.augment else self.x[idx]
        x, t = faces[..., None].astype(np.float32), self.t[idx]
        if self.mixup > 0:
            # Blends need not be faces a camera sees: they show the model (and its teacher) the
            # space between moods, where FER2013's labels say least.
            lam = self.rng.beta(self.mixup, self.mixup, len(idx)).astype(np.float32)
            other = self.rng.permutation(len(idx))
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[other]
            t = lam[:, None] * t + (1 - lam[:, None]) * t[other]
        if self.teacher is not None:
            t = mix_targets(t, self.teacher(x), self.teacher_weight)
        return x, t

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reshuffle()
