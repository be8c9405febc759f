"""The fuzzing harness the project owns (issue 27): `moodcam` run as a user runs it, in a
subprocess, on inputs hypothesis makes, so the next list of crashes is found here first.

Inputs, by kind:

- flags:  any command with random flags and values, both taken from the parser itself
          (build_parser), values from odd strings, numbers, URLs, dates and paths;
- config: TOML from the config schema with random values, or garbage text, as --config;
- card:   the shipped model card with keys removed or values replaced, or garbage, as --card;
- log:    mood logs of random records and lines (torn, binary, huge) for report and playlist;
- image:  image bytes (random, truncated, a header claiming 65535x65535 pixels) for classify and
          an image-folder run;
- names:  file names with odd bytes (not UTF-8, newlines, a leading dash, 300 bytes) and special
          files (its own copies of /dev/null, /dev/zero, /dev/full and /dev/urandom, a FIFO, a
          folder, a symlink loop, /proc/self/status) wherever a command takes a path.

For every input the process must end within its time bound (TIME_S; `run` and `playlist` are
daemons: they get SIGTERM at STOP_S and must then exit cleanly), under RLIMIT_AS (MEMORY_BYTES),
with no signal death, an exit status of moodcam.errors other than 1 (an internal error is a bug),
no traceback and, without --debug, at most one line on stderr that is not a log record (classify:
one per image).

Inputs name only files of the harness's own folders (the world's, the input's), never the
machine's: an input may write where it names, and as root a moodcam bug found that way replaced
/dev/null (files.check_output now refuses it). The world has device nodes of its own instead.

`make test` runs a short pass (tests/test_fuzz.py); `make fuzz` runs for minutes:

    python -m tests.fuzz --seconds 600 --out bench/fuzz.json --readme README.md

and writes the counts (inputs tried by kind and by command, exit statuses, failures) to the
benchmark file and README's fuzz block. Inputs run one at a time: the machine's cores are shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from moodcam import errors
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
MODEL = ROOT / "models" / "moodcam.tflite"
CARD = ROOT / "models" / "moodcam.json"

# An internal error (1) is a bug; every other documented status is an answer.
ALLOWED = {v for k, v in vars(errors).items() if k.startswith("EXIT_")} - {errors.EXIT_INTERNAL}
MEMORY_BYTES = 3 * 2**30  # address space: a run maps about 1 GB (TFLite, OpenCV, threads)
TIME_S = 40.0  # any command, start to exit
STOP_S = 12.0  # daemons (run, playlist, web) get SIGTERM after this long
DAEMONS = ("run", "playlist", "web")
COMMANDS = ("run", "doctor", "classify", "report", "playlist", "bench", "web")
# The logging format of moodcam.cli.main: such lines are the daemon's log, not error lines.
LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)
# The machine's own special files are never named: an input may write to what it names, and a
# moodcam bug found that way (report --out /dev/null, as root) replaced /dev/null. The world has
# device nodes of its own with the same numbers instead (made where mknod is allowed: as root).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "urandom": (1, 9)}


@dataclass(frozen=True, repr=False)
class World:
    """Files the inputs refer to, made once: good ones (so a command gets past its first check)
    and bad ones (special files). Paths are absolute; each input runs in a folder of its own."""

    root: Path
    face: Path  # a 48x48 face crop
    scene: Path  # a 640x480 scene with a face
    folder: Path  # two scenes
    clip: Path  # five frames of video
    log: Path  # a small mood log with wall-clock times
    config: Path  # a valid config
    fifo: Path
    loop: Path  # a symlink to itself
    empty_dir: Path
    model: Path  # copies of the shipped model and card: an input may name them as an output
    card: Path
    devices: tuple[Path, ...]  # private /dev/null, /dev/zero, ...: see DEVICES

    @property
    def special(self) -> list[str]:
        """Paths that are not regular files: devices, a FIFO, a folder, a symlink loop, /proc."""
        others = [self.fifo, self.loop, self.empty_dir]
        return [str(p) for p in (*self.devices, *others)] + ["/proc/self/status"]

    def __repr__(self) -> str:  # hypothesis shows it in every strategy's repr
        return f"World({self.root})"

    @classmethod
    def make(cls, root: Path) -> World:
        import cv2
        import numpy as np

        from demo.scenes import load_faces, make_scene

        root.mkdir(parents=True, exist_ok=True)
        faces = load_faces()
        face = root / "face.png"
        cv2.imwrite(str(face), faces[0][1])
        folder = root / "folder"
        folder.mkdir(exist_ok=True)
        scenes = [
            make_scene([(f, (200, 120, 170, 170))], seed=i) for i, (_, f) in enumerate(faces[:2])
        ]
        for i, img in enumerate(scenes):
            cv2.imwrite(str(folder / f"{i}.png"), img)
        scene = root / "scene.png"
        cv2.imwrite(str(scene), scenes[0])
        clip = root / "clip.mp4"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 480))
        for i in range(5):
            writer.write(scenes[i % 2])
        writer.release()
        log = root / "mood.jsonl"
        t0 = 1_780_000_000.0
        log.write_text(
            "".join(
                json.dumps(
                    {"v": 1, "t": t0 + 30 * i, "faces": [], "mood": m, "valence": v, "arousal": 0.1}
                )
                + "\n"
                for i, (m, v) in enumerate([("happy", 0.5), ("sad", -0.5), (None, None)] * 40)
            )
        )
        config = root / "config.toml"
        config.write_text(f'[log]\npath = "{root}/cfg-mood.jsonl"\n[stdout]\nenabled = false\n')
        fifo = root / "fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        loop = root / "loop"
        if not loop.is_symlink():
            os.symlink("loop", loop)
        empty_dir = root / "empty"
        empty_dir.mkdir(exist_ok=True)
        model, card = root / "model.tflite", root / "model.json"
        model.write_bytes(MODEL.read_bytes())
        card.write_bytes(CARD.read_bytes())
        devices = []
        for name, (major, minor) in DEVICES.items():
            node = root / f"dev-{name}"
            try:
                if not node.exists():
                    os.mknod(node, 0o20666, os.makedev(major, minor))
                devices.append(node)
            except OSError:  # not root: no devices among the inputs
                break
        del np
        return cls(
            root,
            face,
            scene,
            folder,
            clip,
            log,
            config,
            fifo,
            loop,
            empty_dir,
            model,
            card,
            tuple(devices),
        )


@dataclass
class Case:
    """One input: the command line (after `moodcam`), files to write into its own folder (the
    process's working folder, so relative names land there), and what kind of input it is."""

    kind: str
    argv: list[str | bytes]
    files: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command the input runs (a stray word may come first)."""
        return next((a for a in self.argv if a in COMMANDS), "(none)")  # type: ignore[misc]

    def shown(self) -> str:
        args = " ".join(repr(a) if isinstance(a, bytes) else a for a in self.argv)
        files = {k.decode(errors="backslashreplace"): v[:400] for k, v in self.files.items()}
        return f"moodcam {args}" + (f"  files {files}" if files else "")


@dataclass
class Outcome:
    status: int
    seconds: float
    stderr: str
    stopped: bool  # a daemon that got SIGTERM at STOP_S
    problems: list[str]


# --- strategies -------------------------------------------------------------------------------


def _relative(text: str) -> str:
    """A path that stays in the input's own folder: never absolute, never upwards."""
    return text.lstrip("/~").replace("..", "_") or "x"


ODD_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "--",
            "-1",
            "0",
            "nan",
            "inf",
            "-inf",
            "1e308",
            "1e-9",
            "99999999999999999999",
            "0x10",
            "１２",
            "\t",
            "a\nb",
            "é",
            "\u202e",
            "None",
            "true",
            "[]",
            "{}",
            "%s%n",
            "$(id)",
            "x" * 5000,
        ]
    ),
    # Any text a command line can carry: no NUL, no lone surrogates (names that are not UTF-8
    # come as bytes, FILE_NAMES).
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=30).map(
        _relative
    ),
)
NUMBERS = st.one_of(
    st.sampled_from(["-1", "0", "0.5", "1", "2", "nan", "inf", "-0", "1e9", "3.5", "x"]),
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
URLS = st.sampled_from(
    [
        "mqtt://127.0.0.1:1",
        "mqtts://127.0.0.1:1",
        "mqtt://user@127.0.0.1:1",
        "mqtt://[::1",
        "mqtt://a b",
        "mqtt://127.0.0.1:0",
        "mqtt://127.0.0.1:99999",
        "http://127.0.0.1:1/",
        "rtsp://127.0.0.1:1/s",
        "rtsp://u:p@127.0.0.1:1/s",
        "file:///nonexistent",
        "file://host/x",
        "mqtt://",
        "mqtt:///",
        "mqtt://h/p?q",
        "mqtt://ho\tst",
        "mqtt://" + "a" * 300,
    ]
)
DATES = st.one_of(
    st.dates().map(str),
    st.sampled_from(["2026-02-30", "1900-01-01", "9999-12-31", "2026-1-1", "today", "2026-13-01"]),
)


def paths(world: World) -> st.SearchStrategy[str]:
    """Paths a user might give: the world's good files, special files, missing and odd names."""
    good = [
        world.face,
        world.scene,
        world.folder,
        world.clip,
        world.log,
        world.config,
        world.model,
        world.card,
    ]
    return st.one_of(
        st.sampled_from([str(p) for p in good] + world.special),
        st.sampled_from(
            [
                "missing.png",
                "nodir/x.jsonl",
                "out.png",
                "out.json",
                "m.jsonl",
                f"{world.face}/x",
                "/proc/x.json",  # cannot be created
                # Missing folders are the world's: [debug] save_faces_dir creates what it names.
                f"{world.root}/no-such-folder/x",
            ]
        ),
        ODD_TEXT,
    )


def flag_values(world: World, dest: str) -> st.SearchStrategy[str]:
    """Values for one flag, by what it names; every flag also gets odd text and numbers."""
    by_name: dict[str, st.SearchStrategy[str]] = {
        "mqtt": URLS,
        "source": st.one_of(
            paths(world),
            URLS,
            st.sampled_from(
                ["auto", "picamera2", "0", "7", "99999999999999999999", "/dev/video7", "-1"]
            ),
        ),
        "first": DATES,
        "last": DATES,
        "tz": st.sampled_from(
            [
                "UTC",
                "Europe/Berlin",
                "Nope/Zone",
                "",
                "../../etc/passwd",
                "America/St_Johns",
                "Etc/GMT+14",
            ]
        ),
        "device_id": st.one_of(
            st.sampled_from(["cam1", "küche.1", "a/b", "+", "#", "x" * 70]), ODD_TEXT
        ),
        "mpd": st.sampled_from(
            ["127.0.0.1:1", "[::1]:1", "[::1", "host:port", ":0", "/nonexistent"]
        ),
        # Counts and durations stay cheap when valid: the time bound is per input.
        "rounds": st.sampled_from(["0", "-1", "1", "2", "x", "nan", "1.5", ""]),
        "passes": st.sampled_from(["0", "1", "-1", "x", "nan"]),
        "timeout": st.one_of(st.sampled_from(["0.5", "1", "2"]), NUMBERS),
        "max_runtime": st.one_of(st.sampled_from(["0.5", "1"]), NUMBERS),
        "max_gap": NUMBERS,
        "log_interval": NUMBERS,
    }
    return st.one_of(by_name.get(dest, st.nothing()), paths(world), NUMBERS, ODD_TEXT)


# Each command starts from flags that keep it cheap and on this machine (its own source, a short
# clip, a bounded runtime, a short timeout); the flags drawn after these may override them.
def base_args(world: World, command: str) -> list[str]:
    return {
        "run": ["--source", str(world.folder)],
        "doctor": ["--source", str(world.folder), "--timeout", "1"],
        "classify": [],
        "report": [],
        "playlist": ["--max-runtime", "1", "--log", str(world.log), "--mpd", "127.0.0.1:1"],
        "bench": ["--clip", str(world.clip), "--out", "bench.json", "--rounds", "2"],
        # The dashboard on a loopback port of its own, over the world's log.
        "web": ["--log", str(world.log), "--port", str(free_port())],
    }[command]


@st.composite
def flags_case(draw: Any, world: World) -> Case:
    from moodcam.commands import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = draw(st.sampled_from(sorted(sub.choices)))
    actions = [a for a in sub.choices[command]._actions if a.dest not in ("help", "debug")]
    argv: list[str | bytes] = [command, *base_args(world, command)]
    for action in draw(st.lists(st.sampled_from(actions), max_size=5)):
        if action.option_strings:
            argv.append(draw(st.sampled_from(action.option_strings)))
            if action.nargs == 0:  # store_true
                continue
        if action.choices and draw(st.booleans()):
            argv.append(draw(st.sampled_from(list(action.choices))))
        else:
            argv.append(draw(flag_values(world, action.dest)))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(ODD_TEXT))  # a stray word anywhere
    return Case("flags", argv)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, (int, str)):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        ODD_TEXT,
        st.sampled_from([0, 1, -1, 0.5, 65536, 10**7, "", "auto", "0", "rgb"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def config_text(draw: Any, world: World) -> bytes:
    """TOML over the real schema (sections and keys from moodcam.config) with random values,
    now and then an unknown key or section, or not TOML at all."""
    from moodcam import config

    if draw(st.integers(0, 7)) == 0:
        return draw(st.binary(max_size=300))
    lines = []
    for section in draw(
        st.lists(st.sampled_from(sorted(config.SECTIONS)), max_size=4, unique=True)
    ):
        lines.append(f"[{section}]")
        fields = list(dataclasses.fields(getattr(config.Config(), section)))
        for f in draw(st.lists(st.sampled_from(fields), max_size=4, unique_by=lambda f: f.name)):
            choices = f.metadata.get("choices")
            if f.name in ("path", "save_faces_dir", "password_file", "model", "card", "cascade"):
                value: Any = draw(paths(world))
            elif choices and draw(st.booleans()):
                value = draw(st.sampled_from(choices))
            elif f.name in ("url", "uri"):
                value = draw(URLS)
            else:
                value = draw(TOML_VALUES)
            lines.append(f"{f.name} = {_toml_value(value)}")
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"{draw(st.text(min_size=1, max_size=8))!r} = 1")
    if draw(st.integers(0, 9)) == 0:
        lines.append("[nonsense]\nx = 1")
    return "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n"


@st.composite
def config_case(draw: Any, world: World) -> Case:
    command = draw(st.sampled_from(["run", "doctor", "report", "classify", "playlist"]))
    argv: list[str | bytes] = [command, *base_args(world, command), "--config", "c.toml"]
    if command == "report":
        argv.append(str(world.log))
    if command == "classify":
        argv.append(str(world.scene))
    return Case("config", argv, {b"c.toml": draw(config_text(world))})


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ODD_TEXT),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )


