"""`moodcam playlist`: the playlist sink as a standalone consumer of a running moodcam's moods.

    moodcam playlist [--config FILE] [--log FILE | --mqtt URL [--device-id ID]] [--mpd HOST:PORT]

Moods come from one of:
- `--log FILE`: the JSON Lines mood log, followed like `tail -F`: the last line already there
  gives the current mood, then every complete line appended; it survives the writer's rotation
  (`mood.jsonl` -> `mood.jsonl.1`, a new `mood.jsonl`), truncation, the file being removed and
  coming back, and the torn-tail repair after a crash. With neither flag this is the config's
  `[log] path`.
- `--mqtt URL`: the `<topic_prefix>/<device-id>/event` topic (QoS 1), plus the retained `.../state`
  once at start, so the current mood is known before the next change. Username, password file
  and TLS files come from the config's `[mqtt]` section, the device id from `[device] id`.

The moods go through the same `PlaylistSink` as in the daemon ([playlist] section; `enabled` is
implied by running this command), so the rules are the ones in moodcam/sinks/playlist.py. Hold
and interval are timed by this process's clock from when a mood is read, not by the records'
`t`. An unreachable MPD or broker is one warning and a retry, never an exit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from moodcam import config as config_mod
from moodcam.commands.common import UsageError, apply_flags, nonempty, positive_seconds
from moodcam.errors import EXIT_OK
from moodcam.logreader import LogFollower
from moodcam.records import decode, parse_record
from moodcam.sinks.playlist import PlaylistSink
from moodcam.urls import BrokerAddress

log = logging.getLogger("moodcam.playlist")

POLL_S = 0.2  # how often the log follower looks for new lines


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `playlist` subcommand to the `moodcam` parser's subparsers."""
    p = subparsers.add_parser(
        "playlist",
        help="make MPD play a playlist per mood, from the mood log or MQTT",
        description=(
            "Follow a moodcam's moods (its mood log or its MQTT events) and switch MPD to the "
            "mood's playlist ([playlist] section of the config) once a mood has held for "
            "hold_s, at most once per min_interval_s, never while playback is paused or "
            "stopped unless resume_paused. Volume and playback modes are never touched."
        ),
    )
    p.add_argument(
        "--config", type=nonempty, help="TOML config ([playlist], [log], [mqtt], [device] are used)"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--log",
        type=nonempty,
        metavar="FILE",
        help="follow this mood log as it grows (default: [log] path)",
    )
    src.add_argument(
        "--mqtt",
        type=nonempty,
        metavar="URL",
        help="subscribe to mood events: mqtt://[user@]host[:port]",
    )
    p.add_argument(
        "--device-id", type=nonempty, help="with --mqtt: whose events (default: [device] id)"
    )
    p.add_argument(
        "--mpd",
        type=nonempty,
        metavar="HOST:PORT",
        help="MPD to control (default: [playlist] host and port)",
    )
    p.add_argument(
        "--max-runtime",
        type=positive_seconds,  # -1 ended at once with exit 0
        metavar="SECONDS",
        help="stop after this many seconds (default: until interrupted or SIGTERM)",
    )
    p.set_defaults(func=run)
    return p


def parse_mpd_address(text: str, default_port: int = 6600) -> tuple[str, int]:
    """`host`, `host:port`, `[v6addr]:port` or a unix socket path -> (host, port)."""
    text = text.strip()
    if text.startswith(("/", "@")):
        return text, default_port
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"--mpd {text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"--mpd {text!r}: expected [address]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise UsageError(f"--mpd {text!r}: no host (expected HOST:PORT or a socket path)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--mpd {text!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Run the consumer until `stop` is set, SIGTERM/SIGINT, or `--max-runtime`; exit status."""
    if args.device_id is not None and not args.mqtt:
        raise UsageError("--device-id only applies with --mqtt")
    # --mqtt and --device-id are checked as `moodcam run` checks them: a bad URL or device id
    # (one with an MQTT wildcard would follow other devices) is a ConfigError naming the flag.
    cfg = apply_flags(config_mod.load(args.config), args)
    pcfg = dataclasses.replace(cfg.playlist, enabled=True)
    if args.mpd:
        host, port = parse_mpd_address(args.mpd, pcfg.port)
        pcfg = dataclasses.replace(pcfg, host=host, port=port)
    address = _mqtt_address(cfg.mqtt) if args.mqtt else None
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    deadline = None if args.max_runtime is None else time.monotonic() + args.max_runtime

    sink = PlaylistSink(pcfg)
    try:
        if address is not None:
            _follow_mqtt(cfg.mqtt, address, args.device_id or cfg.device.id, sink, stop, deadline)
        else:
            _follow_log(Path(args.log or cfg.log.path), sink, stop, deadline)
    finally:
        sink.close()
    return EXIT_OK


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (systemd stop) ends the command cleanly; only possible from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, lambda *_: stop.set())


