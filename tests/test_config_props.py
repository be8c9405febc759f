"""Property-based tests of the TOML schema (moodcam.config), generated from its dataclasses.

For every section and key: valid values (within `min`/`max`, from `choices`, of the right type)
are accepted and kept; wrong types, out-of-range numbers (NaN, infinities, huge integers), bad
choices, control characters, empty required strings, unknown keys and sections are refused with
one ConfigError line naming the file and the key. Random TOML text never escapes as anything but
ConfigError. A few `moodcam run --config bad.toml` subprocesses check the user-facing side: one
line, no traceback, exit 3.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moodcam import config, errors
from moodcam.labels import FER2013_CLASSES

ROOT = Path(__file__).resolve().parent.parent
FILE = "/etc/moodcam/test.toml"  # a made-up path: from_dict only quotes it
FIELDS: list[tuple[str, dataclasses.Field]] = [
    (section, f)
    for section, cls in ((s, type(getattr(config.Config(), s))) for s in config.SECTIONS)
    for f in dataclasses.fields(cls)
]
FIELD_IDS = [f"{s}.{f.name}" for s, f in FIELDS]
# from_dict is pure and fast: many examples are cheap. Files and TOML text: fewer.
FAST = settings(max_examples=40, deadline=None)
FILES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BARE = re.compile(r"[A-Za-z0-9_-]+")
MOODS = st.sampled_from(FER2013_CLASSES)
PIN = st.integers(0, 53)
# Text a user might type: no control characters (C0, DEL, C1) and no surrogates.
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
NONBLANK = SAFE_TEXT.filter(lambda s: s.strip())
CONTROL = st.sampled_from([chr(c) for c in (*range(0x20), 0x7F)])


def kind(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def toml_name(key: str) -> str:
    """How a ConfigError spells a key: bare, or JSON-quoted (so a message stays one line)."""
    return key if BARE.fullmatch(key) else json.dumps(key)


def assert_names(err: config.ConfigError, section: str, key: str, path: str = FILE) -> None:
    msg = str(err)
    assert msg.startswith(f"{path}: "), msg
    assert f"[{section}] {toml_name(key)}" in msg, msg
    assert "\n" not in msg and len(msg) < 400, msg


# --- valid values, per field --------------------------------------------------------------------


def valid_value(section: str, f: dataclasses.Field) -> st.SearchStrategy[Any]:
    meta, k = f.metadata, kind(f)
    special: dict[str, st.SearchStrategy[Any]] = {
        "device.id": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        "mqtt.url": st.builds(
            lambda scheme, user, host, port: f"{scheme}://{user}{host}{port}",
            st.sampled_from(["mqtt", "mqtts", "MQTT"]),
            st.sampled_from(["", "cam1@", "user.name@"]),
            st.sampled_from(["localhost", "broker.lan", "192.168.1.10", "[::1]"]),
            st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
        ),
        "mqtt.topic_prefix": st.from_regex(r"[a-z0-9_]{1,8}(/[a-z0-9_]{1,8}){0,2}", fullmatch=True),
        "mqtt.discovery_prefix": st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True),
        "leds.rgb_pins": st.lists(PIN, min_size=3, max_size=3, unique=True),
        "leds.mood_pins": st.dictionaries(MOODS, PIN).filter(
            lambda d: len(set(d.values())) == len(d)
        ),
        "leds.colors": st.dictionaries(
            st.sampled_from((*FER2013_CLASSES, "none")),
            st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True),
        ),
        "playlist.playlists": st.dictionaries(MOODS, NONBLANK),
        # Loopback: any other address needs [web] token_file as well (tests/test_web.py).
        "web.bind": st.sampled_from(["127.0.0.1", "127.0.1.1", "::1"]),
    }
    name = f"{section}.{f.name}"
    if name in special:
        return special[name]
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    if k == "bool":
        return st.booleans()
    if k == "int":
        return st.integers(meta.get("min"), meta.get("max"))
    if k == "float":
        lo, hi = meta.get("min"), meta.get("max")
        floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
        ints = st.integers(
            math.ceil(lo) if lo is not None else None, math.floor(hi) if hi is not None else None
        )
        return st.one_of(floats, ints)  # TOML `1` for a float key is fine
    if k == "str":
        return NONBLANK if meta.get("nonempty") else st.one_of(st.just(""), SAFE_TEXT)
    raise AssertionError(f"no strategy for {name} ({k})")


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """A random subset of every section's keys, each with a valid value."""
    data: dict[str, dict[str, Any]] = {}
    for section, f in FIELDS:
        if draw(st.booleans()):
            data.setdefault(section, {})[f.name] = draw(valid_value(section, f))
    return data


