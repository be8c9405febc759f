"""A real MPD for tests: null audio output, a temporary music folder of tiny WAVs, stored playlists.

    with MpdServer(tmp_path, playlists={"upbeat": 2, "calm": 2}) as mpd:
        client.connect("127.0.0.1", mpd.port)

Every playlist `name` gets `songs` generated files `name/NN.wav` (silent 8 kHz mono, `seconds`
long: the null output plays in real time, so they last long enough for a test to look at what is
playing) and a stored playlist `name.m3u` listing them. The null output has a software mixer so
that volume exists and a test can check it was left alone. With `password`, a client without it
may do nothing at all.

Needs Debian's `mpd` binary (apt-get install mpd); `find_mpd()` says where it is or None, so
tests can skip with a clear reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

from mpd import MPDClient

from tests.servers import free_port, tail_log, terminate, wait_listening

INSTALL_HINT = "mpd not found: apt-get install mpd"


def find_mpd() -> str | None:
    """Path of the mpd binary (Debian: /usr/bin/mpd)."""
    return shutil.which("mpd") or next(
        (
            p
            for p in ("/usr/bin/mpd", "/usr/sbin/mpd", "/usr/local/bin/mpd")
            if os.access(p, os.X_OK)
        ),
        None,
    )


def write_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    """A silent 8-bit mono WAV: the smallest file every MPD build decodes (libsndfile/ffmpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * int(seconds * rate))  # 0x80 is silence for unsigned 8-bit


class MpdServer:
    """One `mpd --no-daemon` process on 127.0.0.1:`port` with its own music and playlist folders."""

    def __init__(
        self,
        workdir: Path,
        playlists: dict[str, int] | None = None,
        *,
        port: int | None = None,
        seconds: float = 60.0,
        password: str | None = None,
    ) -> None:
        binary = find_mpd()
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.music_dir = self.workdir / "music"
        self.playlist_dir = self.workdir / "playlists"
        self.music_dir.mkdir(parents=True, exist_ok=True)
        self.playlist_dir.mkdir(parents=True, exist_ok=True)
        self.playlists: dict[str, list[str]] = {}
        for name, count in (playlists or {}).items():
            files = [f"{name}/{i:02d}.wav" for i in range(count)]
            for f in files:
                write_wav(self.music_dir / f, seconds)
            (self.playlist_dir / f"{name}.m3u").write_text("\n".join(files) + "\n", "utf-8")
            self.playlists[name] = files
        self.config = self.workdir / f"mpd-{self.port}.conf"
        self.log_path = self.workdir / f"mpd-{self.port}.log"
        lines = [
            f'music_directory "{self.music_dir}"',
            f'playlist_directory "{self.playlist_dir}"',
            f'db_file "{self.workdir / "mpd.db"}"',
            f'pid_file "{self.workdir / f"mpd-{self.port}.pid"}"',
            f'log_file "{self.log_path}"',
            'bind_to_address "127.0.0.1"',
            f'port "{self.port}"',
            'auto_update "no"',
            'zeroconf_enabled "no"',  # no Avahi announcements from a test
            'log_level "verbose"',  # every client command, for a failing test's report
            'audio_output {\n  type "null"\n  name "null"\n  mixer_type "software"\n}',
        ]
        if password:
            # Without the password a client may do nothing at all.
            lines += [f'password "{password}@read,add,control,admin"', 'default_permissions ""']
        self.password = password
        # No state_file: every start is a clean player, whatever the previous test did.
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> MpdServer:
        """Start MPD, wait until it answers, scan the music folder and wait for the scan."""
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [self.binary, "--no-daemon", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        try:
            wait_listening(self.proc, self.port, timeout, "mpd", self.log)
        except RuntimeError:
            self.proc = None
            raise
        with self.client(self.password) as c:
            c.update()
            # `updating_db` is in status while the scan runs; the job number is gone when done.
            while "updating_db" in c.status():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mpd database update did not finish:\n{self.log()}")
                time.sleep(0.02)
            found = int(c.stats()["songs"])
        expected = sum(len(f) for f in self.playlists.values())
        if found != expected:
            raise RuntimeError(f"mpd found {found} songs, expected {expected}:\n{self.log()}")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        terminate(self.proc)
        self.proc = None

    def client(self, password: str | None = None) -> _Client:
        """A connected python-mpd2 client, closed by `with`; authenticated if MPD has a password."""
        return _Client(self.port, password or self.password)

    def log(self) -> str:
        return tail_log(self.log_path)

    def __enter__(self) -> MpdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Client(MPDClient):
    def __init__(self, port: int, password: str | None = None) -> None:
        super().__init__()
        self.timeout = 5
        self.connect("127.0.0.1", port)
        if password:
            self.password(password)

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self.disconnect()
