"""`moodcam report`: summaries of the mood log for people and for health apps.

    moodcam report [LOG] [--config FILE] [--from DATE] [--to DATE] [--tz ZONE] [--max-gap S]
                   [--format text|csv|json|fhir|png] [--out FILE] [--no-index]

One streaming pass over the log and its rotated files (`logreader.iter_records`, oldest first),
by an `Accumulator` that moodcam.history can resume where it stopped;
memory grows with the number of local hours that hold data (a year is 8,760 small accumulators;
`--format png` adds an 18 KiB 5-minute grid per day), never with the number of lines.

Semantics (what every number means):

- Time accounting. The log holds a line at every mood change and every `interval_s`, so the state
  of a line holds until the next line: each record covers [t, t_next), capped at `--max-gap`
  seconds (default 60, or 2 x `[log] interval_s` when --config gives a longer interval). A longer
  gap is the device being off (or the log failing): only its first `max_gap` seconds count, the
  rest is not counted as any mood. The last record covers nothing (nothing is known after it).
  A record with `mood` null counts as "no face" (key `none`); "face time" is logged time with a
  mood. If the clock steps backwards (NTP on a Pi without RTC) the record before the step covers
  nothing and later records count at their own times, so a day may hold some time twice; the
  steps are counted (`clock_steps_back`).
- Media time. Records with t < 1e9 (before 2001-09-09) come from a video file: their t is seconds
  into the file, not a date. They cannot be placed on a calendar, so they are left out and counted
  (`media_time`, with a note); a log holding only such records is refused with a clear message.
- Days and hours are local to the report's zone (`--tz`, default the device's local zone). Every
  covered interval is split at local hour boundaries, so local midnight is honoured and a DST day
  has 23 or 25 hours (`hours_in_day`); in the 25-hour day the repeated hour adds to the same
  hour-of-day. `--from`/`--to` are inclusive local dates; time outside them is cut off exactly.
- Valence and arousal: time-weighted mean and (population) standard deviation over the time in
  which the value is present (`seconds`), so they agree with the shares of time; null when absent.
- Mood changes: a record whose mood is a label different from the last label seen before it. No
  face stretches are bridged (happy, none, sad = 1 change; happy, none, happy = 0); a gap longer
  than `max_gap` or a clock step back forgets the last label (the first mood after the device was
  off is not a change). A change is counted in the hour and day of the record that shows it.
- Skipped lines: torn lines (no final newline), lines that are not a JSON object (both counted by
  the reader) and records that are not schema v1 with a finite number `t`, a FER2013 label or
  null `mood`, and number-or-null valence/arousal. Every format says "skipped N torn or invalid
  lines".
- FHIR: an R4 Bundle (type collection), one Observation per local day that has logged time; see
  `render_fhir`. fhir.resources 8 ships R4B (not R4) models, whose Bundle and Observation are the
  R4 ones; when installed they validate the bundle before it is written.
"""

from __future__ import annotations

import argparse
import math
import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodcam.errors import EXIT_SINK, EXIT_USAGE, InputError, MoodcamError
from moodcam.labels import DEFAULT_CLASSES, FER2013_CLASSES
from moodcam.logreader import iter_records, log_files
from moodcam.records import MEDIA_TIME_LIMIT, SCHEMA_VERSION, is_v1, newer_schema

REPORT_VERSION = 1  # of the JSON document below; bump on incompatible changes
FORMATS = ("text", "csv", "json", "fhir", "png")
DEFAULT_MAX_GAP_S = 60.0
NONE = "none"  # the key of time without a face (mood null)
# Dates a report can ask for: a live record is after MEDIA_TIME_LIMIT (2001-09-09), and a Pi's
# clock does not run to the next century. Outside these, a date is a typo.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)
# Longest periods: ten years of daily rows, one year of PNG strips (18 KiB of grid and a strip of
# the chart per day; a longer chart is unreadable anyway).
MAX_DAYS = 3660
MAX_PNG_DAYS = 366
SLOT_S = 300  # resolution of the PNG timeline (5 minutes)
# Every label a model card may use (labels.parse_class_list), plus null; fixes the PNG grid width.
_MOOD_INDEX: dict[str | None, int] = {None: 0} | {m: i + 1 for i, m in enumerate(FER2013_CLASSES)}
_SLOTS, _WIDTH = 86400 // SLOT_S, len(_MOOD_INDEX)


