"""The daemon's configuration: one TOML file, every key with a default, validated at start.

Each section is a dataclass; a field's metadata may carry `choices`, `min` and `max`. Unknown
sections and keys, wrong types and out-of-range values raise ConfigError naming file and key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodcam.errors import EXIT_CONFIG, MoodcamError
from moodcam.files import FileRefused, read_text
from moodcam.labels import FER2013_CLASSES, MOOD_COLORS

PACKAGE_MODELS = Path(__file__).resolve().parents[2] / "models"


def default_model() -> Path:
    """The shipped model: models/ beside the package in a checkout (an editable install), or
    beside the venv where systemd/install.sh puts it (PREFIX/venv, PREFIX/models), so that
    `moodcam classify` or `bench` without --config finds it on the Pi too."""
    candidates = [
        PACKAGE_MODELS / "moodcam.tflite",
        Path(sys.prefix).parent / "models" / "moodcam.tflite",
    ]
    return next((p for p in candidates if p.is_file()), candidates[0])


DEFAULT_MODEL = default_model()


class ConfigError(MoodcamError):
    """A bad configuration value; the message names the file and the key."""

    exit_code = EXIT_CONFIG


def _opt(
    default: Any,
    *,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    nonempty: bool = False,
    doc: str = "",
) -> Any:
    meta = {"choices": choices, "min": min, "max": max, "nonempty": nonempty, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(
            default_factory=lambda: typing.cast(Any, type(default))(default), metadata=meta
        )
    return field(default=default, metadata=meta)


@dataclass
class DeviceConfig:
    id: str = _opt(
        "moodcam",
        nonempty=True,
        doc="device id: MQTT topics moodcam/<id>/..., Home Assistant unique ids; 1-64 of A-Z a-z "
        "0-9 _ -",
    )
    name: str = _opt("moodcam", nonempty=True, doc="human-readable name shown in Home Assistant")


@dataclass
class SourceConfig:
    uri: str = _opt(
        "auto",
        nonempty=True,
        doc="auto | picamera2 | camera index (0) | /dev/videoN or /dev/v4l/by-id/... | video file | URL | image folder",
    )
    width: int = _opt(640, min=16, max=7680, doc="camera frame width asked for (files keep theirs)")
    height: int = _opt(480, min=16, max=4320, doc="camera frame height asked for")
    fps: float = _opt(
        30.0,
        min=0.1,
        max=240.0,
        doc="camera frame rate; for image folders, frames per second of media time",
    )
    realtime: bool = _opt(
        False, doc="pace a file source to real time instead of as fast as possible"
    )
    reconnect_max_s: float = _opt(
        30.0, min=0.1, max=3600.0, doc="longest wait between reconnect attempts"
    )
    password_file: str = _opt(
        "",
        doc="file holding the password of a camera URL (rtsp://user@host/...): never in the URL",
    )
    loop: bool = _opt(
        False,
        doc="play a file or folder source again from the start when it ends (a shop-window "
        "demo, a soak test); media time keeps counting up; cameras ignore it",
    )
    clock: str = _opt(
        "media",
        choices=("media", "wall"),
        doc="a file or folder's frame times: media (seconds into the file: a run is "
        "reproducible) or wall (the run's start plus media time, the wall clock with realtime: "
        "a log moodcam report can read); cameras always use the wall clock",
    )


@dataclass
class DetectorConfig:
    cascade: str = _opt(
        "", doc="Haar cascade XML; empty = OpenCV's haarcascade_frontalface_default.xml"
    )
    detect_width: int = _opt(
        640, min=64, max=7680, doc="frames wider than this are downscaled to it for detection"
    )
    scale_factor: float = _opt(
        1.1, min=1.01, max=2.0, doc="Haar scale step: smaller finds more sizes, more slowly"
    )
    min_neighbors: int = _opt(
        5, min=1, max=50, doc="Haar overlapping hits a face needs: higher, fewer false faces"
    )
    min_face: int = _opt(40, min=8, max=4000, doc="smallest face in full-frame pixels")
    redetect_every: int = _opt(
        10, min=1, max=1000, doc="full-frame detection every N frames; tracking between"
    )
    idle_every: int = _opt(
        3,
        min=1,
        max=1000,
        doc="with no face tracked, a full-frame detection every N frames (a face walking in waits at most N)",
    )
    lost_frames: int = _opt(
        3,
        min=0,
        max=100,
        doc="a tracked face not found is searched for again this many frames before a full detection",
    )
    search_margin: float = _opt(
        0.5, min=0.0, max=3.0, doc="search window around a tracked face, in face sizes"
    )
    max_faces: int = _opt(5, min=1, max=50, doc="at most this many faces per frame (largest first)")


@dataclass
class ClassifierConfig:
    model: str = _opt(str(DEFAULT_MODEL), nonempty=True, doc="int8 .tflite model")
    card: str = _opt("", doc="model card JSON; empty = the model path with .json")
    runtime: str = _opt(
        "auto",
        choices=("auto", "ai-edge-litert", "tflite-runtime", "tensorflow"),
        doc="TFLite interpreter; auto = the first of these that imports",
    )
    threads: int = _opt(1, min=1, max=16, doc="interpreter threads (one face is small: 1 is best)")


@dataclass
class TrackerConfig:
    smoothing_s: float = _opt(
        0.4, min=0.0, max=60.0, doc="time constant of the exponential smoothing of scores"
    )
    hysteresis: float = _opt(
        0.1, min=0.0, max=1.0, doc="a new mood must lead the current one by this much"
    )
    hold_s: float = _opt(
        0.3, min=0.0, max=60.0, doc="and keep leading for this long before the mood switches"
    )
    face_timeout_s: float = _opt(
        1.0, min=0.0, max=600.0, doc="a face unseen this long is forgotten"
    )
    dominant: str = _opt(
        "largest",
        choices=("largest", "most_confident", "majority"),
        doc="which face decides the device mood",
    )
    dominant_margin: float = _opt(
        3.0,
        min=1.0,
        max=100.0,
        doc="largest: the face the mood follows keeps it until another face is this many times "
        "its area (1 = always the largest this frame)",
    )
    min_confidence: float = _opt(
        0.35,
        min=0.0,
        max=1.0,
        doc="a face gets a label (and a say in the mood) once its smoothed top score reaches "
        "this: the model scores a patch of clutter the cascade took for a face near chance",
    )


@dataclass
class LogConfig:
    enabled: bool = _opt(True, doc="write the mood log (JSON Lines)")
    path: str = _opt(
        "mood.jsonl", nonempty=True, doc="mood log file; relative = to the working folder"
    )
    interval_s: float = _opt(
        10.0,
        min=0.0,
        max=86400.0,
        doc="seconds between periodic lines (0 = a line per processed frame); every mood change "
        "is logged at once whatever this says",
    )
    max_bytes: int = _opt(
        10_000_000, min=1024, max=10**12, doc="rotate when the file passes this size"
    )
    # With the default interval these defaults hold over a year of lines (a test in
    # tests/test_moodlog.py measures it): a mood history should not vanish after a week.
    backups: int = _opt(80, min=0, max=10000, doc="rotated files kept (the oldest is deleted)")
    fsync: bool = _opt(
        True, doc="fsync each write, so a power cut loses at most the line being written"
    )


@dataclass
class MqttConfig:
    enabled: bool = _opt(False, doc="publish moods over MQTT")
    url: str = _opt(
        "mqtt://localhost:1883", nonempty=True, doc="mqtt://[user@]host[:port] or mqtts://..."
    )
    username: str = _opt("", doc="broker user when the URL names none (mqtt://user@host wins)")
    password_file: str = _opt("", doc="file holding the password (never the password itself)")
    ca_file: str = _opt("", doc="CA bundle for mqtts://; empty = system CAs")
    cert_file: str = _opt("", doc="client certificate for mqtts:// brokers that ask for one")
    key_file: str = _opt("", doc="its private key")
    topic_prefix: str = _opt("moodcam", nonempty=True, doc="topics are <prefix>/<device id>/...")
    discovery: bool = _opt(True, doc="publish Home Assistant discovery")
    discovery_prefix: str = _opt(
        "homeassistant", nonempty=True, doc="Home Assistant's discovery prefix"
    )
    keepalive_s: int = _opt(
        30,
        min=5,
        max=3600,
        doc="MQTT keepalive: a ping after this long without traffic; a dead link shows within 2x",
    )
    queue_size: int = _opt(10000, min=1, max=10**7, doc="messages held while the broker is away")
    reconnect_max_s: float = _opt(
        2.0,
        min=1.0,
        max=3600.0,
        doc="longest wait between broker reconnects (doubling from 1 s): a broker that is back "
        "is used within this long, also while a file run drains its queue at exit",
    )
    drain_s: float = _opt(
        5.0,
        min=0.0,
        max=3600.0,
        doc="at exit, how long to wait for the broker to take queued messages (the systemd unit "
        "allows 10 s to stop); a file run that leaves events undelivered exits with status 7",
    )


@dataclass
class LedConfig:
    enabled: bool = _opt(False, doc="drive mood LEDs through gpiozero")
    mode: str = _opt(
        "rgb", choices=("rgb", "per_mood"), doc="one RGB LED, or one LED per mood (mood_pins)"
    )
    rgb_pins: list = _opt([17, 27, 22], doc="BCM pins of the red, green and blue legs")
    common_anode: bool = _opt(False, doc="LEDs wired to 3V3, the pin sinking the current")
    mood_pins: dict = _opt(
        {"angry": 5, "happy": 6, "sad": 13, "neutral": 19}, doc="per_mood: mood -> BCM pin"
    )
    colors: dict = _opt(
        MOOD_COLORS | {"none": "#000000"},
        doc="rgb: mood -> #rrggbb; none = nobody in view",
    )
    brightness: float = _opt(0.5, min=0.0, max=1.0, doc="PWM duty at full colour, 0..1")


@dataclass
class StdoutConfig:
    enabled: bool = _opt(True, doc="print mood changes to stdout (the journal under systemd)")
    every_frame: bool = _opt(False, doc="print every frame, not only mood changes")


@dataclass
class PlaylistConfig:
    enabled: bool = _opt(False, doc="switch MPD playlists with the mood")
    host: str = _opt(
        "localhost", nonempty=True, doc="MPD host, or an absolute path to its unix socket"
    )
    port: int = _opt(6600, min=1, max=65535, doc="MPD port (ignored for a socket path)")
    password_file: str = _opt("", doc="file holding MPD's password, if it has one")
    playlists: dict = _opt(
        {"angry": "calm", "happy": "upbeat", "sad": "comfort", "neutral": "focus"},
        doc="mood -> MPD stored playlist name",
    )
    hold_s: float = _opt(
        20.0, min=0.0, max=86400.0, doc="a mood must hold this long before the music follows"
    )
    min_interval_s: float = _opt(
        300.0, min=0.0, max=86400.0, doc="at most one switch per this interval"
    )
    resume_paused: bool = _opt(
        False, doc="switch even while the user has paused or stopped playback"
    )
    retry_s: float = _opt(10.0, min=0.5, max=3600.0, doc="wait between attempts to reach MPD")


@dataclass
class DebugConfig:
    save_faces_dir: str = _opt(
        "", doc="write each face crop here (off by default: frames never leave RAM)"
    )


@dataclass
class WebConfig:
    bind: str = _opt(
        "127.0.0.1",
        nonempty=True,
        doc="address `moodcam web` listens on (an IP address); any but loopback (127.x, ::1) "
        "needs token_file",
    )
    port: int = _opt(8080, min=1, max=65535, doc="its TCP port")
    token_file: str = _opt(
        "",
        doc="file holding the access token (the password a browser asks for; any user name): "
        "required to listen beyond this machine, used on loopback too when set",
    )
    max_failures: int = _opt(
        5,
        min=1,
        max=1000,
        doc="wrong tokens one address may send within a minute; after that it is refused "
        "(429) until a minute has passed",
    )


@dataclass
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    leds: LedConfig = field(default_factory=LedConfig)
    stdout: StdoutConfig = field(default_factory=StdoutConfig)
    playlist: PlaylistConfig = field(default_factory=PlaylistConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    web: WebConfig = field(default_factory=WebConfig)
    path: str = "(defaults)"  # where it was read from, for messages


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "path"}


# Control characters (NUL, newlines, ESC...) have no place in ids, topics, paths or names: a NUL
# path crashes open(), a newline forges log lines, a NUL or wildcard breaks an MQTT topic.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
GPIO_PINS = range(54)  # BCM numbers of the Pi's SoC GPIO lines
DEVICE_ID_MAX = 64
DEVICE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{DEVICE_ID_MAX}}}")
# An MQTT topic is at most 65535 bytes; prefixes far shorter keep every topic well inside it.
TOPIC_PREFIX_MAX = 256
_SHOW_MAX = 60


def _name(key: object) -> str:
    """A section or key as TOML would spell it: quoted when not bare, so a message stays one line."""
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else json.dumps(text)


def _show(value: Any) -> str:
    """repr(value), shortened: a 10**100 or a megabyte string must not flood the one-line error."""
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _check_value(where: str, f: dataclasses.Field, value: Any) -> Any:
    # Annotations are strings here (from __future__ import annotations).
    type_name = f.type if isinstance(f.type, str) else f.type.__name__
    kind = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}[
        type_name
    ]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {_show(value)} is out of range") from None
    if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(
            f"{where}: expected {kind.__name__}, got {type(value).__name__} {_show(value)}"
        )
    meta = f.metadata
    if kind is float and not math.isfinite(value):
        # NaN compares false with every bound, so without this it would pass any min/max.
        raise ConfigError(f"{where}: expected a finite number, got {value}")
    if kind is str:
        if _CONTROL.search(value):
            raise ConfigError(f"{where}: {_show(value)} contains a control character")
        if meta.get("nonempty") and not value.strip():
            raise ConfigError(f"{where}: must not be empty")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(
            f"{where}: {_show(value)} is not one of {', '.join(map(str, meta['choices']))}"
        )
    if meta.get("min") is not None and value < meta["min"]:
        raise ConfigError(f"{where}: {_show(value)} is below the minimum {meta['min']}")
    if meta.get("max") is not None and value > meta["max"]:
        raise ConfigError(f"{where}: {_show(value)} is above the maximum {meta['max']}")
    return value


def from_dict(data: dict[str, Any], path: str = "(defaults)") -> Config:
    """Build a Config from parsed TOML, rejecting unknown sections/keys and bad values."""
    cfg = Config(path=path)
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{_name(section)}]; known: {', '.join(SECTIONS)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        obj = getattr(cfg, section)
        fields = {f.name: f for f in dataclasses.fields(obj)}
        for key, value in values.items():
            where = f"{path}: [{section}] {_name(key)}"
            if key not in fields:
                raise ConfigError(f"{where}: unknown key; known: {', '.join(fields)}")
            setattr(obj, key, _check_value(where, fields[key], value))
    _check_cross(cfg)
    return cfg


def _is_pin(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in GPIO_PINS


def _check_mqtt_url(p: str, url: str) -> None:
    """[mqtt] url, checked at start by the parser the sink uses (moodcam.urls)."""
    from moodcam.urls import parse_mqtt_url

    try:
        parse_mqtt_url(url)
    except ValueError as e:
        raise ConfigError(f"{p}: [mqtt] url: {e}") from None


def _check_cross(cfg: Config) -> None:
    p = cfg.path
    pins = cfg.leds.rgb_pins
    if len(pins) != 3 or not all(_is_pin(v) for v in pins) or len(set(pins)) != 3:
        raise ConfigError(
            f"{p}: [leds] rgb_pins: expected three different BCM pin numbers "
            f"({GPIO_PINS.start}-{GPIO_PINS.stop - 1}), got {_show(pins)}"
        )
    for mood, pin in cfg.leds.mood_pins.items():
        if mood not in FER2013_CLASSES or not _is_pin(pin):
            raise ConfigError(
                f"{p}: [leds] mood_pins: {_name(mood)} = {_show(pin)} is not "
                f"<mood> = <BCM pin number {GPIO_PINS.start}-{GPIO_PINS.stop - 1}>"
            )
    if len(set(cfg.leds.mood_pins.values())) != len(cfg.leds.mood_pins):
        raise ConfigError(f"{p}: [leds] mood_pins: two moods share a pin: {cfg.leds.mood_pins}")
    for mood, color in cfg.leds.colors.items():
        if mood not in (*FER2013_CLASSES, "none"):
            raise ConfigError(
                f"{p}: [leds] colors: {_name(mood)} is not a mood name "
                f"({', '.join(FER2013_CLASSES)} or none)"
            )
        if not isinstance(color, str) or not _COLOR.fullmatch(color):
            raise ConfigError(
                f"{p}: [leds] colors: {_name(mood)} = {_show(color)} is not a #rrggbb colour"
            )
    for mood, name in cfg.playlist.playlists.items():
        if (
            mood not in FER2013_CLASSES
            or not isinstance(name, str)
            or not name.strip()
            or _CONTROL.search(name)
        ):
            raise ConfigError(
                f"{p}: [playlist] playlists: {_name(mood)} = {_show(name)} is not "
                '<mood> = "<MPD playlist name>"'
            )
    if not DEVICE_ID.fullmatch(cfg.device.id):
        # Home Assistant ignores, without a word, discovery configs whose ids hold anything
        # else (küche.1, living.room), and a 70,000-character topic killed paho's thread.
        raise ConfigError(
            f"{p}: [device] id: {_show(cfg.device.id)} must be 1 to {DEVICE_ID_MAX} of "
            "A-Z a-z 0-9 _ - (Home Assistant's rule for the ids it discovers)"
        )
    for key in ("topic_prefix", "discovery_prefix"):
        value = getattr(cfg.mqtt, key)
        # Wildcards cannot be published to, and a leading $ is the broker's own ($SYS).
        if any(c in value for c in "#+") or value.startswith("$") or "//" in value:
            raise ConfigError(
                f"{p}: [mqtt] {key}: {_show(value)} must be an MQTT topic with no # + "
                "or empty levels, not starting with $"
            )
        if len(value.encode("utf-8")) > TOPIC_PREFIX_MAX:
            raise ConfigError(
                f"{p}: [mqtt] {key}: {len(value)} characters; at most {TOPIC_PREFIX_MAX} bytes"
            )
    _check_mqtt_url(p, cfg.mqtt.url)
    _check_web(p, cfg.web)


def _check_web(p: str, web: WebConfig) -> None:
    """[web] bind is an IP address; beyond loopback only with a token (the dashboard shows who
    was in the room and how they seemed to feel)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(web.bind)
    except ValueError:
        raise ConfigError(
            f"{p}: [web] bind: {_show(web.bind)} is not an IP address (127.0.0.1, 0.0.0.0, ::)"
        ) from None
    if not address.is_loopback and not web.token_file:
        raise ConfigError(
            f"{p}: [web] bind: {web.bind} listens beyond this machine: set [web] token_file "
            "to a file holding an access token"
        )


def load(path: str | os.PathLike | None) -> Config:
    """Read and validate a TOML config file; None gives the defaults."""
    if path is None:
        return from_dict({})
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, "a config file"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except FileRefused as e:  # /dev/zero, a FIFO, a folder: never read
        raise ConfigError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return from_dict(data, str(path))


def to_toml(cfg: Config) -> str:
    """The config as TOML with every key, documented: the default file is written from this."""
    lines = []
    for section in SECTIONS:
        obj = getattr(cfg, section)
        lines.append(f"[{section}]")
        for f in dataclasses.fields(obj):
            doc = f.metadata.get("doc")
            if doc:
                lines.append(f"# {doc}")
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)
