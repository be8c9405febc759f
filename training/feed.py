"""Batches for Keras `fit`: shuffled and augmented on the fly, reproducible per epoch."""

from __future__ import annotations

import math

import keras
import numpy as np

from training.augment import PRESETS, AugmentConfig, augment_batch


class AugmentedFaces(keras.utils.PyDataset):
    """Shuffled, augmented batches; (seed, epoch) seeds each epoch, so a resumed run repeats it."""

    def __init__(
        self,
        x: np.ndarray,
        t: np.ndarray,
        batch: int,
        seed: int,
        augment: AugmentConfig | None = PRESETS["camera"],
    ):
        super().__init__()
        self.x, self.t, self.batch, self.seed, self.augment = x, t, batch, seed, augment
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
        return faces[..., None].astype(np.float32), self.t[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reshuffle()