class ReportError(MoodcamError):
    """A bad combination of report arguments."""

    exit_code = EXIT_USAGE


class OutputError(MoodcamError):
    """The report cannot be written where --out says (the input was fine: not exit 5)."""

    exit_code = EXIT_SINK


# --- accumulation --------------------------------------------------------------------------


# A Stats as a flat row (moodcam.history's columns, `finish`'s input): these sums, then the
# seconds of each mood in ROW_MOODS' order, None where the mood has no time.
ROW_SUMS = ("logged", "v_w", "v_s1", "v_s2", "a_w", "a_s1", "a_s2", "changes")
ROW_MOODS: tuple[str | None, ...] = (None, *FER2013_CLASSES)
_N_SUMS = len(ROW_SUMS)
_LOGGED, _CHANGES = ROW_SUMS.index("logged"), ROW_SUMS.index("changes")  # changes: an int, last


class Stats:
    """Seconds per mood, weighted sums of valence/arousal and mood changes for one stretch of time.

    Sums (not running means) so that hours add up into days, hours of day and totals; `total`
    adds them correctly rounded (math.fsum), so the result does not depend on the order the
    hours come in: the log's single pass and moodcam.history's index give the same numbers.
    """

    __slots__ = ("a_s1", "a_s2", "a_w", "changes", "logged", "secs", "v_s1", "v_s2", "v_w")

    def __init__(self) -> None:
        self.secs: dict[str | None, float] = {}
        self.logged = 0.0
        self.v_w = self.v_s1 = self.v_s2 = 0.0
        self.a_w = self.a_s1 = self.a_s2 = 0.0
        self.changes = 0

    def add(
        self, logged: float, vw: float, vs1: float, vs2: float, aw: float, as1: float, as2: float
    ) -> None:
        self.logged += logged
        self.v_w += vw
        self.v_s1 += vs1
        self.v_s2 += vs2
        self.a_w += aw
        self.a_s1 += as1
        self.a_s2 += as2

    def row(self) -> tuple[Any, ...]:
        """These sums as a row (ROW_SUMS, then ROW_MOODS)."""
        return (self.logged, self.v_w, self.v_s1, self.v_s2, self.a_w, self.a_s1, self.a_s2,
                self.changes, *(self.secs.get(m) for m in ROW_MOODS))  # fmt: skip

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Stats:
        """The Stats whose `row` this is."""
        s = cls()
        s.logged, s.v_w, s.v_s1, s.v_s2, s.a_w, s.a_s1, s.a_s2, s.changes = row[:_N_SUMS]
        s.secs = {m: v for m, v in zip(ROW_MOODS, row[_N_SUMS:], strict=True) if v is not None}
        return s

    @classmethod
    def total(cls, rows: list[tuple[Any, ...]]) -> Stats:
        """The Stats of the stretches whose rows are given, each sum correctly rounded."""
        s = cls()
        if not rows:
            return s
        columns = list(zip(*rows, strict=True))
        fsum = math.fsum
        s.logged, s.v_w, s.v_s1, s.v_s2, s.a_w, s.a_s1, s.a_s2 = map(fsum, columns[:_CHANGES])
        s.changes = sum(columns[_CHANGES])
        for mood, col in zip(ROW_MOODS, columns[_N_SUMS:], strict=True):
            if col.count(None) < len(col):
                s.secs[mood] = fsum(v for v in col if v is not None)
        return s

    @property
    def face(self) -> float:
        return self.logged - self.secs.get(None, 0.0)

    def to_dict(self, moods: list[str]) -> dict[str, Any]:
        logged = self.logged
        return {
            "logged_s": round(logged, 3),
            "face_s": round(self.face, 3),
            "face_share": _share(self.face, logged),
            "seconds": {m: round(self.secs.get(_key(m), 0.0), 3) for m in moods},
            "share": {m: _share(self.secs.get(_key(m), 0.0), logged) for m in moods},
            "valence": _moments(self.v_w, self.v_s1, self.v_s2),
            "arousal": _moments(self.a_w, self.a_s1, self.a_s2),
            "mood_changes": self.changes,
        }


