"""moodcam.urls: the one MQTT URL parser (config validation and the sink share it) and the one
redaction of passwords in URLs (messages about brokers and network cameras)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from moodcam import config
from moodcam.urls import parse_mqtt_url, redact_url

FAST = settings(max_examples=200, deadline=None)
# URL pieces as people type them, including the characters that make splitting a URL hard.
PIECE = st.text(alphabet="abcxyz019-._~%!$&'()*+,;=:@", min_size=1, max_size=12)
HOST = st.text(alphabet="abcxyz019-.", min_size=1, max_size=12)


@FAST
@given(
    scheme=st.sampled_from(["mqtt", "mqtts", "rtsp", "http"]),
    user=st.text(alphabet="abcxyz019-._~", max_size=8),
    password=PIECE,
    host=HOST,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.sampled_from(["", "/", "/stream1", "/a?b=c"]),
)
def test_a_password_never_survives_redaction(
    scheme: str, user: str, password: str, host: str, port: int | None, path: str
) -> None:
    # ":" and "@" inside the password are where a pattern-based redactor leaves a tail behind.
    url = f"{scheme}://{user}:{password}@{host}{'' if port is None else f':{port}'}{path}"
    assume(password not in f"{scheme}://{user}:***@{host}:{port}{path}")
    shown = redact_url(url)
    assert password not in shown
    assert shown.startswith(f"{scheme}://{user}:***@")


@FAST
@given(st.text(max_size=40))
def test_redaction_never_fails_and_leaves_urls_without_password_alone(text: str) -> None:
    shown = redact_url(text)  # messages about URLs that did not parse use it too
    if "@" not in text:
        assert shown == text or shown.endswith("//***")


def test_redaction_of_a_camera_url() -> None:
    assert (
        redact_url("rtsp://cam:s3cret@10.0.0.9:554/stream1")
        == "rtsp://cam:***@10.0.0.9:554/stream1"
    )
    assert redact_url("rtsp://10.0.0.9/stream1") == "rtsp://10.0.0.9/stream1"
    assert redact_url("mqtt://[::1") == "mqtt://***"  # unparseable: nothing after // is shown


URLS = [
    "mqtt://broker",
    "mqtts://bob@10.0.0.2:8883",
    "mqtt://[::1]:1999/",
    " mqtt://broker ",
    "http://broker",
    "mqtt://",
    "mqtt://user:hunter2@broker",
    "mqtt://broker:0",
    "mqtt://broker:99999",
    "mqtt://broker:notaport",
    "mqtt://broker/path",
    "mqtt://broker?x=1",
    "mqtt://[::1",
    "broker:1883",
    "mqtt://my broker:1883",
    "mqtt://a<b>",
    "mqtt://küche.local",
    "mqtt://[fe80::1%25eth0]:1883",
]


@pytest.mark.parametrize("url", URLS)
def test_config_and_sink_judge_a_url_alike(url: str) -> None:
    """Config validation at start refuses exactly what the sink would refuse when it connects,
    with the parser's own words after the file and key."""
    try:
        parse_mqtt_url(url)
    except ValueError as e:
        with pytest.raises(config.ConfigError) as err:
            config.from_dict({"mqtt": {"url": url}}, "/etc/moodcam/m.toml")
        assert str(err.value) == f"/etc/moodcam/m.toml: [mqtt] url: {e}"
        assert "hunter2" not in str(err.value)
    else:
        assert config.from_dict({"mqtt": {"url": url}}, "/etc/moodcam/m.toml").mqtt.url == url


@pytest.mark.parametrize("url", ["mqtt://my broker:1883", "mqtt://bro\tker", "mqtt://bro\nker",
                                 "mqtt://a<b>", "mqtt://a\x00b"])  # fmt: skip
def test_a_host_that_is_no_host_name_is_refused(url: str) -> None:
    """Issue 27, item 14: "my broker" passed validation; urllib silently drops a tab."""
    with pytest.raises(ValueError, match="bad MQTT URL"):
        parse_mqtt_url(url)
    with pytest.raises(config.ConfigError, match=r"\[mqtt\] url"):
        config.from_dict({"mqtt": {"url": url}}, "m.toml")


@pytest.mark.parametrize("url", ["mqtt://broker.local", "mqtt://küche.local:1883",
                                 "mqtt://[::1]:1883", "mqtts://cam_1@10.0.0.2"])  # fmt: skip
def test_host_names_and_addresses_pass(url: str) -> None:
    parse_mqtt_url(url)
