"""Inputs from outside, as issue 27 found them: each case crashed, hung, ate memory or answered
wrongly before. Every command here runs as a user runs it (a subprocess) and must end with one
line naming what and where, a distinct exit status, and no traceback or signal death."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodcam import errors

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
MODEL = ROOT / "models" / "moodcam.tflite"
CARD = ROOT / "models" / "moodcam.json"
CLIP = ROOT / "demo" / "clip.mp4"
NOT_UTF8 = os.fsdecode(b"face\xff.png")  # a name from a camera's FAT card
SHOWN = "face\\xff.png"  # how messages print it


def moodcam(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        cwd=cwd,
        timeout=timeout,
    )
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("moodcam ")]


def face() -> Path:
    return sorted(FACES.glob("*.png"))[0]


# --- 1. names that are not UTF-8 ------------------------------------------------------------


def test_a_video_name_that_is_not_utf8_is_refused_not_a_segfault(tmp_path: Path) -> None:
    clip = tmp_path / os.fsdecode(b"clip\xff.mp4")
    shutil.copy(CLIP, clip)
    for extra in (("run", "--no-log"), ("doctor", "--timeout", "2")):
        proc = moodcam(extra[0], "--source", str(clip), *extra[1:], cwd=tmp_path)
        assert proc.returncode == errors.EXIT_SOURCE, proc.stderr
        assert "clip\\xff.mp4: its name is not valid UTF-8" in proc.stderr + proc.stdout


def test_a_folder_with_a_name_that_is_not_utf8_reads_every_image(tmp_path: Path) -> None:
    """The folder run reads the file by its bytes, so the image is used, not lost."""
    folder = tmp_path / "stills"
    folder.mkdir()
    shutil.copy(face(), folder / "a.png")
    shutil.copy(face(), folder / NOT_UTF8)
    summary = tmp_path / "summary.json"
    proc = moodcam("run", "--source", str(folder), "--no-log", "--quiet",
                   "--summary-json", str(summary), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(summary.read_text())["frames"] == 2
    assert json.loads(summary.read_text())["skipped"] == 0


# --- 3. special and huge files as config, card, model, report input -------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("run", "--config", "{}"), errors.EXIT_CONFIG),
        (("classify", "--no-detect", "--card", "{}", "FACE"), errors.EXIT_MODEL),
        (("classify", "--no-detect", "--model", "{}", "FACE"), errors.EXIT_MODEL),
        (("report", "{}"), errors.EXIT_INPUT),
    ],
)
def test_special_files_are_refused_by_kind_before_a_byte_is_read(
    special: str, args: tuple[str, ...], status: int, fifo: Path, tmp_path: Path
) -> None:
    """/dev/zero used to be read until MemoryError (2-3 GB); a FIFO would block for ever."""
    path = str(fifo) if special == "fifo" else special
    argv = [a.replace("{}", path).replace("FACE", str(face())) for a in args]
    proc = moodcam(*argv, cwd=tmp_path, timeout=60)
    assert proc.returncode == status, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    kind = "(a FIFO)" if special == "fifo" else "(a device)"
    assert f"{path}: " in lines[0] and f"not a regular file {kind}" in lines[0], lines[0]


def test_a_huge_config_is_refused_by_size(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(2**31)  # sparse
    proc = moodcam("doctor", "--config", str(big), cwd=tmp_path)
    assert proc.returncode == errors.EXIT_CONFIG, proc.stderr
    assert error_lines(proc) == [
        f"moodcam doctor: {big}: file too large for a config file (2048 MiB)"
    ]


def test_a_mood_log_line_longer_than_any_record_is_skipped_in_bounded_memory() -> None:
    from moodcam import logreader, records

    data = b'{"v": 1}\n' + b"x" * (3 * records.MAX_LINE) + b'\n{"v": 2}\n{"v": 3'
    lines = list(logreader.complete_lines(io.BytesIO(data), chunk=4096))
    assert lines == [b'{"v": 1}', None, b'{"v": 2}', None]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80).map(lambda b: b.replace(b"a", b"\n")), st.integers(1, 40),
       st.integers(4, 30))  # fmt: skip
def test_log_lines_are_split_as_bytes_split_them(data: bytes, chunk: int, limit: int) -> None:
    from moodcam import logreader, records

    parts = data.split(b"\n")
    want = [p if len(p) <= limit else None for p in parts[:-1]]
    want += [None] if parts[-1] else []
    old, records.MAX_LINE = records.MAX_LINE, limit
    try:
        assert list(logreader.complete_lines(io.BytesIO(data), chunk=chunk)) == want
    finally:
        records.MAX_LINE = old


# --- 2. report periods are bounded ----------------------------------------------------------


def limited(gib: float) -> None:
    """preexec_fn: the child may use `gib` of address space (a Pi's memory, roughly)."""
    import resource

    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.fixture
def small_log(tmp_path: Path) -> Path:
    """Ten minutes of 1 Hz lines on 2024-03-05 (UTC)."""
    log = tmp_path / "mood.jsonl"
    t0 = 1709625600  # 2024-03-05T08:00:00Z
    line = {"faces": [], "mood": "happy", "valence": 0.5, "arousal": 0.1, "v": 1}
    log.write_text("".join(json.dumps({"t": t0 + i, **line}) + "\n" for i in range(600)))
    return log


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "report", *args, "--tz", "UTC"],
        capture_output=True, text=True, cwd=cwd, timeout=60,
        preexec_fn=lambda: limited(1.5),
    )  # fmt: skip
    assert proc.returncode >= 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("--to", "9999-12-31"), "'9999-12-31' is outside 2000-01-01..2099-12-31"),
        (("--from", "1900-01-01", "--format", "png", "--out", "x.png"), "'1900-01-01' is outside"),
        (("--from", "2000-01-01"), "is 8831 days; a report covers at most 3660"),
        (("--from", "2016-12-01", "--format", "png", "--out", "x.png"),
         "is 2652 days; a PNG chart covers at most 366"),
        (("--from", "2020-01-01", "--to", "2031-01-01"), "is 4019 days; a report"),
    ],
)  # fmt: skip
def test_a_mistyped_year_is_a_usage_error_not_gigabytes(
    small_log: Path, args: tuple[str, ...], why: str
) -> None:
    """--from 1900 grew past 1.8 GB for a PNG; --to 9999-12-31 was an OverflowError."""
    proc = report(str(small_log), *args, cwd=small_log.parent)
    assert proc.returncode == errors.EXIT_USAGE, proc.stderr
    assert why in proc.stderr.splitlines()[-1], proc.stderr
    assert not (small_log.parent / "x.png").exists()


