"""The `moodcam` command as a user runs it: real processes, real files, exit statuses and messages."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from demo.scenes import FACES_DIR, load_faces, make_scene
from moodcam import errors

ROOT = Path(__file__).resolve().parent.parent
MOODCAM = [sys.executable, "-m", "moodcam.cli"]
CARD = json.loads((ROOT / "models" / "moodcam.json").read_text())


def moodcam(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MOODCAM, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The user-facing error: exactly one `moodcam ...:` line, no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("moodcam ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_classify_no_detect_on_bundled_crops():
    crops = sorted(FACES_DIR.glob("*.png"))
    proc = moodcam("classify", "--no-detect", *map(str, crops))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(c) for c in crops]
    for r in records:
        assert set(r) == {"path", "box", "label", "scores"}
        assert r["box"] == [0, 0, 48, 48]
        assert list(r["scores"]) == CARD["labels"]
        assert r["label"] == max(r["scores"], key=r["scores"].get)
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=0.01)


def test_classify_agrees_with_the_classifier_library():
    from moodcam.classifier import Classifier

    clf = Classifier(ROOT / "models" / "moodcam.tflite")
    crop = sorted(FACES_DIR.glob("*.png"))[0]
    proc = moodcam("classify", "--no-detect", str(crop))
    record = json.loads(proc.stdout)
    label, scores = clf.classify(cv2.imread(str(crop), cv2.IMREAD_UNCHANGED))
    assert record["label"] == label
    assert record["scores"] == {k: round(v, 4) for k, v in scores.items()}


def test_classify_detects_faces_in_a_scene(tmp_path):
    faces = [f for _, f in load_faces()]
    boxes = [(60, 80, 170, 170), (380, 220, 150, 150)]
    scene = tmp_path / "scene.jpg"
    cv2.imwrite(str(scene), make_scene([(faces[0], boxes[0]), (faces[5], boxes[1])], seed=4))
    proc = moodcam("classify", str(scene))
    assert proc.returncode == 0, proc.stderr
    found = [json.loads(line)["box"] for line in proc.stdout.splitlines()]
    assert len(found) == 2
    from demo.scenes import iou

    for truth in boxes:
        assert max(iou(tuple(truth), tuple(b)) for b in found) > 0.5


def test_classify_bad_images_one_message_each_and_the_run_goes_on(tmp_path):
    good = sorted(FACES_DIR.glob("*.png"))[0]
    random_bytes = tmp_path / "noise.png"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    proc = moodcam(
        "classify", "--no-detect", str(random_bytes), str(empty), str(good), str(missing)
    )
    assert proc.returncode == errors.EXIT_INPUT
    assert "Traceback" not in proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and str(good) in proc.stdout
    for path, why in (
        (random_bytes, "not an image"),
        (empty, "empty file"),
        (missing, "no such image"),
    ):
        assert any(str(path) in ln and why in ln for ln in proc.stderr.splitlines()), proc.stderr


def test_classify_odd_images_still_classify(tmp_path):
    """Wrong channel counts and sizes are converted, not refused."""
    paths = []
    for name, img in {
        "bgra.png": np.full((60, 50, 4), 120, np.uint8),
        "tiny.png": np.full((3, 3), 90, np.uint8),
        "big.png": np.full((2000, 1500, 3), 200, np.uint8),
        "deep.png": np.full((48, 48), 40000, np.uint16),
    }.items():
        cv2.imwrite(str(tmp_path / name), img)
        paths.append(str(tmp_path / name))
    proc = moodcam("classify", "--no-detect", *paths)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 4


def test_run_bad_config_exit_3(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[mqtt]\nhots = 'x'\n")
    proc = moodcam("run", "--config", str(cfg), "--source", str(FACES_DIR))
    assert proc.returncode == errors.EXIT_CONFIG
    line = one_line_error(proc)
    assert str(cfg) in line and "[mqtt] hots" in line


def test_debug_adds_the_traceback_and_keeps_the_exit_status(tmp_path):
    """--debug, before or after the command, shows where an error came from; the status stays
    the error's own (a unit's RestartPreventExitStatus=3 4 must still hold under --debug)."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[mqtt]\nhots = 'x'\n")
    for args in (
        ["--debug", "run", "--config", str(cfg)],
        ["run", "--config", str(cfg), "--debug"],
    ):
        proc = moodcam(*args)
        assert proc.returncode == errors.EXIT_CONFIG, (args, proc.stderr)
        assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr, proc.stderr
        assert proc.stderr.rstrip().splitlines()[-1].startswith("moodcam run: ")
    proc = moodcam("run", "--model", str(tmp_path / "none.tflite"), "--no-log", "--debug")
    assert proc.returncode == errors.EXIT_MODEL and "Traceback" in proc.stderr