@pytest.mark.parametrize(("section", "f"), FIELDS, ids=FIELD_IDS)
@FAST
@given(data=st.data())
def test_every_valid_value_is_accepted_and_kept(
    section: str, f: dataclasses.Field, data: st.DataObject
) -> None:
    value = data.draw(valid_value(section, f))
    cfg = config.from_dict({section: {f.name: value}}, FILE)
    got = getattr(getattr(cfg, section), f.name)
    assert got == value and (kind(f) != "float" or isinstance(got, float))


@settings(max_examples=150, deadline=None)
@given(valid_configs())
def test_valid_configs_survive_to_toml_and_back(data: dict[str, dict[str, Any]]) -> None:
    """to_toml writes the default config file: what it writes must load back to the same thing."""
    cfg = config.from_dict(data, FILE)
    again = config.from_dict(__import__("tomllib").loads(config.to_toml(cfg)), FILE)
    assert again == cfg


# --- invalid values, per field -------------------------------------------------------------------

TOML_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": SAFE_TEXT,
    "int": st.integers(-(10**30), 10**30),
    "float": st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    "bool": st.booleans(),
    "list": st.lists(st.integers(0, 9), max_size=3),
    "dict": st.dictionaries(st.sampled_from(["a", "happy"]), st.integers(0, 9), max_size=2),
}


def wrong_type(f: dataclasses.Field) -> st.SearchStrategy[Any]:
    """A TOML value of another type (an integer is a fine float, so not that one)."""
    k = kind(f)
    others = [t for t in TOML_VALUES if t != k and not (k == "float" and t == "int")]
    return st.sampled_from(others).flatmap(lambda t: TOML_VALUES[t])


def out_of_range(f: dataclasses.Field) -> st.SearchStrategy[Any] | None:
    meta, k = f.metadata, kind(f)
    lo, hi = meta.get("min"), meta.get("max")
    if k not in ("int", "float") or (lo is None and hi is None):
        return None
    bad: list[st.SearchStrategy[Any]] = [st.sampled_from([10**400, -(10**400), 2**63, -(2**63)])]
    if k == "float":
        bad.append(st.sampled_from([math.nan, math.inf, -math.inf, -math.nan]))
    if lo is not None:
        bad.append(st.integers(max_value=math.ceil(lo) - 1))
        bad.append(st.floats(max_value=lo, exclude_max=True) if k == "float" else st.nothing())
    if hi is not None:
        bad.append(st.integers(min_value=math.floor(hi) + 1))
        bad.append(st.floats(min_value=hi, exclude_min=True) if k == "float" else st.nothing())
    return st.one_of(bad)


def bad_string(section: str, f: dataclasses.Field) -> st.SearchStrategy[Any] | None:
    """Strings the key must refuse: control characters always; blank ones where a value is needed;
    anything outside `choices`."""
    if kind(f) != "str":
        return None
    with_control = st.tuples(st.text(max_size=5), CONTROL, st.text(max_size=5)).map("".join)
    options = [with_control]
    if f.metadata.get("nonempty"):
        options.append(st.sampled_from(["", " ", "   "]))
    if f.metadata.get("choices"):
        options.append(SAFE_TEXT.filter(lambda s: s not in f.metadata["choices"]))
    return st.one_of(options)


