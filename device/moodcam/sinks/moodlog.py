"""The JSON Lines mood log (DESIGN.md "Mood log"): a crash-safe appending writer (the reader is
moodcam.logreader, the record moodcam.records).

Writer guarantees:
- one record per line, written with a single `os.write` on an O_APPEND descriptor, so a line is
  either in the file whole or (after a power cut / SIGKILL in the middle of a write) it is the torn
  tail, which the next start repairs and readers skip;
- the file is created with mode 0640 whatever the umask (the log says who was in the room and how
  they felt: not for every local user);
- rotation by size (`mood.jsonl` -> `mood.jsonl.1` -> `.2` ...) keeping `backups` files;
- storage trouble (disk full, read-only file system, directory gone) never reaches the frame loop:
  it is logged once per outage on `logging.getLogger("moodcam.log")`, lines are dropped (and
  counted) meanwhile, the file is retried every `retry_s` seconds of wall time, and one message
  says when writing resumes. A short write is truncated back so no partial line stays behind.
  A path that can never be the log (a directory, no permission) is refused at start instead:
  `LogPathError`, which the daemon turns into exit status 8.

Single writer per file is assumed (the daemon); readers may run at any time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from moodcam.config import Config, LogConfig
from moodcam.errors import SinkError
from moodcam.files import describe_kind
from moodcam.logreader import rfind_newline, rotated_files
from moodcam.records import MAX_LINE, MoodUpdate, encode, parse_line
from moodcam.sinks import Sink

log = logging.getLogger("moodcam.log")

FILE_MODE = 0o640
DIR_MODE = 0o750
DEFAULT_RETRY_S = 5.0
_EPS = 1e-9  # media times are sums of floats: 0.1 * 10 must count as 1.0 for the interval
# Failures at start that waiting cannot cure: the configured path is wrong or forbidden. A read-only
# or full file system, or a missing disk, may come right (a boot-time fsck, a USB disk mounting late).
_UNUSABLE_AT_START = frozenset(
    {errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENAMETOOLONG}
)


class LogPathError(OSError):
    """The configured log path can never be written (see `_UNUSABLE_AT_START`)."""


class NoFolderError(OSError):
    """The log's folder does not exist at start (moodcam creates no folders)."""


class NotRegularError(OSError):
    """The log path names a device, FIFO or socket."""


@dataclass
class LogStats:
    """Counters of a MoodLogWriter; `last_error` is the message of the most recent failure."""

    lines_written: int = 0
    lines_dropped: int = 0  # lines that were due while storage was failing
    errors: int = 0  # failed open / rotate / write attempts (at most one per retry period)
    last_error: str | None = None
    rotations: int = 0
    repaired_bytes: int = 0  # dropped from torn tails at open


