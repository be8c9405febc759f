"""The whole pipeline with real parts: a generated clip, the shipped model, the mood log, MQTT,
gpiozero's mock pins, systemd's notify socket, signals."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from demo.scenes import FaceMotion, iou, load_faces, make_clip, make_scene, write_clip
from moodcam import config
from moodcam.classifier import Classifier
from moodcam.daemon import Pipeline
from moodcam.detector import FaceDetector
from moodcam.records import Frame, MoodUpdate
from moodcam.sinks.moodlog import MoodLogWriter
from moodcam.tracker import MoodTracker
from tests.conftest import CLEAN_SEED, confident_scenes

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "moodcam.tflite"
FPS = 10.0
SEGMENT = 30  # frames per segment: 3 s


class Recorder:
    """A sink that keeps every update (the test's view of what the sinks were given)."""

    def __init__(self) -> None:
        self.updates: list[MoodUpdate] = []

    def handle(self, update: MoodUpdate) -> None:
        self.updates.append(update)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(MODEL)


@pytest.fixture(scope="module")
def two_mood_clip(classifier, tmp_path_factory):
    """A clip whose one face changes from a face the model calls A to one it calls B != A
    (picked by `confident_scenes`)."""
    box = (200, 120, 170, 170)
    seen = confident_scenes(classifier, box)
    if len(seen) < 2:
        pytest.skip(
            f"the shipped model gives fewer than two confident labels on the fixtures: {list(seen)}"
        )
    (label_a, (face_a, _)), (label_b, (face_b, _)) = list(seen.items())[:2]
    frames, boxes = [], []
    for face in (face_a, face_b):
        clip = make_clip(
            [FaceMotion(face, box, (box[0] + 20, box[1] + 6, 170, 170))],
            SEGMENT,
            seed=CLEAN_SEED,
            fps=FPS,
        )
        frames += clip.frames
        boxes += clip.boxes
    path = write_clip(tmp_path_factory.mktemp("clip") / "two.avi", frames, fps=FPS)
    return path, (label_a, label_b), boxes


def run_pipeline(classifier, path: Path, sinks: list) -> list[MoodUpdate]:
    from moodcam.sources import open_source

    recorder = Recorder()
    pipe = Pipeline(FaceDetector(), classifier, MoodTracker(config.TrackerConfig(), classifier.labels),
                    [recorder, *sinks])  # fmt: skip
    with open_source(config.SourceConfig(uri=str(path))) as source:
        while (frame := source.read()) is not None:
            pipe.process(frame)
    for s in sinks:
        s.close()
    return recorder.updates


def test_pipeline_log_line_by_line(classifier, two_mood_clip, tmp_path):
    path, (label_a, label_b), truth = two_mood_clip
    log = tmp_path / "mood.jsonl"
    interval = 1.0
    updates = run_pipeline(
        classifier, path, [MoodLogWriter(config.LogConfig(path=str(log), interval_s=interval))]
    )
    assert len(updates) == 2 * SEGMENT
    # The faces are where they were pasted, in every frame.
    for u, boxes in zip(updates, truth, strict=True):
        assert len(u.faces) == 1 and iou(u.faces[0].box, boxes[0]) > 0.5
    # The mood goes A -> B, and the change shows within about a second of the cut.
    moods = [u.mood for u in updates]
    assert moods[SEGMENT - 1] == label_a
    assert moods[-1] == label_b
    change = next(i for i, u in enumerate(updates) if u.mood == label_b)
    assert 0 <= (change - SEGMENT) / FPS <= 1.2
    # The log holds exactly: the first update, then every change, and a line per interval.
    expected, last_t = [], None
    for u in updates:
        if last_t is None or u.changed or u.t - last_t >= interval - 1e-9:
            expected.append(u.to_record())
            last_t = u.t
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert sum(1 for line in lines if json.loads(line)["mood"] == label_b) >= 1


def test_leds_follow_the_mood(classifier, two_mood_clip):
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from moodcam.sinks.leds import LedSink

    path, (label_a, label_b), _ = two_mood_clip
    factory = MockFactory(pin_class=MockPWMPin)
    cfg = config.LedConfig(enabled=True, mode="per_mood", brightness=0.8)
    sink = LedSink(cfg, pin_factory=factory)
    pins = {mood: factory.pin(pin) for mood, pin in cfg.mood_pins.items()}
    states = []

    class Probe(Recorder):
        def handle(self, update: MoodUpdate) -> None:
            states.append((update.mood, {m: p.state for m, p in pins.items()}))

    run_pipeline(classifier, path, [sink, Probe()])
    for mood, pin_states in states:
        for m, v in pin_states.items():
            assert v == pytest.approx(0.8 if m == mood else 0.0), (mood, pin_states)
    assert {m for m, _ in states} >= {label_a, label_b}
    assert all(p.state == 0 for p in pins.values())  # off after close


def moodcam(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "moodcam.cli", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def image_folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir(parents=True)
    face = load_faces()[0][1]
    frame = make_scene([(face, (200, 120, 170, 170))], seed=2)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), frame)
    return folder


