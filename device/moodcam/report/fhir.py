"""The report as an HL7 FHIR R4 Bundle for health apps: one Observation per local day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from moodcam.report.summary import NONE, Report, _iso

UCUM = "http://unitsofmeasure.org"


def render_fhir(rep: Report, device: str = "moodcam") -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection): one Observation per local day with logged time.

    Observation: status final; category `survey` (an assessment score, the closest of the
    observation-category codes: not a vital sign, not social history); code text "Mood summary
    (moodcam)" (no LOINC code fits); effectivePeriod = the local day; device display moodcam;
    components (code text only): share of logged time per mood and for no face (%, UCUM "%"),
    mean and standard deviation of valence and arousal (UCUM "1"; dataAbsentReason when no face
    was seen), face-present and logged time (s), mood changes (integer). The skipped-line count
    is in each Observation's note. Ids are UUIDv5 of (device, zone, date): re-exports are stable.
    """
    cat = "http://terminology.hl7.org/CodeSystem/observation-category"
    absent = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "unknown",
                "display": "Unknown",
            }
        ]
    }

    def qty(text: str, value: float, unit: str) -> dict[str, Any]:
        return {
            "code": {"text": text},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }

    def stat(text: str, value: float | None) -> dict[str, Any]:
        if value is None:
            return {"code": {"text": text}, "dataAbsentReason": absent}
        return qty(text, value, "1")

    entries = []
    for d in rep.days:
        s = d.stats
        if s.logged <= 0:
            continue  # nothing was observed that day: no Observation
        dd = s.to_dict(rep.moods)
        comps = [
            qty(
                f"Share of time: {'no face' if m == NONE else m}",
                round(100 * (dd["share"][m] or 0.0), 2),
                "%",
            )
            for m in rep.moods
        ]
        comps += [
            qty("Time with a face present", dd["face_s"], "s"),
            qty("Logged time", dd["logged_s"], "s"),
            stat("Mean valence", dd["valence"]["mean"]),
            stat("Valence standard deviation", dd["valence"]["std"]),
            stat("Mean arousal", dd["arousal"]["mean"]),
            stat("Arousal standard deviation", dd["arousal"]["std"]),
            {"code": {"text": "Mood changes"}, "valueInteger": dd["mood_changes"]},
        ]
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"moodcam:{device}:{rep.tz_name}:{d.date}"))
        obs = {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "category": [{"coding": [{"system": cat, "code": "survey", "display": "Survey"}]}],
            "code": {"text": "Mood summary (moodcam)"},
            "effectivePeriod": {"start": _iso(d.start, rep.tz), "end": _iso(d.end, rep.tz)},
            "issued": datetime.now(UTC).isoformat(timespec="seconds"),
            "device": {"display": device},
            "note": [
                {
                    "text": f"Local day of {d.hours:g} h in {rep.tz_name}; {rep.skipped_note} "
                    f"in the log; gaps over {rep.max_gap:g} s count as device off."
                }
            ],
            "component": comps,
        }
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": obs})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"moodcam:{device}:{rep.tz_name}:{rep.first}")),
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle


def validate_fhir(bundle: dict[str, Any]) -> bool:
    """Validate with fhir.resources' R4B models when installed (report extra); False if absent."""
    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError:
        return False
    Bundle.model_validate(bundle)
    return True