def _wait(stop: threading.Event, deadline: float | None, seconds: float) -> bool:
    """Sleep up to `seconds`; True when it is time to end."""
    if deadline is not None:
        seconds = min(seconds, deadline - time.monotonic())
    if seconds > 0 and stop.wait(seconds):
        return True
    return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)


# --- the mood log ----------------------------------------------------------------------------


def _follow_log(
    path: Path, sink: PlaylistSink, stop: threading.Event, deadline: float | None
) -> None:
    follower = LogFollower(path)
    try:
        last = follower.start()
        log.info("following the mood log %s", path)
        if last is not None and (u := decode(last)) is not None:
            sink.handle(u)
        while True:
            for rec in follower.read():
                if (u := decode(rec)) is not None:
                    sink.handle(u)
            if _wait(stop, deadline, POLL_S):
                return
    finally:
        follower.close()


# --- MQTT ------------------------------------------------------------------------------------


def _mqtt_address(cfg: config_mod.MqttConfig) -> BrokerAddress:
    """The broker's address. The password file is read once here only to fail before anything
    starts: one it cannot read is a SinkError, as for `moodcam run`'s MQTT sink (the URL itself
    was checked with the config)."""
    from moodcam.comms.mqtt import read_password
    from moodcam.errors import SinkError
    from moodcam.urls import parse_mqtt_url

    try:
        address = parse_mqtt_url(cfg.url)
        if cfg.password_file:
            read_password(cfg.password_file)
    except ValueError as e:
        raise SinkError(f"[mqtt] {e}") from None
    return address


def _follow_mqtt(
    cfg: config_mod.MqttConfig,
    address: BrokerAddress,
    device_id: str,
    sink: PlaylistSink,
    stop: threading.Event,
    deadline: float | None,
) -> None:
    from moodcam.comms import mqtt
    from moodcam.urls import redact_url

    base = f"{cfg.topic_prefix}/{device_id}"
    event_topic, state_topic = f"{base}/event", f"{base}/state"
    seen_event = threading.Event()
    down_logged = threading.Event()

    def on_refused(reason: str) -> None:
        if not down_logged.is_set():  # once per outage, not once per retry
            down_logged.set()
            log.warning("MQTT broker %s refused the connection: %s", address, reason)

    def on_unreachable() -> None:
        if not down_logged.is_set():
            down_logged.set()
            log.warning("MQTT broker unreachable at %s; retrying in the background", address)

    def on_subscribed() -> None:
        log.info("MQTT: listening to %s on %s", event_topic, address)
        down_logged.clear()

    def on_message(msg: Any) -> None:
        if msg.topic == state_topic and (seen_event.is_set() or not msg.retain):
            return  # the state only tells the mood at start; events say every change after
        rec = parse_record(msg.payload)
        if rec is None or (u := decode(rec)) is None:
            log.debug("MQTT: %s: not a mood record; ignored", msg.topic)
            return
        if msg.topic == event_topic:
            seen_event.set()
        sink.handle(u)

    try:  # the same credentials and TLS as the sink
        client = mqtt.subscribe(
            cfg,
            [event_topic, state_topic],
            on_message,
            f"moodcam-playlist-{device_id}-{uuid.uuid4().hex[:6]}",
            address=address,
            on_refused=on_refused,
            on_unreachable=on_unreachable,
            on_subscribed=on_subscribed,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    log.info("connecting to MQTT broker %s", redact_url(cfg.url))
    try:
        while not _wait(stop, deadline, 1.0):
            pass
    finally:
        mqtt.stop(client)