def test_the_records_used_are_those_in_the_period(small_log: Path) -> None:
    proc = report(str(small_log), "--from", "2024-03-06", "--format", "json", cwd=small_log.parent)
    assert proc.returncode == 0, proc.stderr
    lines = json.loads(proc.stdout)["lines"]
    assert (lines["records"], lines["used"]) == (600, 0)


def test_a_log_of_a_newer_schema_says_so(tmp_path: Path) -> None:
    log = tmp_path / "mood.jsonl"
    log.write_text('{"t": 1709625600, "faces": [], "mood": null, "v": 2}\n' * 3)
    proc = report(str(log), cwd=tmp_path)
    assert proc.returncode == errors.EXIT_INPUT, proc.stderr
    assert error_lines(proc) == [
        f"moodcam report: {log}: its records are of mood log schema v2, newer than this moodcam "
        "reads (v1): report with the moodcam that wrote them, or upgrade"
    ]


# --- 5. the mood log of a file run ----------------------------------------------------------


@pytest.mark.parametrize("special", ["/dev/full", "/dev/null"])
def test_a_device_named_as_the_log_is_refused_at_start(tmp_path: Path, special: str) -> None:
    """--log /dev/full dropped every line and exited 0."""
    proc = moodcam("run", "--source", str(FACES), "--log", special, "--quiet", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SINK, proc.stderr
    assert error_lines(proc) == [
        f"moodcam run: (defaults) + command-line flags: [log] path {special}: not a regular "
        "file (a device) (--no-log: no log)"
    ]


def test_the_log_folder_is_never_created(tmp_path: Path) -> None:
    """--log /nonexistentdir/x.jsonl created /nonexistentdir at the root."""
    log = tmp_path / "nonexistentdir" / "x.jsonl"
    proc = moodcam("run", "--source", str(FACES), "--log", str(log), "--quiet", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SINK, proc.stderr
    assert error_lines(proc) == [
        f"moodcam run: (defaults) + command-line flags: [log] path {log.parent}: no such folder "
        "(moodcam creates the log file, not its folder)"
    ]
    assert not log.parent.exists()


def test_a_file_run_whose_log_lost_lines_exits_8(tmp_path: Path) -> None:
    """A full disk mid-run (here RLIMIT_FSIZE: writes past 256 bytes fail with EFBIG): the run goes
    on, as a live daemon must, and its status says the log is incomplete."""
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))

    log = tmp_path / "mood.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "run", "--source", str(FACES), "--log", str(log),
         "--log-interval", "0", "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, preexec_fn=small_files,
    )  # fmt: skip
    assert proc.returncode == errors.EXIT_SINK, proc.stderr
    assert "line(s) of this run were not written" in proc.stderr, proc.stderr
    assert "write failed" in proc.stderr
    assert 0 < log.stat().st_size <= 256