def _key(mood: str) -> str | None:
    return None if mood == NONE else mood


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def _moments(w: float, s1: float, s2: float) -> dict[str, float | None]:
    if w <= 0:
        return {"mean": None, "std": None, "seconds": 0.0}
    mean = s1 / w
    var = max(0.0, s2 / w - mean * mean)  # clamp: cancellation may leave -1e-17
    return {"mean": round(mean, 4), "std": round(math.sqrt(var), 4), "seconds": round(w, 3)}


class LocalHours:
    """Maps an epoch second to its local hour in `tz`: [start, end), (date, hour), second of day.

    Usually an hour is [hh:00, hh+1:00); a UTC-offset change inside an hour (Lord Howe's 30-minute
    shift, odd historic ones) cuts it, found by bisection over whole seconds.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def _offset(self, t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, self.tz).utcoffset()

    def _first(self, lo: int, hi: int, off: timedelta | None, same: bool) -> int:
        """Smallest s in (lo, hi] where (offset(s) == off) == same; given it holds at hi only."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (self._offset(mid) == off) == same:
                hi = mid
            else:
                lo = mid
        return hi

    def bucket(self, t: float) -> tuple[float, float, tuple[date, int], int]:
        it = math.floor(t)  # whole seconds: no rounding up into the next second
        local = datetime.fromtimestamp(it, self.tz)
        off = local.utcoffset()
        into = local.minute * 60 + local.second
        start, end = it - into, it - into + 3600
        if self._offset(start) != off:
            start = self._first(start, it, off, True)
        if self._offset(end - 1) != off:
            end = self._first(it, end - 1, off, False)
        second_of_day = local.hour * 3600 + into - (it - start)
        return float(start), float(end), (local.date(), local.hour), second_of_day


def midnight(d: date, tz: tzinfo) -> float:
    """Epoch of the start of local day `d` (a midnight skipped by DST: the first instant after)."""
    return datetime.combine(d, dtime(0), tzinfo=tz).timestamp()


@dataclass
class Day:
    date: date
    start: float  # epoch of local midnight
    end: float  # epoch of the next local midnight
    stats: Stats

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600


@dataclass
class Report:
    log: str
    files: list[str]
    tz: tzinfo
    tz_name: str
    max_gap: float
    first: date | None  # the period, inclusive local dates; None when there is no data at all
    last: date | None
    records: int = 0  # lines the reader parsed
    used: int = 0  # records on the calendar (valid, wall-clock time) within the period
    torn: int = 0  # lines the reader skipped: torn, not JSON, not an object
    invalid: int = 0  # JSON objects that are not a valid v1 record
    media_time: int = 0
    clock_steps_back: int = 0
    gaps: int = 0  # intervals longer than max_gap (device off)
    moods: list[str] = field(default_factory=list)
    totals: Stats = field(default_factory=Stats)
    days: list[Day] = field(default_factory=list)
    hours: list[Stats] = field(default_factory=list)
    grid: dict[date, array] | None = None  # date -> slots x moods seconds, for the PNG only

    @property
    def skipped(self) -> int:
        return self.torn + self.invalid

    @property
    def skipped_note(self) -> str:
        return f"skipped {self.skipped} torn or invalid lines"

    def notes(self) -> list[str]:
        out = [self.skipped_note]
        if self.media_time:
            out.append(
                f"left out {self.media_time} records with media time (t < 1e9: written while "
                "reading a video file, seconds into the file rather than dates)"
            )
        if self.clock_steps_back:
            out.append(
                f"the clock stepped back {self.clock_steps_back} times; time after a step may "
                "be counted twice"
            )
        return out


