"""Weight averaging of a run's last epochs (training/swa.py) on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import random_faces
from tests.test_convert import tiny_model
from training.swa import average_weights, reestimate_batchnorm, snapshots


def test_average_of_snapshots_is_the_elementwise_mean(tmp_path: Path) -> None:
    model = tiny_model()
    (tmp_path / "epochs").mkdir()
    rng = np.random.default_rng(0)
    written = []
    for epoch in (1, 2, 3):
        weights = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
        model.set_weights(weights)
        model.save_weights(tmp_path / "epochs" / f"epoch_{epoch:03d}.weights.h5")
        written.append(weights)
    (tmp_path / "epochs" / "notes.weights.h5").write_bytes(b"not a snapshot")
    snaps = snapshots(tmp_path)
    assert list(snaps) == [1, 2, 3]
    average_weights(model, [snaps[2], snaps[3]])
    for got, a, b in zip(model.get_weights(), written[1], written[2], strict=True):
        np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-6, atol=1e-6)


def test_batchnorm_statistics_are_recomputed_from_the_faces() -> None:
    import keras

    model = tiny_model()
    faces = random_faces(300)
    bn = next(la for la in model.layers if isinstance(la, keras.layers.BatchNormalization))
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 99.0, np.float32))
    reestimate_batchnorm(model, faces, batch=100)
    # The BN input is the conv output; its per-channel mean over all faces and positions.
    conv_out = keras.Model(model.input, bn.input)(faces[..., None].astype(np.float32))
    expected = np.asarray(conv_out).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(bn.moving_mean), expected, rtol=1e-3, atol=1e-4)
    assert bn.momentum == pytest.approx(0.99)  # restored