@st.composite
def card_case(draw: Any, world: World) -> Case:
    """The shipped card with keys removed, values replaced or labels reordered; or garbage."""
    card = json.loads(CARD.read_text())
    for _ in range(draw(st.integers(1, 3))):
        node, key = card, None
        while True:  # walk down to a random key
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)) or not node[key] or draw(st.booleans()):
                break
            node = node[key]
        if key is None:
            continue
        action = draw(st.sampled_from(["delete", "replace", "reverse"]))
        if action == "delete" and isinstance(node, dict):
            del node[key]
        elif action == "reverse" and isinstance(node[key], list):
            node[key] = node[key][::-1]
        else:
            node[key] = draw(_json_values())
    data = json.dumps(card).encode()
    if draw(st.integers(0, 7)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    argv: list[str | bytes] = ["classify", "--no-detect", "--card", "card.json", str(world.face)]
    if draw(st.booleans()):
        argv = ["doctor", *base_args(world, "doctor"), "--card", "card.json"]
    return Case("card", argv, {b"card.json": data})


RECORD_LINES = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, 0, "1", None]),
        "t": st.one_of(
            st.floats(1.7e9, 1.8e9),
            st.floats(),
            st.integers(),
            st.sampled_from([0, -1, 1e9, 4e9, 1e300, "1780000000"]),
        ),
        "mood": st.sampled_from(["happy", "sad", "angry", "neutral", "surprise", None, "", "x", 1]),
        "faces": st.one_of(st.just([]), _json_values()),
        "valence": st.one_of(st.floats(-1, 1), st.none(), st.floats(), ODD_TEXT),
        "arousal": st.one_of(st.floats(-1, 1), st.none(), st.floats()),
    },
    optional={"extra": _json_values()},
).map(lambda r: json.dumps(r).encode())
LOG_LINES = st.one_of(
    RECORD_LINES,
    _json_values().map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
    st.sampled_from([b"", b"{", b'{"v":1,"t":17800', b"\xff\xfe", b"x" * 200_000, b"\0" * 10]),
)