class Accumulator:
    """The one pass of `summarize` over records, resumable: `feed` may be called again with the
    records that came later, and every number comes out as if they had been read in one go
    (moodcam.history keeps this state in SQLite). `lo`/`hi` cut the period (epochs).

    The current hour's sums wait in `carry` (the loop keeps them in locals: attribute access
    would be most of the cost per line) and are added to its Stats when the hour changes, or by
    `close`, so that a resumed pass adds the same floats in the same order as a single one.
    `hour_records`, when a dict, counts the records per local hour (the index's `used`).
    """

    def __init__(
        self,
        tz: tzinfo,
        max_gap: float,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        timeline: bool = False,
        buckets: dict[tuple[date, int], Stats] | None = None,
        grid: dict[date, array] | None = None,
        hour_records: dict[tuple[date, int], int] | None = None,
    ) -> None:
        self.hours = LocalHours(tz)
        self.max_gap, self.lo, self.hi = max_gap, lo, hi
        self.buckets: dict[tuple[date, int], Stats] = {} if buckets is None else buckets
        self.grid: dict[date, array] | None = ({} if grid is None else grid) if timeline else None
        self.hour_records = hour_records
        self.invalid = self.media = self.steps_back = self.gaps = 0
        self.used = self.calendar = self.newer = 0
        # The current local hour [b_start, b_end), cached: lines come in order.
        self.b_start = self.b_end = 0.0
        self.b_key: tuple[date, int] | None = None
        self.b_sod = 0
        self.carry = (0.0,) * 7  # logged, valence w/s1/s2, arousal w/s1/s2 of the current hour
        self.p_t = 0.0
        self.p_mood: str | None = None
        self.p_val: float | None = None
        self.p_aro: float | None = None
        self.have_prev = False
        self.last_label: str | None = None

    def feed(self, records: Iterable[dict[str, Any]]) -> None:
        """Account `records` (oldest first) after those fed before; see the module doc."""
        hours, buckets, grid, max_gap, lo, hi = (
            self.hours, self.buckets, self.grid, self.max_gap, self.lo, self.hi
        )  # fmt: skip
        rec_hours = self.hour_records
        invalid, media, steps_back, gaps = self.invalid, self.media, self.steps_back, self.gaps
        used, calendar, newer = self.used, self.calendar, self.newer
        b_start, b_end, b_key, b_sod = self.b_start, self.b_end, self.b_key, self.b_sod
        b_stats = (
            Stats() if b_key is None else buckets.get(b_key) or buckets.setdefault(b_key, Stats())
        )
        b_date = b_key[0] if b_key else date.min
        secs = b_stats.secs
        lg, vw, vs1, vs2, aw, as1, as2 = self.carry
        p_t, p_mood, p_val, p_aro = self.p_t, self.p_mood, self.p_val, self.p_aro
        have_prev, last_label = self.have_prev, self.last_label

        for rec in records:
            if not is_v1(rec):
                invalid += 1
                newer = max(newer, newer_schema(rec))  # written by a newer moodcam
                continue
            t, mood, val, aro = rec["t"], rec.get("mood"), rec.get("valence"), rec.get("arousal")
            if t < MEDIA_TIME_LIMIT:
                media += 1
                continue
            calendar += 1
            if lo <= t < hi:  # "used": in the period asked for, not merely read
                used += 1
            if have_prev:
                dt = t - p_t
                if dt < 0:
                    steps_back += 1
                    last_label = None
                elif dt > max_gap:
                    gaps += 1
                    last_label = None
                    dt = max_gap
                t0 = p_t if p_t > lo else lo
                t1 = p_t + dt if p_t + dt < hi else hi
                while t0 < t1:  # one piece per local hour the interval touches; mostly one
                    if not b_start <= t0 < b_end:
                        b_stats.add(lg, vw, vs1, vs2, aw, as1, as2)
                        lg = vw = vs1 = vs2 = aw = as1 = as2 = 0.0
                        b_start, b_end, b_key, b_sod = hours.bucket(t0)
                        b_date = b_key[0]
                        b_stats = buckets.get(b_key) or buckets.setdefault(b_key, Stats())
                        secs = b_stats.secs
                    e = t1 if t1 < b_end else b_end
                    d = e - t0
                    secs[p_mood] = secs.get(p_mood, 0.0) + d
                    lg += d
                    if p_val is not None:
                        vw += d
                        vs1 += d * p_val
                        vs2 += d * p_val * p_val
                    if p_aro is not None:
                        aw += d
                        as1 += d * p_aro
                        as2 += d * p_aro * p_aro
                    if grid is not None:
                        _grid_add(grid, b_date, b_sod + (t0 - b_start), d, _MOOD_INDEX[p_mood])
                    t0 = e
            if rec_hours is not None:
                key = b_key if b_start <= t < b_end else hours.bucket(t)[2]
                rec_hours[key] = rec_hours.get(key, 0) + 1  # type: ignore[index]
            if mood is not None:
                if last_label is not None and mood != last_label and lo <= t < hi:
                    if b_start <= t < b_end:
                        b_stats.changes += 1
                    else:  # the change opens a new hour: count it there, keep the cache
                        key = hours.bucket(t)[2]
                        (buckets.get(key) or buckets.setdefault(key, Stats())).changes += 1
                last_label = mood
            p_t, p_mood, p_val, p_aro, have_prev = t, mood, val, aro, True

        self.invalid, self.media, self.steps_back, self.gaps = invalid, media, steps_back, gaps
        self.used, self.calendar, self.newer = used, calendar, newer
        self.b_start, self.b_end, self.b_key, self.b_sod = b_start, b_end, b_key, b_sod
        self.carry = (lg, vw, vs1, vs2, aw, as1, as2)
        self.p_t, self.p_mood, self.p_val, self.p_aro = p_t, p_mood, p_val, p_aro
        self.have_prev, self.last_label = have_prev, last_label

    def close(self) -> None:
        """Add the current hour's waiting sums to its Stats (the end of a one-off pass)."""
        if self.b_key is not None:
            self.buckets[self.b_key].add(*self.carry)
        self.carry = (0.0,) * 7

    def check(self, path: str | os.PathLike[str]) -> None:
        """InputError when nothing could be placed on a calendar, saying why."""
        if self.calendar == 0 and self.newer:
            raise InputError(
                f"{path}: its records are of mood log schema v{self.newer}, newer than this "
                f"moodcam reads (v{SCHEMA_VERSION}): report with the moodcam that wrote them, or "
                "upgrade"
            )
        if self.calendar == 0 and self.media > 0:
            raise InputError(
                f"{path}: all {self.media} records have media time (t < 1e9: written while "
                "reading a video file, seconds into the file rather than dates); a calendar "
                "report needs a log from a live camera"
            )


