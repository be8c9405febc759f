"""FER2013 as a user gets it: the Kaggle CSV (plain or .gz), the Kaggle image folders, FER+ votes.

Every problem with the data raises DataError with one line naming the file and the row.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from moodcam.labels import FER2013_CLASSES, FERPLUS_COLUMNS
from moodcam.preprocess import FACE_SIZE, prepare_face

DATA_ENV = "MOODCAM_DATA"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SPLITS = ("Training", "PublicTest", "PrivateTest")
CSV_COLUMNS = ("emotion", "pixels", "Usage")
FERPLUS_VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}
# Folder layout split names -> our split names. Kaggle's image version merges the two test
# splits into `test`, and has no split to choose on: the loader then holds out a fixed tenth of
# `train` as HOLDOUT (see `protocol_splits`).
HOLDOUT = "Holdout"
HOLDOUT_SHARE = 0.1
FOLDER_SPLITS = {
    "train": "Training",
    "test": "Test",
    "val": "PublicTest",
    "validation": "PublicTest",
}


class DataError(Exception):
    """Bad input data: the message names the file and, where there is one, the row."""


@dataclass
class FaceSet:
    """Faces in source order. `labels` index FER2013_CLASSES; `rows` are 1-based file lines."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64
    usage: np.ndarray  # (N,) str split name
    rows: np.ndarray  # (N,) int64, line in the CSV (header = 1) or index in folder listing
    source: str
    sha256: str
    votes: np.ndarray | None = None  # (N, 10) FER+ votes, FERPLUS_VOTE_COLUMNS order
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> FaceSet:
        return replace(
            self,
            images=self.images[mask],
            labels=self.labels[mask],
            usage=self.usage[mask],
            rows=self.rows[mask],
            votes=None if self.votes is None else self.votes[mask],
        )

    def split(self, name: str) -> FaceSet:
        return self.subset(self.usage == name)


def data_dir(arg: str | os.PathLike | None = None) -> Path:
    """--data, else $MOODCAM_DATA, else ../shared/data beside the project."""
    return Path(arg or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


def find_fer2013(root: str | os.PathLike) -> Path:
    """The FER2013 source under `root`: a CSV file, or a folder in the Kaggle image layout."""
    root = Path(root)
    if root.is_file():
        return root
    candidates = [
        root / "fer2013" / "fer2013.csv.gz",
        root / "fer2013" / "fer2013.csv",
        root / "fer2013.csv.gz",
        root / "fer2013.csv",
    ]
    for c in candidates:
        if c.is_file():
            return c
    for folder in (root, root / "fer2013"):
        if (folder / "train").is_dir():
            return folder
    raise DataError(
        f"{root}: no FER2013 found (looked for fer2013/fer2013.csv[.gz], fer2013.csv[.gz] and "
        f"train/<class>/ folders); set --data or ${DATA_ENV}"
    )


def find_ferplus(root: str | os.PathLike) -> Path | None:
    root = Path(root)
    for c in (root / "ferplus" / "fer2013new.csv", root / "fer2013new.csv"):
        if c.is_file():
            return c
    return None


def load_fer2013(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> FaceSet:
    """Load a CSV or an image-folder tree. CSVs are cached as .npz keyed by their sha256."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_image_folders(path)
    digest = sha256_file(path)
    cache = Path(cache_dir) / f"fer2013-{digest[:16]}.npz" if cache_dir else None
    if cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return FaceSet(z["images"], z["labels"], z["usage"], z["rows"], str(path), digest)
    faces = load_fer2013_csv(path, digest)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=faces.images, labels=faces.labels, usage=faces.usage, rows=faces.rows)
        tmp.replace(cache)
    return faces


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_fer2013_csv(path: str | os.PathLike, digest: str | None = None) -> FaceSet:
    """Parse Kaggle's fer2013.csv (emotion,pixels,Usage), gzipped or not."""
    path = Path(path)
    n_pixels = FACE_SIZE * FACE_SIZE
    images, labels, usage, rows = [], [], [], []
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file, expected a header {','.join(CSV_COLUMNS)}")
            header = [h.strip() for h in header]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{path}: line 1: missing column(s) {', '.join(missing)}; "
                    f"found {','.join(header)}, expected {','.join(CSV_COLUMNS)}"
                )
            ie, ip, iu = (header.index(c) for c in CSV_COLUMNS)
            for line, rec in enumerate(reader, start=2):
                if not rec:
                    continue
                if len(rec) != len(header):
                    raise DataError(
                        f"{path}: line {line}: {len(rec)} fields, expected {len(header)}"
                    )
                try:
                    emotion = int(rec[ie])
                except ValueError:
                    raise DataError(
                        f"{path}: line {line}: emotion {rec[ie]!r} is not a number 0-6"
                    ) from None
                if not 0 <= emotion < len(FER2013_CLASSES):
                    raise DataError(f"{path}: line {line}: unknown label {emotion}, expected 0-6")
                split = rec[iu].strip()
                if split not in SPLITS:
                    raise DataError(
                        f"{path}: line {line}: unknown Usage {split!r}, expected one of "
                        f"{', '.join(SPLITS)}"
                    )
                tokens = rec[ip].split()
                if len(tokens) != n_pixels:
                    raise DataError(
                        f"{path}: line {line}: pixels has {len(tokens)} values, expected {n_pixels}"
                    )
                try:
                    px = np.array(tokens, dtype=np.int32)
                except ValueError:
                    raise DataError(f"{path}: line {line}: pixels holds a non-number") from None
                if px.min() < 0 or px.max() > 255:
                    raise DataError(f"{path}: line {line}: pixel value outside 0-255")
                images.append(px.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE))
                labels.append(emotion)
                usage.append(split)
                rows.append(line)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    if not images:
        raise DataError(f"{path}: no data rows")
    return FaceSet(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int64),
        usage=np.array(usage),
        rows=np.array(rows, dtype=np.int64),
        source=str(path),
        sha256=digest or sha256_file(path),
    )


