"""The history index: `moodcam report`'s per-hour sums of the whole mood log, kept in SQLite.

A year of 1 Hz lines takes `moodcam report` minutes to read; the dashboard must show any period
of it at once. The index is `report.Accumulator`'s state after the whole log, per local hour
(and a 5-minute timeline per day), in `<log>.history.sqlite` beside the log (the daemon's state
folder, /var/lib/moodcam). It is a cache of the log, which stays the record:

- Incremental: `Index.update` reads only what was appended since the last update, resuming the
  Accumulator where it stopped, so every number is the one a single pass would give (each hour
  adds the same floats in the same order; hours add up into days and totals correctly rounded,
  `report.Stats.total`, in any order). Files are known by device, inode and a hash of their
  first bytes, so a rotation (`mood.jsonl` -> `mood.jsonl.1`) is followed; the newest file is
  read up to its last newline (a line being written is read next time).
- Mirrors the log: when a file it has read is gone (retention deleted the oldest) or changed
  under it, or the index is missing, corrupt, of another version, zone or `max_gap`, it is
  rebuilt from the log into a new file that replaces the old one when done. Meanwhile readers
  keep the old one, which (`update(follow_rotation=True)`) goes on reading the newest lines in
  memory when only the oldest files are gone.
- One writer: `moodcam web`. `moodcam report` opens it read-only (`open(readonly=True)`), adds what
  the log gained since in memory, and falls back to reading the log when there is no usable
  index; both get their Report from `Index.report`, the same code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from moodcam.errors import EXIT_SINK, InputError, MoodcamError
from moodcam.files import PRIVATE_FILE, FileRefused, check_regular
from moodcam.logreader import complete_lines, log_files, rfind_newline, unreadable_error
from moodcam.records import is_v1, parse_record
from moodcam.report import (
    ROW_MOODS,
    ROW_SUMS,
    Accumulator,
    Report,
    Stats,
    check_max_gap,
    check_period,
    finish,
)

log = logging.getLogger("moodcam.history")

INDEX_VERSION = 3  # 3: no merge order (report adds hours with fsum); 2: moods in columns
HEAD_BYTES = 4096  # a file is known by its first bytes (with device and inode)
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- One row per local hour: the records read in it and report.Stats' sums (Stats.row: zeros and
-- NULL moods for an hour that has records but no time yet).
CREATE TABLE hours (
    day TEXT NOT NULL, hour INTEGER NOT NULL, records INTEGER NOT NULL DEFAULT 0,
    logged REAL NOT NULL DEFAULT 0, {moods},
    v_w REAL NOT NULL DEFAULT 0, v_s1 REAL NOT NULL DEFAULT 0, v_s2 REAL NOT NULL DEFAULT 0,
    a_w REAL NOT NULL DEFAULT 0, a_s1 REAL NOT NULL DEFAULT 0, a_s2 REAL NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, hour)
);
-- Per day, report's 5-minute timeline (slots x moods seconds, float64), zlib-compressed.
CREATE TABLE grids (day TEXT PRIMARY KEY, cells BLOB NOT NULL);
"""
# Stats.row as columns: its sums, then the seconds of each mood (NULL: no time; mood null: s_none).
_MOOD_COLS = tuple(f"s_{m or 'none'}" for m in ROW_MOODS)
_SCHEMA = _SCHEMA.replace("{moods}", ", ".join(f"{c} REAL" for c in _MOOD_COLS))
_STATS = ", ".join((*ROW_SUMS, *_MOOD_COLS))


def index_path(log_path: str | os.PathLike[str]) -> Path:
    """Where the index of the log at `log_path` lives: beside it (not matched as a rotated file)."""
    p = Path(log_path)
    return p.with_name(p.name + ".history.sqlite")


class IndexWriteError(MoodcamError):
    """The index cannot be written beside the log (a folder without write access)."""

    exit_code = EXIT_SINK


def log_state(log_path: str | os.PathLike[str]) -> list[tuple[Path, os.stat_result]]:
    """The log's files, oldest first, with their stat; InputError, as the log's reader says
    it, for one that is not a regular file or cannot be read."""
    current = []
    for p in log_files(log_path):
        try:
            current.append((p, check_regular(p)))
        except FileNotFoundError:
            continue  # rotated away since it was listed
        except FileRefused as e:
            raise InputError(f"{p}: cannot read the mood log: {e}") from None
        except OSError as e:
            raise unreadable_error(p, e) from None
    return current