# --- 7. every file that holds personal data is private --------------------------------------


def test_every_personal_data_file_is_0640_or_stricter_whatever_the_umask(tmp_path: Path) -> None:
    """The mood log (an old one left 0666 too), its rotated files, the face crops and their
    folder, the run's summary and every report format: written under umask 0."""
    import stat

    log = tmp_path / "mood.jsonl"
    log.write_text("")
    log.chmod(0o666)
    faces = tmp_path / "crops"
    config = tmp_path / "moodcam.toml"
    config.write_text(
        f'[log]\nmax_bytes = 1024\nbackups = 2\n[debug]\nsave_faces_dir = "{faces}"\n'
    )
    shutil.copy(CLIP, tmp_path / "clip.mp4")

    def umask0() -> None:
        os.umask(0)
        limited(2)

    def run(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "moodcam.cli", *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300, preexec_fn=umask0)  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    run("run", "--config", str(config), "--source", "clip.mp4", "--log", str(log),
        "--log-interval", "0", "--quiet", "--summary-json", "summary.json")  # fmt: skip
    # Stamped as a live log's would be (media time cannot be reported), for the reports.
    live = tmp_path / "live.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    live.write_text("".join(json.dumps(r | {"t": 1709625600 + r["t"]}) + "\n" for r in lines))
    written = {"log": log, "summary": tmp_path / "summary.json", "crops": faces}
    written |= {f"rotated {p.name}": p for p in tmp_path.glob("mood.jsonl.*")}
    written |= {f"crop {p.name}": p for p in list(faces.iterdir())[:20]}
    for fmt in ("text", "csv", "json", "fhir", "png"):
        out = tmp_path / f"report.{fmt}"
        run("report", str(live), "--tz", "UTC", "--format", fmt, "--out", str(out))
        written[f"report {fmt}"] = out
    assert any(k.startswith("rotated") for k in written) and any(
        k.startswith("crop ") for k in written
    ), sorted(written)
    modes = {k: stat.S_IMODE(p.stat().st_mode) for k, p in written.items()}
    assert {k: oct(m) for k, m in modes.items() if m & 0o027} == {}


# --- 8. camera credentials ------------------------------------------------------------------