def summarize(
    path: str | os.PathLike[str],
    tz: tzinfo,
    *,
    tz_name: str = "",
    first: date | None = None,
    last: date | None = None,
    max_gap: float = DEFAULT_MAX_GAP_S,
    timeline: bool = False,
) -> Report:
    """One pass over the log at `path` (rotated files included) into a Report; see the module doc."""
    files = log_files(path)
    if not files:
        raise InputError(f"{path}: no such mood log (and no rotated {Path(path).name}.N files)")
    check_max_gap(max_gap)
    lo = midnight(first, tz) if first else -math.inf
    hi = midnight(last + timedelta(days=1), tz) if last else math.inf
    acc = Accumulator(tz, max_gap, lo, hi, timeline=timeline)
    it = iter_records(path)
    acc.feed(it)
    acc.close()
    acc.check(path)
    rep = Report(
        log=str(path),
        files=[str(p) for p in files],
        tz=tz,
        tz_name=tz_name or str(tz),
        max_gap=max_gap,
        first=first,
        last=last,
        records=it.records,
        used=acc.used,
        torn=it.skipped,
        invalid=acc.invalid,
        media_time=acc.media,
        clock_steps_back=acc.steps_back,
        gaps=acc.gaps,
        grid=acc.grid,
    )
    finish(rep, {k: s.row() for k, s in acc.buckets.items()}, png=timeline)
    return rep


def default_max_gap(interval_s: float | None) -> float:
    """--max-gap when not given: 60 s, or twice the log's [log] interval_s when that is longer
    (one rule for `moodcam report` and `moodcam web`, so both read the same history index)."""
    return DEFAULT_MAX_GAP_S if interval_s is None else max(DEFAULT_MAX_GAP_S, 2 * interval_s)


def check_max_gap(max_gap: float) -> None:
    if max_gap <= 0 or not math.isfinite(max_gap):
        raise ReportError(f"--max-gap must be a positive number of seconds, not {max_gap}")