@st.composite
def log_case(draw: Any, world: World) -> Case:
    lines = draw(st.lists(LOG_LINES, max_size=30))
    # Mostly a few hours of good records around the odd ones, so the report has days to build.
    good = [ln for ln in world.log.read_bytes().splitlines()][: draw(st.integers(0, 40))]
    body = b"\n".join(good + lines) + draw(st.sampled_from([b"\n", b""]))
    if draw(st.integers(0, 4)) == 0:
        argv: list[str | bytes] = ["playlist", *base_args(world, "playlist"), "--log", "log.jsonl"]
    else:
        fmt = draw(st.sampled_from(["text", "csv", "json", "fhir", "png"]))
        argv = [
            "report",
            "log.jsonl",
            "--format",
            fmt,
            "--tz",
            draw(st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati"])),
        ]
        if fmt == "png" or draw(st.booleans()):
            argv += ["--out", f"out.{fmt}"]
        for flag in ("--from", "--to"):
            if draw(st.integers(0, 3)) == 0:
                argv += [flag, draw(DATES)]
    return Case("log", argv, {b"log.jsonl": body})


def _png(width: int, height: int, payload: bytes) -> bytes:
    """A PNG whose header claims width x height, whatever its data holds."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(payload))
        + chunk(b"IEND", b"")
    )


@st.composite
def image_bytes(draw: Any, world: World) -> bytes:
    kind = draw(st.sampled_from(["good", "truncated", "random", "huge", "flipped"]))
    good = draw(st.sampled_from([world.face, world.scene])).read_bytes()
    if kind == "good":
        return good
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good)))]
    if kind == "random":
        return draw(st.binary(max_size=2000))
    if kind == "huge":
        w, h = draw(st.sampled_from([(65535, 65535), (2**31 - 1, 1), (1, 2**31 - 1), (0, 0)]))
        return _png(w, h, draw(st.binary(max_size=500)))
    data = bytearray(good)
    for _ in range(draw(st.integers(1, 20))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


FILE_NAMES = st.one_of(
    st.sampled_from(
        [
            b"a.png",
            b"face\xff.png",
            b"-x.png",
            b"a\nb.png",
            b" .png",
            b"x" * 300 + b".png",
            b".hidden.png",
            b"a.PNG",
            b"\xe9.jpg",
            b"x.jpeg",
        ]
    ),
    st.binary(min_size=1, max_size=40)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(lambda b: b not in (b".", b"..")),
)


@st.composite
def image_case(draw: Any, world: World) -> Case:
    files = {draw(FILE_NAMES): draw(image_bytes(world)) for _ in range(draw(st.integers(1, 3)))}
    if draw(st.booleans()):
        names = [n for n in files if len(n) < 256]
        argv: list[str | bytes] = [
            "classify",
            *(["--no-detect"] if draw(st.booleans()) else []),
            *(names or [b"missing.png"]),
        ]
        return Case("image", argv, files)
    return Case(
        "image",
        ["run", "--source", "pics", "--no-log", "--quiet"],
        {b"pics/" + n: d for n, d in files.items()},
    )


@st.composite
def names_case(draw: Any, world: World) -> Case:
    """A special file or an odd name wherever a command takes a path."""
    target: str | bytes = draw(
        st.one_of(
            st.sampled_from(world.special),
            FILE_NAMES,
        )
    )
    files: dict[bytes, bytes] = {}
    if isinstance(target, bytes) and len(target) < 256 and draw(st.booleans()):
        files[target] = draw(st.sampled_from([world.log, world.face, world.config])).read_bytes()
    uses = [
        ["report", target],
        ["report", str(world.log), "--out", target, "--format", "json"],
        ["report", str(world.log), "--config", target],
        ["classify", target],
        ["classify", "--no-detect", "--model", target, str(world.face)],
        ["classify", "--no-detect", "--card", target, str(world.face)],
        ["run", "--source", target, "--no-log"],
        ["run", "--source", str(world.folder), "--log", target],
        ["run", "--source", str(world.folder), "--no-log", "--summary-json", target],
        ["run", "--source", str(world.folder), "--no-log", "--config", target],
        ["doctor", "--source", target, "--timeout", "1"],
        ["playlist", "--max-runtime", "1", "--mpd", "127.0.0.1:1", "--log", target],
        ["bench", "--rounds", "1", "--passes", "0", "--out", target],
    ]
    return Case("names", draw(st.sampled_from(uses)), files)


def cases(world: World) -> st.SearchStrategy[Case]:
    return st.one_of(
        flags_case(world),
        config_case(world),
        card_case(world),
        log_case(world),
        image_case(world),
        names_case(world),
    )


# --- running one input ------------------------------------------------------------------------


def _limits() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()  # its own process group: a timeout kills whatever it started too


def run_case(case: Case, world: World) -> Outcome:
    """Run one input in a folder of its own and judge it (see the module docstring)."""
    with tempfile.TemporaryDirectory(dir=world.root, prefix="case-") as tmp:
        folder = os.fsencode(tmp)
        for name, data in case.files.items():
            path = os.path.join(folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with open(path, "wb") as f:
                    f.write(data)
            except OSError:  # a name this file system refuses (too long): the input says so
                pass
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOODCAM_", "OPENCV_"))}
        env["HOME"] = tmp
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moodcam.cli", *case.argv],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_limits,
        )
        stopped, timed_out = False, False
        daemon = case.command in DAEMONS
        try:
            _, err = proc.communicate(timeout=STOP_S if daemon else TIME_S)
        except subprocess.TimeoutExpired:
            if daemon:
                stopped = True
                proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=TIME_S - STOP_S if daemon else 1)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
        seconds = time.monotonic() - start
    stderr = err.decode("utf-8", "backslashreplace")
    return Outcome(
        proc.returncode, seconds, stderr, stopped, judge(case, proc.returncode, stderr, timed_out)
    )


def judge(case: Case, status: int, stderr: str, timed_out: bool) -> list[str]:
    problems = []
    if timed_out:
        problems.append(f"still running after {TIME_S:g} s")
    elif status < 0:
        problems.append(f"killed by signal {signal.Signals(-status).name}")
    elif status not in ALLOWED:
        problems.append(f"exit status {status}" + (" (internal error)" if status == 1 else ""))
    if "--debug" in case.argv:
        return problems  # tracebacks and several lines are what --debug is for
    if "Traceback (most recent call last)" in stderr:
        problems.append("a traceback")
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not LOG_RECORD.match(ln)]
    # classify answers for each image on its own (one corrupt file must not hide the rest).
    allowed = max(1, len(case.argv)) if case.command == "classify" else 1
    if len(lines) > allowed:
        problems.append(f"{len(lines)} lines on stderr")
    return problems


# --- campaigns --------------------------------------------------------------------------------


@dataclass
class Tally:
    inputs: int = 0
    by_kind: Counter = field(default_factory=Counter)
    by_command: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    stopped: int = 0
    slowest_s: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: Case, out: Outcome) -> None:
        self.inputs += 1
        self.by_kind[case.kind] += 1
        self.by_command[case.command] += 1
        self.statuses[str(out.status)] += 1
        self.stopped += out.stopped
        self.slowest_s = max(self.slowest_s, out.seconds)


class Failed(AssertionError):
    pass


def campaign(
    world: World, seconds: float, tally: Tally, *, shrink: bool = True, batch: int = 10
) -> None:
    """Inputs until `seconds` have passed (the last batch may run over a little); the first
    failure stops it and raises Failed, with the input shrunk by hypothesis to a smaller one
    when `shrink` (each try is a process: the short pass in `make test` does not shrink)."""
    deadline = time.monotonic() + seconds
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @settings(
        max_examples=batch,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(cases(world))
    def one(case: Case) -> None:
        out = run_case(case, world)
        tally.add(case, out)
        if out.problems:
            last = "\n".join(out.stderr.splitlines()[-6:])
            raise Failed(f"{case.shown()}: {'; '.join(out.problems)}\nstderr (end):\n{last}")

    while time.monotonic() < deadline:
        try:
            one()
        except Failed as e:
            tally.failures.append({"input": str(e).split("\n", 1)[0]})
            raise
        except ExceptionGroup as group:  # hypothesis found several distinct failures
            found, rest = group.split(Failed)
            if rest is not None or found is None:
                raise  # the harness's own bug
            messages = [str(e) for e in found.exceptions]
            tally.failures += [{"input": m.split("\n", 1)[0]} for m in messages]
            raise Failed("\n\n".join(messages)) from None


def write_results(
    tally: Tally, asked_s: float, seconds: float, out: Path, readme: Path | None
) -> dict[str, Any]:
    """The counts as JSON in `out`, and as one line between README's fuzz markers."""
    result = {
        "command": f"python -m tests.fuzz --seconds {asked_s:g}",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "inputs": tally.inputs,
        "by_kind": dict(sorted(tally.by_kind.items())),
        "by_command": dict(sorted(tally.by_command.items())),
        "exit_statuses": dict(sorted(tally.statuses.items(), key=lambda kv: int(kv[0]))),
        "daemons_stopped_by_sigterm": tally.stopped,
        "slowest_input_s": round(tally.slowest_s, 2),
        "failures": len(tally.failures),
        "failed": tally.failures,
        "limits": {"address_space_bytes": MEMORY_BYTES, "time_s": TIME_S, "daemon_stop_s": STOP_S},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if readme is not None:
        text = readme.read_text()
        start, end = "<!-- fuzz:start -->", "<!-- fuzz:end -->"
        if start in text and end in text:
            by = ", ".join(f"{k} {v}" for k, v in result["by_command"].items())
            full = out.resolve()
            where = full.relative_to(ROOT) if full.is_relative_to(ROOT) else full
            line = (
                f"{start}\n`make fuzz` ({result['seconds']:g} s; `{where}`): "
                f"{result['inputs']} inputs ({by}); failures: {result['failures']}.\n{end}"
            )
            head, rest = text.split(start, 1)
            readme.write_text(head + line + rest.split(end, 1)[1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long to generate inputs")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "fuzz.json", help="counts, JSON")
    p.add_argument("--readme", type=Path, help="README to update between its fuzz markers")
    args = p.parse_args(argv)
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="moodcam-fuzz-") as tmp:
        world = World.make(Path(tmp))
        try:
            campaign(world, args.seconds, tally)
        except Failed as e:
            print(f"FAILED: {e}", file=sys.stderr)
    result = write_results(tally, args.seconds, time.monotonic() - started, args.out, args.readme)
    print(
        f"{result['inputs']} inputs in {result['seconds']} s, {result['failures']} failures; "
        f"by command {result['by_command']}; wrote {args.out}"
    )
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
