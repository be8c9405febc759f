"""`moodcam report` over logs written by the real MoodLogWriter: exact seconds and shares, capped
gaps, rotation, torn and invalid lines, DST days, --from/--to, every output format."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from moodcam import report
from moodcam.commands import report as report_command
from moodcam.config import LogConfig
from moodcam.errors import InputError
from moodcam.logreader import log_files
from moodcam.records import FaceResult, MoodUpdate
from moodcam.sinks.moodlog import MoodLogWriter

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
VAL = {"happy": 0.5, "sad": -0.5, "angry": -0.75, "neutral": 0.0}
ARO = {"happy": 0.25, "sad": -0.25, "angry": 0.75, "neutral": 0.0}


def epoch(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, tz: Any = None) -> float:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz or ZoneInfo("UTC")).timestamp()


def upd(t: float, mood: str | None, changed: bool = True) -> MoodUpdate:
    faces = []
    if mood is not None:
        faces = [FaceResult(box=(10, 20, 64, 64), label=mood, scores={mood: 0.9})]
    return MoodUpdate(
        t=t, faces=faces, mood=mood, valence=VAL.get(mood), arousal=ARO.get(mood), changed=changed
    )


def write_log(
    path: Path, updates: Iterable[MoodUpdate], interval_s: float = 0.0, **cfg: Any
) -> Path:
    """The daemon's own writer (no fsync: tests need not survive power cuts)."""
    with MoodLogWriter(LogConfig(path=str(path), interval_s=interval_s, fsync=False, **cfg)) as w:
        for u in updates:
            w.handle(u)
    return path


def steps(start: float, *pairs: tuple[float, str | None]) -> list[MoodUpdate]:
    """Updates at start + offset with the given moods, e.g. steps(t, (0, "happy"), (100, "sad"))."""
    return [upd(start + dt, m) for dt, m in pairs]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="moodcam")
    report_command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["report", *argv])


def run_json(log: Path, *argv: str, tz: str = "UTC") -> dict[str, Any]:
    out = log.with_name("report.json")
    assert (
        report_command.run(
            parse(str(log), "--tz", tz, "--format", "json", "--out", str(out), *argv)
        )
        == 0
    )
    return json.loads(out.read_text())


def day(doc: dict[str, Any], date: str) -> dict[str, Any]:
    return next(d for d in doc["days"] if d["date"] == date)


# --- time accounting ---------------------------------------------------------------------


def test_seconds_shares_means_and_changes_are_exact(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 10)
    log = write_log(
        tmp_path / "mood.jsonl",
        steps(t0, (0, "happy"), (50, "sad"), (80, None), (100, "happy"), (130, "happy")),
    )
    doc = run_json(log)
    assert doc["period"] == {
        "from": "2026-06-01",
        "to": "2026-06-01",
        "start": "2026-06-01T00:00:00+00:00",
        "end": "2026-06-02T00:00:00+00:00",
    }
    (d,) = doc["days"]
    assert d["hours_in_day"] == 24
    # The last record covers nothing: 130 s logged, 20 of them without a face.
    assert d["seconds"] == {"angry": 0.0, "happy": 80.0, "sad": 30.0, "neutral": 0.0, "none": 20.0}
    assert d["logged_s"] == 130.0 and d["face_s"] == 110.0
    assert d["share"]["happy"] == round(80 / 130, 6)
    assert d["face_share"] == round(110 / 130, 6)
    mean = (80 * 0.5 - 30 * 0.5) / 110  # time-weighted, over face time only
    assert d["valence"] == {
        "mean": round(mean, 4),
        "std": round(math.sqrt(0.25 - mean**2), 4),
        "seconds": 110.0,
    }
    assert d["arousal"]["mean"] == round((80 * 0.25 - 30 * 0.25) / 110, 4)
    # happy -> sad, then sad -> (no face) -> happy: the no-face stretch is bridged.
    assert d["mood_changes"] == 2
    assert doc["hours"][10]["logged_s"] == 130.0 and doc["hours"][11]["logged_s"] == 0.0
    assert doc["totals"]["seconds"] == d["seconds"]
    assert doc["lines"]["skipped"] == 0 and doc["notes"][0] == "skipped 0 torn or invalid lines"


