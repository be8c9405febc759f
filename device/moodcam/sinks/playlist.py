"""Playlist sink: the music follows the mood, through MPD (python-mpd2).

Three layers, so the rules can be tested without a music player and the player without a camera:

- `PlaylistPolicy` — pure and clock-injected: given the mood over time and MPD's play state, says
  when to load which stored playlist.
- `MpdPlayer` — the few MPD commands we need, with one clear exception type for "cannot talk to
  MPD" (`MpdUnavailable`) and one for "that playlist is not there" (`PlaylistMissing`).
- `PlaylistSink` — the daemon's Sink: `handle()` only notes a mood change on a queue; a worker
  thread runs the policy and talks to MPD, so the frame loop never waits for the network.
  `moodcam playlist` (moodcam.commands.playlist) feeds the same sink from the mood log or MQTT.

The rules (times are seconds of the clock of the process that talks to MPD, `time.monotonic`,
not the records' `t`: holding and spacing are about what a listener hears, in real time):

1. A mood's playlist is `cfg.playlists[mood]`. No mood (None: nobody in view) or a mood without an
   entry never causes a switch; whatever plays keeps playing.
2. The mood must have been the same for `hold_s` since it last changed (any change, including to
   None and back, restarts the count).
3. At most one switch per `min_interval_s`, counted from the previous switch (the first switch
   after start may happen at once).
4. Only while MPD is playing (state ``play``). Paused (``pause``) and stopped (``stop``) both count
   as "the user has paused the music": moodcam never starts music the user stopped, unless
   `resume_paused` is true, in which case a switch loads and starts the playlist whatever the
   state. A switch held back by a pause happens when playback resumes, if the mood still holds.
5. No switch when the wanted playlist is the one we loaded last, or when MPD's queue already holds
   exactly that playlist's songs (say after a restart of moodcam, or the user chose it); the
   latter is adopted without counting as a switch for rule 3.

What a switch does: replace the queue with the stored playlist and play it from its first song
(``clear``, ``load``, ``play 0`` in one command list). What is left alone: the volume (never
read or set), the playback modes (repeat, random, single, consume), and, between switches, the
queue and the position in it: moodcam touches MPD only to switch, so skipping, seeking or editing
the queue by hand is never undone. A user who picks other music keeps it until the mood changes.

An unreachable MPD (not running, wrong host, refused password) is one warning line; the sink keeps
running, retries every `retry_s`, and says when MPD is back. `handle()` never raises.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import mpd

from moodcam.config import Config, ConfigError, PlaylistConfig
from moodcam.credentials import read_password_file
from moodcam.errors import SinkError
from moodcam.records import MoodUpdate
from moodcam.sinks import Sink

log = logging.getLogger("moodcam.playlist")

# python-mpd2 logs every connect/disconnect at INFO; that is noise in the daemon's log.
if logging.getLogger("mpd").level == logging.NOTSET:
    logging.getLogger("mpd").setLevel(logging.WARNING)

PLAYING, PAUSED, STOPPED = "play", "pause", "stop"
CONNECT_TIMEOUT_S = 5.0  # TCP connect and each command; a hung MPD must not hang the worker
PAUSED_POLL_S = 1.0  # how often to look whether a paused player resumed, while a switch waits


class PlaylistError(SinkError):
    """The playlist sink cannot start (e.g. an unreadable password file)."""


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the policy wants now: `playlist` to load (None: nothing to do) and why, for logs."""

    playlist: str | None
    reason: str


