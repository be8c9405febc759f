"""Playlist: the switching policy (deterministic, fake clock), the sink against a real MPD, and
`moodcam playlist` following a real mood log (with rotation) and a real Mosquitto."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moodcam.commands.playlist import LogFollower, UsageError, parse_mpd_address, run
from moodcam.config import ConfigError, LogConfig, PlaylistConfig
from moodcam.errors import SinkError
from moodcam.records import MoodUpdate
from moodcam.sinks.moodlog import MoodLogWriter
from moodcam.sinks.playlist import PlaylistError, PlaylistPolicy, PlaylistSink
from tests.mosquitto import free_port
from tests.mpd_server import INSTALL_HINT, MpdServer, find_mpd
from tests.servers import wait_until

ROOT = Path(__file__).resolve().parent.parent
PLAYLISTS = {"angry": "calm", "happy": "upbeat", "sad": "comfort", "neutral": "focus"}
SONGS = {"calm": 2, "upbeat": 2, "comfort": 2, "focus": 2, "other": 1}

needs_mpd = pytest.mark.skipif(find_mpd() is None, reason=INSTALL_HINT)


# --- the policy, on a fake clock -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def policy(clock: Clock, **kw: Any) -> PlaylistPolicy:
    args: dict[str, Any] = {"hold_s": 10.0, "min_interval_s": 60.0, "resume_paused": False}
    args.update(kw)
    return PlaylistPolicy(PLAYLISTS, clock=clock, **args)


def test_policy_switches_only_after_the_hold_time() -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy")
    clock.advance(9.9)
    assert p.decide("play").playlist is None
    assert p.next_check() == pytest.approx(0.1)
    clock.advance(0.1)
    assert p.decide("play").playlist == "upbeat"
    p.switched("upbeat")
    assert p.decide("play").playlist is None  # already playing it
    assert p.next_check() is None  # nothing can happen before the mood changes


def test_policy_a_flicker_restarts_the_hold() -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy")
    clock.advance(8)
    p.observe("sad")  # a moment of another mood...
    clock.advance(1)
    p.observe("happy")  # ...and back: the count starts again
    clock.advance(9)
    assert p.decide("play").playlist is None
    clock.advance(1)
    assert p.decide("play").playlist == "upbeat"
    # Observing the same mood again (every log line repeats it) does not restart anything.
    p.observe("happy")
    assert p.decide("play").playlist == "upbeat"


def test_policy_observe_takes_the_time_the_mood_was_seen() -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy", at=clock.t - 10)  # seen 10 s ago, reported late
    assert p.decide("play").playlist == "upbeat"


def test_policy_at_most_one_switch_per_interval() -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy")
    clock.advance(10)
    p.switched(p.decide("play").playlist or "")
    p.observe("sad")
    clock.advance(30)  # held long enough, but only 30 s after the last switch
    d = p.decide("play")
    assert d.playlist is None and "too recent" in d.reason
    assert p.next_check() == pytest.approx(30)
    clock.advance(30)
    assert p.decide("play").playlist == "comfort"
    p.switched("comfort")
    # The interval runs from the switch, and the first switch needed none.
    p.observe("angry")
    clock.advance(59)
    assert p.decide("play").playlist is None
    clock.advance(1)
    assert p.decide("play").playlist == "calm"


@pytest.mark.parametrize("state", ["pause", "stop"])
def test_policy_respects_a_paused_or_stopped_player(state: str) -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy")
    clock.advance(20)
    d = p.decide(state)
    assert d.playlist is None and ("paused" if state == "pause" else "stopped") in d.reason
    assert p.wanted().playlist == "upbeat"  # still wanted: happens when playback resumes
    assert p.decide("play").playlist == "upbeat"
    # Configured to override: switch (and so start playing) whatever the state.
    q = policy(clock, resume_paused=True)
    q.observe("happy")
    clock.advance(20)
    assert q.decide(state).playlist == "upbeat"


def test_policy_no_switch_for_no_mood_or_an_unmapped_mood() -> None:
    clock = Clock()
    p = policy(clock, hold_s=0.0, min_interval_s=0.0)
    assert p.decide("play").playlist is None  # nothing seen yet
    p.observe(None)
    clock.advance(100)
    assert p.decide("play").playlist is None
    assert p.next_check() is None
    p.observe("surprised")  # a label with no playlist
    clock.advance(100)
    d = p.decide("play")
    assert d.playlist is None and "no playlist" in d.reason
    # After a switch, losing the face (None) leaves the music as it is.
    p.observe("happy")
    p.switched(p.decide("play").playlist or "")
    p.observe(None)
    clock.advance(100)
    assert p.decide("play").playlist is None and p.current == "upbeat"


def test_policy_moods_sharing_a_playlist_do_not_reload_it() -> None:
    clock = Clock()
    p = PlaylistPolicy({"angry": "calm", "sad": "calm"}, hold_s=0, min_interval_s=0, clock=clock)
    p.observe("angry")
    p.switched(p.decide("play").playlist or "")
    p.observe("sad")
    assert p.decide("play").playlist is None


def test_policy_adopting_does_not_start_the_interval() -> None:
    clock = Clock()
    p = policy(clock)
    p.observe("happy")
    clock.advance(10)
    p.adopt("upbeat")  # MPD already had it: no switch made
    p.observe("sad")
    clock.advance(10)
    assert p.decide("play").playlist == "comfort"


# --- the sink against a real MPD -------------------------------------------------------------


@pytest.fixture
def mpd_server(tmp_path: Path) -> Iterator[MpdServer]:
    if find_mpd() is None:
        pytest.skip(INSTALL_HINT)
    with MpdServer(tmp_path / "mpd", SONGS, seconds=30) as server:
        yield server
        # pytest shows a test's captured output only when it fails: then MPD's side of it too
        # (a test client once timed out waiting for MPD on a loaded CI machine).
        print(f"mpd log {server.log_path}:\n{server.log()}")


def playing_other(server: MpdServer, volume: int = 37) -> None:
    """What the user was listening to before moodcam: playlist `other`, volume 37."""
    with server.client() as c:
        c.clear()
        c.load("other")
        c.setvol(volume)
        c.play(0)


def now_playing(server: MpdServer) -> tuple[str, list[str], int | None, str | None]:
    """(state, queue files, position in the queue, volume)."""
    with server.client() as c:
        st = c.status()
        files = [s["file"] for s in c.playlistinfo()]
    pos = int(st["song"]) if "song" in st else None
    return st["state"], files, pos, st.get("volume")


def songs(name: str) -> list[str]:
    return [f"{name}/{i:02d}.wav" for i in range(SONGS[name])]


def sink_cfg(server_or_port: MpdServer | int, **kw: Any) -> PlaylistConfig:
    port = server_or_port if isinstance(server_or_port, int) else server_or_port.port
    args: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "playlists": dict(PLAYLISTS),
        "hold_s": 0.3,
        "min_interval_s": 0.0,
        "retry_s": 0.5,
    }
    args.update(kw)
    return PlaylistConfig(**args)


def mood(m: str | None) -> MoodUpdate:
    return MoodUpdate(t=time.time(), mood=m, changed=True)


@needs_mpd
def test_sink_scripted_moods_drive_mpd(mpd_server: MpdServer) -> None:
    playing_other(mpd_server)
    with PlaylistSink(sink_cfg(mpd_server, hold_s=1.0, min_interval_s=2.5), poll_s=0.1) as sink:
        sink.handle(mood("happy"))
        time.sleep(0.2)
        assert now_playing(mpd_server)[1] == songs("other")  # still within the hold time
        wait_until(lambda: now_playing(mpd_server)[1] == songs("upbeat"), 5, "upbeat loaded")
        state, _, pos, volume = now_playing(mpd_server)
        assert (state, pos, volume) == ("play", 0, "37")  # from its start; volume untouched
        switched_at = time.monotonic()

        # The listener skips a song; the same mood frame after frame must not undo that.
        with mpd_server.client() as c:
            c.next()
        for _ in range(50):
            sink.handle(mood("happy"))
        # A new mood, held past hold_s, but the last switch is too recent.
        sink.handle(mood("sad"))
        time.sleep(max(0.0, switched_at + 1.5 - time.monotonic()))
        assert now_playing(mpd_server)[1:3] == (songs("upbeat"), 1)
        wait_until(lambda: now_playing(mpd_server)[1] == songs("comfort"), 5, "comfort loaded")
        assert now_playing(mpd_server)[0] == "play"

        # Nobody in view, then a mood with no playlist: the music stays as it is.
        sink.handle(mood(None))
        time.sleep(0.4)
        sink.handle(mood("surprised"))
        time.sleep(1.3)  # past the hold time
        state, files, _, volume = now_playing(mpd_server)
        assert (state, files, volume) == ("play", songs("comfort"), "37")
        assert sink.stats()["switches"] == 2 and sink.stats()["errors"] == 0


@needs_mpd
@pytest.mark.parametrize("how", ["pause", "stop"])
def test_sink_waits_while_the_user_paused(mpd_server: MpdServer, how: str) -> None:
    playing_other(mpd_server)
    with mpd_server.client() as c:
        c.pause(1) if how == "pause" else c.stop()
    with PlaylistSink(sink_cfg(mpd_server, hold_s=0.2), poll_s=0.1) as sink:
        sink.handle(mood("happy"))
        time.sleep(1.0)
        state, files, _, _ = now_playing(mpd_server)
        assert (state, files) == (how, songs("other"))
        assert sink.stats()["switches"] == 0
        with mpd_server.client() as c:  # the user presses play again
            c.pause(0) if how == "pause" else c.play()
        wait_until(lambda: now_playing(mpd_server)[1] == songs("upbeat"), 5, "upbeat loaded")
        assert now_playing(mpd_server)[0] == "play"


@needs_mpd
def test_sink_resume_paused_switches_and_plays(mpd_server: MpdServer) -> None:
    playing_other(mpd_server)
    with mpd_server.client() as c:
        c.pause(1)
    with PlaylistSink(sink_cfg(mpd_server, hold_s=0.2, resume_paused=True), poll_s=0.1) as sink:
        sink.handle(mood("sad"))
        wait_until(lambda: now_playing(mpd_server)[:3] == ("play", songs("comfort"), 0), 5,
                   "comfort playing")  # fmt: skip
        assert now_playing(mpd_server)[3] == "37"


@needs_mpd
def test_sink_adopts_what_mpd_already_plays(mpd_server: MpdServer) -> None:
    with mpd_server.client() as c:  # moodcam restarted: MPD is in the middle of `comfort`
        c.clear()
        c.load("comfort")
        c.play(1)
    with PlaylistSink(sink_cfg(mpd_server, hold_s=0.1), poll_s=0.1) as sink:
        sink.handle(mood("sad"))
        wait_until(lambda: sink.stats()["adopted"] == 1, 5, "comfort adopted")
        assert now_playing(mpd_server)[:3] == ("play", songs("comfort"), 1)  # not restarted
        assert sink.stats()["switches"] == 0


@needs_mpd
def test_sink_recovers_when_mpd_starts_late(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="moodcam.playlist")
    port = free_port()
    with PlaylistSink(sink_cfg(port, hold_s=0.2), poll_s=0.1) as sink:
        sink.handle(mood("happy"))
        wait_until(lambda: sink.stats()["errors"] >= 3, 5, "three failed attempts")  # retry_s 0.5
        down = [
            r
            for r in caplog.records
            if r.name == "moodcam.playlist" and r.levelno >= logging.WARNING
        ]
        assert len(down) == 1, [r.getMessage() for r in down]  # one line, not one per retry
        assert f"MPD unreachable at 127.0.0.1:{port}" in down[0].getMessage()
        assert "retrying every 0.5 s" in down[0].getMessage()
        with MpdServer(tmp_path / "mpd", SONGS, port=port, seconds=30) as server:
            playing_other(server)
            wait_until(lambda: now_playing(server)[1] == songs("upbeat"), 5, "upbeat loaded")
            assert any("reachable again" in r.getMessage() for r in caplog.records)
            assert sink.stats()["connected"]


@needs_mpd
def test_sink_missing_playlist_is_one_warning_and_no_harm(
    mpd_server: MpdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="moodcam.playlist")
    playing_other(mpd_server)
    cfg = sink_cfg(mpd_server, hold_s=0.1, playlists={"happy": "nope", "sad": "comfort"})
    with PlaylistSink(cfg, poll_s=0.1) as sink:
        sink.handle(mood("happy"))
        wait_until(lambda: sink.stats()["errors"] >= 2, 5, "two attempts")
        warnings = [r.getMessage() for r in caplog.records
                    if r.name == "moodcam.playlist" and r.levelno >= logging.WARNING]  # fmt: skip
        assert len(warnings) == 1 and "no stored playlist 'nope'" in warnings[0]
        assert now_playing(mpd_server)[:2] == ("play", songs("other"))
        sink.handle(mood("sad"))
        wait_until(lambda: now_playing(mpd_server)[1] == songs("comfort"), 5, "comfort loaded")


@needs_mpd
@pytest.mark.parametrize("given", ["right", "wrong", "none"])
def test_sink_password(tmp_path: Path, given: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="moodcam.playlist")
    with MpdServer(tmp_path / "mpd", SONGS, seconds=30, password="s3cret") as server:
        playing_other(server)
        pw_file = ""
        if given != "none":
            (tmp_path / "pw").write_text("s3cret\n" if given == "right" else "guess\n")
            pw_file = str(tmp_path / "pw")
        with PlaylistSink(sink_cfg(server, hold_s=0.1, password_file=pw_file)) as sink:
            sink.handle(mood("happy"))
            if given == "right":
                wait_until(lambda: now_playing(server)[1] == songs("upbeat"), 5, "upbeat loaded")
                return
            wait_until(lambda: sink.stats()["errors"] >= 3, 5, "three attempts")
            msg = sink.stats()["last_error"] or ""
            warnings = [r for r in caplog.records
                        if r.name == "moodcam.playlist" and r.levelno >= logging.WARNING]  # fmt: skip
            assert len(warnings) == 1, caplog.text  # one line per outage, not one per retry
            assert ("refused the password" if given == "wrong" else "password is needed") in msg
            assert "guess" not in caplog.text and "s3cret" not in caplog.text
            assert now_playing(server)[1] == songs("other")


def test_sink_never_blocks_on_a_hung_mpd(caplog: pytest.LogCaptureFixture) -> None:
    """A server that accepts but never says hello: handle() and close() do not wait for it.

    Shown by order, not by a stopwatch: the worker is given 30 s to hear the hello, and every
    handle() returns, and close() gives up, while it still waits."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        cfg = sink_cfg(hung.getsockname()[1], hold_s=0.0)
        sink = PlaylistSink(cfg, timeout_s=30.0)
        for i in range(2000):
            sink.handle(mood("happy" if i % 2 else "sad"))
        assert sink.stats()["last_error"] is None  # the worker is still waiting for the hello
        closer = threading.Thread(target=sink.close, kwargs={"timeout": 0.5})
        closer.start()
        closer.join(10)  # a safety bound, a third of the worker's 30 s wait
        assert not closer.is_alive() and sink.stats()["last_error"] is None
        # With a short timeout the worker says what happened, once.
        sink = PlaylistSink(cfg, timeout_s=1.0)
        sink.handle(mood("happy"))
        wait_until(lambda: sink.stats()["last_error"], 5, "the timeout to be reported")
        assert "timed out" in (sink.stats()["last_error"] or "")
        sink.close(timeout=0.5)