def load_image_folders(root: str | os.PathLike) -> FaceSet:
    """Kaggle's image layout: <root>/train|test/<class>/*.png|jpg (any size, gray or colour)."""
    import cv2

    root = Path(root)
    split_dirs = [
        d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() in FOLDER_SPLITS
    ]
    if not split_dirs:
        raise DataError(f"{root}: no train/ or test/ folder")
    images, labels, usage, rows = [], [], [], []
    h = hashlib.sha256()
    for split_dir in split_dirs:
        split = FOLDER_SPLITS[split_dir.name.lower()]
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            name = class_dir.name.lower()
            if name not in FER2013_CLASSES:
                raise DataError(
                    f"{class_dir}: unknown class folder {class_dir.name!r}; "
                    f"expected one of {', '.join(FER2013_CLASSES)}"
                )
            for img_path in sorted(class_dir.iterdir()):
                if img_path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                data = img_path.read_bytes()
                h.update(img_path.relative_to(root).as_posix().encode() + b"\0" + data)
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise DataError(f"{img_path}: not a readable image")
                images.append(prepare_face(img))
                labels.append(FER2013_CLASSES.index(name))
                usage.append(split)
                rows.append(len(rows))
    if not images:
        raise DataError(f"{root}: no images under train|test/<class>/")
    images_arr, usage_arr = np.stack(images), np.array(usage, dtype=object)
    if "PublicTest" not in usage_arr:
        labels_arr = np.array(labels)
        # A tenth of each class (at least one face), chosen by the faces' pixel hashes: every
        # tool that loads this tree (train, compare, swa, convert, evaluate) holds out the same
        # faces, and no class is missing from the faces choices are made on.
        keys = np.array([_digest(img) for img in images_arr])
        for label in np.unique(labels_arr):
            members = np.flatnonzero((usage_arr == "Training") & (labels_arr == label))
            k = max(1, round(HOLDOUT_SHARE * len(members))) if len(members) > 1 else 0
            usage_arr[members[np.argsort(keys[members], kind="stable")[:k]]] = HOLDOUT
    return FaceSet(
        images=images_arr,
        labels=np.array(labels, dtype=np.int64),
        usage=usage_arr.astype(str),
        rows=np.array(rows, dtype=np.int64),
        source=str(root),
        sha256=h.hexdigest(),
    )


