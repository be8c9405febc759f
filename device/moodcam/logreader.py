"""Reading the mood log: `iter_records` (the log and its rotated files, oldest first, each line
once), `LogFollower` (`tail -F`: the lines appended since the last read, across rotation), and
the pieces moodcam.history reads a file's new part with (`complete_lines`, `rfind_newline`).
Both skip and count torn lines and lines that are not JSON objects; what a record means is
moodcam.records' (`is_v1`, `decode`)."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moodcam import records
from moodcam.errors import InputError
from moodcam.files import FileRefused, check_regular, describe_kind, shown

log = logging.getLogger("moodcam.playlist")  # its one follower today: `moodcam playlist --log`


class RecordIter(Iterator[dict[str, Any]]):
    """Records of a mood log, oldest first; returned by `iter_records`.

    `files` lists the files to read (oldest first). While / after iterating, `records` counts the
    records yielded and `skipped` the lines left out: torn (no final newline), not JSON, or not a
    JSON object. A rotation happening during a read can make it miss or repeat one file's lines.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.records = 0
        self.skipped = 0
        self._gen = self._run()

    def __next__(self) -> dict[str, Any]:
        return next(self._gen)

    def _run(self) -> Iterator[dict[str, Any]]:
        for p in self.files:
            try:
                # Checked before open: /dev/zero would be one endless line, a FIFO never ends.
                check_regular(p)
                f = open(p, "rb")  # noqa: SIM115  (closed by the with below)
            except FileNotFoundError:
                continue  # rotated away since it was listed
            except FileRefused as e:
                raise InputError(f"{p}: cannot read the mood log: {e}") from None
            except OSError as e:  # a log of mode 0640 read by another user
                raise unreadable_error(p, e) from None
            with f:
                try:
                    for raw in complete_lines(f):
                        if raw is None:  # torn, or longer than any line of ours
                            self.skipped += 1
                            continue
                        rec = records.parse_record(raw)
                        if rec is None:
                            self.skipped += 1
                            continue
                        self.records += 1
                        yield rec
                except OSError as e:  # an I/O error on a failing card
                    raise unreadable_error(p, e) from None


def iter_records(path: str | os.PathLike[str], include_rotated: bool = True) -> RecordIter:
    """Iterate the records of the log at `path` (and its rotated files), oldest first.

    Usage: `it = iter_records(p); rows = list(it); it.skipped` -> lines that were skipped.
    A missing log gives no records, not an error.
    """
    return RecordIter(log_files(path, include_rotated))


def log_files(path: str | os.PathLike[str], include_rotated: bool = True) -> list[Path]:
    """The existing files of a log, oldest first: `path.N` ... `path.1`, `path`."""
    path = Path(path)
    files = [p for _, p in sorted(rotated_files(path), reverse=True)] if include_rotated else []
    try:
        os.stat(path)
    except FileNotFoundError:
        return files
    except OSError as e:  # Path.exists() raises this too: a folder the reader may not enter
        raise unreadable_error(path, e) from None
    files.append(path)
    return files


def complete_lines(f: Any, chunk: int = 1 << 20) -> Iterator[bytes | None]:
    """The complete lines of binary file `f` without their newline; None for a line longer
    than records.MAX_LINE (a binary file named as the log: memory stays bounded, where iterating the
    file would hold a whole line of /dev/zero-like data) and for a torn tail with no newline."""
    tail = b""
    overlong = False
    while data := f.read(chunk):
        parts = data.split(b"\n")
        if len(parts) == 1:  # no newline in this chunk
            if not overlong:
                tail += data
                if len(tail) > records.MAX_LINE:
                    overlong, tail = True, b""
            continue
        first = tail + parts[0] if not overlong else None
        yield None if overlong or (first is not None and len(first) > records.MAX_LINE) else first
        overlong = False
        yield from parts[1:-1]
        tail = parts[-1]
        if len(tail) > records.MAX_LINE:
            overlong, tail = True, b""
    if tail or overlong:
        yield None


def rfind_newline(fd: int, end: int, chunk: int = 65536) -> int:
    """Offset of the last b"\\n" before `end`, or -1; reads backwards in chunks."""
    while end > 0:
        start = max(0, end - chunk)
        i = os.pread(fd, end - start, start).rfind(b"\n")
        if i >= 0:
            return start + i
        end = start
    return -1