def test_run_broken_toml_exit_3(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[log\n")
    proc = moodcam("run", "--config", str(cfg))
    assert proc.returncode == errors.EXIT_CONFIG
    assert "not valid TOML" in one_line_error(proc)


def test_run_missing_model_exit_4(tmp_path):
    proc = moodcam(
        "run", "--model", str(tmp_path / "none.tflite"), "--source", str(FACES_DIR), "--no-log"
    )
    assert proc.returncode == errors.EXIT_MODEL
    assert "none.tflite" in one_line_error(proc)


def test_run_missing_and_unreadable_source_exit_6(tmp_path):
    proc = moodcam("run", "--source", str(tmp_path / "nope.mp4"), "--no-log")
    assert proc.returncode == errors.EXIT_SOURCE
    assert "nope.mp4" in one_line_error(proc)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).bytes(20000))
    proc = moodcam("run", "--source", str(junk), "--no-log")
    assert proc.returncode == errors.EXIT_SOURCE
    assert "junk.mp4" in one_line_error(proc)


def test_run_bad_mqtt_url_is_a_config_error(tmp_path):
    proc = moodcam("run", "--source", str(FACES_DIR), "--no-log", "--mqtt", "http://x")
    assert proc.returncode in (errors.EXIT_CONFIG, errors.EXIT_SINK)
    assert "MQTT URL" in one_line_error(proc)


