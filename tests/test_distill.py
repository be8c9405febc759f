"""Distillation from an ensemble of teachers (training/distill.py, train --teacher)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from moodcam.errors import ModelError
from moodcam.labels import FER2013_CLASSES
from tests.conftest import (
    constant_model,
    pixels,
    random_faces,
    tiny_fer_csv,
    tiny_model,
    write_csv,
    write_run_config,
)
from training.data import DataError
from training.distill import (
    OnlineTeacher,
    ensemble_predict,
    mix_targets,
    soften,
    teacher_targets,
)

CLASSES = ("angry", "happy", "sad", "neutral")


def test_soften_is_the_identity_at_t1_and_flattens_above() -> None:
    p = np.array([[0.7, 0.2, 0.05, 0.05], [0.25, 0.25, 0.25, 0.25]], np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, rtol=1e-5)
    hot = soften(p, 3.0)
    np.testing.assert_allclose(hot.sum(axis=1), 1.0, rtol=1e-6)
    assert hot[0].max() < p[0].max() and hot[0].argmax() == 0  # flatter, same winner
    np.testing.assert_allclose(hot[1], p[1], rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        soften(p, 0.0)


def test_mix_targets_weights_the_teacher() -> None:
    labels = np.eye(4, dtype=np.float32)[[0, 1]]
    teacher = np.full((2, 4), 0.25, np.float32)
    np.testing.assert_allclose(mix_targets(labels, teacher, 0.0), labels)
    np.testing.assert_allclose(mix_targets(labels, teacher, 1.0), teacher)
    mixed = mix_targets(labels, teacher, 0.4)
    np.testing.assert_allclose(mixed[0], [0.7, 0.1, 0.1, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="weight"):
        mix_targets(labels, teacher, 1.5)


def test_the_teacher_fills_the_share_a_teacher_only_face_has_no_label_for() -> None:
    teacher = np.array([[0.1, 0.2, 0.3, 0.4]] * 3, np.float32)
    # A labelled face, a teacher-only face (no label: zeros), and a 0.25/0.75 blend of the two.
    labels = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0.25, 0, 0]], np.float32)
    mixed = mix_targets(labels, teacher, 0.4)
    np.testing.assert_allclose(mixed[0], 0.6 * labels[0] + 0.4 * teacher[0], rtol=1e-6)
    np.testing.assert_allclose(mixed[1], teacher[1], rtol=1e-6)
    np.testing.assert_allclose(mixed[2], 0.15 * np.eye(4)[1] + 0.85 * teacher[2], rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode", ["fixed", "online"])
def test_teacher_only_faces_join_training_with_the_teachers_target_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """train --teacher-only-faces: the Training faces of disgust, fear and surprise join the feed
    with label targets of zeros, the teacher gives them their whole target, and the class counts
    and n_train stay those of the labelled faces."""
    import training.train

    feeds, data, teacher_run = _student_setup(tmp_path, monkeypatch)
    rows = list(csv.reader(data.open()))
    extra = [[label, pixels(200 + i), "Training"] for i, label in enumerate([1, 2, 2, 5, 5])]
    extra.append([2, pixels(300), "PublicTest"])  # left out: not Training
    write_csv(data, rows[1:] + extra)
    out = tmp_path / "student"
    args = ["--data", str(data), "--arch", "seed", "--epochs", "1", "--batch", "8",
            "--ferplus", "off", "--label-smoothing", "0", "--augment", "off",
            "--teacher", str(teacher_run / "best.keras"), "--teacher-mode", mode,
            "--teacher-weight", "0.5", "--teacher-temperature", "1", "--teacher-only-faces",
            "--out", str(out)]  # fmt: skip
    assert training.train.main(args) == 0
    (feed,) = feeds
    assert len(feed.x) == 16 + 5
    config = json.loads((out / "config.json").read_text())
    assert config["n_train"] == 16 and config["n_teacher_only"] == 5
    assert config["train_counts"] == [4, 4, 4, 4]
    if mode == "fixed":
        targets = feed.t
    else:  # online, targets exist batch by batch: gather them back into face order
        targets = np.concatenate([feed[i][1] for i in range(len(feed))])[np.argsort(feed.order)]
    labels = np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 4]  # tiny CSV: Training cycles a,h,s,n
    neutral = np.eye(4, dtype=np.float32)[[3] * 5]  # the teacher says neutral to every face
    np.testing.assert_allclose(targets[:16], 0.5 * labels + 0.5 * neutral[:1], atol=2e-3)
    np.testing.assert_allclose(targets[16:], neutral, atol=2e-3)  # the teacher's, whole
    assert "5 teacher-only faces" in (out / "train.log").read_text()


def test_ensemble_is_the_mean_of_its_members_on_both_views(tmp_path: Path) -> None:
    happy, angry = constant_model(1), constant_model(0)
    paths = [tmp_path / "happy.keras", tmp_path / "angry.keras"]
    happy.save(paths[0])
    angry.save(paths[1])
    faces = random_faces(5)
    got = ensemble_predict(paths, faces, CLASSES)
    x = faces[..., None].astype(np.float32)
    expected = sum(np.asarray(m.predict(v, verbose=0)) for m in (happy, angry)
                   for v in (x, x[:, :, ::-1])) / 4  # fmt: skip
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_teacher_targets_are_cached_and_recomputed_when_the_teacher_changes(
    tmp_path: Path,
) -> None:
    teacher = tmp_path / "t" / "best.keras"
    teacher.parent.mkdir()
    constant_model(1).save(teacher)
    faces = random_faces(6)
    first = teacher_targets([teacher], faces, CLASSES, 1.0, cache_dir=tmp_path)
    assert first.argmax(axis=1).tolist() == [1] * 6
    cached = tmp_path / "teacher.npy"
    np.save(cached, np.full((6, 4), 0.25, np.float32))  # marks the cache: a hit returns this
    np.testing.assert_allclose(teacher_targets([teacher], faces, CLASSES, 1.0, tmp_path), 0.25)
    constant_model(2).save(teacher)  # new teacher bytes: the key no longer matches
    again = teacher_targets([teacher], faces, CLASSES, 1.0, cache_dir=tmp_path)
    assert again.argmax(axis=1).tolist() == [2] * 6


def test_a_missing_teacher_or_one_with_other_classes_is_refused_by_name(tmp_path: Path) -> None:
    faces = random_faces(2)
    with pytest.raises(DataError, match=r"teacher .*nope\.keras: model not found"):
        teacher_targets([tmp_path / "nope.keras"], faces, CLASSES, 1.0, tmp_path)
    run = tmp_path / "seven"
    run.mkdir()
    constant_model(0).save(run / "best.keras")
    (run / "config.json").write_text(json.dumps({"classes": ["angry", "disgust", "fear"]}))
    with pytest.raises(ModelError, match=r"teacher .*seven/best\.keras: answers in angry,disg"):
        teacher_targets([run / "best.keras"], faces, CLASSES, 1.0, tmp_path)


def _student_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Records each batch feed that train builds; returns (feeds, a tiny FER2013 CSV, the run
    folder of a teacher that says neutral to every face)."""
    import training.feed
    import training.train

    feeds: list[training.feed.AugmentedFaces] = []

    class Recording(training.feed.AugmentedFaces):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            feeds.append(self)

    monkeypatch.setattr(training.feed, "AugmentedFaces", Recording)
    monkeypatch.setattr(training.train, "CACHE_DIR", tmp_path / "cache")
    teacher_run = tmp_path / "teacher"
    teacher_run.mkdir()
    write_run_config(teacher_run)
    constant_model(3).save(teacher_run / "best.keras")
    return feeds, tiny_fer_csv(tmp_path), teacher_run