class PlaylistPolicy:
    """When to switch to which playlist; pure: no I/O, time only from `clock`.

    Feed it `observe(mood)` on every mood change, ask `wanted()` (all rules but MPD's state) and
    `decide(player_state)`, report `switched(p)` after loading a playlist and `adopt(p)` when MPD
    already plays it. `next_check()` says how long until `wanted()` may change by itself.
    """

    def __init__(
        self,
        playlists: Mapping[str, str],
        *,
        hold_s: float,
        min_interval_s: float,
        resume_paused: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.playlists = dict(playlists)
        self.hold_s = float(hold_s)
        self.min_interval_s = float(min_interval_s)
        self.resume_paused = resume_paused
        self._clock = clock
        self.mood: str | None = None
        self.since = clock()  # when `mood` started; None counts as a mood held since start
        self.current: str | None = None  # the playlist we loaded (or adopted) last
        self.last_switch: float | None = None

    @classmethod
    def from_config(
        cls, cfg: PlaylistConfig, clock: Callable[[], float] = time.monotonic
    ) -> PlaylistPolicy:
        return cls(
            cfg.playlists,
            hold_s=cfg.hold_s,
            min_interval_s=cfg.min_interval_s,
            resume_paused=cfg.resume_paused,
            clock=clock,
        )

    def observe(self, mood: str | None, at: float | None = None) -> None:
        """The mood is `mood` since `at` (clock time; default now). A different mood than before
        restarts the hold time."""
        if mood != self.mood:
            self.mood = mood
            self.since = self._clock() if at is None else at

    def target(self) -> str | None:
        """The current mood's playlist, or None (no mood, or a mood without a playlist)."""
        return None if self.mood is None else self.playlists.get(self.mood)

    def wanted(self) -> Decision:
        """Every rule except MPD's play state: is a switch due, to what?"""
        target = self.target()
        if self.mood is None:
            return Decision(None, "no mood")
        if target is None:
            return Decision(None, f"mood {self.mood!r} has no playlist")
        if target == self.current:
            return Decision(None, f"{target!r} is already playing")
        now = self._clock()
        held = now - self.since
        if held < self.hold_s:
            return Decision(None, f"mood {self.mood!r} held {held:.1f} of {self.hold_s:g} s")
        if self.last_switch is not None and now - self.last_switch < self.min_interval_s:
            left = self.min_interval_s - (now - self.last_switch)
            return Decision(None, f"last switch too recent: next one allowed in {left:.1f} s")
        return Decision(target, f"mood {self.mood!r} held {held:.1f} s")

    def decide(self, player_state: str) -> Decision:
        """`wanted()`, plus rule 4: not while the user has paused or stopped playback."""
        d = self.wanted()
        if d.playlist is None or player_state == PLAYING or self.resume_paused:
            return d
        what = "paused" if player_state == PAUSED else "stopped"
        return Decision(None, f"would play {d.playlist!r}, but playback is {what}")

    def switched(self, playlist: str) -> None:
        """We just loaded `playlist`: it is current, and rule 3's interval starts now."""
        self.current = playlist
        self.last_switch = self._clock()

    def adopt(self, playlist: str) -> None:
        """MPD already plays `playlist` (not our doing): current, without starting the interval."""
        self.current = playlist

    def next_check(self) -> float | None:
        """Seconds until `wanted()` may say switch with no new input (0: now); None: not before
        the mood changes."""
        target = self.target()
        if target is None or target == self.current:
            return None
        due = self.since + self.hold_s
        if self.last_switch is not None:
            due = max(due, self.last_switch + self.min_interval_s)
        return max(0.0, due - self._clock())


# --- MPD -------------------------------------------------------------------------------------


class MpdUnavailable(Exception):
    """MPD cannot be used right now (down, unreachable, refused us); the message is one line."""


class PlaylistMissing(Exception):
    """The stored playlist does not exist in MPD, or is empty."""


class MpdPlayer:
    """The MPD commands the sink needs, over one connection that is re-made when it drops.

    `host` is a name/address, or an absolute path (or @abstract name) of MPD's unix socket, in
    which case `port` is unused. Not thread-safe: the sink's worker is its only user.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self._password = password
        self._timeout_s = timeout_s
        self._client: mpd.MPDClient | None = None

    @property
    def address(self) -> str:
        return self.host if self.host.startswith(("/", "@")) else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Connect (and authenticate) if not connected; MpdUnavailable if that fails."""
        if self._client is not None:
            return
        client = mpd.MPDClient()
        client.timeout = self._timeout_s
        try:
            client.connect(self.host, self.port)
        except (OSError, mpd.MPDError) as e:
            raise MpdUnavailable(f"MPD unreachable at {self.address}: {_why(e)}") from None
        if self._password:
            try:
                client.password(self._password)
            except mpd.CommandError:
                _quiet_disconnect(client)
                raise MpdUnavailable(f"MPD at {self.address} refused the password") from None
            except (OSError, mpd.MPDError) as e:
                _quiet_disconnect(client)
                raise MpdUnavailable(f"MPD at {self.address}: {_why(e)}") from None
        self._client = client

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError, mpd.MPDError):
                client.close()
            _quiet_disconnect(client)

    def _call(self, what: str, fn: Callable[[mpd.MPDClient], Any]) -> Any:
        # A connection can have gone stale since last use (MPD drops idle clients after its
        # connection_timeout, 60 s by default): one fresh connection and one more try.
        for attempt in (1, 2):
            self.connect()
            assert self._client is not None
            try:
                return fn(self._client)
            except mpd.CommandError as e:
                if _is_permission(e):
                    self.disconnect()
                    raise MpdUnavailable(
                        f"MPD at {self.address} does not allow {what} "
                        "(a password is needed: [playlist] password_file)"
                    ) from None
                raise
            except (OSError, mpd.ConnectionError, mpd.ProtocolError) as e:
                self.disconnect()
                if attempt == 2:
                    raise MpdUnavailable(
                        f"MPD at {self.address}: {what} failed: {_why(e)}"
                    ) from None
        raise AssertionError("unreachable")

    def state(self) -> str:
        """``play``, ``pause`` or ``stop``."""
        return str(self._call("status", lambda c: c.status()).get("state", STOPPED))

    def queue_files(self) -> list[str]:
        return [str(s["file"]) for s in self._call("playlistinfo", lambda c: c.playlistinfo())]

    def playlist_files(self, name: str) -> list[str]:
        """The songs of stored playlist `name`; PlaylistMissing if there is none or it is empty."""
        try:
            files = [str(f) for f in self._call("listplaylist", lambda c: c.listplaylist(name))]
        except mpd.CommandError as e:
            raise PlaylistMissing(
                f"MPD at {self.address} has no stored playlist {name!r} ({_why(e)})"
            ) from None
        if not files:
            raise PlaylistMissing(f"MPD at {self.address}: stored playlist {name!r} is empty")
        return files

    def switch(self, name: str) -> None:
        """Replace the queue with stored playlist `name` and play it from its first song."""

        def run(c: mpd.MPDClient) -> None:
            c.command_list_ok_begin()  # one round trip: no audible gap between clear and play
            c.clear()
            c.load(name)
            c.play(0)
            c.command_list_end()

        try:
            self._call("switching playlists", run)
        except mpd.CommandError as e:
            # Removed between our check and the load: the queue may now be empty; say so.
            raise PlaylistMissing(
                f"MPD at {self.address}: loading {name!r} failed: {_why(e)}"
            ) from None