def test_mqtt_events_equal_the_logs_mood_changes(classifier, two_mood_clip, tmp_path):
    from tests.mosquitto import Mosquitto, find_mosquitto

    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    import paho.mqtt.client as mqtt

    path, (_, label_b), _ = two_mood_clip
    broker = Mosquitto(tmp_path / "broker").start()
    got: list[dict] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("moodcam/cam1/event", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)
        log = tmp_path / "mood.jsonl"
        proc = moodcam("run", "--source", str(path), "--log", str(log), "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                       "--device-id", "cam1", "--quiet")  # fmt: skip
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        deadline = time.monotonic() + 5
        records = [json.loads(line) for line in log.read_text().splitlines()]
        changes, prev = [], None
        for r in records:
            if r["mood"] != prev:
                changes.append(r)
            prev = r["mood"]
        changes = [c for i, c in enumerate(changes) if i > 0 or c["mood"] is not None]
        while len(got) < len(changes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == changes  # every change, once, in order, with the log line's fields
        assert [c["mood"] for c in got][-1] == label_b
    finally:
        sub.loop_stop()
        broker.stop()


def test_sigterm_flushes_and_exits_0_quickly(tmp_path):
    folder = image_folder(tmp_path, 400)
    log = tmp_path / "mood.jsonl"
    proc = moodcam(
        "run",
        "--source",
        str(folder),
        "--realtime",
        "--log",
        str(log),
        "--log-interval",
        "0",
        "--quiet",
    )
    deadline = time.monotonic() + 60
    while (not log.exists() or log.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)  # the unit's TimeoutStopSec: later, systemd would kill it
    assert proc.returncode == 0
    text = log.read_text()
    assert text.endswith("\n")
    assert all(json.loads(line) for line in text.splitlines())


def test_kill_9_mid_run_leaves_a_readable_log_and_the_next_run_repairs_it(tmp_path):
    from moodcam.logreader import iter_records

    folder = image_folder(tmp_path, 400)
    log = tmp_path / "mood.jsonl"
    for _ in range(3):
        proc = moodcam(
            "run", "--source", str(folder), "--log", str(log), "--log-interval", "0", "--quiet"
        )
        deadline = time.monotonic() + 60
        start = log.stat().st_size if log.exists() else 0
        while (
            not log.exists() or log.stat().st_size <= start + 2000
        ) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
        proc.communicate()
    with open(log, "ab") as f:  # and a torn line, as if the power went mid-write
        f.write(b'{"v":1,"t":12.')
    records = iter_records(log)
    assert len(list(records)) > 10 and records.skipped == 1
    proc = moodcam(
        "run", "--source", str(image_folder(tmp_path / "b", 3)), "--log", str(log), "--quiet"
    )
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    lines = log.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_systemd_ready_and_watchdog(tmp_path):
    notify = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    folder = image_folder(tmp_path, 60)
    proc = moodcam("run", "--source", str(folder), "--realtime", "--no-log", "--quiet",
                   env={"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"})  # fmt: skip
    try:
        messages = []
        logged_before_ready = ""
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
            if len(messages) == 1:  # READY=1: what the daemon had logged by then
                os.set_blocking(proc.stderr.fileno(), False)
                logged_before_ready = os.read(proc.stderr.fileno(), 1 << 20).decode()
                os.set_blocking(proc.stderr.fileno(), True)
            if messages[-1].startswith("STOPPING=1"):
                break
        proc.communicate(timeout=30)
    finally:
        sock.close()
    assert proc.returncode == 0
    assert messages[0].startswith("READY=1")
    # The journal shows "camera ok" before systemd's "Started" (make vm-test's start step).
    assert "camera ok:" in logged_before_ready, logged_before_ready
    watchdogs = [m for m in messages if m == "WATCHDOG=1"]
    # 60 frames at 30 fps media time paced to real time: 2 s, a ping every <= 0.2 s.
    assert len(watchdogs) >= 5
    assert messages[-1].startswith("STOPPING=1")


def test_pipeline_on_a_lores_gray_frame(classifier):
    """picamera2 gives a small gray Y plane beside the colour frame: boxes come back in frame pixels."""
    face = load_faces()[0][1]
    box = (200, 120, 170, 170)
    image = make_scene([(face, box)], seed=3)
    gray = cv2.resize(
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (320, 240), interpolation=cv2.INTER_AREA
    )
    recorder = Recorder()
    pipe = Pipeline(
        FaceDetector(),
        classifier,
        MoodTracker(config.TrackerConfig(), classifier.labels),
        [recorder],
    )
    update = pipe.process(Frame(image=image, t=0.0, index=0, gray=gray))
    assert len(update.faces) == 1 and iou(update.faces[0].box, box) > 0.5


def test_face_crops_that_cannot_be_written_are_logged_once_and_the_pipeline_goes_on(
    classifier, tmp_path, caplog
):
    """[debug] save_faces_dir removed mid-run (or turned into a file): every frame is still
    classified, one warning says crops are not being written, and crops resume when it can."""
    face = load_faces()[0][1]
    box = (200, 120, 170, 170)
    image = make_scene([(face, box)], seed=3)
    crops = tmp_path / "crops"
    pipe = Pipeline(FaceDetector(), classifier, MoodTracker(config.TrackerConfig(), classifier.labels),
                    [], str(crops))  # fmt: skip
    frame = lambda i: Frame(image=image, t=0.1 * i, index=i)  # noqa: E731
    assert len(pipe.process(frame(0)).faces) == 1
    assert len(list(crops.glob("*.png"))) == 1  # a Pipeline built alone makes its folder
    shutil.rmtree(crops)
    crops.write_text("now a file")  # no folder can be made here
    with caplog.at_level(logging.WARNING, logger="moodcam"):
        for i in range(1, 4):
            assert len(pipe.process(frame(i)).faces) == 1
    warnings = [r for r in caplog.records if "save_faces_dir" in r.getMessage()]
    assert len(warnings) == 1 and str(crops) in warnings[0].getMessage()
    crops.unlink()
    pipe.process(frame(4))
    assert len(list(crops.glob("*.png"))) == 1