def rotated_files(path: Path) -> list[tuple[int, Path]]:
    """(N, path.N) for each rotated file of the log at `path`, in no order."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]*)")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [(int(m.group(1)), path.parent / n) for n in names if (m := pattern.fullmatch(n))]


class LogFollower:
    """`tail -F` for a mood log: `read()` returns the records of lines appended since last time.

    Only complete lines count: reading resumes at the start of the first incomplete line, so a
    line being written is read whole once its newline is there, and a torn tail that the writer
    repairs (truncates) at its next start is replaced by what follows, never glued to it. When
    the path names another file than the open one (rotated away, or removed and created again),
    the open one is read to its end first, then the new one from its start. A file that shrinks
    below where we are (emptied by hand) is read again from its start. A reader that falls a
    whole file behind the writer (several rotations between two reads) misses that file, as
    `tail -F` would; at the default 10 MB per file that does not happen.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0  # lines that were not a JSON object
        self.reopened = 0  # times we moved on to a new file at `path`
        self._f: Any = None
        self._ident: tuple[int, int] | None = None
        self._pos = 0  # start of the first line not yet returned
        self._warned_missing = False

    def start(self) -> dict[str, Any] | None:
        """Open the log at its end; returns its last record (the current mood), if any."""
        if not self._open():
            return None
        size = os.fstat(self._f.fileno()).st_size
        tail_from = max(0, size - 65536)
        self._f.seek(tail_from)
        chunk = self._f.read(size - tail_from)
        self._pos = tail_from + chunk.rfind(b"\n") + 1
        for raw in reversed(chunk[: self._pos - tail_from].split(b"\n")[:-1]):
            if (rec := records.parse_record(raw)) is not None:
                return rec
        return None

    def read(self) -> list[dict[str, Any]]:
        if self._f is None:
            if not self._open():
                return []
            self.reopened += 1  # a file appeared where there was none: read it from its start
        out = self._drain()
        if out:
            return out
        st = _stat(self.path)
        if st is None:
            return out  # gone for now (being rotated, or removed): wait for a new one
        if (st.st_dev, st.st_ino) != self._ident:
            self._close()  # the old file was read to its end just above
            if self._open():
                self.reopened += 1
                out = self._drain()
        elif st.st_size < self._pos:
            self._pos = 0
            out = self._drain()
        return out

    def close(self) -> None:
        self._close()

    def _open(self) -> bool:
        try:
            # A mood log is a regular file: /dev/zero was read until MemoryError, a FIFO would
            # block the open (checked again on what was opened: it may be replaced meanwhile).
            check_regular(self.path)
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across calls, closed in _close
        except FileNotFoundError:
            if not self._warned_missing:
                log.warning("mood log %s does not exist (yet); waiting for it", self.path)
                self._warned_missing = True
            return False
        except FileRefused as e:
            raise InputError(f"mood log {shown(self.path)}: {e}") from None
        except OSError as e:
            raise InputError(
                f"mood log {shown(self.path)}: cannot read it: {e.strerror or e}"
            ) from None
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise InputError(f"mood log {shown(self.path)}: {describe_kind(st.st_mode)}")
        self._f, self._ident, self._pos = f, (st.st_dev, st.st_ino), 0
        if self._warned_missing:
            log.info("mood log %s is there now; following it", self.path)
            self._warned_missing = False
        return True

    def _close(self) -> None:
        if self._f is not None:
            self._f.close()
        self._f, self._ident, self._pos = None, None, 0

    def _drain(self) -> list[dict[str, Any]]:
        self._f.seek(self._pos)
        data = self._f.read()
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > records.MAX_LINE:  # not a line of ours: do not re-read it for ever
                self._pos += len(data)
                self.skipped += 1
            return []
        self._pos += end + 1
        out = []
        for raw in data[:end].split(b"\n"):
            if (rec := records.parse_record(raw)) is None:
                self.skipped += 1
            else:
                out.append(rec)
        return out


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def unreadable_error(path: Path, e: OSError) -> InputError:
    return InputError(f"{path}: cannot read the mood log: {e.strerror or e}")