def test_train_learns_from_the_teacher_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """train --teacher: the batches carry (1 - w) * label + w * teacher, the run logs it, and a
    teacher of another class set stops the run with exit 2 naming the teacher."""
    import training.train

    feeds, data, teacher_run = _student_setup(tmp_path, monkeypatch)
    out = tmp_path / "student"
    args = ["--data", str(data), "--arch", "seed", "--epochs", "1", "--batch", "8",
            "--ferplus", "off", "--label-smoothing", "0", "--augment", "off",
            "--teacher", str(teacher_run / "best.keras"), "--teacher-weight", "0.5",
            "--teacher-temperature", "1", "--out", str(out)]  # fmt: skip
    assert training.train.main(args) == 0
    (targets,) = [feed.t for feed in feeds]
    assert len(targets) == 16
    # Each target is half its one-hot label and half the teacher's (near one-hot) neutral.
    assert np.all(targets[:, 3] >= 0.5 - 1e-3)
    np.testing.assert_allclose(np.sort(targets, axis=1)[:, -2:].sum(axis=1), 1.0, atol=2e-3)
    log = (out / "train.log").read_text()
    assert "distilling from 1 teacher(s), weight 0.5, temperature 1.0" in log
    assert json.loads((out / "config.json").read_text())["teacher"] == [
        str(teacher_run / "best.keras")
    ]

    (teacher_run / "config.json").write_text(json.dumps({"classes": ["angry", "happy"]}))
    assert training.train.main([*args[:-1], str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert f"teacher {teacher_run / 'best.keras'}: answers in angry,happy, not in" in err


def test_the_online_teacher_is_the_softened_ensemble_and_refuses_bad_teachers(
    tmp_path: Path,
) -> None:
    paths = [tmp_path / "a.keras", tmp_path / "b.keras"]
    tiny_model().save(paths[0])  # random weights: its answer depends on the face
    constant_model(2).save(paths[1])
    faces = random_faces(6)
    x = faces[..., None].astype(np.float32)
    ensemble = ensemble_predict(paths, faces, CLASSES)
    np.testing.assert_allclose(OnlineTeacher(paths, CLASSES, 1.0)(x), ensemble, atol=1e-5)
    np.testing.assert_allclose(
        OnlineTeacher(paths, CLASSES, 2.0)(x), soften(ensemble, 2.0), atol=1e-5
    )
    with pytest.raises(DataError, match=r"teacher .*nope\.keras: model not found"):
        OnlineTeacher([tmp_path / "nope.keras"], CLASSES, 1.0)
    with pytest.raises(ModelError, match=r"teacher .*a\.keras: answers in 4 classes, not in"):
        OnlineTeacher(paths, ("angry", "happy"), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        OnlineTeacher(paths, CLASSES, 0.0)
    # Each member is checked, not only the first: a second of another width is named.
    tiny_model(n_out=3).save(paths[1])
    with pytest.raises(ModelError, match=r"teacher .*b\.keras: answers in 3 classes, not in"):
        OnlineTeacher(paths, CLASSES, 1.0)


def test_cached_teacher_targets_are_not_reused_for_another_class_set(tmp_path: Path) -> None:
    """A cache hit skips loading the teachers; it must not skip their class check."""
    teacher = tmp_path / "t.keras"
    constant_model(1).save(teacher)
    faces = random_faces(3)
    teacher_targets([teacher], faces, CLASSES, 1.0, cache_dir=tmp_path)
    with pytest.raises(ModelError, match=r"teacher .*t\.keras: answers in 4 classes, not in"):
        teacher_targets([teacher], faces, ("angry", "happy"), 1.0, cache_dir=tmp_path)


def test_an_online_teacher_scores_each_batch_as_augmented() -> None:
    """The feed hands the teacher the very faces of the batch (augmented), and mixes its answer
    into that batch's targets; the same face augmented anew gets a new answer."""
    from training.augment import PRESETS
    from training.feed import AugmentedFaces

    seen: list[np.ndarray] = []

    def brightness_teacher(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        bright = x.mean(axis=(1, 2, 3)) / 255.0
        return np.stack([bright, 1 - bright, 0 * bright, 0 * bright], axis=1).astype(np.float32)

    faces = random_faces(4)
    labels = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    feed = AugmentedFaces(faces, labels, 4, seed=3, augment=PRESETS["camera"],
                          teacher=brightness_teacher, teacher_weight=0.75)  # fmt: skip
    x, t = feed[0]
    np.testing.assert_array_equal(seen[-1], x)
    np.testing.assert_allclose(t, mix_targets(labels[feed.order], brightness_teacher(x), 0.75))
    feed.on_epoch_end()
    x2, t2 = feed[0]
    assert not np.array_equal(x2, x) and not np.allclose(t2, t)
    plain = AugmentedFaces(faces, labels, 4, seed=3, augment=PRESETS["camera"])
    np.testing.assert_array_equal(plain[0][1], labels[plain.order])  # no teacher: labels as given


def test_mixup_blends_faces_and_targets_alike_before_the_teacher_sees_them() -> None:
    from training.feed import AugmentedFaces

    # Four flat faces, one per class: a blend's pixel value tells which faces it mixed, and how.
    values = np.array([0, 60, 150, 240], np.float32)
    faces = np.broadcast_to(values.astype(np.uint8)[:, None, None], (4, 48, 48)).copy()
    labels = np.eye(4, dtype=np.float32)
    seen: list[np.ndarray] = []

    def recording_teacher(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        return np.full((len(x), 4), 0.25, np.float32)

    feed = AugmentedFaces(faces, labels, 4, seed=1, augment=None, mixup=0.4)
    x, t = feed[0]
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(x[:, 0, 0, 0], t @ values, rtol=1e-5, atol=1e-3)
    assert np.ptp(x, axis=(1, 2, 3)).max() == 0  # flat faces blend into flat faces
    assert np.sort(t, axis=1)[:, -2].max() > 0.01  # some face really was blended
    taught = AugmentedFaces(faces, labels, 4, seed=1, augment=None, mixup=0.4,
                            teacher=recording_teacher, teacher_weight=0.5)  # fmt: skip
    xt, tt = taught[0]
    np.testing.assert_array_equal(seen[-1], xt)  # the teacher scores the blends
    np.testing.assert_allclose(xt, x)
    np.testing.assert_allclose(tt, 0.5 * t + 0.125, rtol=1e-6)


def test_the_card_names_each_teacher_with_its_run(tmp_path: Path) -> None:
    from convert.convert import teacher_summaries

    run = tmp_path / "ft-s2"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"arch": "edge", "seed": 2, "lr": 0.001}))
    (run / "state.json").write_text(json.dumps({"best_epoch": 19, "best_val_accuracy": 0.74142}))
    student_cfg = {"teacher": [str(run / "best.keras")], "teacher_weight": 0.8}
    assert teacher_summaries(student_cfg) == [
        {
            "model": str(run / "best.keras"),
            "run": {"arch": "edge", "lr": 0.001, "seed": 2},
            "best_epoch": 19,
            "publictest_float_accuracy": 74.14,
        }
    ]
    assert teacher_summaries({}) == []


def test_the_card_names_a_recovered_teacher_and_the_file_it_came_from(tmp_path: Path) -> None:
    """A model read back from an int8 file (make recover) has no epochs: the card takes its
    accuracy from recover.json and says which file it was."""
    from convert.convert import teacher_summaries

    run = tmp_path / "shipped"
    run.mkdir()
    origin = {"model": "models/moodcam.tflite", "sha256": "e90a"}
    (run / "config.json").write_text(json.dumps({"arch": "edge", "recovered_from": origin}))
    (run / "recover.json").write_text(json.dumps({"recovered_float_accuracy": 76.47}))
    assert teacher_summaries({"teacher": [str(run / "best.keras")]}) == [
        {
            "model": str(run / "best.keras"),
            "run": {"arch": "edge", "recovered_from": origin},
            "best_epoch": None,
            "publictest_float_accuracy": 76.47,
        }
    ]


def test_train_with_an_online_teacher_hands_it_to_the_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.train

    feeds, data, teacher_run = _student_setup(tmp_path, monkeypatch)
    out = tmp_path / "student"
    args = ["--data", str(data), "--arch", "seed", "--epochs", "1", "--batch", "8",
            "--ferplus", "off", "--label-smoothing", "0", "--augment", "light",
            "--teacher", str(teacher_run / "best.keras"), "--teacher-mode", "online",
            "--mixup", "0.2", "--teacher-weight", "0.5", "--teacher-temperature", "1",
            "--out", str(out)]  # fmt: skip
    assert training.train.main(args) == 0
    (feed,) = feeds
    assert isinstance(feed.teacher, OnlineTeacher) and feed.teacher_weight == 0.5
    assert feed.mixup == 0.2
    np.testing.assert_array_equal(feed.t.max(axis=1), 1.0)  # labels stay unmixed until a batch
    _, t = feed[0]
    assert np.all(t[:, 3] >= 0.5 - 1e-3)  # half of each target is the teacher's neutral
    assert not (out / "teacher.npy").exists()
    log = (out / "train.log").read_text()
    assert "teachers score every augmented batch (online)" in log
    assert json.loads((out / "config.json").read_text())["teacher_mode"] == "online"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--teacher-weight", "1.5", "--teacher-weight must be in [0, 1], got 1.5"),
        ("--teacher-temperature", "0", "--teacher-temperature must be positive, got 0.0"),
        ("--mixup", "-1", "--mixup must be 0 (off) or positive, got -1.0"),
    ],
)
def test_bad_distillation_settings_stop_train_before_any_work(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    from training.train import parse_args

    with pytest.raises(SystemExit) as stop:
        parse_args(["--teacher", "t.keras", "--teacher-mode", "online", flag, value])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--teacher-only-faces"], "--teacher-only-faces needs a --teacher"),
        (
            [
                "--teacher-only-faces",
                "--teacher",
                "t.keras",
                "--classes",
                ",".join(FER2013_CLASSES),
            ],
            "this run already uses every FER2013 class",
        ),
    ],
)
def test_teacher_only_faces_without_a_teacher_or_left_out_class_stops_train(
    args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    from training.train import parse_args

    with pytest.raises(SystemExit) as stop:
        parse_args(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_the_card_keeps_every_training_setting_of_a_run() -> None:
    """A run's card entry carries all of train's settings (online teachers, mixup, warm-up
    included), so a new option cannot silently drop out of the card; paths do not."""
    from convert.convert import run_summary
    from training.train import parse_args

    cfg = vars(parse_args(["--teacher", "t.keras", "--teacher-mode", "online", "--mixup", "0.2",
                           "--warmup", "1", "--out", "runs/x"]))  # fmt: skip
    summary = run_summary(cfg | {"data_sha256": "abc", "n_train": 5})
    assert summary["teacher_mode"] == "online" and summary["mixup"] == 0.2
    assert summary["warmup"] == 1.0 and summary["teacher"] == ["t.keras"]
    assert not {"data", "out", "classes", "data_sha256", "n_train"} & set(summary)
