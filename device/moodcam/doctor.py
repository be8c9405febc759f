"""`moodcam doctor`: one line per part — camera, model, GPIO, broker, disk, service — ok or what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from moodcam.config import Config
from moodcam.errors import (
    EXIT_BROKER,
    EXIT_CONFIG,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SINK,
    EXIT_SOURCE,
    MoodcamError,
)

MIN_FREE_BYTES = 50 * 1024 * 1024


class Check:
    """A check's outcome: `ok`, or a failure with the exit status it maps to."""

    def __init__(self, name: str, ok: bool | None, detail: str, exit_code: int = EXIT_OK) -> None:
        self.name, self.ok, self.detail, self.exit_code = name, ok, detail, exit_code

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{mark}  {self.name:<8} {self.detail}"


def check_model(cfg: Config) -> Check:
    from moodcam.classifier import Classifier

    try:
        clf = Classifier(
            cfg.classifier.model,
            cfg.classifier.card or None,
            cfg.classifier.threads,
            cfg.classifier.runtime,
        )
    except MoodcamError as e:
        return Check("model", False, f"{e}", EXIT_MODEL)
    headline = clf.card.get("headline")  # reporting only: a card may lack it or mangle it
    acc = headline.get("int8_privatetest_accuracy") if isinstance(headline, dict) else None
    extra = f", card: {acc}% on FER2013 PrivateTest" if acc is not None else ""
    return Check(
        "model",
        True,
        f"{clf.model_path} matches its card ({', '.join(clf.labels)}); "
        f"runtime {clf.runtime}{extra}",
    )


