"""training.recover: an int8 model read back into Keras computes what it computed, and trains on
from there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moodcam.errors import ModelError
from tests.conftest import desktop, random_faces, tiny_model

pytestmark = desktop  # training/ and convert/ need TensorFlow

CLASSES = ("angry", "happy", "sad", "neutral")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny conv-BN model with batch norm far from identity, converted to int8."""
    from convert.convert import write_model

    model = tiny_model()
    bn = model.layers[3]
    rng = np.random.default_rng(3)
    gamma, beta, mean, var = (np.asarray(w) for w in bn.get_weights())
    bn.set_weights([
        rng.uniform(0.5, 2.0, gamma.shape), rng.normal(0, 0.5, beta.shape),
        rng.normal(0, 0.3, mean.shape), rng.uniform(0.05, 0.5, var.shape),
    ])  # fmt: skip
    out = tmp_path_factory.mktemp("model") / "tiny.tflite"
    write_model(model, CLASSES, random_faces(64), out, margin=(0.05, 10))
    return model, out


def test_recovered_model_computes_the_int8_models_function(converted):
    from training.evaluate import predict_keras, predict_tflite
    from training.recover import recover

    original, path = converted
    faces = random_faces(300, seed=5)
    recovered = recover(path, tiny_model(), random_faces(256, seed=6))
    got = predict_keras(recovered, faces)
    # Within int8's rounding of the original float model (the weights went through int8).
    assert np.abs(got - predict_keras(original, faces)).max() < 0.05
    assert np.abs(got - predict_tflite(path, faces)).max() < 0.05


def test_training_mode_starts_where_the_model_is(converted):
    """Batch statistics of the faces the norms were re-expanded on cancel out: the first training
    step sees the recovered function, not every channel re-normalised."""
    import keras

    from training.recover import recover

    _, path = converted
    bn_faces = random_faces(256, seed=6)
    recovered = recover(path, tiny_model(), bn_faces)
    x = bn_faces[..., None].astype(np.float32)
    infer = np.asarray(recovered(x, training=False))
    train = np.asarray(recovered(x, training=True))
    assert np.abs(train - infer).max() < 1e-3
    # What a batch norm left at identity (plus the conv's bias) does in training mode instead.
    naive = keras.models.clone_model(recovered)
    naive.set_weights(recovered.get_weights())
    bn = naive.layers[3]
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([np.ones_like(gamma), beta - mean, np.zeros_like(mean), var])
    assert np.abs(np.asarray(naive(x, training=True)) - infer).max() > 0.01


def test_another_layout_is_refused(converted):
    from training.recover import recover

    _, path = converted
    with pytest.raises(ModelError, match=r"1 convs .* but .* has 2"):
        recover(path, _two_conv_model(), random_faces(8))


def _two_conv_model():
    import keras
    from keras import layers

    inp = keras.Input((48, 48, 1))
    x = layers.Rescaling(1 / 255)(inp)
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(4, activation="softmax")(x))


def test_shipped_model_recovers_to_its_cards_float_accuracy(fer2013):
    """The shipped file, read back into its card's architecture, scores on PublicTest what its
    card says the float model it was converted from scored (within 0.1 point)."""
    from training import data as fer
    from training.models import build
    from training.recover import recover
    from training.swa import accuracy

    card = json.loads((ROOT / "models" / "moodcam.json").read_text())
    classes = tuple(card["labels"])
    faces, y = fer.select_classes(fer.clean_training(fer2013), classes)
    train = faces.images[faces.usage == "Training"]
    model = recover(
        ROOT / "models" / "moodcam.tflite",
        build(card["architecture"]["name"], len(classes)),
        train[:: max(1, len(train) // 1024)],
    )
    val = faces.usage == "PublicTest"
    got = accuracy(model, faces.images[val], y[val])
    assert got == pytest.approx(card["metrics"]["PublicTest"]["float"]["accuracy"], abs=0.1)


def test_no_faces_for_the_batch_norms_is_refused(converted) -> None:
    from training.recover import recover

    _, path = converted
    with pytest.raises(ModelError, match="no faces"):
        recover(path, tiny_model(), random_faces(0))


def test_bn_faces_below_one_is_a_usage_error(tmp_path: Path, capsys) -> None:
    from training.recover import main

    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "m.tflite"), "--out", str(tmp_path / "run"), "--bn-faces", "0"])
    assert stop.value.code == 2
    assert "--bn-faces: must be at least 1, got 0" in capsys.readouterr().err


