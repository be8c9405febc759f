"""FER2013 loaders on small generated files: the good layouts and every bad-data case."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import pixels, write_csv, write_ferplus
from training import data as fer


def good_rows() -> list[list]:
    rows = []
    for i, split in enumerate(["Training"] * 8 + ["PublicTest"] * 4 + ["PrivateTest"] * 4):
        rows.append([[0, 3, 4, 6][i % 4], pixels(i), split])
    return rows


@pytest.mark.parametrize("gz", [False, True])
def test_csv_plain_and_gzipped(tmp_path, gz):
    path = write_csv(tmp_path / ("f.csv.gz" if gz else "f.csv"), good_rows(), gz=gz)
    faces = fer.load_fer2013(path)
    assert faces.images.shape == (16, 48, 48) and faces.images.dtype == np.uint8
    assert list(faces.labels[:4]) == [0, 3, 4, 6]
    assert (faces.usage == "Training").sum() == 8
    assert faces.rows[0] == 2  # line numbers: header is line 1
    assert len(faces.sha256) == 64
    assert faces.images[0].ravel()[:5].tolist() == [int(v) for v in pixels(0).split()[:5]]


def test_csv_cache_roundtrip(tmp_path):
    path = write_csv(tmp_path / "f.csv", good_rows())
    a = fer.load_fer2013(path, cache_dir=tmp_path / "cache")
    b = fer.load_fer2013(path, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.npz"))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.usage, b.usage)


def test_image_folders(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("angry", "happy", "sad", "neutral"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)  # colour, larger than 48
                cv2.imwrite(str(d / f"{i}.{'png' if i % 2 else 'jpg'}"), img)
    faces = fer.load_fer2013(tmp_path)
    assert faces.images.shape == (20, 48, 48)
    # No val/ folder: a tenth of train is held out to choose on (tests/test_folder_layout.py).
    assert set(np.unique(faces.usage)) <= {"Training", fer.HOLDOUT, "Test"}
    assert np.isin(faces.usage, ["Training", fer.HOLDOUT]).sum() == 12
    assert fer.find_fer2013(tmp_path) == tmp_path


def expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(fer.DataError) as err:
        fer.load_fer2013(path)
    msg = str(err.value)
    assert str(path) in msg or path.name in msg
    for frag in fragments:
        assert frag in msg, msg


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.csv", "no such file")
    with pytest.raises(fer.DataError, match="no FER2013 found"):
        fer.find_fer2013(tmp_path)


def test_wrong_columns(tmp_path):
    path = write_csv(
        tmp_path / "f.csv", [[0, pixels(0), "Training"]], header=["label", "pixels", "Usage"]
    )
    expect_error(path, "line 1", "missing column(s) emotion")


def test_pixel_string_of_wrong_length(tmp_path):
    rows = good_rows()
    rows[5][1] = " ".join(rows[5][1].split()[:-1])
    expect_error(write_csv(tmp_path / "f.csv", rows), "line 7", "2303 values, expected 2304")


def test_pixel_value_out_of_range(tmp_path):
    rows = good_rows()
    rows[2][1] = "300 " + " ".join(rows[2][1].split()[1:])
    expect_error(write_csv(tmp_path / "f.csv", rows), "line 4", "outside 0-255")


def test_unknown_label(tmp_path):
    rows = good_rows()
    rows[3][0] = 9
    expect_error(write_csv(tmp_path / "f.csv", rows), "line 5", "unknown label 9")


def test_unknown_usage(tmp_path):
    rows = good_rows()
    rows[0][2] = "Validation"
    expect_error(write_csv(tmp_path / "f.csv", rows), "line 2", "unknown Usage 'Validation'")


def test_not_gzip_but_named_gz_and_garbage(tmp_path):
    path = tmp_path / "f.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08garbage")
    expect_error(path, "cannot read")


def test_empty_class(tmp_path):
    rows = [r for r in good_rows() if not (r[0] == 4 and r[2] == "PrivateTest")]
    faces = fer.load_fer2013(write_csv(tmp_path / "f.csv", rows))
    with pytest.raises(fer.DataError, match="split PrivateTest has no faces of class sad"):
        fer.select_classes(faces, ("angry", "happy", "sad", "neutral"))


def test_unknown_class_folder(tmp_path):
    (tmp_path / "train" / "grumpy").mkdir(parents=True)
    expect_error(tmp_path, "unknown class folder 'grumpy'")


def test_leakage_and_blank_removed_and_counted(tmp_path):
    rows = good_rows()
    rows[1][1] = rows[9][1]  # a Training face identical to a PublicTest face
    rows[2][1] = rows[14][1]  # ... and one identical to a PrivateTest face
    rows[3][1] = pixels(0, value=0)  # all black
    faces = fer.clean_training(fer.load_fer2013(write_csv(tmp_path / "f.csv", rows)))
    assert faces.dropped == {"blank": 1, "duplicate_of_test_face": 2}
    assert (faces.usage == "Training").sum() == 5
    assert (faces.usage == "PublicTest").sum() == 4  # test splits are never touched


def test_ferplus_join_soft_and_majority(tmp_path):
    rows = good_rows()
    faces = fer.load_fer2013(write_csv(tmp_path / "f.csv", rows))
    votes = [[0] * 10 for _ in rows]
    votes[0] = [2, 0, 0, 0, 8, 0, 0, 0, 0, 0]  # row 0 (angry in FER2013): 8 anger, 2 neutral
    votes[1] = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]
    votes[2] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]  # not a face
    # Ties (columns: neutral, happiness, surprise, sadness, anger, ...): row 5 is happy, its
    # raters split anger/neutral; row 6 is sad, split sadness/neutral; row 7 is neutral, split
    # neutral/sadness.
    votes[5] = [4, 2, 0, 0, 4, 0, 0, 0, 0, 0]
    votes[6] = [4, 0, 0, 4, 2, 0, 0, 0, 0, 0]
    votes[7] = [5, 0, 0, 5, 0, 0, 0, 0, 0, 0]
    plus = write_ferplus(tmp_path / "fer2013new.csv", [r[2] for r in rows], votes)
    joined = fer.attach_ferplus(faces, plus)
    assert joined.votes.shape == (16, 10)
    classes = ("angry", "happy", "sad", "neutral")
    sub, y = fer.select_classes(joined, classes)
    t = fer.soft_targets(sub, y, classes, 0.5)
    assert np.allclose(t[0], [0.5 + 0.4, 0, 0, 0.1])
    assert np.allclose(t.sum(axis=1), 1)
    majority = fer.ferplus_majority(sub, classes)
    assert majority[:2].tolist() == [0, 1]
    # Row 4 (angry) has no votes at all: argmax would call it angry; it has no majority.
    assert majority[4] == -1
    # A tie goes to the FER2013 label when it is among the tied classes, whatever their order;
    # a tie without it is no majority.
    assert majority[5:8].tolist() == [-1, 2, 3]
    agrees = fer.ferplus_agrees(sub, y, classes)
    assert agrees[:8].tolist() == [True, True, False, False, False, False, True, True]
    with pytest.raises(ValueError, match="needs FER\\+ votes"):
        fer.ferplus_agrees(fer.select_classes(faces, classes)[0], y, classes)
    cleaned = fer.clean_training(joined)
    assert cleaned.dropped["ferplus_not_a_face"] == 1


def test_ferplus_row_mismatch(tmp_path):
    rows = good_rows()
    faces = fer.load_fer2013(write_csv(tmp_path / "f.csv", rows))
    usages = [r[2] for r in rows]
    with pytest.raises(fer.DataError, match="15 rows, but"):
        fer.attach_ferplus(faces, write_ferplus(tmp_path / "a.csv", usages[:-1], [[0] * 10] * 15))
    usages[4] = "PrivateTest"
    with pytest.raises(fer.DataError, match="line 6: Usage 'PrivateTest' does not match"):
        fer.attach_ferplus(faces, write_ferplus(tmp_path / "b.csv", usages, [[0] * 10] * 16))


def test_seven_classes_work(tmp_path):
    rows = [
        [i % 7, pixels(i), s]
        for i, s in enumerate(["Training"] * 14 + ["PublicTest"] * 7 + ["PrivateTest"] * 7)
    ]
    faces = fer.load_fer2013(write_csv(tmp_path / "f.csv", rows))
    from moodcam.labels import FER2013_CLASSES

    sub, y = fer.select_classes(faces, FER2013_CLASSES)
    assert len(sub) == 28 and set(y.tolist()) == set(range(7))


def test_real_fer2013_counts_and_cleaning(fer2013):
    """The real file: row counts of data/README.md, and the cleaning report."""
    assert len(fer2013) == 35887
    assert {s: int((fer2013.usage == s).sum()) for s in fer.SPLITS} == {
        "Training": 28709,
        "PublicTest": 3589,
        "PrivateTest": 3589,
    }
    cleaned = fer.clean_training(fer2013)
    assert (
        cleaned.dropped["blank"] == 12
    )  # the 12 black faces in Training (row 30002 is PublicTest)
    assert cleaned.dropped["duplicate_of_test_face"] > 500
    sub, _y = fer.select_classes(cleaned, ("angry", "happy", "sad", "neutral"))
    assert int((sub.usage == "PrivateTest").sum()) == 2590