def test_sink_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[playlist\] playlists: happy = ''"):
        PlaylistSink(sink_cfg(1, playlists={"happy": ""}))
    with pytest.raises(PlaylistError, match=r"password_file .*missing.*cannot read"):
        PlaylistSink(sink_cfg(1, password_file=str(tmp_path / "missing")))
    off = PlaylistSink(PlaylistConfig(enabled=False))
    off.handle(mood("happy"))  # a disabled sink does nothing, and starts no thread
    assert off._thread is None
    off.close()


# --- moodcam playlist: following the mood log ------------------------------------------------


def log_writer(path: Path, **kw: Any) -> MoodLogWriter:
    args: dict[str, Any] = {"path": str(path), "interval_s": 0.0, "fsync": False}
    args.update(kw)
    return MoodLogWriter(LogConfig(**args))


def test_log_follower_tail_rotation_and_repair(tmp_path: Path) -> None:
    path = tmp_path / "mood.jsonl"
    follower = LogFollower(path)
    assert follower.start() is None  # no log yet: waits for it
    w = log_writer(path, max_bytes=1024, backups=2)
    w.handle(mood("sad"))
    w.handle(mood("happy"))
    assert [r["mood"] for r in follower.read()] == ["sad", "happy"]  # a new file: from its start
    w.close()
    # A restart: start() gives the last record, then only what is appended.
    follower.close()
    follower = LogFollower(path)
    assert follower.start()["mood"] == "happy"  # type: ignore[index]
    w = log_writer(path, max_bytes=1024, backups=2)
    moods = [("angry", "sad", "neutral")[i % 3] for i in range(40)]  # ~4 rotations
    got: list[str | None] = []
    for i, m in enumerate(moods):
        w.handle(mood(m))
        if i % 3 == 0:  # a reader a little behind the writer, never a whole file behind
            got += [r["mood"] for r in follower.read()]
    got += [r["mood"] for r in follower.read()]
    got += [r["mood"] for r in follower.read()]  # the last file, after the final rotation
    assert w.stats()["rotations"] >= 3
    assert got == moods
    # A crash mid-line leaves a torn tail; the next writer repairs it and appends.
    w.close()
    with open(path, "ab") as f:
        f.write(b'{"v":1,"t":1,"mood":"ang')
    assert follower.read() == []  # a partial line is not a record
    w = log_writer(path)
    w.handle(mood("happy"))
    assert w.stats()["repaired_bytes"] > 0
    assert [r["mood"] for r in follower.read()] == ["happy"]
    # Removed and created again: the new file from its start.
    w.close()
    path.unlink()
    assert follower.read() == []
    w = log_writer(path)
    w.handle(mood("neutral"))
    assert [r["mood"] for r in follower.read()] == ["neutral"]
    assert follower.skipped == 0
    w.close()
    follower.close()