def test_a_camera_password_on_the_command_line_is_refused_saying_where_it_goes(
    tmp_path: Path,
) -> None:
    """It was masked in logs but visible in ps for the life of the process."""
    for command in ("run", "doctor"):
        proc = moodcam(command, "--source", "rtsp://admin:secret@127.0.0.1:9/cam", cwd=tmp_path)
        assert proc.returncode == errors.EXIT_USAGE, proc.stderr
        assert "secret" not in proc.stderr
        assert "[source] password_file" in error_lines(proc)[0]


def test_a_camera_password_comes_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moodcam import sources
    from moodcam.config import SourceConfig

    secret = tmp_path / "camera-password"
    secret.write_text("p@ss:w/rd\n")
    opened: list[str] = []
    monkeypatch.setattr(sources, "CaptureSource", lambda target, cfg, **_: opened.append(target))
    cfg = SourceConfig(uri="rtsp://admin@cam.local/stream", password_file=str(secret))
    sources.open_source(cfg)
    assert opened == ["rtsp://admin:p%40ss%3Aw%2Frd@cam.local/stream"]
    with pytest.raises(sources.SourceError, match="needs a user in the URL"):
        sources.open_source(SourceConfig(uri="rtsp://cam.local/s", password_file=str(secret)))


# --- 9, 10. numbers and files that were blamed on the wrong thing ---------------------------