SPECIAL_BAD: dict[str, list[Any]] = {
    "device.id": ["a/b", "a#", "+", "kitchen cam", "küche.1", "living.room", "x" * 65, "x" * 70000],
    "mqtt.url": [
        "http://broker",
        "mqtt://",
        "mqtt://user:hunter2@broker",
        "mqtt://broker:0",
        "mqtt://broker:99999",
        "mqtt://broker/path",
        "broker:1883",
    ],
    "mqtt.topic_prefix": ["a/#", "+", "$SYS", "a//b", "a" * 257],
    "mqtt.discovery_prefix": ["#", "$x"],
    "leds.rgb_pins": [
        [1, 2],
        [1, 2, 3, 4],
        [1, 1, 2],
        [-1, 2, 3],
        [54, 2, 3],
        [True, 2, 3],
        [1.0, 2, 3],
        ["17", 27, 22],
        [2**70, 1, 2],
    ],
    "leds.mood_pins": [
        {"happy": True},
        {"happy": -1},
        {"happy": 100},
        {"bored": 5},
        {"happy": 5, "sad": 5},
        {"happy": "5"},
        {"happy": [5]},
    ],
    "leds.colors": [
        {"happy": "#ff"},
        {"happy": "#-12345"},
        {"happy": "# fffff"},
        {"happy": "#ff_fff"},
        {"happy": "ff00ff0"},
        {"happy": 0xFF0000},
        {"bored": "#ffffff"},
        {"happy": "#gggggg"},
    ],
    "playlist.playlists": [
        {"happy": ""},
        {"happy": " "},
        {"happy": 3},
        {"bored": "x"},
        {"happy": "a\nb"},
        {"happy": ["x"]},
    ],
}


def invalid_value(section: str, f: dataclasses.Field) -> st.SearchStrategy[Any]:
    options = [wrong_type(f)]
    for extra in (out_of_range(f), bad_string(section, f)):
        if extra is not None:
            options.append(extra)
    special = SPECIAL_BAD.get(f"{section}.{f.name}")
    if special:
        options.append(st.sampled_from(special))
    return st.one_of(options)


@pytest.mark.parametrize(("section", "f"), FIELDS, ids=FIELD_IDS)
@FAST
@given(data=st.data())
def test_every_invalid_value_is_refused_naming_file_and_key(
    section: str, f: dataclasses.Field, data: st.DataObject
) -> None:
    value = data.draw(invalid_value(section, f))
    with pytest.raises(config.ConfigError) as err:
        config.from_dict({section: {f.name: value}}, FILE)
    assert_names(err.value, section, f.name)
    assert err.value.exit_code == errors.EXIT_CONFIG
    assert "hunter2" not in str(err.value)  # a password in a URL is never echoed


@pytest.mark.parametrize("key", sorted({k for ks in SPECIAL_BAD for k in [ks]}))
def test_each_hand_picked_bad_value_is_refused(key: str) -> None:
    """The hand-picked cases, every one of them (hypothesis samples only some)."""
    section, name = key.split(".")
    for value in SPECIAL_BAD[key]:
        with pytest.raises(config.ConfigError) as err:
            config.from_dict({section: {name: value}}, FILE)
        assert_names(err.value, section, name)


@FAST
@given(section=st.sampled_from(list(config.SECTIONS)), key=st.text(max_size=20))
def test_unknown_keys_are_refused(section: str, key: str) -> None:
    known = {f.name for s, f in FIELDS if s == section}
    assume(key not in known)
    with pytest.raises(config.ConfigError, match="unknown key") as err:
        config.from_dict({section: {key: 1}}, FILE)
    assert_names(err.value, section, key)


@FAST
@given(
    section=st.text(max_size=20),
    value=st.one_of(st.dictionaries(st.text(), st.integers()), st.integers()),
)
def test_unknown_sections_are_refused(section: str, value: Any) -> None:
    assume(section not in config.SECTIONS)
    with pytest.raises(config.ConfigError, match="unknown section") as err:
        config.from_dict({section: value}, FILE)
    msg = str(err.value)
    assert msg.startswith(f"{FILE}: ") and f"[{toml_name(section)}]" in msg and "\n" not in msg


@FAST
@given(
    section=st.sampled_from(list(config.SECTIONS)),
    value=st.one_of(st.integers(), st.text(), st.lists(st.integers())),
)
def test_a_section_that_is_not_a_table_is_refused(section: str, value: Any) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[{section}\] must be a table"):
        config.from_dict({section: value}, FILE)


# --- through TOML files (config.load) ----------------------------------------------------------


