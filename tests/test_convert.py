"""Conversion of a tiny Keras model to int8 in/out, its card, and the device refusing bad models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from moodcam.classifier import Classifier
from moodcam.errors import ModelError
from tests.conftest import desktop, random_faces, tiny_model

pytestmark = desktop  # training/ and convert/ need TensorFlow

CLASSES = ("angry", "happy", "sad", "neutral")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from convert.convert import write_model

    out = tmp_path_factory.mktemp("model") / "tiny.tflite"
    model = tiny_model()
    card = write_model(model, CLASSES, random_faces(64), out, margin=(0.05, 10))
    return model, out, card


def test_int8_in_and_out(converted):
    from moodcam.runtime import load_interpreter

    _, path, card = converted
    interp, _ = load_interpreter(str(path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert list(inp["shape"]) == [1, 48, 48, 1]
    # The Rescaling(1/255) layer is folded into the input scale: int8 = pixel - 128.
    assert inp["quantization"][0] == pytest.approx(1.0, rel=0.02)
    assert card["input"]["dtype"] == "int8" and card["output"]["dtype"] == "int8"
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert not any("BATCH_NORM" in op for op in ops), ops  # batch norm folded into the conv


def test_card_matches_tflite(converted):
    _, path, card = converted
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk == card
    assert card["labels"] == list(CLASSES)
    assert card["model_bytes"] == path.stat().st_size
    assert card["preprocessing"]["crop_margin"] == 0.05
    clf = Classifier(path)
    assert clf.labels == CLASSES and clf.margin == 0.05


def test_int8_agrees_with_float(converted):
    model, path, _ = converted
    faces = random_faces(200, seed=1)
    from training.evaluate import predict_keras, predict_tflite

    f, q = predict_keras(model, faces), predict_tflite(path, faces)
    assert np.abs(f - q).max() < 0.05
    assert (f.argmax(1) == q.argmax(1)).mean() > 0.9


def test_classifier_accepts_any_face_size(converted):
    _, path, _ = converted
    clf = Classifier(path)
    for shape in [(48, 48), (200, 160), (20, 20), (90, 90, 3), (64, 64, 4)]:
        label, scores = clf.classify(np.full(shape, 100, np.uint8))
        assert label in CLASSES and sum(scores.values()) == pytest.approx(1.0, abs=1e-3)


def copy_model(converted, tmp_path: Path) -> tuple[Path, Path]:
    _, path, _ = converted
    model = tmp_path / "m.tflite"
    shutil.copy(path, model)
    shutil.copy(path.with_suffix(".json"), model.with_suffix(".json"))
    return model, model.with_suffix(".json")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c["input"].update(scale=0.5), "input scale"),
        (lambda c: c["input"].update(shape=[1, 64, 64, 1]), "input shape"),
        (lambda c: c["output"].update(dtype="float32"), "output dtype"),
        (lambda c: c.update(labels=["angry", "happy", "sad"]), "3 labels"),
    ],
)
def test_card_mismatch_names_both_files(converted, tmp_path, edit, fragment):
    model, card_path = copy_model(converted, tmp_path)
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as err:
        Classifier(model)
    assert str(model) in str(err.value) and str(card_path) in str(err.value)
    assert fragment in str(err.value)


def test_bad_labels_in_card(converted, tmp_path):
    model, card_path = copy_model(converted, tmp_path)
    card = json.loads(card_path.read_text())
    card["labels"] = ["angry", "happy", "sad", "bored"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="labels must be a list of FER2013 class names"):
        Classifier(model)


@pytest.mark.parametrize("damage", ["missing", "truncated", "random", "empty"])
def test_bad_model_files_are_refused_naming_the_file(converted, tmp_path, damage):
    model, _ = copy_model(converted, tmp_path)
    data = model.read_bytes()
    if damage == "missing":
        model.unlink()
    elif damage == "truncated":
        model.write_bytes(data[: len(data) // 3])
    elif damage == "random":
        model.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:
        model.write_bytes(b"")
    with pytest.raises(ModelError) as err:
        Classifier(model)
    assert str(model) in str(err.value)


def test_valid_tflite_of_the_wrong_shape(converted, tmp_path):
    """A real model with 3 outputs and 64x64 input, under a card written for the 4-class model."""
    from convert.convert import write_model

    other = tmp_path / "other.tflite"
    faces64 = np.random.default_rng(2).integers(0, 256, (8, 64, 64), dtype=np.uint8)
    write_model(tiny_model(n_out=3, size=64), CLASSES[:3], faces64, other)
    _, card_path = copy_model(converted, tmp_path)
    other.with_suffix(".json").write_text(card_path.read_text())
    with pytest.raises(ModelError, match="does not match its card"):
        Classifier(other)


def test_missing_card(converted, tmp_path):
    model, card_path = copy_model(converted, tmp_path)
    card_path.unlink()
    with pytest.raises(ModelError, match="model card not found"):
        Classifier(model)


def test_the_flip_average_must_earn_its_second_pass() -> None:
    from convert.convert import choose_inference

    assert choose_inference({"plain": 74.22, "flip_average": 74.45}, 0.5) == "plain"
    assert choose_inference({"plain": 72.69, "flip_average": 73.57}, 0.5) == "flip_average"
    assert choose_inference({"plain": 73.0, "flip_average": 73.5}, 0.5) == "flip_average"
    assert choose_inference({"plain": 74.0, "flip_average": 73.0}, 0.0) == "plain"
    assert choose_inference({"plain": 74.0, "flip_average": 74.0}, 0.0) == "flip_average"
    assert choose_inference({"flip_average": 70.0}) == "flip_average"  # --flip-average on
    assert choose_inference({"plain": 70.0}) == "plain"  # --flip-average off