def new_index_file(path: Path) -> Path:
    """The empty file beside the index that a rebuild writes into (`<index>.new`, made afresh);
    IndexWriteError when the folder cannot hold it."""
    tmp = path.with_name(path.name + ".new")
    try:
        for p in (tmp, Path(str(tmp) + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))
    except OSError as e:
        raise IndexWriteError(
            f"{path}: cannot write the history index beside the log: {e.strerror or e}"
        ) from None
    return tmp


class IndexUnusable(Exception):
    """The index cannot serve this log as it is (missing, corrupt, stale, other settings)."""


@dataclass
class FileMark:
    """A log file the index has read: identity, and how far (bytes)."""

    dev: int
    ino: int
    head_len: int
    head: str
    offset: int

    def matches(self, path: Path, st: os.stat_result, head: bool = True) -> bool:
        if (st.st_dev, st.st_ino) != (self.dev, self.ino) or st.st_size < self.offset:
            return False
        return not head or _head(path, self.head_len)[1] == self.head


def _head(path: Path, n: int = HEAD_BYTES) -> tuple[int, str]:
    with open(path, "rb") as f:
        data = f.read(n)
    return len(data), hashlib.sha256(data).hexdigest()


class _Lazy(dict):
    """A dict that fetches a key it lacks from the database on `get` (the only way
    report.Accumulator looks keys up), so only the hours being written are in memory."""

    def __init__(self, load: Callable[[Any], Any]) -> None:
        super().__init__()
        self._load = load

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key)
        if value is None:
            value = self._load(key)
            if value is None:
                return default
            self[key] = value
        return value


