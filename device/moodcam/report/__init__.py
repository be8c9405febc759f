"""`moodcam report`: summaries of the mood log for people and for health apps. `summary` reads
the log into a Report (its docstring says what every number means) with an Accumulator that
moodcam.history resumes; `tables` renders it as text,
CSV and JSON, `fhir` as a FHIR Bundle, `png` as a chart. The command is moodcam.commands.report.
"""

from moodcam.records import MEDIA_TIME_LIMIT
from moodcam.report.fhir import render_fhir, validate_fhir
from moodcam.report.png import COLORS, NO_DATA, chart, day_shares, render_png
from moodcam.report.summary import (
    DEFAULT_MAX_GAP_S,
    FORMATS,
    ROW_MOODS,
    ROW_SUMS,
    Accumulator,
    OutputError,
    Report,
    ReportError,
    Stats,
    check_max_gap,
    check_period,
    default_max_gap,
    finish,
    local_zone,
    parse_date,
    parse_zone,
    summarize,
)
from moodcam.report.tables import render_csv, render_json, render_text, to_json

__all__ = [
    "COLORS",
    "DEFAULT_MAX_GAP_S",
    "FORMATS",
    "MEDIA_TIME_LIMIT",
    "NO_DATA",
    "ROW_MOODS",
    "ROW_SUMS",
    "Accumulator",
    "OutputError",
    "Report",
    "ReportError",
    "Stats",
    "chart",
    "check_max_gap",
    "check_period",
    "day_shares",
    "default_max_gap",
    "finish",
    "local_zone",
    "parse_date",
    "parse_zone",
    "render_csv",
    "render_fhir",
    "render_json",
    "render_png",
    "render_text",
    "summarize",
    "to_json",
    "validate_fhir",
]