def test_hours_add_up_the_same_in_any_order() -> None:
    """Days, hours of day and totals are correctly rounded sums of the hours (Stats.total), so the
    log's single pass and the history index, which meet the hours in different orders, agree."""
    rows = []
    for i, logged in enumerate((1e16, 1.0, -1e16, 3600.0, 0.1, 0.2, 0.3)):
        s = report.Stats()
        s.add(logged, 0.1 * i, 0.01 * i, 0.001 * i, 0.3, 0.7, 1e-9 * i)
        s.secs = {"happy": logged, None: 0.1 * i} if i % 2 else {"sad": 0.3 * i}
        s.changes = i
        rows.append(s.row())
    forward, backward = report.Stats.total(rows), report.Stats.total(rows[::-1])
    assert forward.row() == backward.row()
    assert forward.logged == math.fsum(r[0] for r in rows) == 3601.6
    assert sum(r[0] for r in rows) != sum(r[0] for r in rows[::-1])  # where plain sums differ
    assert forward.changes == 21
    assert set(forward.secs) == {"happy", "sad", None}
    assert report.Stats.from_row(forward.row()).row() == forward.row()
    assert report.Stats.total([]).row() == report.Stats().row()


def test_same_mood_after_no_face_is_not_a_change(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 10)
    log = write_log(tmp_path / "m.jsonl", steps(t0, (0, "sad"), (5, None), (9, "sad"), (12, None)))
    assert run_json(log)["totals"]["mood_changes"] == 0


def test_gaps_are_capped_and_reset_mood_changes(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 10)
    log = write_log(
        tmp_path / "mood.jsonl",
        steps(t0, (0, "happy"), (10, "happy"), (1000, "sad"), (1010, "sad")),
    )
    doc = run_json(log)
    # 10 s, then the device was off: the record at 10 covers 60 s (the cap), not 990.
    assert doc["totals"]["seconds"]["happy"] == 70.0
    assert doc["totals"]["seconds"]["sad"] == 10.0
    assert doc["lines"]["gaps"] == 1 and doc["max_gap_s"] == 60.0
    assert doc["totals"]["mood_changes"] == 0  # the first mood after a gap is not a change

    doc = run_json(log, "--max-gap", "2000")
    assert doc["totals"]["seconds"]["happy"] == 1000.0
    assert doc["lines"]["gaps"] == 0 and doc["totals"]["mood_changes"] == 1


def test_periodic_lines_and_change_lines_of_a_running_writer(tmp_path: Path) -> None:
    """10 fps updates, a line every 2 s and at each change: shares still come out exact."""
    t0 = epoch(2026, 6, 1, 8)
    plan = [
        (0, 95.3, "neutral"),
        (95.3, 130.0, "happy"),
        (130.0, 200.0, None),
        (200.0, 260.0, "sad"),
    ]
    ups, prev = [], "start"
    for i in range(2600):
        dt = round(i * 0.1, 1)
        mood = next(m for a, b, m in plan if a <= dt < b)
        ups.append(upd(t0 + dt, mood, changed=mood != prev))
        prev = mood
    log = write_log(tmp_path / "mood.jsonl", ups, interval_s=2.0)
    assert len(log.read_text().splitlines()) < 200  # the writer did thin the lines out
    secs = run_json(log)["totals"]["seconds"]
    assert secs["neutral"] == pytest.approx(95.3, abs=1e-3)
    assert secs["happy"] == pytest.approx(34.7, abs=1e-3)
    assert secs["none"] == pytest.approx(70.0, abs=1e-3)
    # The last line is at 259.9 s or a periodic one before it: sad runs until the last line.
    assert 58.0 <= secs["sad"] <= 60.0


def test_clock_step_back_is_counted_and_not_a_negative_interval(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 10)
    log = write_log(
        tmp_path / "mood.jsonl", steps(t0, (0, "happy"), (10, "happy"), (5, "sad"), (15, "sad"))
    )
    doc = run_json(log)
    assert doc["totals"]["seconds"]["happy"] == 10.0 and doc["totals"]["seconds"]["sad"] == 10.0
    assert doc["lines"]["clock_steps_back"] == 1 and doc["totals"]["mood_changes"] == 0
    assert any("stepped back 1 times" in n for n in doc["notes"])


# --- rotation, torn and invalid lines ------------------------------------------------------