@pytest.mark.parametrize(
    ("args", "status", "why"),
    [
        (("doctor", "--timeout", "-1"), errors.EXIT_USAGE, "not a positive number of seconds"),
        (("doctor", "--timeout", "nan"), errors.EXIT_USAGE, "not a positive number of seconds"),
        (("doctor", "--timeout", "0"), errors.EXIT_USAGE, "not a positive number of seconds"),
        (("bench", "--rounds", "0"), errors.EXIT_USAGE, "not a whole number of at least 1"),
        (("bench", "--rounds", "1", "--clip", "/nonexistent.mp4"), errors.EXIT_INPUT,
         "--clip /nonexistent.mp4: no such video file"),
        (("bench", "--rounds", "1", "--passes", "0", "--out", "/proc/x.json"), errors.EXIT_SINK,
         "--out /proc/x.json: cannot write the figures"),
    ],
)  # fmt: skip
def test_bad_numbers_and_paths_get_their_own_status(
    tmp_path: Path, args: tuple[str, ...], status: int, why: str
) -> None:
    proc = moodcam(*args, cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert why in proc.stderr.splitlines()[-1], proc.stderr


# --- 11. camera indexes and file URLs -------------------------------------------------------


def test_a_camera_index_too_big_for_opencv_is_a_source_error(tmp_path: Path) -> None:
    """It was an internal error: OpenCV's overload resolution failed on the int."""
    for uri in ("99999999999999999999", "2147483648"):
        proc = moodcam("run", "--source", uri, "--no-log", cwd=tmp_path)
        assert proc.returncode == errors.EXIT_SOURCE, proc.stderr
        (line,) = error_lines(proc)
        assert f"camera {uri}: no such camera" in line and "internal" not in line, line


def test_a_file_url_opens_its_file(tmp_path: Path) -> None:
    """`file:///…/clip.mp4` was read as the relative path `file:/…/clip.mp4`."""
    from urllib.parse import quote

    from moodcam.config import SourceConfig
    from moodcam.sources import FolderSource, SourceError, VideoFileSource, open_source

    folder = tmp_path / "my faces"  # a space: percent-encoded in the URL
    folder.mkdir()
    shutil.copy(face(), folder / "0.png")
    url = "file://" + quote(str(folder))
    with open_source(SourceConfig(uri=url)) as src:
        assert isinstance(src, FolderSource) and src.read() is not None
    with open_source(SourceConfig(uri=f"file://localhost{CLIP}")) as src:
        assert isinstance(src, VideoFileSource)
    with pytest.raises(SourceError, match="not on this machine"):
        open_source(SourceConfig(uri="file://nas.local/clip.mp4"))
    proc = moodcam("run", "--source", url, "--log", str(tmp_path / "m.jsonl"), "--summary",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == errors.EXIT_OK, proc.stderr


# --- 12. a folder of unrelated stills -------------------------------------------------------


def test_every_still_of_a_folder_gets_a_full_detection(tmp_path: Path) -> None:
    """A face tracked in one picture was searched for near the same place in the next, an
    unrelated picture, and that picture's face was lost: every other still had no face. Each
    still must find what a full detection of every frame (redetect_every = 1) finds."""
    import cv2

    from demo.scenes import load_faces, make_scene

    folder = tmp_path / "stills"
    folder.mkdir()
    faces = load_faces()
    boxes = [(40, 60, 170, 170), (420, 250, 170, 170)]  # far apart: no window search finds both
    for i in range(8):
        scene = make_scene([(faces[i % len(faces)][1], boxes[i % 2])], seed=i)
        cv2.imwrite(str(folder / f"{i}.png"), scene)
    every_frame = tmp_path / "full.toml"
    every_frame.write_text("[detector]\nredetect_every = 1\n")

    def faces_per_still(*config: str) -> list[int]:
        log = tmp_path / "mood.jsonl"
        log.unlink(missing_ok=True)
        proc = moodcam("run", "--source", str(folder), "--log", str(log), "--log-interval", "0",
                       *config, cwd=tmp_path)  # fmt: skip
        assert proc.returncode == errors.EXIT_OK, proc.stderr
        return [len(json.loads(line)["faces"]) for line in log.read_text().splitlines()]

    reference = faces_per_still("--config", str(every_frame))
    assert len(reference) == 8 and sum(n > 0 for n in reference) >= 6, reference
    assert faces_per_still() == reference


# --- 9. doctor's service line ---------------------------------------------------------------


def test_doctors_service_line_is_one_line_when_systemd_is_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemctl's two-line "not booted with systemd" error was pasted into the skip line."""
    from moodcam import doctor

    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'System has not been booted with systemd as init system "
                    "(PID 1). Can'\\''t operate.' >&2\necho 'Failed to connect to bus: Host is "
                    "down' >&2\nexit 1\n")  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    line = doctor.check_service().line()
    assert "\n" not in line and line.startswith("skip") and "booted with systemd" in line, line
    fake.write_text("#!/bin/sh\necho inactive\nexit 3\n")
    line = doctor.check_service().line()
    assert line.startswith("skip") and "moodcam.service is inactive" in line, line


# --- 14. empty flags and negative durations -------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--log", ""),  # was ./mood.jsonl
        ("run", "--mqtt", ""),  # was: no MQTT
        ("run", "--mqtt", " "),
        ("doctor", "--mqtt", ""),
        ("playlist", "--log", ""),
        ("playlist", "--max-runtime", "-1"),  # ended at once with exit 0
        ("playlist", "--max-runtime", "nan"),
    ],
)
def test_empty_flags_and_negative_durations_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    proc = moodcam(*args, "--config", str(tmp_path / "none.toml"), cwd=tmp_path)
    assert proc.returncode == errors.EXIT_USAGE, proc.stderr
    assert f"argument {args[1]}" in proc.stderr.splitlines()[-1], proc.stderr
    assert list(tmp_path.iterdir()) == []  # no ./mood.jsonl


# --- 15, 16. the newcomer's path ------------------------------------------------------------