def toml_value(v: Any) -> str:
    """TOML for any value hypothesis makes here, including nan, inf, control characters and keys
    that need quoting (config.to_toml only ever writes valid configs)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):  # JSON escapes are TOML escapes, except DEL which TOML wants escaped too
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
        )
    raise TypeError(v)


def toml_text(section: str, key: str, value: Any) -> str:
    return f"[{toml_value(section)}]\n{toml_value(key)} = {toml_value(value)}\n"


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@FILES
@given(pick=st.sampled_from(FIELDS), data=st.data())
def test_load_refuses_bad_values_from_a_file_naming_it(
    workdir: Path, pick: tuple[str, dataclasses.Field], data: st.DataObject
) -> None:
    section, f = pick
    value = data.draw(invalid_value(section, f))
    if isinstance(value, int) and abs(value) > 10**4000:
        return  # beyond what Python's int() parses from text by default
    path = workdir / "bad.toml"
    path.write_text(toml_text(section, f.name, value), encoding="utf-8")
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert_names(err.value, section, f.name, path=str(path))


@FILES
@given(pick=st.sampled_from(FIELDS), data=st.data())
def test_load_accepts_valid_values_from_a_file(
    workdir: Path, pick: tuple[str, dataclasses.Field], data: st.DataObject
) -> None:
    section, f = pick
    value = data.draw(valid_value(section, f))
    path = workdir / "good.toml"
    path.write_text(toml_text(section, f.name, value), encoding="utf-8")
    cfg = config.load(path)
    assert getattr(getattr(cfg, section), f.name) == value and cfg.path == str(path)


DEFAULT_TOML = config.to_toml(config.Config())


@st.composite
def mangled_toml(draw: st.DrawFn) -> str:
    """The default config with a few random edits: near-valid text finds more than noise does."""
    text = DEFAULT_TOML
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.text(max_size=6)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
    return text


@FILES
@given(text=st.one_of(st.text(max_size=200), mangled_toml()))
def test_random_toml_text_gives_a_config_or_one_config_error(workdir: Path, text: str) -> None:
    path = workdir / "random.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config.load(path)
    except config.ConfigError as e:
        msg = str(e)
        assert msg.startswith(f"{path}: ") and "\n" not in msg, msg


@FILES
@given(blob=st.binary(max_size=200))
def test_random_bytes_give_a_config_or_one_config_error(workdir: Path, blob: bytes) -> None:
    path = workdir / "blob.toml"
    path.write_bytes(blob)
    try:
        config.load(path)
    except config.ConfigError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


def test_missing_unreadable_and_directory_configs(tmp_path: Path) -> None:
    for path, why in ((tmp_path / "none.toml", "no such config file"), (tmp_path, "is a folder")):
        with pytest.raises(config.ConfigError, match=why) as err:
            config.load(path)
        assert str(err.value).startswith(f"{path}: ")


# --- the command, as a user meets it ---------------------------------------------------------------

BAD_FILES = {
    "nan.toml": ("[tracker]\nhysteresis = nan\n", "[tracker] hysteresis", "finite"),
    "huge.toml": (f"[source]\nwidth = {10**300}\n", "[source] width", "above the maximum"),
    "color.toml": ('[leds]\ncolors = {happy = "#ff_fff"}\n', "[leds] colors", "#rrggbb"),
    "nul.toml": ('[device]\nid = "cam\\u0000"\n', "[device] id", "control character"),
    "key.toml": ('[log]\n"pa\\nth" = "x"\n', '[log] "pa\\nth"', "unknown key"),
    "url.toml": ('[mqtt]\nurl = "mqtt://cam1:hunter2@broker"\n', "[mqtt] url", "password_file"),
    "empty.toml": ('[classifier]\nmodel = ""\n', "[classifier] model", "must not be empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_moodcam_run_with_a_bad_config_is_one_line_and_exit_3(tmp_path: Path, name: str) -> None:
    text, where, why = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "run", "--config", str(path), "--no-log"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == errors.EXIT_CONFIG, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"moodcam run: {path}: {where}") and why in lines[0], lines[0]
    assert "hunter2" not in proc.stderr


def test_bad_flags_are_config_errors_too(tmp_path: Path) -> None:
    """Flags are validated like the file: --log-interval nan is refused, not run with."""
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "run", "--log-interval", "nan", "--device-id", "a/b"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == errors.EXIT_CONFIG and "Traceback" not in proc.stderr
    assert "command-line flags" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_every_key_has_a_documentation_line() -> None:
    """README promises every key of /etc/moodcam/moodcam.toml with its default and a comment:
    the comment is the key's doc in the schema (systemd/make_default_config.py renders it)."""
    undocumented = [
        f"[{name}] {f.name}"
        for name in config.SECTIONS
        for f in dataclasses.fields(getattr(config.Config(), name))
        if not f.metadata.get("doc", "").strip()
    ]
    assert undocumented == []