class MoodLogWriter(Sink):
    """Sink writing `MoodUpdate.to_record()` lines to `cfg.path`.

    A line is written on every update with `changed` true, and otherwise when `cfg.interval_s` of
    update time has passed since the last line (0 = every update; a clock that goes backwards,
    e.g. a new media file, also writes at once). `retry_s` and `clock` (monotonic seconds) set how
    often a failing file is retried; tests pass a fake clock.

    The parent directory must exist at start (LogPathError otherwise: moodcam creates no
    folders). If it disappears later the writer waits for it to come back instead of recreating
    it: it may be a disk that was unmounted, and writing into the empty mount point would fill the
    SD card behind the user's back.
    """

    def __init__(
        self,
        cfg: LogConfig,
        *,
        retry_s: float = DEFAULT_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.path = Path(cfg.path)
        self.counters = LogStats()
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()  # close() may come from another thread (signal handling)
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0  # bytes in the open file, kept by us (single writer)
        self._opened_once = False
        self._next_due: float | None = None  # update.t at which a periodic line is due
        self._last_t: float | None = None
        self._failing_since: float | None = None  # clock() at the start of the current outage
        self._dropped_in_outage = 0
        self._next_retry = 0.0
        self._closed = False
        if cfg.enabled:
            with self._lock:
                try:
                    self._open()
                except (NoFolderError, NotRegularError) as e:
                    self._closed = True
                    raise LogPathError(e.errno, _why(e)) from None
                except OSError as e:
                    if e.errno in _UNUSABLE_AT_START:
                        self._closed = True
                        raise LogPathError(e.errno, f"{self.path}: {_why(e)}") from None
                    self._fail("open", e)

    # --- Sink -------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> MoodLogWriter:
        try:
            return cls(cfg.log)
        except LogPathError as e:
            raise SinkError(f"{cfg.path}: [log] path {e.strerror}") from None

    def stats(self) -> dict[str, Any]:
        return asdict(self.counters)

    def handle(self, update: MoodUpdate) -> None:
        if not self.cfg.enabled or self._closed or not self._due(update):
            return
        data = encode(update.to_record())
        with self._lock:
            if not self._closed:
                self._emit(data)

    def close(self) -> None:
        """Sync and close the file; always fsyncs, whatever `cfg.fsync` says. Never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as e:
                    log.error("mood log %s: sync at close failed: %s", self.path, _why(e))
                self._close_fd()

    def __enter__(self) -> MoodLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- scheduling ------------------------------------------------------------------------

    def _due(self, update: MoodUpdate) -> bool:
        t = float(update.t)
        backwards = self._last_t is not None and t < self._last_t
        self._last_t = t
        due = (
            update.changed
            or self.cfg.interval_s <= 0
            or self._next_due is None
            or backwards
            or t >= self._next_due - _EPS
        )
        if due:
            # The schedule runs on even while storage fails, so a recovered log keeps its rhythm.
            self._next_due = t + self.cfg.interval_s
        return due

    # --- writing ---------------------------------------------------------------------------

    def _emit(self, data: bytes) -> None:
        if self._fd is None:
            if self._failing_since is not None and self._clock() < self._next_retry:
                self._drop()
                return
            try:
                self._open()
            except OSError as e:
                self._fail("open", e)
                self._drop()
                return
        elif not self._still_ours():
            # Deleted (the user clearing history), moved away by another tool, or its directory
            # removed: the open descriptor would write into a file nobody can see any more.
            self._close_fd()
            try:
                self._open()
            except OSError as e:
                self._fail("reopen (the log file was removed or replaced)", e)
                self._drop()
                return
            log.warning(
                "mood log %s: the file was removed or replaced; started a new one", self.path
            )
        op = "write"
        try:
            if self._size > 0 and self._size + len(data) > self.cfg.max_bytes:
                op = "rotate"
                self._rotate()
                op = "write"
            self._write(data)
        except OSError as e:
            self._fail(op, e)
            self._drop()
            return
        self.counters.lines_written += 1
        if self._failing_since is not None:
            log.warning(
                "mood log %s: writing again after %.0f s; %d line(s) were not logged",
                self.path,
                self._clock() - self._failing_since,
                self._dropped_in_outage,
            )
            self._failing_since = None
            self._dropped_in_outage = 0

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        fd, before = self._fd, self._size
        try:
            n = os.write(fd, data)
            if n != len(data):
                # tmpfs/ext4 return a short count when the disk fills mid-line.
                raise OSError(
                    errno.ENOSPC, f"No space left on device (short write, {n} of {len(data)} bytes)"
                )
            if self.cfg.fsync:
                os.fsync(fd)
        except OSError:
            self._undo(fd, before)
            raise
        self._size += n

    def _undo(self, fd: int, size: int) -> None:
        """Cut a partly written line off again, so the file never holds half a record."""
        try:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
        except OSError:
            pass  # the next open repairs the tail

    def _still_ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ident

    # --- open, repair, rotate --------------------------------------------------------------

    def _open(self) -> None:
        if not self._opened_once:
            # The folder must exist: moodcam creates the log, never folders. A typo would
            # create folders at the root (--log /nonexistentdir/x.jsonl did), and a disk not yet
            # mounted would be written into its empty mount point. systemd's StateDirectory=
            # makes the service's folder, /var/lib/moodcam.
            parent = self.path.parent
            if parent.exists() and not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{parent} is not a folder")
            if not parent.exists():
                raise NoFolderError(
                    errno.ENOENT,
                    f"{parent}: no such folder (moodcam creates the log file, not its folder)",
                )
            # A device or FIFO named as the log: /dev/full would drop every line unseen, a FIFO
            # would block the frame loop. (A folder fails the open below: EISDIR.)
            with contextlib.suppress(FileNotFoundError):
                mode = os.stat(self.path).st_mode
                if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                    raise NotRegularError(
                        errno.EINVAL, f"{self.path}: {describe_kind(mode)} (--no-log: no log)"
                    )
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC  # read access: for the tail repair
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
            created = True
        except FileExistsError:
            fd = os.open(self.path, flags)
            created = False
        try:
            st = os.fstat(fd)
            if created:
                os.fchmod(fd, FILE_MODE)  # the umask may have removed bits; set it exactly
                if self.cfg.fsync:
                    _fsync_dir(self.path.parent)
            elif stat.S_IMODE(st.st_mode) & ~FILE_MODE:
                # An old log made 0666 by another tool: the promise is 0640 or stricter.
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & FILE_MODE)
                log.info(
                    "mood log %s: was mode %04o; now %04o (it is personal data)",
                    self.path,
                    stat.S_IMODE(st.st_mode),
                    stat.S_IMODE(st.st_mode) & FILE_MODE,
                )
            size = st.st_size if created else self._repair(fd, st.st_size)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._ident, self._size = fd, (st.st_dev, st.st_ino), size
        self._opened_once = True

    def _repair(self, fd: int, size: int) -> int:
        """Drop a torn tail: bytes after the last newline, then a last line that is not JSON."""
        end = size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            end = rfind_newline(fd, end) + 1
        if end:
            start = rfind_newline(fd, end - 1) + 1
            if parse_line(os.pread(fd, min(end - start, MAX_LINE + 1), start)) is None:
                end = start
        if end == size:
            return size
        os.ftruncate(fd, end)
        if self.cfg.fsync:
            os.fsync(fd)
        self.counters.repaired_bytes += size - end
        log.warning(
            "mood log %s: repaired a torn last line (a write cut off by a crash or power "
            "loss); dropped %d bytes",
            self.path,
            size - end,
        )
        return end

    def _rotate(self) -> None:
        self._close_fd()
        keep = self.cfg.backups
        if keep == 0:
            _unlink(self.path)
        else:
            # Oldest first out; also anything beyond retention left from a larger `backups`.
            for n, p in sorted(rotated_files(self.path), reverse=True):
                if n >= keep:
                    _unlink(p)
            for n in range(keep - 1, 0, -1):
                src = _numbered(self.path, n)
                if src.exists():
                    os.replace(src, _numbered(self.path, n + 1))
            os.replace(self.path, _numbered(self.path, 1))
        self.counters.rotations += 1
        self._open()

    # --- failure bookkeeping ---------------------------------------------------------------

    def _fail(self, op: str, e: OSError) -> None:
        self._close_fd()
        now = self._clock()
        msg = f"mood log {self.path}: {op} failed: {_why(e)}"
        if e.errno == errno.ENOENT and not self.path.parent.is_dir():
            msg += f" (directory {self.path.parent} is gone; waiting for it to come back)"
        self.counters.errors += 1
        self.counters.last_error = msg
        self._next_retry = now + self._retry_s
        if self._failing_since is None:
            self._failing_since = now
            log.error(
                "%s; moodcam keeps running without the log and retries every %g s",
                msg,
                self._retry_s,
            )
        else:
            log.debug("%s", msg)  # once per outage at error level, not once per frame

    def _drop(self) -> None:
        self.counters.lines_dropped += 1
        self._dropped_in_outage += 1

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
            self._ident = None


# --- helpers ---------------------------------------------------------------------------------


def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        p.unlink()


def _fsync_dir(d: Path) -> None:
    """Make a new directory entry durable (the file's own fsync does not cover its name)."""
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(e: OSError) -> str:
    return e.strerror or str(e)
