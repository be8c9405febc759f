"""The `moodcam` command: run, classify, doctor, bench.

Bad input of any kind ends in one line on stderr naming what and where, and a distinct exit
status (moodcam.errors); --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import math
import os
import stat
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np

from moodcam import __version__
from moodcam.errors import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    MoodcamError,
)
from moodcam.files import (
    MAX_IMAGE_BYTES,
    FileRefused,
    check_output,
    open_private,
    printable,
    read_regular,
    shown,
)
from moodcam.urls import has_password, redact_url

# Larger than any camera sensor (the Pi's are 12 MP), small enough for a Pi's RAM. OpenCV's own
# limit is 2**30 pixels: a 1 MB PNG of zeros can claim 30000x30000 and take 2.7 GB to decode.
# OpenCV reads this variable once, when cv2 is imported: so here, before anything imports it.
MAX_IMAGE_PIXELS = 8192 * 8192
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

DEMO_CLIP = Path(__file__).resolve().parent.parent / "demo" / "clip.mp4"
EXIT_HELP = """exit status:
  0 ok   1 internal error   2 usage   3 bad config   4 bad model or card
  5 unreadable input (image, mood log)   6 camera or video source
  7 broker unreachable (doctor), or a file run whose MQTT events were not all delivered
  8 a sink or output file failed (GPIO, mood log, report --out)"""


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="int8 .tflite model (default: the shipped models/moodcam.tflite)"
    )
    p.add_argument("--card", help="its model card (default: the model path with .json)")


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (-1, 0 and nan blamed the camera)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def nonempty(text: str) -> str:
    """An argparse type: a value that is not blank (`--log ""` meant ./mood.jsonl and `--mqtt ""`
    meant no MQTT, silently: a variable that expanded to nothing in a script or unit)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (leave the flag out for the default)")
    return text


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1 (--rounds 0 was an IndexError)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


class Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, like every other error of moodcam's
    (argparse prints the whole usage before its error line); exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        # An argument with a newline in it (found by the fuzzing harness) is shown escaped.
        self.exit(EXIT_USAGE, f"{self.prog}: {printable(message)} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows a flag's default where it has one of its own; a flag whose default is the config's
    (None here) or off (False) says so in its help instead of "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


RUN_DESCRIPTION = """Watch a camera, a video file or a folder of images: find faces, classify each, smooth them into
a mood, and hand every frame's mood to the sinks: a mood log (mood.jsonl in this folder unless
--no-log or the config's [log] path says otherwise), a line per mood change on stdout, and, when
the config or flags enable them, MQTT, LEDs and an MPD playlist. Flags override the config file.

A file or folder ends at its end (exit 0, after every queued MQTT message is sent); a camera runs
until SIGTERM or Ctrl-C. To try it without a camera: moodcam run --source demo/clip.mp4
--clock wall, then moodcam report mood.jsonl."""


def build_parser() -> argparse.ArgumentParser:
    from moodcam import config

    parser = Parser(  # its subparsers are Parsers too (argparse makes them of its own class)
        prog="moodcam",
        description="Privacy-first mood sensor.",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moodcam {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="log debug details and show tracebacks"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    defaults = config.Config()
    r = sub.add_parser(
        "run",
        help="the daemon: watch a camera or video, publish the mood",
        description=RUN_DESCRIPTION,
        epilog=EXIT_HELP,
    )
    r.add_argument("--config", type=nonempty, help="TOML config file (every key has a default)")
    r.add_argument(
        "--source",
        type=nonempty,
        help="auto | picamera2 | camera index | /dev/videoN or /dev/v4l/by-id/... | video file "
        f"(or file:// URL) | rtsp:// or http:// URL | image folder (default: [source] uri, "
        f"{defaults.source.uri})",
    )
    r.add_argument("--realtime", action="store_true",
                   help="pace a file source to real time (default: as fast as it can)")  # fmt: skip
    r.add_argument(
        "--clock",
        choices=("media", "wall"),
        help="a file's frame times: media (seconds into the file) or wall (the run's start plus "
        "media time: a log `moodcam report` can read) (default: [source] clock, "
        f"{defaults.source.clock})",
    )
    log_choice = r.add_mutually_exclusive_group()
    log_choice.add_argument("--log", type=nonempty, metavar="FILE",
                            help=f"mood log file, JSON Lines (default: [log] path, "
                            f"{defaults.log.path})")  # fmt: skip
    log_choice.add_argument("--no-log", action="store_true", help="write no mood log")
    r.add_argument("--log-interval", type=float, metavar="SECONDS",
                   help="a log line at least this often, and on every mood change; 0 = a line "
                   f"per frame (default: [log] interval_s, {defaults.log.interval_s:g})")  # fmt: skip
    r.add_argument("--mqtt", type=nonempty, metavar="URL",
                   help="publish to this broker: mqtt://[user@]host[:port] or mqtts://... "
                   "(default: [mqtt] url when [mqtt] enabled; off)")  # fmt: skip
    r.add_argument("--device-id", type=nonempty, help="id in MQTT topics and Home Assistant "
                   f"(default: [device] id, {defaults.device.id})")  # fmt: skip
    r.add_argument("--quiet", action="store_true", help="no mood lines on stdout")
    r.add_argument("--summary", action="store_true", help="print a summary when the source ends")
    r.add_argument(
        "--summary-json",
        metavar="FILE",
        help="write the run's counters (frames, faces, changes, each sink's stats) to FILE at exit",
    )
    _add_model_args(r)
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "doctor",
        help="check camera, model, GPIO, broker, disk and service: one line each",
        description="Check what the daemon needs, one line each (ok, FAIL or skip, and what to "
        "do): the model and its card, the camera, GPIO, the broker, the log's disk and the "
        "systemd service. Exit status: that of the first failure, 0 if none.",
    )
    d.add_argument("--config", type=nonempty, help="TOML config file")
    d.add_argument(
        "--source", type=nonempty, help="check this source instead of the configured one"
    )
    d.add_argument("--mqtt", type=nonempty, metavar="URL", help="check this broker")
    d.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for camera and broker",
    )
    _add_model_args(d)
    d.set_defaults(func=cmd_doctor)

    c = sub.add_parser(
        "classify",
        help="classify faces in images, one JSON line per face",
        description="Find the faces in each image and print one JSON line per face: "
        '{"path", "box", "label", "scores"}. Nothing is written to disk.',
    )
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    c.add_argument("--no-detect", action="store_true", help="each image is an already cropped face")
    c.add_argument("--config", help="TOML config (detector and classifier sections are used)")
    _add_model_args(c)
    c.set_defaults(func=cmd_classify)

    from moodcam import playlist_cli, report

    playlist_cli.register(sub)
    report.register(sub)

    b = sub.add_parser(
        "bench",
        help="measure model and pipeline speed, write the figures to a JSON file",
        description="Time the model's invoke (and the peer's, with --peer) and the pipeline "
        "over a clip (fast detector against full-frame Haar), and write the figures as JSON.",
    )
    _add_model_args(b)
    b.add_argument(
        "--peer", help="the fer package's emotion_model_quantized.tflite, timed side by side"
    )
    b.add_argument("--out", default="bench/results.json", help="where to write the figures")
    b.add_argument("--rounds", type=at_least_one, default=40, help="invoke rounds")
    b.add_argument("--clip", default=str(DEMO_CLIP), help="640x480 clip for the pipeline figures")
    b.add_argument(
        "--passes", type=int, default=3, help="passes over the clip per pipeline (0: skip)"
    )
    b.set_defaults(func=cmd_bench)
    # `moodcam run ... --debug` as well as `moodcam --debug run ...` (SUPPRESS: not given after
    # the command, the value before it stands).
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="as moodcam --debug")  # fmt: skip
        command.formatter_class = HelpFormatter  # every command shows its flags' defaults
    return parser


class UsageError(MoodcamError):
    """A command line that cannot be run as given."""

    exit_code = EXIT_USAGE


def _load_config(path: str | None):
    from moodcam import config

    return config.load(path)


def apply_flags(cfg, args: argparse.Namespace):
    """Command-line flags override the config file (and are validated like it)."""
    from moodcam import config

    overrides: dict[str, dict] = {}

    def put(section: str, key: str, value) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    source = getattr(args, "source", None)
    if source is not None and has_password(source):
        # ps shows a process's arguments to every local user for as long as it runs.
        raise UsageError(
            f"--source {redact_url(source)}: a password on the command line is visible to every "
            "local user (ps); give the URL without it and put the password in a file named by "
            "[source] password_file"
        )
    put("source", "uri", source)
    if getattr(args, "realtime", False):
        put("source", "realtime", True)
    put("source", "clock", getattr(args, "clock", None))
    if getattr(args, "log", None):  # naming a log file asks for one, as --mqtt asks for MQTT
        put("log", "enabled", True)
        put("log", "path", args.log)
    put("log", "interval_s", getattr(args, "log_interval", None))
    if getattr(args, "no_log", False):
        put("log", "enabled", False)
    if getattr(args, "mqtt", None):
        put("mqtt", "enabled", True)
        put("mqtt", "url", args.mqtt)
    put("device", "id", getattr(args, "device_id", None))
    if getattr(args, "quiet", False):
        put("stdout", "enabled", False)
    put("classifier", "model", getattr(args, "model", None))
    put("classifier", "card", getattr(args, "card", None))
    if not overrides:
        return cfg
    import dataclasses

    merged = {
        name: {
            f.name: getattr(getattr(cfg, name), f.name)
            for f in dataclasses.fields(getattr(cfg, name))
        }
        for name in config.SECTIONS
    }
    for section, values in overrides.items():
        merged[section].update(values)
    return config.from_dict(merged, f"{cfg.path} + command-line flags")


