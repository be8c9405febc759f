"""The report as text (for people), CSV (a row per day and hour) and JSON (the whole report)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from moodcam.report.summary import REPORT_VERSION, Report, Stats, _iso, _key, _share, midnight


def to_json(rep: Report) -> dict[str, Any]:
    """The JSON document (schema: REPORT_VERSION; documented in the README)."""
    period = None
    if rep.first is not None and rep.last is not None:
        period = {
            "from": rep.first.isoformat(),
            "to": rep.last.isoformat(),
            "start": _iso(midnight(rep.first, rep.tz), rep.tz),
            "end": _iso(midnight(rep.last + timedelta(days=1), rep.tz), rep.tz),
        }
    return {
        "version": REPORT_VERSION,
        "generator": "moodcam report",
        "generated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "log": rep.log,
        "files": rep.files,
        "tz": rep.tz_name,
        "period": period,
        "max_gap_s": rep.max_gap,
        "moods": rep.moods,
        "lines": {
            "records": rep.records,
            "used": rep.used,
            "skipped": rep.skipped,
            "torn": rep.torn,
            "invalid": rep.invalid,
            "media_time": rep.media_time,
            "clock_steps_back": rep.clock_steps_back,
            "gaps": rep.gaps,
        },
        "notes": rep.notes(),
        "totals": rep.totals.to_dict(rep.moods),
        "days": [
            {
                "date": d.date.isoformat(),
                "start": _iso(d.start, rep.tz),
                "end": _iso(d.end, rep.tz),
                "hours_in_day": round(d.hours, 3),
                **d.stats.to_dict(rep.moods),
            }
            for d in rep.days
        ],
        "hours": [{"hour": h, **s.to_dict(rep.moods)} for h, s in enumerate(rep.hours)],
    }


def render_json(rep: Report) -> str:
    return json.dumps(to_json(rep), indent=2, ensure_ascii=False) + "\n"


def _csv_columns(moods: list[str]) -> list[str]:
    return [
        "scope",
        "key",
        "start",
        "end",
        "hours_in_day",
        "logged_s",
        "face_s",
        "face_share",
        *(f"s_{m}" for m in moods),
        *(f"share_{m}" for m in moods),
        "valence_mean",
        "valence_std",
        "arousal_mean",
        "arousal_std",
        "mood_changes",
        "skipped_lines",
    ]


def render_csv(rep: Report) -> str:
    """One table: a row per day (scope day), per hour of day (hour), and the total (total).

    The total row also carries `skipped_lines`; empty cells mean "no data".
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_csv_columns(rep.moods))

    def row(scope: str, key: str, start: str, end: str, hours: Any, s: Stats, skip: Any) -> None:
        dd = s.to_dict(rep.moods)
        w.writerow(
            [
                scope,
                key,
                start,
                end,
                hours,
                dd["logged_s"],
                dd["face_s"],
                _cell(dd["face_share"]),
                *(dd["seconds"][m] for m in rep.moods),
                *(_cell(dd["share"][m]) for m in rep.moods),
                _cell(dd["valence"]["mean"]),
                _cell(dd["valence"]["std"]),
                _cell(dd["arousal"]["mean"]),
                _cell(dd["arousal"]["std"]),
                dd["mood_changes"],
                skip,
            ]
        )

    for d in rep.days:
        row(
            "day",
            d.date.isoformat(),
            _iso(d.start, rep.tz),
            _iso(d.end, rep.tz),
            round(d.hours, 3),
            d.stats,
            "",
        )
    for h, s in enumerate(rep.hours):
        row("hour", str(h), "", "", "", s, "")
    if rep.first is not None and rep.last is not None:
        start = _iso(midnight(rep.first, rep.tz), rep.tz)
        end = _iso(midnight(rep.last + timedelta(days=1), rep.tz), rep.tz)
        key = f"{rep.first.isoformat()}..{rep.last.isoformat()}"
    else:
        start = end = key = ""
    row("total", key, start, end, "", rep.totals, rep.skipped)
    return buf.getvalue()


def _cell(x: float | None) -> Any:
    return "" if x is None else x


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, signed: bool = True) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def render_text(rep: Report) -> str:
    moods = rep.moods
    period = f"{rep.first} to {rep.last}" if rep.first else "no data"
    files = f" ({len(rep.files)} files)" if len(rep.files) > 1 else ""
    out = [
        f"moodcam report: {rep.log}{files}, {period}, time zone {rep.tz_name}",
        *rep.notes(),
        f"{rep.used} records used; gaps over {rep.max_gap:g} s count as device off "
        f"({rep.gaps} such gaps)",
        "",
    ]
    t = rep.totals
    tv, ta = t.to_dict(moods)["valence"], t.to_dict(moods)["arousal"]
    out.append(
        f"total: logged {_hms(t.logged)}, face {_hms(t.face)} "
        f"({_pct(_share(t.face, t.logged))} %), mood changes {t.changes}"
    )
    out.append(
        "  " + "  ".join(f"{m} {_pct(_share(t.secs.get(_key(m), 0.0), t.logged))} %" for m in moods)
    )
    out.append(
        f"  valence {_num(tv['mean'])} sd {_num(tv['std'], False)}   "
        f"arousal {_num(ta['mean'])} sd {_num(ta['std'], False)}"
    )
    head = "".join(f"{m[:7]:>8}" for m in moods)
    cols = f"{'logged':>10}{'face':>10}{head}  {'valence':>12}  {'arousal':>12}{'changes':>8}"

    def line(label: str, s: Stats) -> str:
        dd = s.to_dict(moods)
        shares = "".join(f"{_pct(dd['share'][m]):>8}" for m in moods)
        v, a = dd["valence"], dd["arousal"]
        return (
            f"{label}{_hms(s.logged):>10}{_hms(s.face):>10}{shares}  "
            f"{_num(v['mean']):>6} {_num(v['std'], False):>5}  "
            f"{_num(a['mean']):>6} {_num(a['std'], False):>5}{s.changes:>8}"
        )

    out += ["", f"{'day':<10} {'h':>2}{cols}   (shares in % of logged time; mean sd)"]
    out += [f"{line(f'{d.date} {d.hours:>2g}', d.stats)}" for d in rep.days]
    out += ["", f"{'hour':<13}{cols}"]
    out += [line(f"{h:02d}-{h + 1:02d}".ljust(13), s) for h, s in enumerate(rep.hours)]
    return "\n".join(out) + "\n"
