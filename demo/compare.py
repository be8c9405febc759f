"""Compare a mood log of the demo clip with the clip's ground truth, segment by segment.

python -m demo.compare runs/demo/mood.jsonl   (media or wall-clock times)
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from moodcam.logreader import iter_records
from moodcam.records import MEDIA_TIME_LIMIT

CLIP_META = Path(__file__).resolve().parent / "clip.json"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    log = Path(args[0] if args else "runs/demo/mood.jsonl")
    segments = json.loads(CLIP_META.read_text())["segments"]
    records = list(iter_records(log))
    if not records:
        print(f"{log}: no mood records", file=sys.stderr)
        return 1
    # A log written with --clock wall (as `make demo` does, so that `moodcam report` can read it)
    # starts at the wall clock of the clip's first frame: back to seconds into the clip.
    start = records[0]["t"] if records[0]["t"] >= MEDIA_TIME_LIMIT else 0.0
    records = [r | {"t": r["t"] - start} for r in records]
    print(f"{'seconds':>11}  {'truth':8s} {'moodcam (share of lines)':s}")
    agree = 0
    for seg in segments:
        moods = Counter(r["mood"] for r in records if seg["start_s"] <= r["t"] < seg["end_s"])
        top, n = moods.most_common(1)[0] if moods else (None, 0)
        share = 100 * n / max(1, sum(moods.values()))
        agree += top == seg["label"]
        mark = "ok" if top == seg["label"] else "--"
        print(
            f"{seg['start_s']:4.0f}-{seg['end_s']:4.0f} s  {seg['label']:8s} {top!s:8s} {share:3.0f}%  {mark}"
        )
    print(
        f"{agree} of {len(segments)} segments: moodcam's mood matches the FER2013 label of the face"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
