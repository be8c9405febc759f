"""Shared fixtures. Slow things (FER2013, the shipped model's evaluation) happen once per run."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# On a Pi `make test` installs the device role, which has no TensorFlow: the tests of training/
# and convert/ cannot run there, and say so (skip reason, and a line under the summary for the
# modules that cannot even be imported) rather than fail or pass unseen.
DESKTOP = importlib.util.find_spec("keras") is not None
DESKTOP_ONLY = (
    "needs the desktop role (TensorFlow, which `make setup` installs off the Pi); "
    "this machine has the device role"
)
desktop = pytest.mark.skipif(not DESKTOP, reason=DESKTOP_ONLY)
DESKTOP_MODULES = ["test_callbacks.py", "test_compare.py", "test_distill.py", "test_models.py"]
collect_ignore = [] if DESKTOP else DESKTOP_MODULES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not DESKTOP:
        terminalreporter.write_line(
            f"not collected: {', '.join(DESKTOP_MODULES)}: {DESKTOP_ONLY}", yellow=True
        )


@pytest.fixture(scope="session")
def fer2013():
    """The real FER2013 (cleaned), loaded once; tests that need it say so when it is absent."""
    from training import data as fer

    root = fer.data_dir()
    try:
        path = fer.find_fer2013(root)
    except fer.DataError as e:
        pytest.skip(f"FER2013 is not available ({e}); set MOODCAM_DATA to the shared/data folder")
    return fer.load_fer2013(path, cache_dir=ROOT / ".cache")


@pytest.fixture(scope="session")
def shipped_privatetest(fer2013):
    """The shipped int8 model's PrivateTest predictions, computed once for every test that needs them."""

    from training import data as fer
    from training.evaluate import eval_sets, metrics, predict_tflite

    card = json.loads((ROOT / "models" / "moodcam.json").read_text())
    classes = tuple(card["labels"])
    x, y, agree = eval_sets(fer2013, classes, fer.find_ferplus(fer.data_dir()))["PrivateTest"]
    probs = predict_tflite(ROOT / "models" / "moodcam.tflite", x)
    return card, metrics(y, probs, classes, agree)


def random_faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


# A clutter background on which full-frame Haar (1.1, 5), the detector's full detection, finds
# no false face (seeds 2, 5 and 9 each hold one): the scenes below are about the pipeline.
CLEAN_SEED = 6


def confident_scenes(classifier, box: tuple[int, int, int, int],
                     seed: int = CLEAN_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """label -> (face, scene) for the bundled fixture faces that, pasted into a scene at `box`,
    the detector finds there and `classifier` labels with a score above 0.5 (the first face per
    label). Tests that need two moods pick from this, so they check the pipeline's timing and
    plumbing whatever the shipped model's accuracy."""
    import cv2

    from demo.scenes import iou, load_faces, make_scene
    from moodcam.detector import FaceDetector
    from moodcam.preprocess import crop_face

    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _, face in load_faces():
        scene = make_scene([(face, box)], seed=seed)
        gray = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
        found = FaceDetector().detect(gray)
        if len(found) != 1 or iou(found[0], box) < 0.5:
            continue
        label, scores = classifier.classify(crop_face(gray, found[0], classifier.margin))
        if label not in seen and max(scores.values()) > 0.5:
            seen[label] = (face, scene)
    return seen


# Tiny FER2013 files for the loader tests, tiny models and runs for the training tests.
HEADER = ["emotion", "pixels", "Usage"]


def pixels(seed: int, value: int | None = None) -> str:
    rng = np.random.default_rng(seed)
    px = np.full(2304, value) if value is not None else rng.integers(0, 256, 2304)
    return " ".join(map(str, px))


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER, gz: bool = False) -> Path:
    with gzip.open(path, "wt", newline="") if gz else open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_ferplus(path: Path, usages: list[str], votes: list[list[int]]) -> Path:
    """fer2013new.csv: one row of votes (FERPLUS_VOTE_COLUMNS order) per FER2013 row."""
    from training.data import FERPLUS_VOTE_COLUMNS

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *FERPLUS_VOTE_COLUMNS])
        for i, (u, v) in enumerate(zip(usages, votes, strict=False)):
            w.writerow([u, f"fer{i:07d}.png", *v])
    return path


def tiny_model(n_out: int = 4, size: int = 48):
    """A conv net small enough to train, average and convert in seconds (seeded)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 1))
    x = layers.Rescaling(1 / 255)(inp)
    x = layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(n_out, activation="softmax")(x))


def constant_model(label_index: int):
    """The tiny model made to answer `label_index` for every face."""
    model = tiny_model()
    dense = model.layers[-1]
    bias = np.zeros(4, np.float32)
    bias[label_index] = 10.0
    dense.set_weights([np.zeros_like(dense.get_weights()[0]), bias])
    return model


def tiny_fer_csv(tmp_path: Path) -> Path:
    """A tiny FER2013 CSV. PublicTest: 8 happy faces (FER2013 label 3; index 1 of angry, happy,
    sad, neutral) and 1 of each other class, so a model that always says happy scores 8/11 and one
    that always says angry 1/11."""
    rows = [[[0, 3, 4, 6][i % 4], pixels(i), "Training"] for i in range(16)]
    rows += [[label, pixels(100 + i), "PublicTest"] for i, label in enumerate([3] * 8 + [0, 4, 6])]
    return write_csv(tmp_path / "fer2013.csv", rows)


def write_run_config(run: Path) -> None:
    """The config.json training.swa reads: the four classes, trained without augmentation."""
    (run / "config.json").write_text(
        json.dumps({"classes": ["angry", "happy", "sad", "neutral"], "augment": "off"})
    )