def test_run_over_a_folder_writes_the_log(tmp_path):
    log = tmp_path / "mood.jsonl"
    proc = moodcam(
        "run", "--source", str(FACES_DIR), "--log", str(log), "--log-interval", "0", "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == len(list(FACES_DIR.glob("*.png")))
    assert oct(log.stat().st_mode & 0o777) == "0o640"
    for line in lines:
        rec = json.loads(line)
        assert set(rec) == {"v", "t", "faces", "mood", "valence", "arousal"}


def test_debug_save_faces_dir_gets_every_crop_and_an_unusable_one_exits_8(tmp_path):
    faces = [f for _, f in load_faces()]
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(2):
        cv2.imwrite(str(scenes / f"{i}.png"),
                    make_scene([(faces[i], (60, 80, 170, 170))], seed=i))  # fmt: skip
    crops, summary = tmp_path / "crops" / "new", tmp_path / "summary.json"
    cfg = tmp_path / "debug.toml"
    cfg.write_text(f"[debug]\nsave_faces_dir = {json.dumps(str(crops))}\n")
    proc = moodcam("run", "--config", str(cfg), "--source", str(scenes), "--no-log", "--quiet",
                   "--summary-json", str(summary))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    saved = sorted(crops.glob("*.png"))
    assert len(saved) == json.loads(summary.read_text())["faces"] == 2
    assert cv2.imread(str(saved[0]), cv2.IMREAD_UNCHANGED).shape == (48, 48)

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cfg.write_text(f"[debug]\nsave_faces_dir = {json.dumps(str(a_file / 'crops'))}\n")
    proc = moodcam("run", "--config", str(cfg), "--source", str(scenes), "--no-log")
    assert proc.returncode == errors.EXIT_SINK, proc.stderr
    line = one_line_error(proc)
    assert "[debug] save_faces_dir" in line and str(a_file / "crops") in line


def test_run_summary_json_counts_frames_and_sink_work(tmp_path):
    log, summary = tmp_path / "mood.jsonl", tmp_path / "summary.json"
    proc = moodcam("run", "--source", str(FACES_DIR), "--log", str(log), "--log-interval", "0",
                   "--quiet", "--summary-json", str(summary))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = json.loads(summary.read_text())
    lines = log.read_text().splitlines()
    assert s["frames"] == len(list(FACES_DIR.glob("*.png"))) == len(lines)
    moods = [None] + [json.loads(line)["mood"] for line in lines]
    assert s["changes"] == sum(a != b for a, b in itertools.pairwise(moods))
    assert s["sinks"]["MoodLogWriter"]["lines_written"] == len(lines)
    assert s["sinks"]["MoodLogWriter"]["lines_dropped"] == 0
    assert "ConsoleSink" not in s["sinks"]  # --quiet: no stdout sink


def test_run_log_path_that_can_never_be_a_file_exits_8_before_the_run(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    summary = tmp_path / "summary.json"
    proc = moodcam("run", "--source", str(FACES_DIR), "--log", str(folder), "--quiet",
                   "--summary-json", str(summary))  # fmt: skip
    assert proc.returncode == errors.EXIT_SINK
    line = one_line_error(proc)
    assert "[log] path" in line and str(folder) in line and "Is a directory" in line
    assert list(folder.iterdir()) == [] and not summary.exists()  # nothing ran


def test_log_flag_turns_on_a_log_the_config_turned_off(tmp_path):
    cfg, log = tmp_path / "c.toml", tmp_path / "mood.jsonl"
    cfg.write_text("[log]\nenabled = false\n")
    proc = moodcam("run", "--config", str(cfg), "--source", str(FACES_DIR), "--log", str(log),
                   "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(log.read_text().splitlines()) > 0
    both = moodcam("run", "--source", str(FACES_DIR), "--log", str(log), "--no-log")
    assert both.returncode == errors.EXIT_USAGE and "not allowed with" in both.stderr


def test_run_over_a_folder_of_undecodable_images_exits_6(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(np.random.default_rng(2).bytes(5000))
    (folder / "b.png").write_text("hello")
    proc = moodcam("run", "--source", str(folder), "--no-log", "--quiet")
    assert proc.returncode == errors.EXIT_SOURCE
    line = one_line_error(proc)
    assert str(folder) in line and "none of its 2 images can be read" in line


def test_summary_json_that_cannot_be_written_exits_8_before_the_run(tmp_path):
    log = tmp_path / "mood.jsonl"
    for bad, why in ((tmp_path / "no" / "s.json", "no such folder"), (tmp_path, "is a folder")):
        proc = moodcam("run", "--source", str(FACES_DIR), "--log", str(log), "--quiet",
                       "--summary-json", str(bad))  # fmt: skip
        assert proc.returncode == errors.EXIT_SINK
        line = one_line_error(proc)
        assert f"--summary-json {bad}: {why}" in line
        assert not log.exists()  # refused before the run, not after it


def test_report_on_a_folder_is_unreadable_input(tmp_path):
    proc = moodcam("report", str(tmp_path))
    assert proc.returncode == errors.EXIT_INPUT
    line = one_line_error(proc)
    assert str(tmp_path) in line and "cannot read the mood log" in line


def test_file_run_whose_mqtt_events_are_not_delivered_exits_7(tmp_path):
    # Nothing listens on port 1: every event stays queued and is given up after drain_s.
    cfg, summary = tmp_path / "c.toml", tmp_path / "summary.json"
    cfg.write_text("[mqtt]\ndrain_s = 0.5\n")
    proc = moodcam("run", "--config", str(cfg), "--source", str(ROOT / "demo" / "clip.mp4"),
                   "--no-log", "--quiet", "--mqtt", "mqtt://127.0.0.1:1",
                   "--summary-json", str(summary))  # fmt: skip
    assert proc.returncode == errors.EXIT_BROKER, proc.stderr
    dropped = json.loads(summary.read_text())["sinks"]["MqttSink"]["dropped"]
    assert dropped > 0  # the summary is still written: it says what was lost
    assert f"{dropped} mood event(s) of this run were not delivered to mqtt://127.0.0.1:1" in (
        proc.stderr
    )


def test_doctor_reports_each_part(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[log]\npath = "{tmp_path}/mood.jsonl"\n[mqtt]\nenabled = true\nurl = "mqtt://127.0.0.1:1"\n'
    )
    proc = moodcam("doctor", "--config", str(cfg), "--source", str(FACES_DIR), "--timeout", "2")
    out = proc.stdout
    assert proc.returncode == errors.EXIT_BROKER, out + proc.stderr
    assert any(ln.startswith("ok") and "model" in ln for ln in out.splitlines())
    assert any(ln.startswith("ok") and "camera" in ln for ln in out.splitlines())
    assert any(
        ln.startswith("FAIL") and "broker" in ln and "127.0.0.1:1" in ln for ln in out.splitlines()
    )
    assert any(ln.startswith("ok") and "disk" in ln for ln in out.splitlines())


def test_doctor_fails_a_log_path_that_is_a_folder(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[log]\npath = "{tmp_path}"\n')
    proc = moodcam("doctor", "--config", str(cfg), "--source", str(FACES_DIR), "--timeout", "2")
    assert proc.returncode == errors.EXIT_SINK, proc.stdout + proc.stderr
    assert any(
        ln.startswith("FAIL") and "disk" in ln and "[log] path is not a file" in ln
        for ln in proc.stdout.splitlines()
    )


def test_journal_lines_carry_their_priority(tmp_path):
    """Under systemd (JOURNAL_STREAM names stderr's device and inode) each line starts with its
    syslog priority, so `journalctl -p warning` shows moodcam's warnings and errors, and has no
    time of its own; the one-line error is <3>. Found by make vm-test: every line was priority 6."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[mqtt]\nhots = 'x'\n")
    err = tmp_path / "stderr.txt"

    def run(*args: str) -> list[str]:
        with err.open("w") as f:
            st = Path(err).stat()
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            subprocess.run([*MOODCAM, *args], stderr=f, stdout=subprocess.DEVNULL, cwd=ROOT,
                           env=env, timeout=120, check=False)  # fmt: skip
        return err.read_text().splitlines()

    lines = run("run", "--config", str(cfg))
    assert lines[-1].startswith("<3>moodcam run: ") and "[mqtt] hots" in lines[-1], lines
    lines = run("run", "--source", str(FACES_DIR), "--no-log", "--quiet")
    assert any(ln.startswith("<6>INFO moodcam") for ln in lines), lines
    assert all(ln.startswith("<") for ln in lines), lines  # no time stamps, no bare lines


def test_watchdog_abort_prints_every_threads_stack(tmp_path):
    """The unit sets PYTHONFAULTHANDLER=1 so that the watchdog's SIGABRT leaves the hung loop's
    stack in the journal; moodcam sends native libraries' fd 2 to /dev/null, and faulthandler,
    which writes to a descriptor, must follow sys.stderr to the real one (make vm-test)."""
    cfg = tmp_path / "loop.toml"
    cfg.write_text(f"[source]\nuri = '{FACES_DIR}'\nloop = true\nrealtime = true\nfps = 5.0\n")
    err = tmp_path / "stderr.txt"
    with err.open("w") as f:
        proc = subprocess.Popen([*MOODCAM, "run", "--config", str(cfg), "--no-log", "--quiet"],
                                stderr=f, stdout=subprocess.DEVNULL, cwd=ROOT,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"})  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "source " not in err.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGABRT)
            assert proc.wait(timeout=30) == -signal.SIGABRT
        finally:
            proc.kill()
    text = err.read_text()
    assert "Fatal Python error: Aborted" in text and "most recent call first" in text, text