def cli_args(**kw: Any) -> argparse.Namespace:
    args: dict[str, Any] = {"config": None, "log": None, "mqtt": None, "device_id": None,
                            "mpd": None, "max_runtime": None}  # fmt: skip
    args.update(kw)
    return argparse.Namespace(**args)


def write_config(tmp_path: Path, port: int, extra: str = "") -> str:
    cfg = tmp_path / "moodcam.toml"
    cfg.write_text(
        f'[playlist]\nhost = "127.0.0.1"\nport = {port}\nhold_s = 0.3\nmin_interval_s = 0.0\n'
        f"retry_s = 0.5\n{extra}",
        encoding="utf-8",
    )
    return str(cfg)


class Consumer:
    """`run(args)` in a thread, stopped by an Event as a SIGTERM would."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.stop = threading.Event()
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)
        self.thread.start()

    def _run(self, args: argparse.Namespace) -> None:
        self.rc = run(args, self.stop)

    def finish(self) -> int | None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        return self.rc


@needs_mpd
def test_cli_follows_a_growing_rotating_log(tmp_path: Path, mpd_server: MpdServer) -> None:
    playing_other(mpd_server)
    path = tmp_path / "log" / "mood.jsonl"
    path.parent.mkdir()
    w = log_writer(path, max_bytes=1024, backups=1)
    w.handle(mood("sad"))  # the mood when the consumer starts: its last line
    consumer = Consumer(cli_args(config=write_config(tmp_path, 1), log=str(path),
                                 mpd=f"127.0.0.1:{mpd_server.port}"))  # fmt: skip
    try:
        wait_until(lambda: now_playing(mpd_server)[1] == songs("comfort"), 5, "comfort")
        for m in ("happy", "angry"):
            rotations = w.stats()["rotations"]
            for _ in range(15):  # a line per frame: enough to rotate the file each time
                w.handle(MoodUpdate(t=time.time(), mood=m))
                time.sleep(0.03)
            assert w.stats()["rotations"] > rotations
            want = songs(PLAYLISTS[m])
            wait_until(lambda want=want: now_playing(mpd_server)[1] == want, 5, PLAYLISTS[m])
    finally:
        w.close()
        assert consumer.finish() == 0
    assert now_playing(mpd_server)[3] == "37"


@needs_mpd
def test_cli_follows_mqtt_events(tmp_path: Path, mpd_server: MpdServer) -> None:
    from moodcam.config import DeviceConfig, MqttConfig
    from moodcam.labels import DEFAULT_CLASSES
    from moodcam.sinks.mqtt import MqttSink
    from tests.mosquitto import INSTALL_HINT as MQ_HINT
    from tests.mosquitto import Mosquitto, find_mosquitto

    if find_mosquitto() is None:
        pytest.skip(MQ_HINT)
    playing_other(mpd_server)
    with Mosquitto(tmp_path / "broker") as broker:
        url = f"mqtt://127.0.0.1:{broker.port}"
        daemon = MqttSink(MqttConfig(enabled=True, url=url, discovery=False),
                          DeviceConfig(id="cam1"), DEFAULT_CLASSES)  # fmt: skip
        try:
            daemon.handle(mood("happy"))  # before the consumer: known from the retained state
            wait_until(lambda: daemon.stats()["events"] == 1, 5, "the first event acked")
            consumer = Consumer(cli_args(config=write_config(tmp_path, mpd_server.port),
                                         mqtt=url, device_id="cam1"))  # fmt: skip
            try:
                wait_until(lambda: now_playing(mpd_server)[1] == songs("upbeat"), 5, "upbeat")
                daemon.handle(mood("angry"))
                wait_until(lambda: now_playing(mpd_server)[1] == songs("calm"), 5, "calm")
            finally:
                assert consumer.finish() == 0
        finally:
            daemon.close()


def test_cli_unreachable_mpd_is_one_line_and_sigterm_ends_it(tmp_path: Path) -> None:
    path = tmp_path / "mood.jsonl"
    w = log_writer(path)
    w.handle(mood("happy"))
    w.close()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moodcam.cli", "playlist", "--log", str(path),
         "--config", write_config(tmp_path, port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        time.sleep(2.0)  # several retries (retry_s 0.5)
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode()
    assert proc.returncode == 0, text
    assert text.count(f"MPD unreachable at 127.0.0.1:{port}") == 1, text
    assert "Traceback" not in text


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert parse_mpd_address("pi.local") == ("pi.local", 6600)
    assert parse_mpd_address("pi.local:6601") == ("pi.local", 6601)
    assert parse_mpd_address("[::1]:6602") == ("::1", 6602)
    assert parse_mpd_address("/run/mpd/socket") == ("/run/mpd/socket", 6600)
    for bad in ("host:port", ":6600", "host:0", "[::1"):
        with pytest.raises(UsageError, match="--mpd"):
            parse_mpd_address(bad)
    with pytest.raises(UsageError, match="--device-id only applies with --mqtt"):
        run(cli_args(device_id="cam1", log=str(tmp_path / "x")))
    # --mqtt and --device-id: the checks and exit statuses of `moodcam run`.
    with pytest.raises(ConfigError, match="command-line flags: \\[mqtt\\] url: bad MQTT URL"):
        run(cli_args(mqtt="http://broker"))
    with pytest.raises(ConfigError, match="\\[device\\] id: 'cam/\\+' must be 1 to 64 of"):
        run(cli_args(mqtt="mqtt://127.0.0.1:1", device_id="cam/+"))
    pw = tmp_path / "mqtt.toml"
    pw.write_text(f'[mqtt]\npassword_file = "{tmp_path / "no-password"}"\n')
    with pytest.raises(SinkError, match=r"MQTT password_file .*no-password: cannot read it"):
        run(cli_args(config=str(pw), mqtt="mqtt://user@127.0.0.1:1"))
    with pytest.raises(ConfigError, match="no such config file"):
        run(cli_args(config=str(tmp_path / "none.toml")))


def test_cli_log_it_cannot_read_is_unreadable_input(tmp_path: Path) -> None:
    # A folder here; for a user outside group moodcam, the daemon's 0640 log (EACCES) alike.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "playlist", "--log", str(tmp_path),
         "--config", write_config(tmp_path, free_port()), "--max-runtime", "5"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    assert f"mood log {tmp_path}: is a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