def rotated_log(tmp_path: Path) -> tuple[Path, float]:
    """An hour of 10 s lines, rotated at 1 KiB into many files, an invalid record in an old file
    and a torn line at the end (a power cut in the middle of a write)."""
    t0 = epoch(2026, 6, 1, 9)
    moods = ("happy", "sad", None, "neutral", "angry", "happy")  # 10 minutes each
    log = write_log(
        tmp_path / "mood.jsonl",
        [upd(t0 + 10 * i, moods[min(i // 60, 5)]) for i in range(361)],
        max_bytes=1024,
        backups=1000,
    )
    files = log_files(log)
    assert len(files) > 20
    with open(files[len(files) // 2], "ab") as f:
        f.write(b'{"v":1,"t":"noon","mood":"happy"}\n')  # JSON, but not a record
    with open(log, "ab") as f:
        f.write(b'{"v":1,"t":17803')  # torn: no newline
    return log, t0


def test_rotated_files_are_read_and_torn_invalid_lines_counted(tmp_path: Path) -> None:
    log, _ = rotated_log(tmp_path)
    doc = run_json(log)
    assert doc["totals"]["seconds"] == {
        "angry": 600.0,
        "happy": 1200.0,
        "sad": 600.0,
        "neutral": 600.0,
        "none": 600.0,
    }
    assert doc["lines"] | {"records": 0} == {
        "records": 0,
        "used": 361,
        "skipped": 2,
        "torn": 1,
        "invalid": 1,
        "media_time": 0,
        "clock_steps_back": 0,
        "gaps": 0,
    }
    assert len(doc["files"]) == len(log_files(log))
    assert doc["notes"][0] == "skipped 2 torn or invalid lines"


def test_text_and_csv_show_the_skipped_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, _ = rotated_log(tmp_path)
    assert report_command.run(parse(str(log), "--tz", "UTC")) == 0
    out = capsys.readouterr()
    assert "skipped 2 torn or invalid lines" in out.out
    assert out.err == ""  # the text on stdout says it already
    lines = out.out.splitlines()
    assert lines[0].startswith(f"moodcam report: {log} (")
    assert any(line.startswith("2026-06-01 24") for line in lines)

    out_csv = tmp_path / "r.csv"
    assert (
        report_command.run(parse(str(log), "--tz", "UTC", "--format", "csv", "--out", str(out_csv)))
        == 0
    )
    assert "skipped 2 torn or invalid lines" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    moods = ["angry", "happy", "sad", "neutral", "none"]
    assert list(rows[0]) == [
        "scope", "key", "start", "end", "hours_in_day", "logged_s", "face_s", "face_share",
        *(f"s_{m}" for m in moods), *(f"share_{m}" for m in moods),
        "valence_mean", "valence_std", "arousal_mean", "arousal_std", "mood_changes", "skipped_lines",
    ]  # fmt: skip
    assert [r["scope"] for r in rows] == ["day"] + ["hour"] * 24 + ["total"]
    total = rows[-1]
    assert total["skipped_lines"] == "2" and total["key"] == "2026-06-01..2026-06-01"
    assert float(total["s_happy"]) == 1200.0 and float(total["share_none"]) == round(600 / 3600, 6)
    assert rows[0]["start"] == "2026-06-01T00:00:00+00:00" and rows[0]["skipped_lines"] == ""
    assert float(rows[1 + 9]["logged_s"]) == 3600.0 and rows[1 + 3]["valence_mean"] == ""


# --- time zones and DST --------------------------------------------------------------------


def every_minute(path: Path, start: float, end: float, mood: str = "happy") -> Path:
    """One line a minute (= the default max gap, so the time is continuous) from start to end."""
    return write_log(
        path, [upd(start + 60 * i, mood, changed=i == 0) for i in range(int(end - start) // 60 + 1)]
    )


def test_spring_forward_day_has_23_hours(tmp_path: Path) -> None:
    start = epoch(2026, 3, 28, 12, tz=BERLIN)
    end = epoch(2026, 3, 30, 12, tz=BERLIN)
    doc = run_json(every_minute(tmp_path / "mood.jsonl", start, end), tz="Europe/Berlin")
    assert doc["tz"] == "Europe/Berlin"
    assert [d["date"] for d in doc["days"]] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    d = day(doc, "2026-03-29")
    assert d["hours_in_day"] == 23
    assert (d["start"], d["end"]) == ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
    assert d["logged_s"] == 23 * 3600 and d["seconds"]["happy"] == 23 * 3600
    assert day(doc, "2026-03-28")["logged_s"] == 12 * 3600
    assert day(doc, "2026-03-30")["logged_s"] == 12 * 3600
    # 02:00-03:00 does not exist on the 29th; every other hour is covered twice or once.
    assert doc["hours"][2]["logged_s"] == 3600  # from the 30th only
    assert doc["hours"][1]["logged_s"] == 2 * 3600


def test_fall_back_day_has_25_hours_and_from_to_select_it(tmp_path: Path) -> None:
    start = epoch(2026, 10, 24, 12, tz=BERLIN)
    end = epoch(2026, 10, 26, 12, tz=BERLIN)
    log = every_minute(tmp_path / "mood.jsonl", start, end)
    doc = run_json(log, "--from", "2026-10-25", "--to", "2026-10-25", tz="Europe/Berlin")
    (d,) = doc["days"]
    assert d["hours_in_day"] == 25
    assert (d["start"], d["end"]) == ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00")
    assert d["logged_s"] == 25 * 3600 == doc["totals"]["logged_s"]
    assert doc["hours"][2]["logged_s"] == 7200  # 02:00-03:00 happened twice
    assert sum(h["logged_s"] for h in doc["hours"]) == 25 * 3600
    # In UTC the same log has three ordinary days with the cut at UTC midnight.
    utc = run_json(log)
    assert [d["hours_in_day"] for d in utc["days"]] == [24, 24, 24]
    assert day(utc, "2026-10-25")["logged_s"] == 86400


def test_half_hour_dst_shift_is_split_exactly(tmp_path: Path) -> None:
    """Lord Howe Island moves its clocks by 30 minutes: hours are cut in the middle."""
    lh = ZoneInfo("Australia/Lord_Howe")
    start = epoch(2026, 4, 4, 12, tz=lh)
    end = epoch(2026, 4, 6, 12, tz=lh)
    doc = run_json(
        every_minute(tmp_path / "m.jsonl", start, end), "--from", "2026-04-05", "--to", "2026-04-05",
        tz="Australia/Lord_Howe",
    )  # fmt: skip
    (d,) = doc["days"]
    assert d["hours_in_day"] == 24.5 and d["logged_s"] == 24.5 * 3600
    assert doc["hours"][1]["logged_s"] == 5400  # 01:30-02:00 happened twice


def test_from_to_cut_intervals_at_local_midnight(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 23, 59, 30)
    # 50 s lines: the one at 23:59:30 covers 30 s of June 1st and 20 s of June 2nd.
    ups = [upd(t0 + 50 * i, "sad" if i % 2 else "happy", changed=True) for i in range(6)]
    log = write_log(tmp_path / "mood.jsonl", ups)
    both = run_json(log)
    assert [d["logged_s"] for d in both["days"]] == [30.0, 220.0]
    only = run_json(log, "--from", "2026-06-02")
    assert [d["date"] for d in only["days"]] == ["2026-06-02"]
    assert only["totals"]["seconds"] == {
        **dict.fromkeys(only["moods"], 0.0),
        "happy": 120.0,
        "sad": 100.0,
    }
    assert only["totals"]["mood_changes"] == 5  # every line after the first, all on June 2nd
    assert run_json(log, "--to", "2026-06-01")["totals"]["logged_s"] == 30.0
    empty = run_json(log, "--from", "2026-07-01", "--to", "2026-07-02")
    assert [d["logged_s"] for d in empty["days"]] == [0.0, 0.0]
    assert empty["days"][0]["share"]["happy"] is None and empty["totals"]["valence"]["mean"] is None


def test_default_zone_is_the_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    log = every_minute(
        tmp_path / "mood.jsonl", epoch(2026, 6, 1, 21, 30), epoch(2026, 6, 1, 22, 30)
    )
    out = tmp_path / "r.json"
    assert report_command.run(parse(str(log), "--format", "json", "--out", str(out))) == 0
    doc = json.loads(out.read_text())
    # 21:30-22:30 UTC is 23:30-00:30 in Berlin (CEST): two local days.
    assert doc["tz"] == "Europe/Berlin"
    assert [(d["date"], d["logged_s"]) for d in doc["days"]] == [
        ("2026-06-01", 1800.0),
        ("2026-06-02", 1800.0),
    ]


# --- inputs and arguments ------------------------------------------------------------------


def test_media_time_logs_are_refused_and_mixed_ones_counted(tmp_path: Path) -> None:
    video = write_log(tmp_path / "video.jsonl", steps(0.0, (0, "happy"), (1.5, "sad"), (3, "sad")))
    with pytest.raises(InputError, match=r"media time \(t < 1e9"):
        report_command.run(parse(str(video), "--tz", "UTC"))
    t0 = epoch(2026, 6, 1, 10)
    mixed = write_log(
        tmp_path / "mixed.jsonl",
        [*steps(t0, (0, "happy"), (30, "happy")), *steps(0.0, (0, "sad"), (2, "sad"))],
    )
    doc = run_json(mixed)
    assert doc["lines"]["media_time"] == 2 and doc["totals"]["logged_s"] == 30.0
    assert any("media time" in n for n in doc["notes"])


def test_config_gives_the_log_path_and_the_max_gap(tmp_path: Path) -> None:
    t0 = epoch(2026, 6, 1, 10)
    log = write_log(
        tmp_path / "from-config.jsonl", steps(t0, (0, "happy"), (120, "sad"), (240, "sad"))
    )
    cfg = tmp_path / "moodcam.toml"
    cfg.write_text(f'[log]\npath = "{log}"\ninterval_s = 120.0\n')
    out = tmp_path / "r.json"
    assert (
        report_command.run(
            parse("--config", str(cfg), "--tz", "UTC", "--format", "json", "--out", str(out))
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["log"] == str(log) and doc["max_gap_s"] == 240.0
    assert doc["totals"]["seconds"]["happy"] == 120.0 and doc["lines"]["gaps"] == 0


def test_bad_arguments_get_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="no such mood log"):
        report_command.run(parse(str(tmp_path / "nope.jsonl"), "--tz", "UTC"))
    log = write_log(tmp_path / "mood.jsonl", steps(epoch(2026, 6, 1), (0, "happy"), (5, "sad")))
    with pytest.raises(report.ReportError, match="after --to"):
        report_command.run(parse(str(log), "--from", "2026-06-02", "--to", "2026-06-01"))
    with pytest.raises(report.ReportError, match="png needs --out"):
        report_command.run(parse(str(log), "--format", "png"))
    for bad in (["--tz", "Mars/Olympus"], ["--from", "June 1st"]):
        with pytest.raises(SystemExit) as e:
            parse(str(log), *bad)
        assert e.value.code == 2
    assert "IANA time zone" in capsys.readouterr().err
    assert report_command.main([str(log), "--tz", "UTC", "--max-gap", "0"]) == 2


# --- formats -------------------------------------------------------------------------------


def two_days(tmp_path: Path) -> Path:
    """Two local days in Berlin, moods changing every 20 minutes, no face 00:00-06:00."""
    start = epoch(2026, 3, 28, 0, tz=BERLIN)
    cycle = ("happy", "neutral", "sad", "happy", "angry", "neutral")
    ups, prev = [], "start"
    for i in range((2 * 86400 - 3600) // 30 + 1):  # the 29th has 23 hours
        t = start + 30 * i
        local = datetime.fromtimestamp(t, BERLIN)
        mood = None if local.hour < 6 else cycle[(local.hour * 3 + local.minute // 20) % len(cycle)]
        ups.append(upd(t, mood, changed=mood != prev))
        prev = mood
    log = write_log(tmp_path / "mood.jsonl", ups, interval_s=30.0)
    with open(log, "ab") as f:
        f.write(b'{"v":1,"t":1774')  # torn
    return log


def test_json_schema(tmp_path: Path) -> None:
    doc = run_json(two_days(tmp_path), tz="Europe/Berlin")
    assert set(doc) == {
        "version", "generator", "generated", "log", "files", "tz", "period", "max_gap_s",
        "moods", "lines", "notes", "totals", "days", "hours",
    }  # fmt: skip
    assert doc["version"] == 1 and doc["moods"] == ["angry", "happy", "sad", "neutral", "none"]
    stats = {
        "logged_s", "face_s", "face_share", "seconds", "share", "valence", "arousal", "mood_changes",
    }  # fmt: skip
    assert set(doc["totals"]) == stats
    assert set(doc["days"][0]) == stats | {"date", "start", "end", "hours_in_day"}
    assert [h["hour"] for h in doc["hours"]] == list(range(24))
    assert set(doc["hours"][0]) == stats | {"hour"}
    assert set(doc["totals"]["valence"]) == {"mean", "std", "seconds"}
    for d in doc["days"]:
        assert set(d["seconds"]) == set(d["share"]) == set(doc["moods"])
        assert sum(d["share"].values()) == pytest.approx(1.0, abs=1e-5)
    assert doc["hours"][3]["face_share"] == 0.0 and doc["hours"][3]["valence"]["mean"] is None
    assert doc["lines"]["torn"] == 1


def test_fhir_bundle_validates_as_r4(tmp_path: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle  # R4B: fhir.resources 8 has no R4 package

    out = tmp_path / "r.fhir.json"
    assert report_command.run(parse(str(two_days(tmp_path)), "--tz", "Europe/Berlin", "--format", "fhir",
                            "--out", str(out))) == 0  # fmt: skip
    raw = json.loads(out.read_text())
    bundle = Bundle.model_validate(raw)
    assert bundle.type == "collection" and len(bundle.entry) == 2
    obs = raw["entry"][1]["resource"]
    assert obs["resourceType"] == "Observation" and obs["status"] == "final"
    assert obs["code"]["text"] == "Mood summary (moodcam)"
    assert obs["category"][0]["coding"][0]["code"] == "survey"
    assert obs["effectivePeriod"] == {
        "start": "2026-03-29T00:00:00+01:00",
        "end": "2026-03-30T00:00:00+02:00",
    }
    assert obs["device"] == {"display": "moodcam"}
    assert "skipped 1 torn or invalid lines" in obs["note"][0]["text"]
    comps = {c["code"]["text"]: c for c in obs["component"]}
    shares = [c for k, c in comps.items() if k.startswith("Share of time")]
    assert len(shares) == 5
    assert all(
        c["valueQuantity"]["unit"] == "%"
        and c["valueQuantity"]["code"] == "%"
        and c["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        for c in shares
    )
    assert sum(c["valueQuantity"]["value"] for c in shares) == pytest.approx(100, abs=0.05)
    assert comps["Share of time: no face"]["valueQuantity"]["value"] == pytest.approx(
        5 / 23 * 100, abs=0.01
    )
    assert comps["Mean valence"]["valueQuantity"]["unit"] == "1"
    assert comps["Time with a face present"]["valueQuantity"] == {
        "value": 18 * 3600.0, "unit": "s", "system": "http://unitsofmeasure.org", "code": "s",
    }  # fmt: skip
    assert entry_ids_are_stable(raw, tmp_path)


def entry_ids_are_stable(raw: dict[str, Any], tmp_path: Path) -> bool:
    again = report.render_fhir(
        report.summarize(tmp_path / "mood.jsonl", BERLIN, tz_name="Europe/Berlin")
    )
    return [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in raw["entry"]]


def test_png_is_a_real_non_blank_chart(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "chart.png"
    assert report_command.run(parse(str(two_days(tmp_path)), "--tz", "Europe/Berlin", "--format", "png",
                            "--out", str(out))) == 0  # fmt: skip
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size[0] == 1200 and 600 <= im.size[1] <= 1400
        rgb = im.convert("RGB")
    import numpy as np

    px = np.asarray(rgb)
    assert px.std() > 30
    colours = {tuple(int(v) for v in c) for c in px.reshape(-1, 3)[::7]}
    assert len(colours) > 20
    # The mood colours themselves are on the chart (timeline cells and bars).
    for hex_ in ("#ffb000", "#0040ff", "#ff0000", "#8c8c8c"):
        want = tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5))
        assert (np.abs(px.astype(int) - want).sum(axis=2) < 6).sum() > 500, hex_
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file is gone


def test_bench_script_small(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report_bench.py"), "--days", "1", "--out", str(out),
         "--file-mb", "4", "--tmp", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["lines"] == 86400 + 2 and res["files"] >= 2
    r = res["report"]
    assert r["seconds"] > 0 and r["lines_per_s"] > 0
    assert r["peak_rss_mib"] > 0 and r["ru_maxrss_mib"] > 0  # measured; bench/ quotes them
    assert r["lines"]["torn"] == 1 and r["lines"]["invalid"] == 1 and r["days"] == 1
    assert "skipped 2 torn or invalid lines" in r["stderr"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # the log was removed


def test_png_without_matplotlib_says_what_to_install(tmp_path: Path) -> None:
    # The device's install carries the report extra; a bare one must say so, not "internal error".
    log = tmp_path / "mood.jsonl"
    write_log(log, steps(epoch(2026, 3, 1, 9), (60, "happy")))
    code = (
        "import sys; sys.modules['matplotlib'] = None; from moodcam.cli import main; "
        f"sys.exit(main(['report', {str(log)!r}, '--tz', 'UTC', '--format', 'png', "
        f"'--out', {str(tmp_path / 'chart.png')!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--format png needs matplotlib" in proc.stderr and "moodcam[report]" in proc.stderr
    assert "internal error" not in proc.stderr and not (tmp_path / "chart.png").exists()


# --- the PNG's layout (issue 27, item 14) ---------------------------------------------------


def year_and_a_partial_day(tmp_path: Path) -> Path:
    """A year of days logged 08:00-16:00 UTC (no face 12:00-13:00), then a 53-minute day."""
    lines = []
    start = epoch(2025, 1, 1)
    for d in range(365):
        for k in range(0, 8 * 3600, 60):
            mood = None if 4 * 3600 <= k < 5 * 3600 else ("happy", "sad")[k // 3600 % 2]
            lines.append({"v": 1, "t": start + d * 86400 + 8 * 3600 + k, "faces": [],
                          "mood": mood, "valence": None, "arousal": None})  # fmt: skip
    for k in range(0, 54 * 60, 60):  # 53 minutes between the first and the last line
        lines.append({"v": 1, "t": epoch(2026, 1, 1, 10) + k, "faces": [], "mood": "happy",
                      "valence": 0.5, "arousal": 0.25})  # fmt: skip
    log = tmp_path / "year.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return log


def test_png_title_clear_days_to_their_share_no_face_unlike_not_logged(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    log = year_and_a_partial_day(tmp_path)
    rep = report.summarize(log, ZoneInfo("UTC"), tz_name="UTC", first=datetime(2025, 1, 2).date(),
                           last=datetime(2026, 1, 1).date(), timeline=True)  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = report.chart(rep)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    # The figure's title overlapped the timeline's title and its first date on a year's range.
    from matplotlib.text import Text

    box = fig._suptitle.get_window_extent(renderer)  # matplotlib's one handle on it
    below = [t for t in fig.axes[0].findobj(Text) if t.get_text() and t.get_visible()]
    assert len(below) > 10  # its title, dates, legend
    assert [t.get_text() for t in below if box.overlaps(t.get_window_extent(renderer))] == []

    # A day's bar stands as high as the share of the day that was logged: 8 h of 24, and 53
    # minutes of the last (drawn full height before, like a fully logged day).
    shares = report.day_shares(rep)
    heights = [sum(p[i] for p in shares.values()) for i in range(len(rep.days))]
    assert heights[0] == pytest.approx(100 * 8 / 24, abs=0.1)
    assert heights[-1] == pytest.approx(100 * 53 / 1440, abs=0.1)
    assert shares["none"][0] == pytest.approx(100 / 24, abs=0.1)
    bars = [b for b in fig.axes[2].patches if b.get_height() > 0]
    assert max(b.get_y() + b.get_height() for b in bars) == pytest.approx(100 * 8 / 24, abs=0.1)

    # "none" (no face) and "not logged" were #e6e6e6 and white: told apart only by squinting.
    def rgb(hex_: str) -> np.ndarray:
        return np.array([int(hex_[i : i + 2], 16) for i in (1, 3, 5)])

    none = rgb(report.COLORS["none"])
    assert np.abs(none - rgb(report.NO_DATA)).sum() >= 120
    assert all(np.abs(none - rgb(c)).sum() >= 120 for m, c in report.COLORS.items() if m != "none")
