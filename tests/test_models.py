"""Model architectures: each builds for any class count and ends in a softmax; the product fits 1 MB."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import random_faces
from training import models


@pytest.mark.parametrize("arch", sorted(models.ARCHS))
def test_every_arch_maps_raw_faces_to_a_softmax(arch: str) -> None:
    for n_classes in (4, 7):
        model = models.build(arch, n_classes)
        assert model.input_shape == (None, 48, 48, 1)
        probs = np.asarray(model(random_faces(3).astype(np.float32)[..., None], training=False))
        assert probs.shape == (3, n_classes)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_product_model_fits_the_one_megabyte_budget() -> None:
    # Full-integer int8 stores about one byte per weight; the rest of the file is a few KB.
    assert models.build("edge", 4).count_params() < 1_000_000


def test_macs_count_the_convs_and_dense_layers() -> None:
    model = models.build("seed", 4)
    convs = 48 * 48 * 64 * 1 * 9 + 24 * 24 * 128 * 64 * 9 + 12 * 12 * 256 * 128 * 9
    dense = 4 * 256 * 200 + 200 * 4  # quadrant pooling leaves 2x2x256
    assert models.macs(model) == convs + dense


def test_an_unknown_arch_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown --arch 'vgg'.*edge"):
        models.build("vgg", 4)