class Index:
    """The index of one log for one zone and `max_gap`; see the module doc."""

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        tz: tzinfo,
        tz_name: str,
        max_gap: float,
        db: sqlite3.Connection,
        writable: bool,
        path: Path,
    ) -> None:
        self.log_path = Path(log_path)
        self.tz, self.tz_name, self.max_gap = tz, tz_name, max_gap
        self.db, self.writable, self.path = db, writable, path
        self._reset_memory()
        self._load_state()

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        log_path: str | os.PathLike[str],
        tz: tzinfo,
        tz_name: str,
        max_gap: float,
        *,
        readonly: bool = False,
        rebuild: bool = True,
        path: str | os.PathLike[str] | None = None,
    ) -> Index:
        """The index, brought up to date with the log. For writing (the dashboard) it is rebuilt
        when missing or unusable, or with `rebuild` False IndexUnusable says why it must be
        (after checking that it can be: IndexWriteError); `readonly` (`moodcam report`) raises
        IndexUnusable, and `update` reads new lines into memory only."""
        check_max_gap(max_gap)
        path = Path(path) if path else index_path(log_path)
        if readonly and not path.is_file():
            raise IndexUnusable(f"{path}: no index")
        why = None
        if not readonly:
            # Nothing is made beside a log that is no file of ours (a device, a folder).
            log_state(log_path)
            try:
                check_regular(path)
            except FileNotFoundError:
                why = "no index yet"
            except (OSError, FileRefused) as e:
                raise IndexWriteError(f"{path}: cannot use it as the history index: {e}") from None
        if why is None:
            try:
                idx = cls(log_path, tz, tz_name, max_gap, _connect(path, readonly), not readonly,
                          path)  # fmt: skip
                idx.update()
                return idx
            except (IndexUnusable, sqlite3.DatabaseError) as e:
                if readonly:
                    raise IndexUnusable(f"{path}: {e}") from None
                why = str(e)
        if not rebuild:
            new_index_file(path)
            raise IndexUnusable(f"{path}: {why}")
        log.info("history index %s: rebuilding (%s)", path, why)
        return cls.rebuild(log_path, tz, tz_name, max_gap, path)

    @classmethod
    def rebuild(
        cls, log_path: str | os.PathLike[str], tz: tzinfo, tz_name: str, max_gap: float,
        path: Path,
    ) -> Index:  # fmt: skip
        """A new index from the whole log, built beside the old one and then put in its place."""
        tmp = new_index_file(path)
        db = _connect(tmp, False)
        db.executescript(_SCHEMA)
        meta = {"version": INDEX_VERSION, "tz": tz_name, "max_gap": repr(max_gap)}
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        db.commit()
        idx = cls(log_path, tz, tz_name, max_gap, db, True, tmp)
        idx.update()
        db.close()
        os.replace(tmp, path)
        return cls(log_path, tz, tz_name, max_gap, _connect(path, False), True, path)

    def close(self) -> None:
        self.db.close()

    # --- state ---------------------------------------------------------------------------

    def _reset_memory(self) -> None:
        acc = Accumulator(
            self.tz,
            self.max_gap,
            timeline=True,
            buckets=_Lazy(self._load_stats),
            grid=_Lazy(self._load_grid),
            hour_records=_Lazy(self._load_records),
        )
        self.acc = acc

    def _meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def _load_state(self) -> None:
        meta = self._meta()
        if meta.get("version") != str(INDEX_VERSION):
            raise IndexUnusable(f"index version {meta.get('version')}, not {INDEX_VERSION}")
        if meta.get("tz") != self.tz_name or meta.get("max_gap") != repr(self.max_gap):
            raise IndexUnusable(
                f"made for zone {meta.get('tz')} and max_gap {meta.get('max_gap')}, not "
                f"{self.tz_name} and {self.max_gap!r}"
            )
        state = json.loads(meta.get("state", "{}"))
        self.files = [FileMark(**f) for f in state.get("files", [])]
        self.records = state.get("records", 0)
        self.torn = state.get("torn", 0)
        self.last: dict[str, Any] | None = state.get("last")  # the newest valid record
        self.since: float | None = state.get("since")  # when its mood began
        a, saved = self.acc, state.get("acc")
        if saved:
            for k in ("invalid", "media", "steps_back", "gaps", "used", "calendar", "newer",
                      "b_start", "b_end", "b_sod", "p_t", "p_mood", "p_val", "p_aro",
                      "have_prev", "last_label"):  # fmt: skip
                setattr(a, k, saved[k])
            a.carry = tuple(saved["carry"])
            a.b_key = (
                (date.fromisoformat(saved["b_key"][0]), saved["b_key"][1])
                if saved["b_key"]
                else None
            )
        self.pending = 0  # bytes after the newest file's last newline (a line being written)

    def _state(self) -> str:
        a = self.acc
        acc = {k: getattr(a, k) for k in ("invalid", "media", "steps_back", "gaps", "used",
               "calendar", "newer", "b_start", "b_end", "b_sod", "p_t", "p_mood", "p_val",
               "p_aro", "have_prev", "last_label")}  # fmt: skip
        acc["carry"] = list(a.carry)
        acc["b_key"] = [a.b_key[0].isoformat(), a.b_key[1]] if a.b_key else None
        return json.dumps({
            "acc": acc,
            "files": [vars(f) for f in self.files],
            "records": self.records,
            "torn": self.torn,
            "last": self.last,
            "since": self.since,
        })  # fmt: skip

    def _load_stats(self, key: tuple[date, int]) -> Stats | None:
        row = self.db.execute(
            f"SELECT {_STATS} FROM hours WHERE day = ? AND hour = ?", (key[0].isoformat(), key[1])
        ).fetchone()
        return None if row is None else Stats.from_row(row)

    def _load_records(self, key: tuple[date, int]) -> int | None:
        row = self.db.execute(
            "SELECT records FROM hours WHERE day = ? AND hour = ?", (key[0].isoformat(), key[1])
        ).fetchone()
        return None if row is None else row[0]

    def _load_grid(self, day: date) -> array | None:
        row = self.db.execute(
            "SELECT cells FROM grids WHERE day = ?", (day.isoformat(),)
        ).fetchone()
        return None if row is None else _grid(row[0])

    def save(self) -> None:
        """Write what `update(save=False)` read."""
        self._save()

    def _save(self) -> None:
        """Write what is in memory, then forget it (the next feed fetches what it needs)."""
        if not self.writable:
            return
        a = self.acc
        rows = [(key[0].isoformat(), key[1], a.hour_records.get(key, 0), *s.row())
                for key, s in a.buckets.items()]  # fmt: skip
        columns = "day, hour, records, " + _STATS
        with self.db:
            self.db.executemany(
                f"INSERT INTO hours ({columns}) VALUES ({', '.join('?' * columns.count(',')) + ', ?'}) "
                "ON CONFLICT (day, hour) DO UPDATE SET "
                + ", ".join(f"{c}=excluded.{c}" for c in columns.split(", ")[2:]),
                rows,
            )
            only_records = [(k[0].isoformat(), k[1], n) for k, n in a.hour_records.items()
                            if k not in a.buckets]  # fmt: skip
            self.db.executemany(
                "INSERT INTO hours (day, hour, records) VALUES (?,?,?) ON CONFLICT (day, hour) "
                "DO UPDATE SET records=excluded.records",
                only_records,
            )
            assert a.grid is not None
            self.db.executemany(
                "INSERT OR REPLACE INTO grids VALUES (?, ?)",
                [(d.isoformat(), zlib.compress(g.tobytes(), 1)) for d, g in a.grid.items()],
            )
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('state', ?)", (self._state(),))
        a.buckets.clear()
        a.hour_records.clear()  # type: ignore[union-attr]
        a.grid.clear()

    # --- reading the log -----------------------------------------------------------------

    def _check_files(self, current: list[tuple[Path, os.stat_result]]) -> None:
        """IndexUnusable unless the files it read are still the log's oldest, as it read them."""
        if len(current) < len(self.files):
            raise IndexUnusable("a log file it has read is gone (rotated out)")
        last = len(self.files) - 1
        for i, (mark, (p, st)) in enumerate(zip(self.files, current, strict=False)):
            # First bytes read only of the oldest and newest (a file deleted, a new one given
            # its inode): the others cannot change without those changing first.
            if not mark.matches(p, st, head=i in (0, last)):
                raise IndexUnusable(
                    f"{p} is not the file it read there (its oldest files rotated out, or the "
                    "log was replaced)"
                )

    def _rotated_out(self, current: list[tuple[Path, os.stat_result]]) -> int:
        """How many of the oldest files it read are gone while the others are as it read them
        (0: not so; the log was replaced or a file changed)."""
        for gone in range(1, len(self.files)):
            rest = self.files[gone:]
            if len(current) >= len(rest) and all(
                mark.matches(p, st, head=i in (0, len(rest) - 1))
                for i, (mark, (p, st)) in enumerate(zip(rest, current, strict=False))
            ):
                return gone
        return 0

    def update(self, save: bool = True, follow_rotation: bool = False) -> int:
        """Read what the log gained since the last update; the number of new records.
        IndexUnusable when a file read before is gone or changed (the index must be rebuilt).
        `save` False keeps what was read in memory until `save()` (the dashboard polls the log
        every quarter second and writes a minute's worth at a time: fewer writes to an SD card).
        `follow_rotation`: when only the oldest files it read are gone (retention), go on
        reading the rest, in memory only (`writable` turns False): the numbers still hold the
        deleted files until a rebuild replaces this index, and the dashboard stays live meanwhile.
        """
        current = log_state(self.log_path)
        try:
            self._check_files(current)
        except IndexUnusable:
            gone = self._rotated_out(current) if follow_rotation else 0
            if not gone:
                raise
            del self.files[:gone]
            self.writable = False
        before = self.records
        start = max(0, len(self.files) - 1)
        # Saved after each file: memory holds at most one file's hours while catching up.
        for i in range(start, len(current)):
            p, st = current[i]
            newest = i == len(current) - 1
            if i < len(self.files):
                mark = self.files[i]
            else:
                n, head = _head(p)
                mark = FileMark(st.st_dev, st.st_ino, n, head, 0)
                self.files.append(mark)
            self._read(p, mark, newest)
            if save or i < len(current) - 1:
                self._save()
        return self.records - before

    def _read(self, path: Path, mark: FileMark, newest: bool) -> None:
        try:
            f = open(path, "rb")  # noqa: SIM115  (closed by the with below)
        except OSError as e:
            raise unreadable_error(path, e) from None
        with f:
            size = os.fstat(f.fileno()).st_size
            end = size
            if newest:  # up to the last newline: the line after it may be being written
                end = rfind_newline(f.fileno(), size) + 1
                if end < mark.offset:
                    end = mark.offset
                self.pending = size - end
            if end <= mark.offset:
                return
            f.seek(mark.offset)
            self.acc.feed(self._track(_parse(_Upto(f, end - mark.offset), self)))
            mark.offset = end

    def _track(self, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The records, noting the newest one and since when its mood holds (the dashboard's
        "now"); a gap longer than max_gap starts the mood afresh, as the report counts it."""
        last, since = self.last, self.since
        for rec in records:
            yield rec
            if not is_v1(rec):  # as the report leaves it out
                continue
            if not continues_mood(last, rec, self.max_gap):
                since = rec["t"]
            last = rec
        self.last, self.since = last, since

    # --- reporting -----------------------------------------------------------------------

    def report(self, first: date | None = None, last: date | None = None,
               timeline: bool = False) -> Report:  # fmt: skip
        """The Report `report.summarize` gives for this log and period (read from the index and
        what `update` added since, never from the log)."""
        a = self.acc
        a.check(self.log_path)
        if first and last:
            check_period(first, last, timeline)
        where, args = "1", []
        if first:
            where += " AND day >= ?"
            args.append(first.isoformat())
        if last:
            where += " AND day <= ?"
            args.append(last.isoformat())

        def inside(d: date) -> bool:
            return (first is None or d >= first) and (last is None or d <= last)

        rows: dict[tuple[date, int], tuple[Any, ...]] = {}
        counts: dict[tuple[date, int], int] = {}
        days: dict[str, date] = {}
        for row in self.db.execute(
            f"SELECT day, hour, records, {_STATS} FROM hours WHERE {where}", args
        ):
            d = days.get(row[0]) or days.setdefault(row[0], date.fromisoformat(row[0]))
            counts[(d, row[1])] = row[2]
            rows[(d, row[1])] = row[3:]
        counts.update((k, n) for k, n in a.hour_records.items() if inside(k[0]))  # type: ignore[union-attr]
        used = sum(counts.values())
        for key, s in a.buckets.items():  # read by this update and not saved (read-only)
            if inside(key[0]):
                rows[key] = s.row()
        if a.b_key is not None and a.b_key in rows:
            # The current hour as the log's single pass ends it (Accumulator.close).
            current = Stats.from_row(rows[a.b_key])
            current.add(*a.carry)
            rows[a.b_key] = current.row()
        grid = None
        if timeline:
            grid = {}
            for d, cells in self.db.execute(f"SELECT day, cells FROM grids WHERE {where}", args):
                grid[date.fromisoformat(d)] = _grid(cells)
            assert a.grid is not None
            grid.update((d, g) for d, g in a.grid.items() if inside(d))
        rep = Report(
            log=str(self.log_path),
            files=[str(p) for p in log_files(self.log_path)],
            tz=self.tz,
            tz_name=self.tz_name,
            max_gap=self.max_gap,
            first=first,
            last=last,
            records=self.records,
            used=used,
            torn=self.torn + (1 if self.pending else 0),
            invalid=a.invalid,
            media_time=a.media,
            clock_steps_back=a.steps_back,
            gaps=a.gaps,
            grid=grid,
        )
        finish(rep, rows, png=timeline)
        return rep

    def days_with_data(self) -> tuple[date, date] | None:
        """The first and last local day with logged time."""
        row = self.db.execute("SELECT min(day), max(day) FROM hours WHERE logged > 0").fetchone()
        days = [date.fromisoformat(d) for d in row if d]
        days += [k[0] for k, s in self.acc.buckets.items() if s.logged > 0]
        return (min(days), max(days)) if days else None


def continues_mood(last: dict[str, Any] | None, rec: dict[str, Any], max_gap: float) -> bool:
    """Whether valid record `rec` goes on with the mood of `last`, the record before it: the same
    mood, no gap longer than max_gap between them (the report counts a longer one as off)."""
    return (
        last is not None
        and rec.get("mood") == last.get("mood")
        and 0 <= rec["t"] - last["t"] <= max_gap
    )


class _Upto:
    """A binary file read from where it stands up to `left` bytes (a newline's end)."""

    def __init__(self, f: Any, left: int) -> None:
        self.f, self.left = f, left

    def read(self, n: int) -> bytes:
        data = self.f.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data


def _parse(reader: _Upto, idx: Index) -> Iterator[dict[str, Any]]:
    """The records of `reader`, counting them and the lines skipped as logreader.RecordIter does."""
    for raw in complete_lines(reader):
        rec = None if raw is None else parse_record(raw)
        if rec is None:
            idx.torn += 1
            continue
        idx.records += 1
        yield rec


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5,
                             check_same_thread=False)  # fmt: skip
    else:
        # The dashboard's worker threads take turns (its lock); sqlite3 would refuse any but
        # the thread that opened it.
        db = sqlite3.connect(path, timeout=5, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def _grid(blob: bytes) -> array:
    g = array("d")
    g.frombytes(zlib.decompress(blob))
    return g


def indexed_report(
    log_path: str | os.PathLike[str],
    tz: tzinfo,
    tz_name: str,
    first: date | None,
    last: date | None,
    max_gap: float,
    timeline: bool,
) -> Report | None:
    """`moodcam report`'s Report from the index beside the log, read-only; None when there is
    no usable one (the caller reads the log)."""
    if not log_files(log_path):
        return None  # the reader's own message says so
    try:
        idx = Index.open(log_path, tz, tz_name, max_gap, readonly=True)
    except (IndexUnusable, OSError) as e:
        log.debug("history index not used: %s", e)
        return None
    try:
        return idx.report(first, last, timeline)
    finally:
        idx.close()