def test_a_file_run_with_wall_clock_times_can_be_reported(tmp_path: Path) -> None:
    """After `make demo` the next step, `moodcam report` of its log, was refused: media time."""
    import time

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, p in enumerate(sorted(FACES.glob("*.png"))[:3]):
        shutil.copy(p, folder / f"{i}.png")
    log = tmp_path / "mood.jsonl"
    before = time.time()
    proc = moodcam("run", "--source", str(folder), "--clock", "wall", "--log", str(log),
                   "--log-interval", "0", "--quiet", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == errors.EXIT_OK, proc.stderr
    times = [json.loads(line)["t"] for line in log.read_text().splitlines()]
    # The run's start plus media time (3 images at [source] fps 30).
    assert len(times) == 3 and before - 0.001 <= times[0] <= time.time()  # t: 3 decimals
    assert [t - times[0] for t in times] == pytest.approx([0.0, 1 / 30, 2 / 30], abs=0.002)
    proc = moodcam("report", str(log), "--tz", "UTC", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_OK, proc.stderr
    assert "3 records used" in proc.stdout
    media = tmp_path / "media.jsonl"
    moodcam("run", "--source", str(folder), "--log", str(media), "--quiet", cwd=tmp_path)
    assert json.loads(media.read_text().splitlines()[0])["t"] == 0.0  # the default stays


def test_make_demo_ends_by_showing_a_report() -> None:
    out = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True).stdout
    commands = [ln for ln in out.splitlines() if "moodcam " in ln]
    assert "--clock wall" in commands[0] and "moodcam report" in commands[-1], commands


def test_every_flag_has_help_and_run_help_says_what_it_does_and_its_defaults() -> None:
    import argparse

    from moodcam.commands import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings or a.dest}" for name, command in sub.choices.items()
               for a in command._actions if not a.help]  # fmt: skip
    assert missing == []
    assert all(command.description for command in sub.choices.values())
    text = moodcam("run", "--help").stdout
    assert "Watch a camera" in text and "--no-log" in text
    assert "(default: [log] path, mood.jsonl)" in " ".join(text.split())
    assert "(default: None)" not in text


