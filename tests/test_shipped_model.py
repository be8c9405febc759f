"""The shipped model against its card and its promises, re-measured on real FER2013."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from moodcam.card import labels_seal
from moodcam.classifier import Classifier

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "moodcam.tflite"
CARD = json.loads((ROOT / "models" / "moodcam.json").read_text())


def test_card_describes_this_file():
    data = MODEL.read_bytes()
    assert CARD["model_bytes"] == len(data)
    assert CARD["model_sha256"] == hashlib.sha256(data).hexdigest()
    # The labels' seal (moodcam.card): over that digest and the labels in output order.
    assert CARD["labels_sha256"] == labels_seal(CARD["model_sha256"], CARD["labels"])
    clf = Classifier(MODEL)  # refuses a model whose tensors or labels differ from the card
    assert list(clf.labels) == CARD["labels"]
    assert CARD["input"]["dtype"] == "int8" and CARD["output"]["dtype"] == "int8"


def test_card_is_complete_and_consistent():
    m = CARD["metrics"]
    assert CARD["headline"]["int8_privatetest_accuracy"] == m["PrivateTest"]["int8"]["accuracy"]
    assert CARD["headline"]["faces"] == m["PrivateTest"]["int8"]["n"]
    for split in ("PublicTest", "PrivateTest"):
        for kind in ("float", "int8"):
            conf = m[split][kind]["confusion"]
            assert sum(map(sum, conf)) == m[split][kind]["n"]
    t = CARD["training"]
    assert t["splits"] == {"train": "Training", "choose": "PublicTest", "report": "PrivateTest"}
    assert set(t["rows_dropped_from_training"]) >= {"blank", "duplicate_of_test_face"}
    # Why each rule dropped faces: the rules' own text, with no count typed into it.
    from training.data import DROP_REASONS

    assert t["rows_dropped_reasons"] == {
        r: DROP_REASONS[r] for r in t["rows_dropped_from_training"]
    }
    assert CARD["command"].startswith("python -m convert.convert")
    assert CARD["latency"]["median_invoke_ms"] > 0


def test_model_file_is_at_most_1_mb():
    assert MODEL.stat().st_size <= 1_000_000


def test_the_data_here_is_the_file_the_card_was_measured_on(fer2013):
    """The digest is of the file's bytes: only the same packaging (here the Kaggle CSV, gzipped
    as shared/data holds it) can be compared; another (a plain CSV, the image folders) is not
    wrong, just not this file, and the re-measure below still checks the figures on it."""
    name = Path(fer2013.source).name
    if name != CARD["training"]["data_file"]:
        pytest.skip(f"FER2013 here is {name}, the card's is {CARD['training']['data_file']}")
    assert fer2013.sha256 == CARD["training"]["data_sha256"], fer2013.source


def test_shipped_model_re_measured_on_privatetest_equals_its_card(shipped_privatetest):
    card, measured = shipped_privatetest
    claimed = card["metrics"]["PrivateTest"]["int8"]
    assert measured["n"] == claimed["n"] == 2590
    assert measured["accuracy"] == pytest.approx(claimed["accuracy"], abs=0.1)
    for label, value in claimed["per_class"].items():
        assert measured["per_class"][label] == pytest.approx(value, abs=0.1)
    # With FER+ votes beside FER2013 (as in CI), the card's label-noise split is re-measured too.
    if "by_ferplus_agreement" in measured:
        for part, figures in measured["by_ferplus_agreement"].items():
            assert claimed["by_ferplus_agreement"][part]["n"] == figures["n"]
            assert claimed["by_ferplus_agreement"][part]["accuracy"] == pytest.approx(
                figures["accuracy"], abs=0.1
            )


def test_readme_figures_are_the_generated_ones():
    from convert.figures import END, START, _load, exposure_line, extras, render

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(START) : readme.index(END) + len(END)]
    assert block == render(
        CARD, _load(ROOT / "bench" / "results.json"), exposure_line(), extras()
    ), "run: python -m convert.figures"
