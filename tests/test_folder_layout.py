"""Kaggle's image-folder FER2013 (train|test/<class>/*, no PublicTest/PrivateTest) end to end:
a fixed tenth of train held out to choose on, Kaggle's merged test reported; train, compare,
evaluate and convert all run on it and say which faces they used."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import desktop
from training import data as fer

pytestmark = desktop  # training/ and convert/ need TensorFlow

CLASSES = ("angry", "happy", "sad", "neutral")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fer_folders")
    rng = np.random.default_rng(7)
    for split, n in (("train", 40), ("test", 3)):
        for cls in CLASSES:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


def test_the_hold_out_is_a_fixed_tenth_of_train_chosen_by_pixels(tree: Path) -> None:
    faces = fer.load_fer2013(tree)
    assert fer.protocol_splits(faces) == (fer.HOLDOUT, "Test")
    held = faces.usage == fer.HOLDOUT
    assert (faces.usage == "Test").sum() == 12
    assert (held | (faces.usage == "Training")).sum() == 160
    assert np.bincount(faces.labels[held], minlength=7)[[0, 3, 4, 6]].tolist() == [4, 4, 4, 4]
    # The same faces whatever order or subset a tool loads: a function of the pixels alone.
    again = fer.load_fer2013(tree)
    assert (again.usage == faces.usage).all()


def test_train_compare_evaluate_and_convert_on_folders(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convert.convert
    import training.compare
    import training.evaluate
    import training.train

    for module in (training.evaluate, training.compare, convert.convert):
        monkeypatch.setattr(module, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(convert.convert, "peer_metrics", lambda *a: {})  # no PyPI needed here
    run = tmp_path / "run"
    assert training.train.main(["--data", str(tree), "--arch", "edge_small", "--epochs", "1",
                                "--batch", "16", "--ferplus", "off", "--augment", "off",
                                "--out", str(run)]) == 0  # fmt: skip
    faces = fer.load_fer2013(tree)
    config = json.loads((run / "config.json").read_text())
    assert config["n_val"] == int((faces.usage == fer.HOLDOUT).sum())

    out = tmp_path / "compare.json"
    assert training.compare.main([str(run), str(run), "--data", str(tree), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["split"] == fer.HOLDOUT

    ev = tmp_path / "eval"
    model = run / "best.keras"
    assert (
        training.evaluate.main([str(model), "--data", str(tree), "--no-peer", "--out", str(ev)])
        == 0
    )
    assert set(json.loads((ev / "report.json").read_text())["models"][str(model)]) == {
        fer.HOLDOUT,
        "Test",
    }

    tflite = tmp_path / "m.tflite"
    assert convert.convert.main([str(model), "--data", str(tree), "--out", str(tflite),
                                 "--calibration-faces", "20", "--latency-repeats", "5",
                                 "--flip-average", "off"]) == 0  # fmt: skip
    card = json.loads(tflite.with_suffix(".json").read_text())
    assert card["training"]["splits"] == {
        "train": "Training",
        "choose": fer.HOLDOUT,
        "report": "Test",
    }
    assert set(card["metrics"]) == {fer.HOLDOUT, "Test"}
    assert card["headline"]["split"] == "Test" and card["headline"]["faces"] == 12
    assert card["conditions"]["split"] == "Test"
    # What it was converted from and with are fields of the card (training/evaluate.py reads them).
    assert card["source_model"] == str(model) and card["settings"]["calibration_faces"] == 20
    assert card["settings"]["out"] == str(tflite) and card["settings"]["flip_average"] == "off"
    from training.evaluate import shipped_models

    assert shipped_models(tflite) == [tflite, model]