def test_no_runtime_or_opencv_chatter_unless_debug(tmp_path: Path) -> None:
    """Every command printed TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate" line, a
    missing camera two OpenCV "[ WARN:0@0.04] global cap_v4l.cpp" lines before moodcam's, and a
    truncated PNG libpng's error (found by tests/fuzz.py)."""
    proc = moodcam("classify", "--no-detect", str(face()), cwd=tmp_path)
    assert proc.returncode == errors.EXIT_OK and proc.stderr == "", proc.stderr
    proc = moodcam("run", "--source", "7", "--no-log", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SOURCE
    assert "XNNPACK" not in proc.stderr and "WARN" not in proc.stderr, proc.stderr
    # libpng's "libpng error: PNG input buffer is incomplete" beside moodcam's line.
    import cv2

    from demo.scenes import load_faces, make_scene

    (tmp_path / "pics").mkdir()
    _, png = cv2.imencode(".png", make_scene([(load_faces()[0][1], (200, 120, 170, 170))]))
    (tmp_path / "pics" / "a.png").write_bytes(png.tobytes()[: len(png) // 2])
    proc = moodcam("run", "--source", "pics", "--no-log", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SOURCE
    assert "libpng" not in proc.stderr and len(error_lines(proc)) == 1, proc.stderr
    proc = moodcam("--debug", "classify", str(face()), cwd=tmp_path)
    assert "XNNPACK" in proc.stderr  # --debug shows what the runtime says


def test_no_camera_found_suggests_the_demo_clip(tmp_path: Path) -> None:
    if any(Path("/dev").glob("video*")):
        pytest.skip("this machine has a camera")
    proc = moodcam("run", "--no-log", cwd=ROOT)
    assert proc.returncode == errors.EXIT_SOURCE, proc.stderr
    assert error_lines(proc)[-1].endswith("without a camera: moodcam run --source demo/clip.mp4")


def test_the_readme_first_screen_says_what_to_type_next() -> None:
    """It spoke of chroots, qemu and MOODCAM_DATA before what a user types, and never said the
    command is .venv/bin/moodcam."""
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    for term in (
        "make demo",
        ".venv/bin/moodcam report",
        ".venv/bin/moodcam run",
        "The command is",
    ):
        assert term in first, term
    for later in ("chroot", "qemu", "MOODCAM_DATA"):
        assert later not in first, later


def test_a_usage_error_is_one_line() -> None:
    """argparse printed its whole usage (five lines for run) before the error."""
    for args in (("run", "--log", ""), ("frob",), (), ("report", "--format", "x"), ("bench", "\n")):
        proc = moodcam(*args)
        assert proc.returncode == errors.EXIT_USAGE
        (line,) = proc.stderr.splitlines()
        assert line.startswith("moodcam") and line.endswith("--help)"), line


# --- found by tests/fuzz.py -----------------------------------------------------------------


@pytest.mark.parametrize("headline", [None, [], "77 %"])
def test_doctor_reads_a_card_whose_headline_is_not_an_object(
    tmp_path: Path, headline: object
) -> None:
    """The headline is for show; doctor took it for an object: internal error (AttributeError)."""
    card = json.loads(CARD.read_text())
    card["headline"] = headline
    (tmp_path / "card.json").write_text(json.dumps(card))
    proc = moodcam("doctor", "--card", "card.json", "--source", str(FACES), "--timeout", "1",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == errors.EXIT_OK, proc.stderr + proc.stdout
    assert "ok    model" in proc.stdout and "matches its card" in proc.stdout


def test_a_file_name_with_a_newline_cannot_split_a_log_line(tmp_path: Path) -> None:
    """The folder source's warning named pics/a<newline>b.png verbatim: two lines in the log."""
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a\nb.png").write_bytes(b"")
    (tmp_path / "pics" / "c\x1b[2J.png").write_bytes(b"")
    proc = moodcam("run", "--source", "pics", "--no-log", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SOURCE
    warnings = [ln for ln in proc.stderr.splitlines() if " WARNING " in ln]
    assert any("pics/a\\nb.png" in w for w in warnings), proc.stderr
    assert any("pics/c\\x1b[2J.png" in w for w in warnings), proc.stderr
    assert all(ln.startswith(("20", "moodcam run:")) for ln in proc.stderr.splitlines())


def test_classify_names_odd_files_as_every_other_message_does(tmp_path: Path) -> None:
    """classify printed a name that is not UTF-8 as \\udcff (elsewhere \\xff) and a newline in a
    name as a line break."""
    (tmp_path / "a\nb.png").write_bytes(b"x")
    proc = moodcam("classify", "a\nb.png", NOT_UTF8, cwd=tmp_path)
    assert proc.returncode == errors.EXIT_INPUT
    assert proc.stderr.splitlines() == [
        "moodcam classify: a\\nb.png: not an image OpenCV can decode",
        f"moodcam classify: {SHOWN}: no such image file",
    ]


def test_report_out_with_a_name_at_the_length_limit(tmp_path: Path, small_log: Path) -> None:
    """The temporary file's name was --out's plus a suffix: past 255 bytes, an internal error."""
    name = "r" * 250 + ".txt"
    proc = moodcam("report", str(small_log), "--tz", "UTC", "--out", name, cwd=tmp_path)
    assert proc.returncode == errors.EXIT_OK, proc.stderr
    assert (tmp_path / name).stat().st_size > 0
    proc = moodcam("report", str(small_log), "--tz", "UTC", "--out", "r" * 300, cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SINK, proc.stderr
    assert "cannot write the report: File name too long" in error_lines(proc)[0]


def test_outputs_never_replace_or_re_mode_a_device_or_fifo(tmp_path: Path, small_log: Path) -> None:
    """Found by the fuzzing harness, as root: `report --out /dev/null` replaced /dev/null with a
    regular file (write a temporary file, rename it over the target), and the 0640 of private
    outputs was applied to /dev/full. A private stand-in for /dev/null is used here."""
    targets = {"fifo": tmp_path / "fifo"}
    os.mkfifo(targets["fifo"])
    if os.geteuid() == 0:
        targets["device"] = tmp_path / "null"
        os.mknod(targets["device"], 0o20666, os.makedev(1, 3))  # a character device, 1:3
        targets["device"].chmod(0o666)
    kinds = {name: os.stat(p) for name, p in targets.items()}
    for name, target in targets.items():
        for args in (
            ("report", str(small_log), "--tz", "UTC", "--out", str(target)),
            ("run", "--source", str(FACES), "--no-log", "--quiet", "--summary-json", str(target)),
            ("bench", "--rounds", "1", "--passes", "0", "--out", str(target)),
        ):
            proc = moodcam(*args, cwd=tmp_path, timeout=60)
            assert proc.returncode == errors.EXIT_SINK, (args, proc.stderr)
            assert (
                f"not a regular file (a {'FIFO' if name == 'fifo' else 'device'})"
                in (error_lines(proc)[-1])
            )
            st = os.stat(target)
            assert (st.st_mode, st.st_rdev) == (kinds[name].st_mode, kinds[name].st_rdev), args


def test_playlist_refuses_a_mood_log_that_is_no_file(tmp_path: Path) -> None:
    """Found by the fuzzing harness: playlist --log /dev/zero read until MemoryError."""
    os.mkfifo(tmp_path / "fifo")
    for log, kind in (("/dev/zero", "a device"), (str(tmp_path / "fifo"), "a FIFO")):
        proc = moodcam("playlist", "--log", log, "--mpd", "127.0.0.1:1", "--max-runtime", "1",
                       cwd=tmp_path, timeout=30)  # fmt: skip
        assert proc.returncode == errors.EXIT_INPUT, proc.stderr
        assert error_lines(proc)[-1].endswith(f"{log}: not a regular file ({kind})")


@pytest.mark.parametrize("scale", [None, "0.0039", True, [1]])
def test_a_card_whose_scale_is_not_a_number_is_refused(tmp_path: Path, scale: object) -> None:
    """Found by the fuzzing harness: "scale": null was an internal error (TypeError)."""
    card = json.loads(CARD.read_text())
    card["input"]["scale"] = scale
    (tmp_path / "card.json").write_text(json.dumps(card))
    proc = moodcam("classify", "--no-detect", "--card", "card.json", str(face()), cwd=tmp_path)
    assert proc.returncode == errors.EXIT_MODEL, proc.stderr
    assert "input scale is" in error_lines(proc)[0] and "card says" in error_lines(proc)[0]


def test_a_fifo_as_the_video_is_refused_not_a_hang(tmp_path: Path) -> None:
    """Found by the fuzzing harness: run --source FIFO blocked in FFmpeg's open, before the daemon
    listens for SIGTERM (a stop killed it)."""
    os.mkfifo(tmp_path / "clip.mp4")
    proc = moodcam("run", "--source", "clip.mp4", "--no-log", cwd=tmp_path, timeout=30)
    assert proc.returncode == errors.EXIT_SOURCE, proc.stderr
    assert error_lines(proc)[-1] == "moodcam run: clip.mp4: not a regular file (a FIFO)"


def test_a_source_name_too_long_is_a_source_error(tmp_path: Path) -> None:
    """Found by the fuzzing harness: a 300-byte name was an internal error (ENAMETOOLONG)."""
    proc = moodcam("run", "--source", "x" * 300 + ".png", "--no-log", cwd=tmp_path)
    assert proc.returncode == errors.EXIT_SOURCE, proc.stderr
    assert error_lines(proc)[-1].endswith(".png: File name too long")


def test_a_report_out_that_is_no_file_is_refused_before_the_log_is_read(
    tmp_path: Path, small_log: Path
) -> None:
    """Found by the fuzzing harness: the "skipped N torn lines" note came first, then the
    refusal: two lines for one error."""
    log = tmp_path / "torn.jsonl"
    log.write_bytes(small_log.read_bytes() + b'{"v":1,"t":17\n')
    os.mkfifo(tmp_path / "fifo")
    proc = moodcam("report", str(log), "--tz", "UTC", "--format", "json", "--out", "fifo",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == errors.EXIT_SINK
    assert proc.stderr.splitlines() == [
        "moodcam report: fifo: cannot write the report: not a regular file (a FIFO)"
    ]
