"""What the commands share: argument types, the one-line-error parser, the config with the
command line's flags applied, and small checks (an output file that can be written, settings that
expose a secret)."""

from __future__ import annotations

import argparse
import math
import os
import stat
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NoReturn

from moodcam.errors import EXIT_USAGE, MoodcamError, SinkError
from moodcam.files import FileRefused, check_output, printable, shown
from moodcam.urls import has_password, redact_url

# Larger than any camera sensor (the Pi's are 12 MP), small enough for a Pi's RAM. OpenCV's own
# limit is 2**30 pixels: a 1 MB PNG of zeros can claim 30000x30000 and take 2.7 GB to decode.
# OpenCV reads this variable once, when cv2 is imported: so here, before anything imports it.
MAX_IMAGE_PIXELS = 8192 * 8192
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

DEMO_CLIP = Path(__file__).resolve().parents[3] / "demo" / "clip.mp4"
EXIT_HELP = """exit status:
  0 ok   1 internal error   2 usage   3 bad config   4 bad model or card
  5 unreadable input (image, mood log)   6 camera or video source
  7 broker unreachable (doctor), or a file run whose MQTT events were not all delivered
  8 a sink or output file failed (GPIO, mood log, report --out)"""


def add_model_args(p: argparse.ArgumentParser) -> None:
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


class UsageError(MoodcamError):
    """A command line that cannot be run as given."""

    exit_code = EXIT_USAGE


def load_config(path: str | None):
    from moodcam import config

    return config.load(path)


@dataclass(frozen=True)
class ConfigFlags:
    """The flags that override the config file, as the commands that have them (run, doctor,
    playlist) parse them; a command without one leaves it at its default (no override)."""

    source: str | None = None
    realtime: bool = False
    clock: str | None = None
    log: str | None = None
    log_interval: float | None = None
    no_log: bool = False
    mqtt: str | None = None
    device_id: str | None = None
    quiet: bool = False
    model: str | None = None
    card: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> ConfigFlags:
        given = vars(args)
        return cls(**{f.name: given[f.name] for f in fields(cls) if f.name in given})


def apply_flags(cfg, args: argparse.Namespace):
    """Command-line flags (ConfigFlags) override the config file (and are validated like it)."""
    from moodcam import config

    flags = ConfigFlags.of(args)
    overrides: dict[str, dict] = {}

    def put(section: str, key: str, value) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    source = flags.source
    if source is not None and has_password(source):
        # ps shows a process's arguments to every local user for as long as it runs.
        raise UsageError(
            f"--source {redact_url(source)}: a password on the command line is visible to every "
            "local user (ps); give the URL without it and put the password in a file named by "
            "[source] password_file"
        )
    put("source", "uri", source)
    if flags.realtime:
        put("source", "realtime", True)
    put("source", "clock", flags.clock)
    if flags.log:  # naming a log file asks for one, as --mqtt asks for MQTT
        put("log", "enabled", True)
        put("log", "path", flags.log)
    put("log", "interval_s", flags.log_interval)
    if flags.no_log:
        put("log", "enabled", False)
    if flags.mqtt:
        put("mqtt", "enabled", True)
        put("mqtt", "url", flags.mqtt)
    put("device", "id", flags.device_id)
    if flags.quiet:
        put("stdout", "enabled", False)
    put("classifier", "model", flags.model)
    put("classifier", "card", flags.card)
    if not overrides:
        return cfg
    merged = {
        name: {f.name: getattr(getattr(cfg, name), f.name) for f in fields(getattr(cfg, name))}
        for name in config.SECTIONS
    }
    for section, values in overrides.items():
        merged[section].update(values)
    return config.from_dict(merged, f"{cfg.path} + command-line flags")


def classifier_for(cfg, args):
    from moodcam.classifier import Classifier

    model = args.model or cfg.classifier.model
    card = args.card or cfg.classifier.card or None
    return Classifier(model, card, threads=cfg.classifier.threads, runtime=cfg.classifier.runtime)


def one_line(e: object) -> str:
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


def check_writable(path: Path, what: str) -> None:
    """Refuse an output file that cannot be written, without creating it."""
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
