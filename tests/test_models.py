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


def test_edge_hr_spends_invoke_time_not_bytes() -> None:
    edge, hr = models.build("edge", 4), models.build("edge_hr", 4)
    at_full_size = [
        layer.name
        for layer in hr.layers
        if isinstance(layer, models.layers.Conv2D) and layer.output.shape[1] == 48
    ]
    assert at_full_size == ["b0a_conv", "b0b_conv"]
    assert hr.count_params() < 1_000_000
    assert models.macs(hr) > 2 * models.macs(edge)


def test_macs_count_the_convs_and_dense_layers() -> None:
    model = models.build("seed", 4)
    convs = 48 * 48 * 64 * 1 * 9 + 24 * 24 * 128 * 64 * 9 + 12 * 12 * 256 * 128 * 9
    dense = 4 * 256 * 200 + 200 * 4  # quadrant pooling leaves 2x2x256
    assert models.macs(model) == convs + dense


def test_an_unknown_arch_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown --arch 'vgg'.*edge"):
        models.build("vgg", 4)


SEVEN = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_keep_classes_cuts_the_head_to_the_wanted_rows_and_keeps_the_ranking() -> None:
    model = models.build("seed", len(SEVEN))
    wanted = ("angry", "happy", "sad", "neutral")
    cut = models.keep_classes(model, SEVEN, wanted)
    faces = random_faces(5).astype(np.float32)[..., None]
    full = np.asarray(model(faces, training=False))
    mine = np.asarray(cut(faces, training=False))
    rows = [SEVEN.index(c) for c in wanted]
    # A softmax over a subset of the logits is the full softmax renormalised over that subset.
    expected = full[:, rows] / full[:, rows].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-6)
    assert cut.output_shape == (None, 4) and cut.get_layer("scores").units == 4
    with pytest.raises(ValueError, match="no output for contempt"):
        models.keep_classes(model, SEVEN, ("happy", "contempt"))


def test_train_init_from_a_seven_class_run_keeps_its_four_rows(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:
    import json

    import training.train
    from tests.conftest import tiny_fer_csv

    data = tiny_fer_csv(tmp_path)
    pre = tmp_path / "seven"
    pre.mkdir()
    models.build("seed", len(SEVEN)).save(pre / "best.keras")
    (pre / "config.json").write_text(json.dumps({"classes": list(SEVEN)}))
    out = tmp_path / "four"
    args = ["--data", str(data), "--arch", "seed", "--epochs", "1", "--batch", "8",
            "--ferplus", "off", "--augment", "off", "--init", str(pre / "best.keras"),
            "--out", str(out)]  # fmt: skip
    assert training.train.main(args) == 0
    import keras

    assert keras.models.load_model(out / "last.keras").output_shape == (None, 4)
    assert (
        "cut its head from angry,disgust,fear,happy,sad,surprise,neutral to angry,happy,sad,neutral"
        in (out / "train.log").read_text()
    )

    # Without its run's config.json a seven-output model cannot say which rows are which.
    (pre / "config.json").unlink()
    assert training.train.main([*args[:-1], str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert f"--init {pre / 'best.keras'}: 7 outputs for 4 classes, and no config.json" in err