def _classifier(cfg, args):
    from moodcam.classifier import Classifier

    model = args.model or cfg.classifier.model
    card = args.card or cfg.classifier.card or None
    return Classifier(model, card, threads=cfg.classifier.threads, runtime=cfg.classifier.runtime)


def read_image(path: str) -> np.ndarray:
    """Decode an image file to an 8-bit OpenCV array; InputError naming the file if it cannot."""
    import cv2

    try:
        # /dev/zero or a FIFO would be read forever; a multi-gigabyte file is no photo.
        data = np.frombuffer(read_regular(path, MAX_IMAGE_BYTES, "an image"), np.uint8)
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such image file") from None
    except FileRefused as e:
        raise InputError(f"{shown(path)}: {e}") from None
    except OSError as e:
        raise InputError(f"{shown(path)}: cannot read: {e.strerror or e}") from None
    if data.size == 0:
        raise InputError(f"{shown(path)}: empty file")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        # OpenCV raises (rather than returning None) for some malformed headers and for images
        # above OPENCV_IO_MAX_IMAGE_PIXELS; its message spans lines and names C++ sources.
        if "MAX_IMAGE_PIXELS" in str(e):
            raise InputError(
                f"{shown(path)}: image too large (more than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
            ) from None
        raise InputError(f"{shown(path)}: not an image OpenCV can decode ({e.err})") from None
    if image is None or image.size == 0:
        raise InputError(f"{shown(path)}: not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:  # when cv2 came in before our limit
        raise InputError(
            f"{shown(path)}: image too large ({image.shape[1]}x{image.shape[0]}, more than "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
        )
    return _to_uint8(path, image)


def _to_uint8(path: str, image: np.ndarray) -> np.ndarray:
    """16-bit PNGs, float TIFFs and the like, scaled to 8 bits (the model sees 0..255)."""
    import cv2

    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.integer):
        return cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(np.iinfo(image.dtype).max)))
    if np.issubdtype(image.dtype, np.floating):
        # Float images are 0..1 by convention (OpenCV, TIFF); NaN becomes black.
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"{shown(path)}: unsupported pixel type {image.dtype}")


def cmd_classify(args: argparse.Namespace) -> int:
    import cv2

    from moodcam.preprocess import crop_face, to_gray

    cfg = _load_config(args.config)
    clf = _classifier(cfg, args)
    detector = None
    status = EXIT_OK
    for path in args.images:
        try:
            image = read_image(path)
            gray = to_gray(image)
            if args.no_detect:
                boxes = [(0, 0, gray.shape[1], gray.shape[0])]
                crops = [gray]
            else:
                if detector is None:
                    from moodcam.detector import FaceDetector

                    detector = FaceDetector(cfg.detector)
                if hasattr(detector, "reset"):
                    detector.reset()
                boxes = detector.detect(gray)
                crops = [crop_face(gray, b, clf.margin) for b in boxes]
                if not boxes:
                    print(f"moodcam classify: {shown(path)}: no face found", file=sys.stderr)
            results = [clf.classify(crop) for crop in crops]
        except (InputError, ValueError, cv2.error) as e:
            # One line per bad image, and on to the next: one corrupt file must not hide the rest.
            why = str(e) if isinstance(e, InputError) else f"{shown(path)}: {_one_line(e)}"
            print(f"moodcam classify: {_one_line(why)}", file=sys.stderr)
            status = EXIT_INPUT
            continue
        for box, (label, scores) in zip(boxes, results, strict=True):
            record = {
                "path": path,
                "box": [int(v) for v in box],
                "label": label,
                "scores": {k: round(v, 4) for k, v in scores.items()},
            }
            print(json.dumps(record), flush=True)
    return status


