"""Paired comparison of candidates on PublicTest (training/compare.py) on a tiny data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moodcam.labels import FER2013_CLASSES
from tests.conftest import constant_model, tiny_fer_csv
from training.compare import curve_summary, mcnemar_p, paired


def test_mcnemar_exact_p() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 5) == 1.0  # an even split is capped at 1, not 2 * P(X <= 5)
    # 1 against 9: two-sided binomial tail 2 * (C(10,0) + C(10,1)) / 2**10
    assert mcnemar_p(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_p(9, 1) == mcnemar_p(1, 9)
    assert mcnemar_p(0, 7) == pytest.approx(2 / 128)


def test_paired_counts_only_the_faces_one_model_gets_right() -> None:
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 1], bool)
    got = paired(a, b)
    assert got["only_candidate_right"] == 2 and got["only_baseline_right"] == 1
    assert got["difference_points"] == 12.5
    assert got["mcnemar_p"] == 1.0


def test_curve_summary_keeps_the_later_row_of_a_resumed_epoch(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    accs = [0.70, 0.74, 0.72, 0.73, 0.71, 0.72]
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    rows += [f"{e},0.9,0.5,{a},0.8" for e, a in enumerate(accs)]
    rows.append("5,0.9,0.5,0.75,0.8")  # epoch 6 again after a resume, now 75 %
    history.write_text("\n".join(rows) + "\n")
    got = curve_summary(history)
    assert got == {"epochs": 6, "best": 75.0, "best_epoch": 6, "last": 75.0,
                   "last5_mean": round((74 + 72 + 73 + 71 + 75) / 5, 2)}  # fmt: skip


def test_compare_runs_and_model_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.compare

    monkeypatch.setattr(training.compare, "CACHE_DIR", tmp_path / "cache")
    data = tiny_fer_csv(tmp_path)  # PublicTest: 8 happy faces, one angry, one sad, one neutral
    run = tmp_path / "run"
    run.mkdir()
    constant_model(0).save(run / "best.keras")  # always angry: right on 1 of 11
    (run / "history.csv").write_text("epoch,val_accuracy\n0,0.05\n1,0.0909\n")
    happy = tmp_path / "happy.keras"
    constant_model(1).save(happy)  # always happy: right on 8 of 11
    out = tmp_path / "cmp.json"

    assert training.compare.main([str(run), str(happy), "--data", str(data),
                                  "--json", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["faces"] == 11 and report["baseline"] == str(run)
    base, cand = report["models"][str(run)], report["models"][str(happy)]
    assert base["accuracy"] == round(100 / 11, 2) and base["curve"]["best_epoch"] == 2
    assert "paired_vs_baseline" not in base and "curve" not in cand
    assert cand["accuracy"] == round(800 / 11, 2)
    assert cand["paired_vs_baseline"] == {
        "only_candidate_right": 8, "only_baseline_right": 1,
        "difference_points": round(700 / 11, 2), "mcnemar_p": round(20 / 512, 3),
    }  # fmt: skip
    assert "McNemar p 0.039" in capsys.readouterr().out


def test_compare_scores_a_tflite_through_the_device_runtime(tmp_path: Path) -> None:
    import training.compare

    data = tiny_fer_csv(tmp_path)
    happy = tmp_path / "happy.keras"
    constant_model(1).save(happy)
    shipped = Path(__file__).resolve().parent.parent / "models" / "moodcam.tflite"
    out = tmp_path / "cmp.json"
    assert training.compare.main([str(happy), str(shipped), "--data", str(data),
                                  "--json", str(out)]) == 0  # fmt: skip
    got = json.loads(out.read_text())["models"][str(shipped)]
    q = got["paired_vs_baseline"]
    # 11 faces: the counts of faces only one model gets right carry the accuracy difference
    right = round(got["accuracy"] * 11 / 100)
    assert right - 8 == q["only_candidate_right"] - q["only_baseline_right"]


def test_compare_refuses_a_folder_without_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.compare

    data = tiny_fer_csv(tmp_path)
    (tmp_path / "empty").mkdir()
    happy = tmp_path / "happy.keras"
    constant_model(1).save(happy)
    assert training.compare.main([str(happy), str(tmp_path / "empty"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty/best.keras: no such model" in err


def test_compare_refuses_a_model_of_other_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.compare
    from tests.conftest import tiny_model

    data = tiny_fer_csv(tmp_path)
    happy = tmp_path / "happy.keras"
    constant_model(1).save(happy)
    seven = tmp_path / "seven"  # a seven-class run: scoring it on four-class labels is meaningless
    seven.mkdir()
    tiny_model(n_out=7).save(seven / "best.keras")
    (seven / "config.json").write_text(json.dumps({"classes": list(FER2013_CLASSES)}))
    wide = tmp_path / "wide.keras"  # no config.json: the output width gives it away
    tiny_model(n_out=7).save(wide)
    for other in (seven, wide):
        assert training.compare.main([str(happy), str(other), "--data", str(data)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not in angry,happy,sad,neutral (--classes)" in err