def protocol_splits(faces: FaceSet) -> tuple[str, str]:
    """(the split to choose on, the split to report): PublicTest and PrivateTest in the CSV;
    in an image-folder tree without a val/ folder, the Training hold-out and Kaggle's merged test."""
    present = set(np.unique(faces.usage).tolist())
    choose = "PublicTest" if "PublicTest" in present else HOLDOUT
    report = "PrivateTest" if "PrivateTest" in present else "Test"
    return choose, report


def attach_ferplus(faces: FaceSet, path: str | os.PathLike) -> FaceSet:
    """Join FER+ votes (fer2013new.csv) by row order; its Usage must agree on every row."""
    path = Path(path)
    votes, usage = [], []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            need = ("Usage", *FERPLUS_VOTE_COLUMNS)
            missing = [c for c in need if c not in header]
            if missing:
                raise DataError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
            idx = [header.index(c) for c in FERPLUS_VOTE_COLUMNS]
            iu = header.index("Usage")
            for line, rec in enumerate(reader, start=2):
                try:
                    votes.append([int(rec[i]) for i in idx])
                except (ValueError, IndexError):
                    raise DataError(
                        f"{path}: line {line}: vote counts are not whole numbers"
                    ) from None
                usage.append(rec[iu].strip())
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    if Path(faces.source).is_dir():
        raise DataError(f"{path}: FER+ votes join the FER2013 CSV by row order, not image folders")
    n_source = int(faces.rows.max()) - 1  # data rows in the CSV (header is line 1)
    if len(votes) != n_source:
        raise DataError(
            f"{path}: {len(votes)} rows, but {faces.source} has {n_source}; "
            "FER+ joins FER2013 by row order"
        )
    order = faces.rows - 2  # CSV line -> 0-based data row
    joined_usage = np.array(usage)[order]
    bad = np.nonzero(joined_usage != faces.usage)[0]
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{path}: line {order[i] + 2}: Usage {str(joined_usage[i])!r} does not match "
            f"{faces.source} line {faces.rows[i]} ({str(faces.usage[i])!r})"
        )
    return replace(faces, votes=np.array(votes, dtype=np.int64)[order])


# Why each rule of clean_training drops a Training face (the card's rows_dropped_reasons); the
# counts are measured per run, so no count is written here.
BLANK_STD = 1.0
NOT_A_FACE_VOTES = 10
DROP_REASONS = {
    "blank": f"all one value or nearly (pixel std < {BLANK_STD:g}): black or flat grey images",
    "duplicate_of_test_face": "pixels identical to a PublicTest or PrivateTest face (leakage)",
    "ferplus_not_a_face": f"FER+ raters voted {NOT_A_FACE_VOTES}/10 not a face",
}


def clean_training(faces: FaceSet) -> FaceSet:
    """Drop from Training the faces that leak into the test splits, blank faces and FER+ non-faces.

    The counts per rule land in `dropped` (and from there in the model card).
    """
    train = faces.usage == "Training"
    spread = faces.images.reshape(len(faces), -1).std(axis=1)
    blank = train & (spread < BLANK_STD)
    test_hashes = {_digest(img) for img in faces.images[~train]}
    leak = train & ~blank & np.array([_digest(img) in test_hashes for img in faces.images])
    dropped = {"blank": int(blank.sum()), "duplicate_of_test_face": int(leak.sum())}
    drop = leak | blank
    if faces.votes is not None:
        not_face = (
            train & (faces.votes[:, FERPLUS_VOTE_COLUMNS.index("NF")] >= NOT_A_FACE_VOTES) & ~drop
        )
        dropped["ferplus_not_a_face"] = int(not_face.sum())
        drop |= not_face
    out = faces.subset(~drop)
    out.dropped = {**faces.dropped, **dropped}
    return out


