"""`python -m training.evaluate` end to end on a tiny FER2013 with FER+ votes beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import constant_model, desktop, tiny_fer_csv, write_ferplus

# FER+ vote rows (FERPLUS_VOTE_COLUMNS order) for the tiny CSV's PublicTest faces.
AGREE_HAPPY = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]
NEUTRAL = [9, 1, 0, 0, 0, 0, 0, 0, 0, 0]
ANGER = [1, 0, 0, 0, 9, 0, 0, 0, 0, 0]
NOT_A_FACE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]


@desktop
@pytest.mark.parametrize("with_votes", [True, False])
def test_accuracy_split_by_ferplus_agreement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_votes: bool
) -> None:
    import training.evaluate

    monkeypatch.setattr(training.evaluate, "CACHE_DIR", tmp_path / "cache")
    tiny_fer_csv(tmp_path)  # PublicTest: 8 happy, then angry, sad, neutral
    if with_votes:
        public = [AGREE_HAPPY] * 6 + [NEUTRAL] * 2 + [ANGER, NEUTRAL, NOT_A_FACE]
        write_ferplus(
            tmp_path / "fer2013new.csv",
            ["Training"] * 16 + ["PublicTest"] * 11,
            [[0] * 10] * 16 + public,
        )
    model = tmp_path / "happy.keras"
    constant_model(1).save(model)
    out = tmp_path / "eval"
    rc = training.evaluate.main(
        [str(model), "--data", str(tmp_path), "--no-peer", "--out", str(out)]
    )
    assert rc == 0
    result = json.loads((out / "report.json").read_text())["models"][str(model)]["PublicTest"]
    assert result["accuracy"] == round(800 / 11, 2)
    if not with_votes:
        assert "by_ferplus_agreement" not in result
        return
    # Raters share the label of 6 happy faces and the angry one; the constant "happy" model is
    # right on 6 of those 7, and on 2 of the 4 disputed faces (2 happy voted neutral, sad voted
    # neutral, neutral not a face).
    assert result["by_ferplus_agreement"] == {
        "agree": {"n": 7, "accuracy": round(600 / 7, 2)},
        "disputed": {"n": 4, "accuracy": 50.0},
    }


def test_shipped_models_pairs_the_card_with_the_float_model_it_was_converted_from(
    tmp_path: Path,
) -> None:
    from training.evaluate import shipped_models

    tflite, keras_model = tmp_path / "moodcam.tflite", tmp_path / "run" / "best.keras"
    tflite.write_bytes(b"")
    card = tflite.with_suffix(".json")
    card.write_text(json.dumps({"source_model": str(keras_model)}))
    assert shipped_models(tflite) == [tflite]  # the run folder is not on this machine
    keras_model.parent.mkdir()
    keras_model.write_bytes(b"")
    assert shipped_models(tflite) == [tflite, keras_model]
    card.write_text(json.dumps({"command": "python -m convert.convert --out x.tflite"}))
    assert shipped_models(tflite) == [tflite]  # a card without source_model names no model


def test_the_shipped_card_names_a_float_model() -> None:
    card = json.loads((Path(__file__).parent.parent / "models" / "moodcam.json").read_text())
    source = Path(card["source_model"])
    assert source.suffix == ".keras" and str(source) in card["command"]


def test_the_off_centre_condition_moves_and_rescales_the_face_reproducibly() -> None:
    from training.evaluate import CONDITIONS, _off_centre

    face = np.zeros((48, 48), np.uint8)
    face[20:28, 20:28] = 255  # a bright square at the centre
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(_off_centre(face, rng, 0, 0), face)
    moved = _off_centre(face, np.random.default_rng(1), 3, 0.08)
    assert moved.shape == face.shape and moved.dtype == np.uint8
    ys, xs = np.nonzero(moved > 127)
    assert 0 < abs(ys.mean() - 23.5) + abs(xs.mean() - 23.5) <= 2 * 3 + 1  # moved, not far
    again = CONDITIONS["off-centre crop (3 px, 8 %)"](face, np.random.default_rng(1))
    np.testing.assert_array_equal(again, moved)


@desktop
def test_a_model_of_other_classes_or_order_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.evaluate

    monkeypatch.setattr(training.evaluate, "CACHE_DIR", tmp_path / "cache")
    tiny_fer_csv(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    constant_model(1).save(run / "best.keras")
    # Trained with the same four classes in another order: every figure would be scrambled.
    (run / "config.json").write_text(json.dumps({"classes": ["happy", "angry", "sad", "neutral"]}))
    args = [
        str(run / "best.keras"),
        "--data",
        str(tmp_path),
        "--no-peer",
        "--out",
        str(tmp_path / "e"),
    ]
    assert training.evaluate.main(args) == 2
    assert (
        "answers in happy,angry,sad,neutral, not in angry,happy,sad,neutral"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "e" / "report.json").exists()
