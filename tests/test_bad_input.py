"""Bad images and bad models, as a user (or a flaky SD card) hands them to moodcam.

Images: random bytes, empty files, truncated PNG/JPEG, a decompression bomb, 2/4-channel,
16-bit and float images, an 8000x8000 frame: through `moodcam classify` (with and without
--no-detect: one line per bad file, the rest still classified, exit 5) and through the daemon's
frame loop (a folder source: bad files skipped with a warning each, exit 0, the log intact).
Random blobs go through the decoder in-process with hypothesis.

Models (tests/test_convert.py covers the Classifier in-process; here the commands): missing,
empty, truncated, random bytes, a valid TFLite of the wrong shape (with its own faithful card and
with the shipped card), a card that does not match: `run`, `classify` and `doctor` refuse at start
with exit 4 and one line naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodcam import errors
from moodcam.commands.classify import read_image
from moodcam.errors import InputError
from moodcam.preprocess import prepare_face, to_gray
from tests.conftest import DESKTOP, DESKTOP_ONLY

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
MODEL = ROOT / "models" / "moodcam.tflite"
CARD = ROOT / "models" / "moodcam.json"
MOODCAM = [sys.executable, "-m", "moodcam.cli"]


def moodcam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOODCAM, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Our own error lines; no traceback anywhere."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("moodcam ")]


def png_bytes(a: np.ndarray) -> bytes:
    """A minimal PNG encoder for what cv2.imwrite refuses to write: gray+alpha (2 channels)."""
    h, w = a.shape[:2]
    ch = 1 if a.ndim == 2 else a.shape[2]
    depth = 16 if a.dtype == np.uint16 else 8
    rows = a.astype(">u2" if depth == 16 else "u1").reshape(h, -1)
    raw = b"".join(b"\x00" + r.tobytes() for r in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", w, h, depth, {1: 0, 2: 4, 3: 2, 4: 6}[ch], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A 1x1 PNG whose header claims width x height: decoding it would take gigabytes."""
    data = bytearray(png_bytes(np.zeros((1, 1), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def encoded(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


NOISE = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
# name -> bytes, for files every reader must refuse (imread and imdecode alike).
BAD = {
    "random.jpg": np.random.default_rng(1).bytes(4000),
    "empty.png": b"",
    "truncated.png": encoded(".png", NOISE)[:3000],
    "header-only.jpg": encoded(".jpg", NOISE)[:100],
    "bomb.png": bomb_png(),
}
# name -> image, for files that decode to something odd but usable.
ODD = {
    "gray-alpha.png": png_bytes(np.full((60, 60, 2), 120, np.uint8)),
    "gray-alpha16.png": png_bytes(np.full((60, 60, 2), 30000, np.uint16)),
    "bgra.png": encoded(".png", np.full((60, 60, 4), 90, np.uint8)),
    "bgr16.png": encoded(".png", np.full((60, 60, 3), 50000, np.uint16)),
    "float.tiff": encoded(".tiff", np.full((60, 60), 0.5, np.float32)),
}


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge-8000.png"
    cv2.imwrite(str(path), np.full((8000, 8000), 128, np.uint8))  # flat: small file, 64 MP
    return path


def write_all(folder: Path, files: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


# --- moodcam classify ------------------------------------------------------------------------


@pytest.mark.parametrize("no_detect", [True, False], ids=["no-detect", "detect"])
def test_classify_reports_each_bad_image_and_goes_on(
    tmp_path: Path, huge_png: Path, no_detect: bool
) -> None:
    bad = write_all(tmp_path / "bad", BAD)
    odd = write_all(tmp_path / "odd", ODD)
    good = sorted(FACES.glob("*.png"))[:2]
    folder = tmp_path / "a-folder.png"  # a directory where a file was expected
    folder.mkdir()
    paths = [bad[0], good[0], *bad[1:], *odd, folder, huge_png, good[1]]
    proc = moodcam("classify", *(["--no-detect"] if no_detect else []), *map(str, paths))
    assert proc.returncode == errors.EXIT_INPUT, proc.stderr
    lines = error_lines(proc)
    for path in [*bad, folder]:
        mine = [ln for ln in lines if f" {path}: " in ln]
        assert len(mine) == 1, (path, proc.stderr)
    assert any("bomb.png: image too large" in ln for ln in lines)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(r["label"] in r["scores"] for r in records)
    if no_detect:  # every decodable image is one face, in order
        assert [r["path"] for r in records] == [str(p) for p in (good[0], *odd, huge_png, good[1])]
        assert records[-2]["box"] == [0, 0, 8000, 8000]
    else:  # the flat images hold no face, and say so; the others fail as above
        for path in (*odd, huge_png):
            assert any(ln == f"moodcam classify: {path}: no face found" for ln in lines)


def test_classify_all_bad_still_exits_5(tmp_path: Path) -> None:
    bad = write_all(tmp_path, {"a.png": b"\x89PNG\r\n\x1a\n", "b.jpg": b"\xff\xd8\xff"})
    proc = moodcam("classify", "--no-detect", *map(str, bad))
    assert proc.returncode == errors.EXIT_INPUT and proc.stdout == ""
    assert len(error_lines(proc)) == 2


def test_classify_refuses_devices_fifos_and_giant_files(tmp_path: Path) -> None:
    """Things that are no image file must not be read: /dev/zero or a FIFO would never end."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    giant = tmp_path / "giant.png"
    with open(giant, "wb") as f:
        f.truncate(2**30)  # sparse: 1 GiB on paper, nothing on disk
    good = str(sorted(FACES.glob("*.png"))[0])
    proc = moodcam("classify", "--no-detect", "/dev/zero", str(fifo), str(giant), good)
    assert proc.returncode == errors.EXIT_INPUT and len(proc.stdout.splitlines()) == 1
    lines = error_lines(proc)
    assert "moodcam classify: /dev/zero: not a regular file (a device)" in lines
    assert f"moodcam classify: {fifo}: not a regular file (a FIFO)" in lines
    assert f"moodcam classify: {giant}: file too large for an image (1024 MiB)" in lines


# --- the decoder, in-process, with random input ---------------------------------------------------

SEEDS = {
    ".png": encoded(".png", NOISE[:24, :24]),
    ".jpg": encoded(".jpg", NOISE[:24, :24]),
    ".bmp": encoded(".bmp", NOISE[:8, :8]),
    ".tiff": encoded(".tiff", NOISE[:8, :8]),
}


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    """A real small image with random bytes overwritten, cut short, or a random tail: the decoder
    gets past the signature and into the parts that break."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=16))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.one_of(st.binary(max_size=400), damaged_images()))
def test_random_blobs_decode_or_fail_naming_the_file(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "blob.img"
    path.write_bytes(blob)
    try:
        image = read_image(str(path))
    except InputError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert image.dtype == np.uint8 and image.size > 0
    face = prepare_face(image)  # whatever decoded must reach the model's input shape
    assert face.shape == (48, 48) and face.dtype == np.uint8


@settings(max_examples=80, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 80), st.integers(1, 80)),
        st.tuples(st.integers(1, 80), st.integers(1, 80), st.sampled_from([1, 2, 3, 4])),
    )
)
def test_prepare_face_takes_any_size_and_channel_count(shape: tuple[int, ...]) -> None:
    face = prepare_face(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    assert face.shape == (48, 48) and face.dtype == np.uint8


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4), np.uint16), np.zeros((2, 2, 2, 2), np.uint8)],
)
def test_to_gray_refuses_what_is_no_image_with_a_value_error(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_gray(image)


def test_zero_size_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        prepare_face(np.zeros((0, 10), np.uint8))


# --- the daemon's frame loop ----------------------------------------------------------------------


def test_folder_source_skips_bad_files_with_a_warning_each(tmp_path: Path, huge_png: Path) -> None:
    folder = tmp_path / "frames"
    good = sorted(FACES.glob("*.png"))
    folder.mkdir()
    for i, p in enumerate(good):  # good and bad interleaved: a folder plays in file-name order
        shutil.copy(p, folder / f"{i:02d}-{p.name}")
    skipped = ["random.jpg", "empty.png", "truncated.png", "header-only.jpg"]
    write_all(folder, {f"05-{n}": BAD[n] for n in skipped})
    odd = {f"07-{n}": data for n, data in ODD.items() if n.endswith(".png")}
    write_all(folder, odd)
    shutil.copy(huge_png, folder / "09-huge.png")
    log = tmp_path / "mood.jsonl"
    proc = moodcam(
        "run", "--source", str(folder), "--log", str(log), "--log-interval", "0", "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in skipped:
        warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln and f"05-{name}" in ln]
        assert len(warnings) == 1, (name, proc.stderr)
    delivered = len(good) + len(odd) + 1  # the odd PNGs and the huge frame are usable
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == delivered
    for line in lines:  # intact: every line whole JSON with the schema's keys
        assert set(json.loads(line)) == {"v", "t", "faces", "mood", "valence", "arousal"}


def test_folder_source_skips_a_decompression_bomb(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    write_all(folder, {"00-bomb.png": BAD["bomb.png"]})
    shutil.copy(sorted(FACES.glob("*.png"))[0], folder / "01-face.png")
    log = tmp_path / "mood.jsonl"
    proc = moodcam(
        "run", "--source", str(folder), "--log", str(log), "--log-interval", "0", "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    assert len(log.read_text().splitlines()) == 1


# --- model faults, through the commands -----------------------------------------------------------

MAKE_RGB_MODEL = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, tensorflow as tf
from keras import layers
inp = keras.Input((48, 48, 3))  # colour input: a faithful card cannot make the device feed it
x = layers.GlobalAveragePooling2D()(inp)
model = keras.Model(inp, layers.Dense(4, activation="softmax")(x))
open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (model path, a fragment the error line must contain). Each model has a card."""
    d = tmp_path_factory.mktemp("models")
    data = MODEL.read_bytes()
    card = json.loads(CARD.read_text())
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, model: bytes | None, card_text: str | None, why: str) -> None:
        path = d / f"{name}.tflite"
        if model is not None:
            path.write_bytes(model)
        if card_text is not None:
            path.with_suffix(".json").write_text(card_text)
        out[name] = (path, why)

    shipped_card = json.dumps(card)
    put("missing", None, shipped_card, "model file not found")
    put("empty", b"", shipped_card, "not a valid TFLite model")
    put("truncated", data[: len(data) // 2], shipped_card, "not a valid TFLite model")
    put("random", np.random.default_rng(3).bytes(len(data)), shipped_card, "not a valid TFLite")
    mismatched = dict(card, input={**card["input"], "zero_point": 0})
    put("mismatch", data, json.dumps(mismatched), "does not match its card")
    # Another model of the same tensors (here one weight byte changed): only the digest differs.
    other = bytearray(data)
    other[len(data) // 2] ^= 0x01
    put("other-bytes", bytes(other), shipped_card, "the card was written for")
    put("nocard", data, None, "model card not found")
    put("badcard", data, "{not json", "not a readable model card")

    rgb = d / "rgb.tflite"
    proc = subprocess.run(
        [sys.executable, "-c", MAKE_RGB_MODEL, str(rgb)], capture_output=True, text=True
    )
    if proc.returncode != 0:  # the cases above need no TensorFlow and still run
        assert not DESKTOP, f"cannot build a TFLite model: {proc.stderr[-300:]}"
        return out
    from moodcam.card import tensor_summary
    from moodcam.runtime import load_interpreter

    interp, _ = load_interpreter(str(rgb))
    faithful = dict(
        card,
        input=tensor_summary(interp.get_input_details()[0]),
        output=tensor_summary(interp.get_output_details()[0]),
    )
    put("wrong-shape", rgb.read_bytes(), json.dumps(faithful), "not one square grey face")
    put("wrong-shape-shipped-card", rgb.read_bytes(), shipped_card, "does not match its card")
    return out


MODEL_CASES = [
    "missing",
    "empty",
    "truncated",
    "random",
    "mismatch",
    "other-bytes",
    "nocard",
    "badcard",
    "wrong-shape",
    "wrong-shape-shipped-card",
]


@pytest.mark.parametrize("name", MODEL_CASES)
def test_run_and_classify_refuse_a_bad_model_at_start(
    models: dict[str, tuple[Path, str]], tmp_path: Path, name: str
) -> None:
    if name not in models:  # built with TensorFlow
        pytest.skip(DESKTOP_ONLY)
    model, why = models[name]
    face = str(sorted(FACES.glob("*.png"))[0])
    log = tmp_path / "mood.jsonl"
    for args in (
        ("run", "--model", str(model), "--source", str(FACES), "--log", str(log)),
        ("classify", "--no-detect", "--model", str(model), face),
    ):
        proc = moodcam(*args)
        assert proc.returncode == errors.EXIT_MODEL, (args, proc.stderr)
        lines = error_lines(proc)
        assert len(lines) == 1, proc.stderr
        named = str(model) if name not in ("nocard", "badcard") else str(model.with_suffix(".json"))
        assert named in lines[0] and why in lines[0], lines[0]
        assert proc.stdout == ""
    assert not log.exists()  # refused before the first frame


@pytest.mark.parametrize("key", ["model_sha256", "labels_sha256"])
def test_a_card_without_its_digests_is_refused(tmp_path: Path, key: str) -> None:
    """A card without model_sha256 accepted any model of the same tensors (issue 27, item 4)."""
    from moodcam.classifier import Classifier
    from moodcam.errors import ModelError

    model = tmp_path / "m.tflite"
    model.write_bytes(MODEL.read_bytes())
    card = json.loads(CARD.read_text())
    del card[key]
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=f"model card lacks {key}"):
        Classifier(model)


def test_a_card_with_swapped_labels_is_refused(tmp_path: Path) -> None:
    """Swapping two labels keeps the model digest right; the labels' seal catches it, so a happy
    face is not labelled angry (issue 27, item 4). Through the commands, naming both files."""
    model = tmp_path / "m.tflite"
    model.write_bytes(MODEL.read_bytes())
    card = json.loads(CARD.read_text())
    labels = card["labels"]
    labels[0], labels[1] = labels[1], labels[0]
    model.with_suffix(".json").write_text(json.dumps(card))
    face = str(sorted(FACES.glob("*.png"))[0])
    for args in (("classify", "--no-detect", "--model", str(model), face),
                 ("doctor", "--model", str(model), "--timeout", "1")):  # fmt: skip
        proc = moodcam(*args)
        assert proc.returncode == errors.EXIT_MODEL, proc.stderr
        text = proc.stderr + proc.stdout
        assert f"{model} does not match its card {model.with_suffix('.json')}" in text, text
        assert "labels_sha256 differs" in text, text


def test_the_digest_checked_is_that_of_the_bytes_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that replaces the model while the daemon starts must not make the card's digest
    check read other bytes than the interpreter runs: the file is read once."""
    import moodcam.classifier as classifier

    model = tmp_path / "m.tflite"
    model.write_bytes(MODEL.read_bytes())
    shutil.copy(CARD, model.with_suffix(".json"))
    real_load = classifier.load_interpreter

    def load_then_replace(*args: object, **kwargs: object) -> object:
        loaded = real_load(*args, **kwargs)
        replacement = tmp_path / "new.tflite"
        replacement.write_bytes(MODEL.read_bytes() + b"upgrade")
        os.replace(replacement, model)  # as an installer would, after the interpreter is built
        return loaded

    monkeypatch.setattr(classifier, "load_interpreter", load_then_replace)
    clf = classifier.Classifier(model)
    assert clf.labels == tuple(json.loads(CARD.read_text())["labels"])
    assert model.read_bytes().endswith(b"upgrade")  # the file did change under it


def test_an_unreadable_model_is_a_model_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model file that exists but cannot be read (root reads through modes, so the read itself
    is made to fail) is refused as a model error naming the file, not a traceback."""
    from moodcam.classifier import Classifier
    from moodcam.errors import ModelError

    model = tmp_path / "m.tflite"
    model.write_bytes(MODEL.read_bytes())
    shutil.copy(CARD, model.with_suffix(".json"))
    real_read = Path.read_bytes

    def failing_read(self: Path) -> bytes:
        if self == model:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    with pytest.raises(ModelError) as refused:
        Classifier(model)
    assert str(refused.value) == f"{model}: cannot read the model (Permission denied)"


def test_a_giant_file_named_as_the_model_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """The model is read whole before it is parsed: a wrong file of gigabytes must be refused by
    its size, not read into a Pi's memory (a sparse file: no disk is used)."""
    from moodcam.classifier import MAX_MODEL_BYTES

    model = tmp_path / "huge.tflite"
    with open(model, "wb") as f:
        f.truncate(4 * 2**30)
    shutil.copy(CARD, model.with_suffix(".json"))
    face = str(sorted(FACES.glob("*.png"))[0])
    proc = moodcam("classify", "--no-detect", "--model", str(model), face)
    assert proc.returncode == errors.EXIT_MODEL, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].endswith(
        f"{model}: {4 * 2**30} bytes is not a face model for this device "
        f"(at most {MAX_MODEL_BYTES} bytes)"
    ), lines[0]


@pytest.mark.parametrize("name", ["truncated", "wrong-shape"])
def test_doctor_names_the_bad_model(
    models: dict[str, tuple[Path, str]], tmp_path: Path, name: str
) -> None:
    if name not in models:
        pytest.skip(DESKTOP_ONLY)
    model, why = models[name]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[log]\npath = "{tmp_path}/mood.jsonl"\n')
    proc = moodcam(
        "doctor", "--config", str(cfg), "--model", str(model), "--source", str(FACES),
        "--timeout", "2",
    )  # fmt: skip
    assert proc.returncode == errors.EXIT_MODEL, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    fails = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 1 and "model" in fails[0] and str(model) in fails[0] and why in fails[0]