def check_source(cfg: Config, timeout: float) -> Check:
    from moodcam.sources import open_source

    try:
        source = open_source(cfg.source)
    except MoodcamError as e:
        return Check("camera", False, f"{e}", EXIT_SOURCE)
    except (
        Exception
    ) as e:  # sources raise their own errors; anything else is still a camera problem
        return Check("camera", False, f"{cfg.source.uri}: {e}", EXIT_SOURCE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = source.read()
            if frame is not None:
                h, w = frame.image.shape[:2]
                return Check(
                    "camera",
                    True,
                    f"{getattr(source, 'description', cfg.source.uri)} delivers {w}x{h}",
                )
        return Check(
            "camera", False, f"{cfg.source.uri}: no frame within {timeout:g} s", EXIT_SOURCE
        )
    except Exception as e:
        return Check("camera", False, f"{cfg.source.uri}: {e}", EXIT_SOURCE)
    finally:
        source.close()


def check_gpio(cfg: Config) -> Check:
    if not cfg.leds.enabled:
        return Check("gpio", None, "LEDs disabled in [leds]")
    from moodcam.sinks.leds import LedError, LedSink

    try:
        sink = LedSink(cfg.leds)
    except LedError as e:
        return Check("gpio", False, f"{e}", EXIT_SINK)
    sink.close()
    pins = cfg.leds.rgb_pins if cfg.leds.mode == "rgb" else list(cfg.leds.mood_pins.values())
    return Check("gpio", True, f"pins {', '.join(f'GPIO{p}' for p in pins)} free ({cfg.leds.mode})")


def check_broker(cfg: Config, timeout: float) -> Check:
    if not cfg.mqtt.enabled:
        return Check("broker", None, "MQTT disabled in [mqtt]")
    from moodcam.comms.mqtt import probe_broker
    from moodcam.urls import redact_url

    try:
        error = probe_broker(cfg.mqtt, cfg.device.id, timeout)
    except ValueError as e:
        return Check("broker", False, f"{e}", EXIT_CONFIG)
    if error:
        return Check(
            "broker",
            False,
            f"{error} (the daemon keeps retrying; check [mqtt] url and that the broker runs)",
            EXIT_BROKER,
        )
    return Check("broker", True, f"{redact_url(cfg.mqtt.url)} accepts moodcam's credentials")


def check_daemon(cfg: Config, timeout: float) -> Check | None:
    """What a running daemon reports about its camera: the retained ``P/D/health`` and
    ``P/D/availability`` (see moodcam.daemon). None when MQTT is off; a skip when nothing could
    be read."""
    if not cfg.mqtt.enabled:
        return None
    import json

    from moodcam.comms.mqtt import device_topic, read_retained

    health_topic = device_topic(cfg.mqtt, cfg.device.id, "health")
    availability_topic = device_topic(cfg.mqtt, cfg.device.id, "availability")
    try:
        got = read_retained(
            cfg.mqtt, [health_topic, availability_topic], cfg.device.id, timeout=min(timeout, 2.0)
        )
    except ValueError:
        return None  # check_broker already said what is wrong with the settings
    try:
        health = json.loads(got[health_topic])
        state, since, detail = health["camera"], float(health["since"]), health.get("detail", "")
    except (KeyError, ValueError, TypeError):
        return Check(
            "daemon",
            None,
            f"no camera health on {health_topic}: no daemon with this "
            "device id has published one, or the broker's ACL does not let this user "
            "read it (README, Threat model: the ACL)",
        )
    online = got.get(availability_topic) == b"online"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    what = f"daemon {'online' if online else 'offline'}, camera {state.upper()} since {when}"
    if state == "ok":
        return Check("daemon", True if online else None, what)
    # degraded: the running daemon is reconnecting; lost: it gave up and exited.
    return Check("daemon", False, f"{what}: {detail}", EXIT_SOURCE)


def check_disk(cfg: Config) -> Check:
    if not cfg.log.enabled:
        return Check("disk", None, "mood log disabled in [log]")
    path = Path(cfg.log.path).absolute()
    folder = path.parent
    if not folder.is_dir():
        return Check(
            "disk",
            False,
            f"{folder}: log folder does not exist (create it, or set [log] path)",
            EXIT_SINK,
        )
    if path.exists() and not path.is_file():
        return Check("disk", False, f"{path}: [log] path is not a file", EXIT_SINK)
    if path.exists() and not os.access(path, os.W_OK):
        return Check("disk", False, f"{path}: cannot write the mood log (permission)", EXIT_SINK)
    probe = folder / f".moodcam-doctor-{time.time_ns()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return Check("disk", False, f"{folder}: cannot write ({e.strerror})", EXIT_SINK)
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return Check("disk", False, f"{folder}: only {free // 2**20} MiB free", EXIT_SINK)
    return Check(
        "disk",
        True,
        f"{path}: writable, {free // 2**20} MiB free "
        f"(rotates at {cfg.log.max_bytes // 2**20} MiB x {cfg.log.backups})",
    )


def check_service() -> Check:
    if not shutil.which("systemctl"):
        return Check("service", None, "no systemd here")
    try:
        out = subprocess.run(
            ["systemctl", "is-active", "moodcam"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("service", None, f"systemctl did not answer: {one_line(str(e))}")
    state = one_line(out.stdout)
    if not state:
        # No state at all: systemd is not running here (a container, a chroot), and systemctl
        # says so over several lines; the first names why.
        return Check(
            "service", None, f"systemctl cannot tell: {one_line(out.stderr) or 'no answer'}"
        )
    return Check(
        "service",
        state == "active" or None,
        f"moodcam.service is {state}"
        + ("" if state == "active" else " (sudo systemctl enable --now moodcam)"),
    )


def one_line(text: str) -> str:
    """The first non-blank line of `text`, stripped: a check's detail is one line."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def run_checks(cfg: Config, timeout: float = 5.0, out: Callable[[str], None] = print) -> int:
    """Print one line per check; exit status of the first failure, 0 when nothing failed."""
    out(f"ok    config   {cfg.path}")
    broker: list[Check] = []

    def broker_check() -> Check:
        broker.append(check_broker(cfg, timeout))
        return broker[0]

    checks: list[Callable[[], Check | None]] = [
        lambda: check_model(cfg),
        lambda: check_source(cfg, timeout),
        lambda: check_gpio(cfg),
        broker_check,
        # Only once the broker answered: the daemon's retained camera health.
        lambda: check_daemon(cfg, timeout) if broker and broker[0].ok else None,
        lambda: check_disk(cfg),
        check_service,
    ]
    code = EXIT_OK
    for check in checks:
        result = check()
        if result is None:
            continue
        out(result.line())
        sys.stdout.flush()
        if result.ok is False and code == EXIT_OK:
            code = result.exit_code
    return code
