"""The history index (moodcam.history): `moodcam report` gives the same output with it as from
the log alone, while the log grows, rotates, loses its oldest file, and when the index is
missing or corrupt. Logs are written by the daemon's own MoodLogWriter."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from moodcam import history, report
from moodcam.commands import report as report_command
from moodcam.logreader import log_files
from moodcam.records import MoodUpdate
from tests.test_report import BERLIN, epoch, parse, upd, write_log

MOODS = (None, "happy", "sad", "angry", "neutral")


def updates(start: float, n: int, seed: int = 0) -> list[MoodUpdate]:
    """n updates from `start`: moods in stretches, gaps (device off), a clock step back."""
    rng = random.Random(seed)
    out, t, mood = [], start, "happy"
    for i in range(n):
        t += rng.choice((0.5, 1.0, 7.3, 30.0, 59.0, 200.0, 3000.0))
        if i == n // 2:
            t -= 5000.0  # NTP steps the clock back
        if rng.random() < 0.3:
            mood = rng.choice(MOODS)
        out.append(upd(t, mood))
    return out


def outputs(log: Path, tmp: Path, *argv: str, index: bool) -> dict[str, Any]:
    """Every format of `moodcam report` for `log`, with or without the index."""
    got: dict[str, Any] = {}
    extra = () if index else ("--no-index",)
    for fmt in ("text", "csv", "json", "fhir"):
        out = tmp / f"out.{fmt}"
        args = parse(str(log), "--format", fmt, "--out", str(out), *argv, *extra)
        assert report_command.run(args) == 0
        text = out.read_text()
        if fmt in ("json", "fhir"):  # the time of writing differs
            doc = json.loads(text)
            doc.pop("generated", None)
            doc.pop("timestamp", None)
            for e in doc.get("entry", []):
                e["resource"].pop("issued")
            text = doc
        got[fmt] = text
    return got


def same(log: Path, tmp: Path, *argv: str, indexed: bool = True) -> None:
    """Every output is the same with the index as from the log; `indexed`: the index is used."""
    tz = ZoneInfo(argv[argv.index("--tz") + 1])
    gap = float(argv[argv.index("--max-gap") + 1]) if "--max-gap" in argv else 60.0
    used = history.indexed_report(log, tz, str(tz), None, None, gap, False)
    assert (used is not None) == indexed
    with_index = outputs(log, tmp, *argv, index=True)
    assert with_index == outputs(log, tmp, *argv, index=False)


def grids(log: Path, **kw: Any) -> dict[Any, list[float]]:
    rep = report.summarize(log, BERLIN, tz_name="Europe/Berlin", timeline=True, **kw)
    return {d: list(g) for d, g in (rep.grid or {}).items()}


def open_index(log: Path, max_gap: float = 60.0) -> history.Index:
    return history.Index.open(log, BERLIN, "Europe/Berlin", max_gap)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "mood.jsonl"


def test_index_gives_the_reports_numbers_while_the_log_grows_and_rotates(
    log: Path, tmp_path: Path
) -> None:
    ups = updates(epoch(2026, 3, 27, 20, tz=BERLIN), 3000)  # over the spring DST change
    cfg = {"max_bytes": 40_000, "backups": 100}
    write_log(log, ups[:1000], **cfg)
    idx = open_index(log)
    assert idx.path == history.index_path(log) and idx.path.is_file()
    tz = ("--tz", "Europe/Berlin")
    same(log, tmp_path, *tz)
    write_log(log, ups[1000:2200], **cfg)  # the writer appends and rotates
    assert len(log_files(log)) > 5
    assert idx.update() > 0
    same(log, tmp_path, *tz)
    same(log, tmp_path, *tz, "--from", "2026-03-29", "--to", "2026-03-30")
    same(log, tmp_path, *tz, "--from", "2026-04-02")
    # Lines the web has not read yet: the report reads them (in memory) from the log.
    write_log(log, ups[2200:], **cfg)
    with log.open("a") as f:
        f.write('{"v":1,"t":"not a time"}\n{"v": 1, "t": 17')  # invalid, then a torn tail
    same(log, tmp_path, *tz)
    idx.update()
    rep = idx.report(timeline=True)
    scan = report.summarize(log, BERLIN, tz_name="Europe/Berlin", timeline=True)
    assert report.to_json(rep) | {"generated": 0} == report.to_json(scan) | {"generated": 0}
    assert {d: list(g) for d, g in rep.grid.items()} == {d: list(g) for d, g in scan.grid.items()}
    assert rep.torn == 1 and rep.invalid == 1
    with log.open("a") as f:  # the torn line completed: now a record
        f.write('77000000.0,"faces":[],"mood":null,"valence":null,"arousal":null}\n')
    idx.update()
    assert idx.last is not None and idx.last["t"] == 1777000000.0
    same(log, tmp_path, *tz)
    idx.close()


def test_rotated_out_corrupt_or_other_settings_rebuild(log: Path, tmp_path: Path) -> None:
    ups = updates(epoch(2026, 6, 1, tz=BERLIN), 1500, seed=3)
    cfg = {"max_bytes": 30_000, "backups": 4}
    write_log(log, ups[:600], **cfg)
    open_index(log).close()
    write_log(log, ups[600:], **cfg)  # retention deletes files the index has read
    with pytest.raises(history.IndexUnusable, match="rotated out"):
        history.Index.open(log, BERLIN, "Europe/Berlin", 60.0, readonly=True)
    same(log, tmp_path, "--tz", "Europe/Berlin", indexed=False)  # the log is read meanwhile
    idx = open_index(log)  # the dashboard rebuilds it
    history.Index.open(log, BERLIN, "Europe/Berlin", 60.0, readonly=True).close()
    same(log, tmp_path, "--tz", "Europe/Berlin")
    idx.close()
    # Another zone or max_gap: not used by the report, rebuilt by the dashboard.
    same(log, tmp_path, "--tz", "UTC", indexed=False)
    same(log, tmp_path, "--tz", "Europe/Berlin", "--max-gap", "120", indexed=False)
    with pytest.raises(history.IndexUnusable, match="not UTC"):
        history.Index.open(log, ZoneInfo("UTC"), "UTC", 60.0, readonly=True)
    open_index(log, 120.0).close()
    same(log, tmp_path, "--tz", "Europe/Berlin", "--max-gap", "120")
    # Corrupt: the report reads the log, the dashboard starts afresh.
    history.index_path(log).write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    same(log, tmp_path, "--tz", "Europe/Berlin", indexed=False)
    open_index(log).close()
    with pytest.raises(history.IndexUnusable, match="replaced"):
        log.unlink()
        write_log(log, ups[:10], **cfg)
        history.Index.open(log, BERLIN, "Europe/Berlin", 60.0, readonly=True)


def test_now_is_the_newest_record_the_report_counts(log: Path) -> None:
    """The dashboard's "now" (Index.last, since when its mood holds) skips what the report
    leaves out (records.is_v1): a label no model has, a newer schema."""
    t0 = epoch(2026, 6, 1, 12, tz=BERLIN)
    write_log(log, [upd(t0, "happy"), upd(t0 + 10, "happy"), upd(t0 + 20, "sad")])
    idx = open_index(log)
    assert idx.last is not None and (idx.last["t"], idx.last["mood"]) == (t0 + 20, "sad")
    assert idx.since == t0 + 20
    with log.open("a") as f:
        f.write(json.dumps({"v": 1, "t": t0 + 30, "mood": "bored", "faces": []}) + "\n")
        f.write(json.dumps({"v": 2, "t": t0 + 40, "mood": "happy", "faces": []}) + "\n")
    assert idx.update() == 2
    assert (idx.last["t"], idx.last["mood"], idx.since) == (t0 + 20, "sad", t0 + 20)
    write_log(log, [upd(t0 + 50, "sad"), upd(t0 + 60, "angry")])
    idx.update()
    assert (idx.last["t"], idx.last["mood"], idx.since) == (t0 + 60, "angry", t0 + 60)
    assert idx.report().invalid == 2
    idx.close()