def test_an_out_that_cannot_be_a_folder_stops_before_any_work(tmp_path: Path, capsys) -> None:
    from training.recover import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([str(tmp_path / "m.tflite"), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --out {blocker}:")


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    """A FER2013 CSV of three splits and a one-epoch edge_small run trained on it."""
    import training.train
    from tests.conftest import pixels, write_csv

    root = tmp_path_factory.mktemp("stage")
    fer_labels = (0, 3, 4, 6)  # angry, happy, sad, neutral
    rows = [[fer_labels[i % 4], pixels(i), "Training"] for i in range(64)]
    rows += [[fer_labels[i % 4], pixels(1000 + i), "PublicTest"] for i in range(12)]
    rows += [[fer_labels[i % 4], pixels(2000 + i), "PrivateTest"] for i in range(12)]
    csv_path = write_csv(root / "fer2013.csv", rows)
    run = root / "run"
    assert training.train.main(["--data", str(csv_path), "--arch", "edge_small", "--epochs", "1",
                                "--batch", "16", "--ferplus", "off", "--augment", "off",
                                "--out", str(run)]) == 0  # fmt: skip
    return csv_path, run


def test_a_stage_model_has_publictest_alone_and_recovers(stage_run, tmp_path, monkeypatch):
    """`convert --stage` keeps an unshipped model for a later session: its card has the run and
    PublicTest, PrivateTest is never evaluated, and training.recover reads it back."""
    import convert.convert
    from training.recover import main as recover_main

    csv_path, run = stage_run
    real_eval_sets = convert.convert.eval_sets

    def public_only(*args, **kwargs):
        sets = real_eval_sets(*args, **kwargs)
        return {k: v for k, v in sets.items() if k != "PrivateTest"}  # reading it is a KeyError

    def no_peer(*args, **kwargs):
        raise AssertionError("a stage model is not compared with the peer")

    monkeypatch.setattr(convert.convert, "eval_sets", public_only)
    monkeypatch.setattr(convert.convert, "peer_metrics", no_peer)
    monkeypatch.setattr(convert.convert, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "stages" / "b1.tflite"
    assert convert.convert.main([str(run / "best.keras"), "--stage", "--data", str(csv_path),
                                 "--out", str(out), "--calibration-faces", "16"]) == 0  # fmt: skip
    card = json.loads(out.with_suffix(".json").read_text())
    assert set(card["metrics"]) == {"PublicTest"}
    assert card["metrics"]["PublicTest"]["int8"]["n"] == 12
    assert "headline" not in card and "peer" not in card and "PrivateTest" in card["stage"]
    assert card["architecture"]["name"] == "edge_small"
    assert card["training"]["run"]["augment"] == "off"

    recovered = tmp_path / "recovered"
    assert recover_main([str(out), "--out", str(recovered), "--data", str(csv_path),
                         "--bn-faces", "32"]) == 0  # fmt: skip
    report = json.loads((recovered / "recover.json").read_text())
    assert report["card_int8_accuracy"] == card["metrics"]["PublicTest"]["int8"]["accuracy"]
    assert json.loads((recovered / "config.json").read_text())["arch"] == "edge_small"


@pytest.mark.parametrize("extra", [[], ["--flip-average", "on", "--out", "x.tflite"]])
def test_a_stage_model_never_replaces_the_shipped_one(extra, capsys):
    import convert.convert

    with pytest.raises(SystemExit) as stop:
        convert.convert.main(["runs/x/best.keras", "--stage", *extra])
    assert stop.value.code == 2
    assert "--stage" in capsys.readouterr().err