def _digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def of_classes(faces: FaceSet, classes: tuple[str, ...]) -> np.ndarray:
    """Which faces carry a FER2013 label among `classes` (a mask over `faces`)."""
    return np.isin(faces.labels, [FER2013_CLASSES.index(c) for c in classes])


def select_classes(faces: FaceSet, classes: tuple[str, ...]) -> tuple[FaceSet, np.ndarray]:
    """Keep the faces of `classes`; return them and their targets as indexes into `classes`."""
    ids = [FER2013_CLASSES.index(c) for c in classes]
    sub = faces.subset(of_classes(faces, classes))
    lut = np.full(len(FER2013_CLASSES), -1, dtype=np.int64)
    lut[ids] = np.arange(len(ids))
    y = lut[sub.labels]
    for split in np.unique(faces.usage):
        in_split = sub.usage == split
        counts = np.bincount(y[in_split], minlength=len(classes))
        empty = [c for c, n in zip(classes, counts, strict=False) if n == 0]
        if empty:
            raise DataError(
                f"{faces.source}: split {split} has no faces of class {', '.join(empty)}"
            )
    return sub, y


def soft_targets(
    faces: FaceSet, y: np.ndarray, classes: tuple[str, ...], ferplus_weight: float
) -> np.ndarray:
    """Targets as distributions: (1-w) * one-hot FER2013 label + w * FER+ votes over `classes`.

    With w=0 (or no votes) this is the plain one-hot. Rows whose votes fall outside `classes`
    keep their one-hot label.
    """
    onehot = np.eye(len(classes), dtype=np.float32)[y]
    if faces.votes is None or ferplus_weight <= 0:
        return onehot
    rev = {v: k for k, v in FERPLUS_COLUMNS.items()}
    cols = [FERPLUS_VOTE_COLUMNS.index(rev[c]) for c in classes]
    v = faces.votes[:, cols].astype(np.float32)
    total = v.sum(axis=1, keepdims=True)
    dist = np.where(total > 0, v / np.maximum(total, 1), onehot)
    return (1 - ferplus_weight) * onehot + ferplus_weight * dist


def ferplus_majority(faces: FaceSet, classes: tuple[str, ...]) -> np.ndarray:
    """FER+ majority label over the seven FER2013 emotions, as an index into `classes`; -1 where
    the majority is another class or there is none (no emotion votes, or a tie the face's FER2013
    label is not part of). A tie that includes the FER2013 label goes to that label: the raters
    then do not overrule it, and which of the tied classes comes first in a list must not decide.
    """
    votes = _emotion_votes(faces)
    top = votes.max(axis=1)
    tied = (votes == top[:, None]) & (top[:, None] > 0)
    label_tied = tied[np.arange(len(votes)), faces.labels]
    winner = votes.argmax(axis=1)
    tie = tied.sum(axis=1) > 1
    winner[tie] = np.where(label_tied[tie], faces.labels[tie], -1)
    winner[top == 0] = -1
    lut = np.full(len(FER2013_CLASSES) + 1, -1, dtype=np.int64)  # the extra slot maps -1 to -1
    for i, c in enumerate(classes):
        lut[FER2013_CLASSES.index(c)] = i
    return lut[winner]


def ferplus_agrees(faces: FaceSet, y: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Per face: do FER+'s raters, by majority over the seven FER2013 emotions, give it its
    FER2013 label (a tie that includes it counts)? Faces with no emotion votes (FER+ not-a-face)
    count as disputed.

    Splits a test set into the faces whose label two labelling efforts share and the disputed
    rest, where a model can be "wrong" by agreeing with ten raters.
    """
    if faces.votes is None:
        raise ValueError("ferplus_agrees needs FER+ votes (attach_ferplus)")
    return ferplus_majority(faces, classes) == y


def _emotion_votes(faces: FaceSet) -> np.ndarray:
    """FER+ votes for the seven FER2013 emotions, in FER2013_CLASSES order."""
    rev = {v: k for k, v in FERPLUS_COLUMNS.items()}
    return faces.votes[:, [FERPLUS_VOTE_COLUMNS.index(rev[c]) for c in FER2013_CLASSES]]