def _is_permission(e: mpd.CommandError) -> bool:
    return str(e).startswith("[4@")  # ACK_ERROR_PERMISSION


def _quiet_disconnect(client: mpd.MPDClient) -> None:
    with contextlib.suppress(OSError, mpd.MPDError):
        client.disconnect()


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


# --- the sink --------------------------------------------------------------------------------


@dataclass
class PlaylistStats:
    switches: int = 0  # playlists loaded
    adopted: int = 0  # times MPD already held the wanted playlist
    errors: int = 0  # failed attempts to use MPD
    connected: bool = False
    current: str | None = None
    last_error: str | None = None


def check_config(cfg: PlaylistConfig) -> None:
    """ConfigError unless `playlists` maps mood names to non-empty playlist names."""
    for mood, name in cfg.playlists.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f'[playlist] playlists: {mood} = {name!r} is not <mood> = "<MPD playlist name>"'
            )


def read_password(path: str) -> str:
    """MPD's password from `path`; PlaylistError naming the file (never the password)."""
    try:
        return read_password_file(path, "MPD")
    except ValueError as e:
        raise PlaylistError(str(e)) from None


_STOP = object()


class PlaylistSink(Sink):
    """Sink that makes MPD play the mood's playlist; see the module docstring for the rules.

    `handle()` puts each mood *change* (with the time it was seen) on a queue and returns; the
    worker thread `moodcam-playlist` does everything else. `clock` must be monotonic seconds.
    With `cfg.enabled` false the sink does nothing (no thread, no connection).
    """

    def __init__(
        self,
        cfg: PlaylistConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = PAUSED_POLL_S,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.cfg = cfg
        self.counters = PlaylistStats()
        self._clock = clock
        self._poll_s = poll_s
        self._last_mood: object = _STOP  # the last mood handed to the worker (none yet)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread: threading.Thread | None = None
        if not cfg.enabled:
            return
        check_config(cfg)
        password = read_password(cfg.password_file) if cfg.password_file else None
        self.policy = PlaylistPolicy.from_config(cfg, clock)
        self.player = MpdPlayer(cfg.host, cfg.port, password, timeout_s)
        self._outage: str | None = None  # the message of the MPD outage we are in, if any
        self._retry_at = 0.0
        self._missing: dict[str, float] = {}  # playlist -> when to look for it again
        self._thread = threading.Thread(target=self._run, name="moodcam-playlist", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"PlaylistSink(mpd={self.cfg.host}:{self.cfg.port}, enabled={self.cfg.enabled})"

    # --- Sink -------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> PlaylistSink:
        return cls(cfg.playlist)  # PlaylistError is a SinkError naming the file

    def stats(self) -> dict[str, Any]:
        return asdict(self.counters)

    def handle(self, update: MoodUpdate) -> None:
        """Note a mood change for the worker; O(1), never blocks, never raises."""
        if self._thread is None or self._closed:
            return
        mood = update.mood
        if mood == self._last_mood:
            return  # same mood as the previous frame: nothing new for the policy
        self._last_mood = mood
        # Stamped here, not when the worker gets to it, so a busy worker cannot stretch holds.
        self._inbox.put((self._clock(), mood))

    def close(self, timeout: float = 3.0) -> None:
        """Stop the worker and drop the MPD connection; the music keeps playing."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._inbox.put(_STOP)
            # The worker may sit in a connect to a dead host for up to `timeout_s`: do not wait
            # for it longer than `timeout`; it is a daemon thread and ends with the process.
            self._thread.join(timeout)

    def __enter__(self) -> PlaylistSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        wake: float | None = None
        try:
            self._try_connect()  # early: say at start if MPD is not there
            while True:
                now = self._clock()
                wait = None if wake is None else max(0.0, wake - now)
                try:
                    item = self._inbox.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    return
                if item is not None and self._feed(item):
                    return
                wake = self._step()
        except Exception:  # a bug: say so loudly, but never take the daemon down with us
            log.exception("playlist worker failed; the music no longer follows the mood")
        finally:
            self.player.disconnect()
            self.counters.connected = False

    def _feed(self, item: tuple[float, str | None]) -> bool:
        """Give the policy this change and any others already queued; True if told to stop."""
        while True:
            at, mood = item
            self.policy.observe(mood, at)
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                return False
            if nxt is _STOP:
                return True
            item = nxt

    def _step(self) -> float | None:
        """Act on the policy once; returns when to look again (clock time) or None."""
        now = self._clock()
        if self._outage is not None and now >= self._retry_at:
            self._try_connect()  # keep retrying while down, so "MPD is back" is said promptly
        wanted = self.policy.wanted()
        if wanted.playlist is None:
            log.debug("playlist: no switch: %s", wanted.reason)
            later = self.policy.next_check()
            wake = None if later is None else now + later
            if self._outage is not None:
                wake = self._retry_at if wake is None else min(wake, self._retry_at)
            return wake
        if self._outage is not None:
            return self._retry_at
        name = wanted.playlist
        if self._missing.get(name, 0.0) > now:
            return self._missing[name]
        try:
            files = self.player.playlist_files(name)
            state = self.player.state()
            if self.player.queue_files() == files:
                self.policy.adopt(name)
                self.counters.adopted += 1
                self.counters.current = name
                log.info("playlist: MPD already has %r for mood %r", name, self.policy.mood)
                return self._step_after()
            decision = self.policy.decide(state)
            if decision.playlist is None:
                log.debug("playlist: no switch: %s", decision.reason)
                return now + self._poll_s  # waiting for the user to press play
            self.player.switch(name)
        except MpdUnavailable as e:
            self._fail(str(e))
            return self._retry_at
        except mpd.MPDError as e:  # MPD said no to something else: treat it like an outage
            self.player.disconnect()
            self._fail(f"MPD at {self.player.address}: {_why(e)}")
            return self._retry_at
        except PlaylistMissing as e:
            if name not in self._missing:
                log.warning("playlist: %s; retrying every %g s", e, self.cfg.retry_s)
            self.counters.errors += 1
            self.counters.last_error = str(e)
            self._missing[name] = now + self.cfg.retry_s
            return self._missing[name]
        self._missing.pop(name, None)
        self.counters.connected = True
        self.policy.switched(name)
        self.counters.switches += 1
        self.counters.current = name
        log.info("playlist: %s: playing %r from its start", decision.reason, name)
        return self._step_after()

    def _step_after(self) -> float | None:
        later = self.policy.next_check()
        return None if later is None else self._clock() + later

    def _try_connect(self) -> None:
        try:
            # Not just connect: a server that wants a password accepts the connection and then
            # refuses every command, and that must stay one outage, not one per retry.
            self.player.state()
        except MpdUnavailable as e:
            self._fail(str(e))
            return
        except mpd.MPDError as e:
            self.player.disconnect()
            self._fail(f"MPD at {self.player.address}: {_why(e)}")
            return
        self.counters.connected = True
        if self._outage is not None:
            log.warning("playlist: MPD at %s is reachable again", self.player.address)
        self._outage = None

    def _fail(self, msg: str) -> None:
        self.counters.errors += 1
        self.counters.last_error = msg
        self.counters.connected = False
        self._retry_at = self._clock() + self.cfg.retry_s
        if self._outage is None:
            log.warning(
                "playlist: %s; the music will not follow the mood until it answers "
                "(retrying every %g s)",
                msg,
                self.cfg.retry_s,
            )
        else:
            log.debug("playlist: %s", msg)  # once per outage at warning level
        self._outage = msg