def _one_line(e: object) -> str:
    """An error message on one line: errors are one line each (OpenCV's span several)."""
    err = getattr(e, "err", None)  # cv2.error: the bare reason, without file and line
    text = str(err) if isinstance(e, Exception) and err else str(e)
    return " ".join(text.split())


def security_warnings(cfg) -> list[str]:
    """Settings that work but expose a secret: a password sent in clear text over the network,
    a password file every local user can read. Warnings, not errors: a lab may accept them."""
    import ipaddress
    from urllib.parse import urlsplit

    out = []
    m = cfg.mqtt
    if m.enabled and m.password_file:
        parts = urlsplit(m.url.strip())
        host = parts.hostname or ""
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if parts.scheme.lower() == "mqtt" and not local:
            out.append(
                f"{cfg.path}: [mqtt] url: the password travels to {host} in clear text "
                "(mqtt://); anyone on the network can read it: use mqtts://"
            )
    for section, on, path in (
        ("mqtt", m.enabled, m.password_file),
        ("playlist", cfg.playlist.enabled, cfg.playlist.password_file),
    ):
        try:
            mode = os.stat(path).st_mode if on and path else 0
        except OSError:
            continue  # the sink says so, naming the file
        if mode & stat.S_IROTH:
            out.append(
                f"{path}: [{section}] password_file is readable by every local user "
                "(chmod 0640, owner root, group moodcam)"
            )
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from moodcam.daemon import Daemon, SinkError
    from moodcam.notify import Notifier
    from moodcam.sources import SourceError

    cfg = apply_flags(_load_config(args.config), args)
    for warning in security_warnings(cfg):
        logging.getLogger("moodcam").warning("%s", warning)
    if args.summary_json:
        _check_writable(Path(args.summary_json), "--summary-json")  # before the run, not after
    daemon = Daemon(cfg, Notifier.from_env())
    try:
        code = daemon.run()
    except SourceError as e:
        if e.kind != "camera" or cfg.source.uri.strip() != "auto" or not DEMO_CLIP.is_file():
            raise
        # The default source found no camera: a newcomer's first run. Say how to try it anyway.
        clip = os.path.relpath(DEMO_CLIP)
        clip = clip if not clip.startswith("..") else str(DEMO_CLIP)
        raise SourceError(f"{e}; to try moodcam without a camera: moodcam run --source {clip}",
                          e.kind) from None  # fmt: skip
    if args.summary:
        s = daemon.summary
        shares = ", ".join(
            f"{m} {100 * n / max(1, s.frames):.0f}%" for m, n in sorted(s.moods.items())
        )
        print(
            f"summary: {s.frames} frames, {s.faces} faces, {s.changes} mood changes in {s.seconds:.1f} s "
            f"({s.frames / max(s.seconds, 1e-9):.0f} frames/s); mood share of frames: {shares or 'none'}"
        )
        if cfg.log.enabled:
            print(f"mood log: {cfg.log.path}")
    if args.summary_json:
        try:  # mood shares of the run: personal data, 0640 like the log
            with open_private(args.summary_json) as f:
                f.write((json.dumps(daemon.summary.to_json(), indent=2) + "\n").encode())
        except (OSError, FileRefused) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise SinkError(f"--summary-json {shown(args.summary_json)}: {why}") from None
    return code


def _check_writable(path: Path, what: str) -> None:
    """Refuse an output file that cannot be written, without creating it."""
    from moodcam.daemon import SinkError

    try:
        check_output(path)  # a device, FIFO or folder is never written over
    except FileRefused as e:
        raise SinkError(f"{what} {shown(path)}: {e}") from None
    except OSError as e:
        raise SinkError(f"{what} {shown(path)}: {e.strerror or e}") from None
    if not path.parent.is_dir():
        problem = f"no such folder {shown(path.parent)}"
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        problem = "not writable (permission)"
    else:
        return
    raise SinkError(f"{what} {shown(path)}: {problem}")


def cmd_doctor(args: argparse.Namespace) -> int:
    from moodcam.doctor import run_checks

    cfg = apply_flags(_load_config(args.config), args)
    for warning in security_warnings(cfg):
        print(f"warn  security {warning}")
    return run_checks(cfg, timeout=args.timeout)