def _grid_add(grid: dict[date, array], day: date, sod: float, d: float, mi: int) -> None:
    """Add `d` seconds of mood index `mi` from second-of-day `sod` on, split at slot edges.

    A day's grid is a flat array('d') of slots x moods: 8 bytes a cell and no numpy call per line.
    """
    g = grid.get(day)
    if g is None:
        g = grid[day] = array("d", bytes(8 * _SLOTS * _WIDTH))
    while d > 0:
        slot = int(sod // SLOT_S)
        if slot >= _SLOTS - 1:
            # The last slot takes the rest; on the 25 h DST day the repeated hour lands on the
            # same clock slots as the first, so nothing runs past midnight.
            g[(_SLOTS - 1) * _WIDTH + mi] += d
            return
        part = min(d, (slot + 1) * SLOT_S - sod)
        g[slot * _WIDTH + mi] += part
        sod += part
        d -= part


def finish(rep: Report, rows: dict[tuple[date, int], tuple[Any, ...]], png: bool = False) -> None:
    """Add up the hours' rows (`Stats.row`, by local date and hour) into days, hours of day and
    totals over the period (of a single pass, or of moodcam.history's index)."""
    seen = [k[0] for k, r in rows.items() if r[_LOGGED] > 0 or r[_CHANGES]]
    first = rep.first or (min(seen) if seen else rep.last)
    last = rep.last or (max(seen) if seen else rep.first)
    if first is not None and last is not None and last < first:
        last = first  # e.g. --from after the last data: one empty day, not a negative period
    if first is not None and last is not None:
        check_period(first, last, png)
    rep.first, rep.last = first, last
    by_day: dict[date, list[tuple[Any, ...]]] = {}
    by_hour: list[list[tuple[Any, ...]]] = [[] for _ in range(24)]
    for (d, h), r in rows.items():
        by_day.setdefault(d, []).append(r)
        by_hour[h].append(r)
    rep.hours = [Stats.total(r) for r in by_hour]
    present = {m for s in rep.hours for m in s.secs if m is not None}
    rep.moods = [
        *DEFAULT_CLASSES,
        *(m for m in FER2013_CLASSES if m in present and m not in DEFAULT_CLASSES),
        NONE,
    ]
    if first is None or last is None:
        return
    in_period: list[tuple[Any, ...]] = []
    d = first
    while d <= last:
        nxt = d + timedelta(days=1)
        day_rows = by_day.get(d, [])
        in_period += day_rows
        rep.days.append(Day(d, midnight(d, rep.tz), midnight(nxt, rep.tz), Stats.total(day_rows)))
        d = nxt
    rep.totals = Stats.total(in_period)


# --- time zones ----------------------------------------------------------------------------


def local_zone() -> tuple[tzinfo, str]:
    """The device's zone with its DST rules: $TZ, /etc/localtime (or /etc/timezone), else UTC."""
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            if os.path.isabs(env):
                with open(env, "rb") as f:
                    return ZoneInfo.from_file(f, key=env), env
            return ZoneInfo(env), env
        except (OSError, ValueError, ZoneInfoNotFoundError):
            pass  # a POSIX rule string such as "CET-1CEST": fall through to the system zone
    real = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in real:
        key = real.split("zoneinfo/", 1)[1].removeprefix("posix/").removeprefix("right/")
        try:
            return ZoneInfo(key), key
        except (ValueError, ZoneInfoNotFoundError):
            pass
    try:
        key = Path("/etc/timezone").read_text().strip()
        return ZoneInfo(key), key
    except (OSError, ValueError, ZoneInfoNotFoundError):
        pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime"), "localtime"
    except (OSError, ValueError):
        return ZoneInfo("UTC"), "UTC"


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not an IANA time zone name (such as Europe/Berlin or UTC)"
        ) from None


def parse_date(text: str) -> date:
    """A --from/--to date; only dates a mood log can hold (see FIRST_DATE), so that a mistyped
    year is a usage error rather than a period of centuries (or an OverflowError at 9999-12-31)."""
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
    if not FIRST_DATE <= d <= LAST_DATE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is outside {FIRST_DATE}..{LAST_DATE}, the dates a mood log can hold"
        )
    return d


def check_period(first: date, last: date, png: bool) -> None:
    """ReportError unless first..last is at most `max_days` days: every day in the period is a
    row (and a PNG strip), so a period of decades would cost minutes and gigabytes for nothing."""
    days, most = (last - first).days + 1, MAX_PNG_DAYS if png else MAX_DAYS
    if days > most:
        raise ReportError(
            f"the period {first}..{last} is {days} days; {'a PNG chart' if png else 'a report'} "
            f"covers at most {most} (choose fewer with --from and --to)"
        )


def _iso(epoch: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")
