"""The report as a PNG chart (matplotlib, imported only when used): a strip of moods per day."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

from moodcam.labels import MOOD_COLORS
from moodcam.report.summary import (
    _MOOD_INDEX,
    _SLOTS,
    _WIDTH,
    NONE,
    Report,
    ReportError,
    _key,
    _moments,
)

# LED hues (config.LedConfig.colors) where they read on paper; neutral's white LED becomes grey.
COLORS = MOOD_COLORS | {
    "neutral": "#8c8c8c",
    "surprise": "#b000ff",
    "fear": "#00a080",
    "disgust": "#6b8e23",
    # No face: sand, so it is told from "not logged" (white; its old light grey was not) and
    # from neutral (grey).
    NONE: "#d2c4a8",
}
NO_DATA = "#ffffff"


def render_png(rep: Report, out: Path | BinaryIO) -> None:
    """The chart (`chart`) as a PNG."""
    chart(rep).savefig(out, format="png")


def day_shares(rep: Report) -> dict[str, list[float]]:
    """Per mood (rep.moods), each day's time in it as a percentage of the whole day (23, 24 or 25
    hours): a day logged for 53 minutes stands 3.7 % high, not full height; the rest of the
    bar is the time not logged."""
    return {
        m: [100 * d.stats.secs.get(_key(m), 0.0) / max(1.0, d.end - d.start) for d in rep.days]
        for m in rep.moods
    }


def chart(rep: Report) -> Any:
    """One matplotlib Figure: mood timeline (a row per day, x = local clock time), valence and
    arousal by hour of day (mean and sd band), daily shares of the day (stacked bars)."""
    import numpy as np

    try:
        from matplotlib.colors import to_rgb
        from matplotlib.figure import Figure  # no pyplot: no global state, no backend switch
        from matplotlib.patches import Patch
    except ImportError:
        raise ReportError(
            "--format png needs matplotlib, which this install lacks: "
            "pip install 'moodcam[report]' (systemd/install.sh installs it)"
        ) from None

    days = rep.days
    nd = max(1, len(days))
    moods = rep.moods
    by_index = {i: m for m, i in _MOOD_INDEX.items()}
    rgb = np.array(
        [to_rgb(COLORS.get(by_index[i] or NONE, "#000000")) for i in range(len(by_index))]
    )

    grid = rep.grid or {}
    image = np.ones((nd, _SLOTS, 3))
    for row, d in enumerate(days):
        if (flat := grid.get(d.date)) is None:
            continue
        g = np.frombuffer(flat, dtype=np.float64).reshape(_SLOTS, _WIDTH)
        filled = g.sum(axis=1) > 0
        image[row, filled] = rgb[g.argmax(axis=1)[filled]]

    tl_h = min(7.0, max(1.2, 0.22 * nd))
    fig = Figure(figsize=(12, tl_h + 5.6), dpi=100)
    gs = fig.add_gridspec(3, 1, height_ratios=[tl_h, 2.4, 2.4], hspace=0.55)
    ax = fig.add_subplot(gs[0])
    ax.imshow(image, aspect="auto", interpolation="nearest", extent=(0, 24, nd, 0))
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2))
    step = max(1, math.ceil(nd / 14))
    ax.set_yticks([i + 0.5 for i in range(0, len(days), step)])
    ax.set_yticklabels([days[i].date.isoformat() for i in range(0, len(days), step)])
    ax.set_title("Mood over the day (local time; white = not logged)", loc="left")
    handles = [
        Patch(
            facecolor=COLORS.get(m, "#000"),
            edgecolor="#999",
            label="none (no face)" if m == NONE else m,
        )
        for m in moods
    ]
    handles.append(Patch(facecolor=NO_DATA, edgecolor="#999", label="not logged"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)

    ax2 = fig.add_subplot(gs[1], sharex=ax)
    x = np.arange(24) + 0.5
    for name, color in (("valence", "#7b1fa2"), ("arousal", "#2e7d32")):
        mom = [
            _moments(*((s.v_w, s.v_s1, s.v_s2) if name == "valence" else (s.a_w, s.a_s1, s.a_s2)))
            for s in rep.hours
        ]
        mean = np.array([np.nan if m["mean"] is None else m["mean"] for m in mom])
        sd = np.array([np.nan if m["std"] is None else m["std"] for m in mom])
        ax2.plot(x, mean, marker="o", ms=3, color=color, label=f"{name} (mean ± sd)")
        ax2.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.15)
    ax2.axhline(0, color="#999", lw=0.8)
    ax2.set_ylim(-1.05, 1.05)
    ax2.set_xlabel("hour of day")
    ax2.set_title("Valence and arousal by hour of day (time-weighted)", loc="left")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.005, 1), fontsize=8)

    ax3 = fig.add_subplot(gs[2])
    xs = np.arange(len(days))
    bottom = np.zeros(len(days))
    for m, pct in day_shares(rep).items():
        share = np.array(pct)
        ax3.bar(
            xs,
            share,
            bottom=bottom,
            width=0.9 if len(days) < 60 else 1.0,
            color=COLORS.get(m, "#000"),
            edgecolor="none",
            lw=0.3,
            label=m,
        )
        bottom += share
    ax3.set_ylim(0, 100)
    ax3.set_ylabel("% of the day")
    ax3.set_xticks(xs[::step])
    one_year = len({d.date.year for d in days}) == 1
    ax3.set_xticklabels(
        [
            days[i].date.strftime("%m-%d" if one_year else "%Y-%m-%d")
            for i in range(0, len(days), step)
        ],
        rotation=0 if one_year else 30,
        ha="center" if one_year else "right",
    )
    ax3.set_xlim(-0.6, max(0.6, len(days) - 0.4))
    ax3.set_title("Daily shares of the day (blank = not logged)", loc="left")

    height = fig.get_figheight()
    # Margins in inches. The figure title has a band of its own above the timeline's title
    # (0.6 in for both let them overlap); below: the footer note and (rotated) date labels.
    fig.suptitle(
        f"moodcam: {rep.first} to {rep.last} ({rep.tz_name})" if rep.first else "moodcam: no data",
        x=0.01,
        y=1 - 0.12 / height,
        ha="left",
        va="top",
        fontsize=13,
    )
    fig.text(0.01, 0.005, "; ".join(rep.notes()), fontsize=8, color="#555")
    fig.subplots_adjust(
        left=0.1, right=0.86, top=1 - 0.85 / height, bottom=(0.6 if one_year else 1.0) / height
    )
    return fig