def cmd_bench(args: argparse.Namespace) -> int:
    from moodcam import bench

    cfg = _load_config(None)
    clf = _classifier(cfg, args)
    peer = bench.PeerModel(args.peer) if args.peer else None
    results = {
        "machine": bench.machine(),
        "invoke": bench.bench_invoke(clf, peer, rounds=args.rounds),
    }
    clip = Path(args.clip)
    if args.passes > 0 and not clip.is_file():  # the figures must not vanish without a word
        raise InputError(f"--clip {clip}: no such video file (--passes 0 skips the pipeline)")
    _check_writable(Path(args.out), "--out")  # before minutes of measuring, not after
    if args.passes > 0:
        results["pipeline"] = bench.bench_pipeline(clf, cfg, clip, passes=args.passes)
    try:
        bench.write_results(results, Path(args.out))
    except OSError as e:
        from moodcam.daemon import SinkError

        raise SinkError(f"--out {args.out}: cannot write the figures: {e.strerror or e}") from None
    inv = results["invoke"]
    line = f"invoke median {inv['moodcam']['median_ms']:.3f} ms (1 thread, {clf.runtime})"
    if peer:
        line += (
            f"; peer {inv['peer']['median_ms']:.3f} ms; ratio {inv['moodcam_over_peer_median']:.2f}"
        )
    print(line)
    if "pipeline" in results:
        p = results["pipeline"]
        print(
            f"pipeline: fast {p['fast']['fps']} frames/s (recall {p['fast']['recall']}%), naive "
            f"{p['naive']['fps']} frames/s (recall {p['naive']['recall']}%): {p['speedup']}x"
        )
    print(f"wrote {args.out}")
    return EXIT_OK


class OneLineFormatter(logging.Formatter):
    """A log record is one line: characters that are not printable in its message (a newline in
    a file name, an escape sequence) are shown escaped, so a name cannot split or forge lines of
    the log (the journal reads it line by line). A traceback (--debug) keeps its lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.isprintable():
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
            record.msg, record.args = printable(message), None
        return super().format(record)


# Python's levels as syslog priorities, for the journal's <N> line prefix (sd-daemon(3)).
SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
                   logging.DEBUG: 7}  # fmt: skip


class JournalFormatter(OneLineFormatter):
    """Under systemd, stderr is the journal: each line starts with its syslog priority (`<4>`),
    so `journalctl -p warning` shows moodcam's warnings and errors, and without a time of its
    own (the journal stamps every line)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{SYSLOG_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def stderr_is_journal() -> bool:
    """systemd connected stderr to the journal: JOURNAL_STREAM names its device and inode."""
    try:
        dev, ino = (int(x) for x in os.environ.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def quiet_native_stderr() -> None:
    """Send what C and C++ libraries write to file descriptor 2 to /dev/null, and keep Python's
    sys.stderr (moodcam's one line, its log) on the real stderr through a copy of it.

    TFLite printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every start,
    OpenCV "[ WARN:0@0.04] global cap_v4l.cpp ... can't open camera by index" before moodcam's
    own line on a missing camera, libpng "libpng error: PNG input buffer is incomplete" for a
    truncated image: each says again, in a library's terms, what moodcam's one line says.
    --debug leaves them. One process-wide switch rather than a redirect around each call: the
    daemon's other threads write their log meanwhile."""
    try:
        sys.stderr.flush()
        real = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, AttributeError, ValueError):  # no stderr to begin with: nothing to quiet
        return
    encoding, errors = sys.stderr.encoding, sys.stderr.errors
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = open(real, "w", buffering=1, encoding=encoding, errors=errors)  # noqa: SIM115
    # faulthandler (PYTHONFAULTHANDLER=1 in the unit) writes to the descriptor it was given,
    # 2 by default, now /dev/null: the stacks the watchdog's SIGABRT prints go to the real one.
    if faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and not args.debug:  # the command itself, not a caller in the same process
        quiet_native_stderr()
    handler = logging.StreamHandler(sys.stderr)
    journal = stderr_is_journal()
    handler.setFormatter(
        JournalFormatter("%(levelname)s %(name)s: %(message)s")
        if journal
        else OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, handlers=[handler])
    error_prefix = "<3>" if journal else ""
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MoodcamError as e:
        # --debug adds the traceback and keeps the exit status: systemd's
        # RestartPreventExitStatus=3 4 must still see a bad config or model under --debug.
        if args.debug:
            traceback.print_exc()
        print(f"{error_prefix}moodcam {args.command}: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        line = f"moodcam {args.command}: internal error: {e.__class__.__name__}: {_one_line(e)}"
        print(error_prefix + (line if args.debug else f"{line} (run with --debug for the traceback)"),
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
