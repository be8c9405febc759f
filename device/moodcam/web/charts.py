"""The dashboard's charts as SVG markup, drawn on the server from a report.Report (the numbers
`moodcam report` gives) and placed inline in the page: no chart library, no script, no image
request. Colours are report.COLORS, the PNG chart's."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from moodcam.report import COLORS, Report, day_shares
from moodcam.report.summary import _MOOD_INDEX, _SLOTS, _WIDTH, NONE, SLOT_S

_BY_INDEX = {i: m or NONE for m, i in _MOOD_INDEX.items()}
GREY = "#9a9a9a"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#444">{escape(text)}</text>'
    )


def legend(moods: list[str]) -> str:
    """Colour keys of `moods` (an SVG: the page allows no inline styles)."""
    body, x = [], 0
    for m in moods:
        name = "no face" if m == NONE else m
        body.append(f'<rect x="{x}" y="2" width="12" height="12" fill="{COLORS.get(m, GREY)}" '
                    'stroke="#999"/>')  # fmt: skip
        body.append(_text(x + 16, 12, name, "start"))
        x += 26 + 7 * len(name)
    return _svg(x, 16, body, "legend: " + ", ".join(moods)).replace(
        'class="chart"', 'class="legend"'
    )


def timeline(rep: Report, day: date) -> str:
    """One day's mood over the clock (5-minute slots, the mood with most time in each)."""
    W, H, top, band = 960, 58, 4, 30
    body = [f'<rect x="0" y="{top}" width="{W}" height="{band}" fill="#fff" stroke="#ccc"/>']
    g = (rep.grid or {}).get(day)
    if g is not None:
        run_start, run_mood = 0, None
        for slot in range(_SLOTS + 1):
            mood = None
            if slot < _SLOTS:
                cells = g[slot * _WIDTH : (slot + 1) * _WIDTH]
                if max(cells) > 0:
                    mood = _BY_INDEX[max(range(_WIDTH), key=cells.__getitem__)]
            if mood != run_mood:
                if run_mood is not None:
                    x0, x1 = W * run_start / _SLOTS, W * slot / _SLOTS
                    body.append(
                        f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{band}" '
                        f'fill="{COLORS.get(run_mood, GREY)}"><title>{escape(run_mood)} '
                        f"{_clock(run_start)}-{_clock(slot)}</title></rect>"
                    )
                run_start, run_mood = slot, mood
    for h in range(0, 25, 3):
        x = W * h / 24
        body.append(f'<line x1="{x:.1f}" y1="{top + band}" x2="{x:.1f}" y2="{top + band + 4}" '
                    'stroke="#999"/>')  # fmt: skip
        body.append(_text(min(max(x, 10), W - 10), H - 4, f"{h:02d}:00"))
    return _svg(W, H, body, f"mood timeline of {day}")


def _clock(slot: int) -> str:
    s = slot * SLOT_S
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def shares(rep: Report) -> str:
    """Per day, the time in each mood as a share of the whole day (report.day_shares)."""
    W, H, left, bottom = 960, 200, 84, 28
    n = max(1, len(rep.days))
    top = 16  # room for the top label
    plot_h = H - bottom - top
    step = (W - left) / n
    body = []
    for pct in (0, 50, 100):
        y = top + plot_h * (1 - pct / 100)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, y + 4, f"{pct}%", "end"))
    shares_by_mood = day_shares(rep)
    for i, d in enumerate(rep.days):
        x, base = left + i * step, top + plot_h
        for m in rep.moods:
            h = plot_h * shares_by_mood[m][i] / 100
            if h <= 0:
                continue
            base -= h
            body.append(
                f'<rect x="{x + step * 0.08:.1f}" y="{base:.2f}" width="{step * 0.84:.1f}" '
                f'height="{h:.2f}" fill="{COLORS.get(m, GREY)}"><title>{d.date} {escape(m)} '
                f"{shares_by_mood[m][i]:.1f} % of the day</title></rect>"
            )
    every = max(1, round(n / 10))
    for i in range(0, len(rep.days), every):
        label = rep.days[i].date.strftime("%m-%d")
        body.append(_text(left + (i + 0.5) * step, H - 6, label))
    return _svg(W, H, body, f"mood shares per day {rep.first} to {rep.last}")


def by_hour(rep: Report) -> str:
    """Valence and arousal by hour of day: time-weighted means (report's `hours`)."""
    W, H, left, bottom = 960, 180, 84, 28
    top = 16  # room for the top label
    plot_h = H - bottom - top
    body = []
    for v in (-1, 0, 1):
        y = top + plot_h * (1 - v) / 2
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W}" y2="{y:.1f}" stroke="{"#bbb" if v == 0 else "#e4e4e4"}"/>')  # fmt: skip
        body.append(_text(left - 4, y + 4, f"{v:+d}" if v else "0", "end"))
    step = (W - left) / 24
    for name, color in (("valence", "#7b1fa2"), ("arousal", "#2e7d32")):
        points = []
        for h, s in enumerate(rep.hours):
            mean = s.to_dict(rep.moods)[name]["mean"]
            if mean is None:
                continue
            x, y = left + (h + 0.5) * step, top + plot_h * (1 - mean) / 2
            points.append((x, y))
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{name} '
                        f"{h:02d}-{h + 1:02d} h: {mean:+.2f}</title></circle>")  # fmt: skip
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
    for h in range(0, 24, 3):
        body.append(_text(left + (h + 0.5) * step, H - 6, f"{h:02d}"))
    body.append(_text(W - 4, 18, "valence", "end"))
    body.append(_text(W - 4, 32, "arousal", "end"))
    body.append(f'<rect x="{W - 70}" y="10" width="10" height="3" fill="#7b1fa2"/>')
    body.append(f'<rect x="{W - 70}" y="24" width="10" height="3" fill="#2e7d32"/>')
    return _svg(W, H, body, "valence and arousal by hour of day")


def framing(faces: list[dict[str, Any]], width: int, height: int, min_face: int) -> str:
    """Where faces are in the frame, as boxes on an empty outline with their sizes, and the
    smallest face the detector looks for; no pixel of any frame."""
    boxes = [f["box"] for f in faces if isinstance(f, dict) and _is_box(f.get("box"))]
    W = max([width, *(x + w for x, _, w, _ in boxes)])
    H = max([height, *(y + h for _, y, _, h in boxes)])
    body = [
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#f6f6f6" stroke="#888" stroke-width="2"/>',
        f'<rect x="8" y="{H - 8 - min_face}" width="{min_face}" height="{min_face}" fill="none" '
        'stroke="#d9822b" stroke-width="2" stroke-dasharray="6 4"/>',
        _text(min_face + 16, H - 12, f"smallest face found: {min_face} px", "start", 18),
    ]
    for x, y, w, h in boxes:
        small = min(w, h) < 1.5 * min_face
        color = "#d9822b" if small else "#2e7d32"
        body.append(f'<rect class="face" x="{x}" y="{y}" width="{w}" height="{h}" fill="none" '
                    f'stroke="{color}" stroke-width="3"/>')  # fmt: skip
        body.append(_text(x + w / 2, max(18, y - 6), f"{w}x{h} px" + (" (small)" if small else ""),
                          size=18))  # fmt: skip
    if not boxes:
        body.append(_text(W / 2, H / 2, "no face in the last line of the log", size=20))
    return _svg(W, H, body, f"{len(boxes)} face boxes in a {W}x{H} frame")


def _is_box(box: Any) -> bool:
    return (
        isinstance(box, list)
        and len(box) == 4
        and all(type(v) is int and 0 <= v < 100_000 for v in box)
    )
