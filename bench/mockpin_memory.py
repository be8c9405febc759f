"""How much of the soak's memory growth is gpiozero's mock pins keeping history.

    python -m bench.mockpin_memory            # reads bench/soak.json, writes bench/mockpin_memory.json

Off the Pi the soak drives the LEDs through gpiozero's MockFactory with MockPWMPin, and every mock
pin appends each state it is set to to its `states` list (so tests can read the history back).
Real pin factories keep no such list. This feeds the LED sink alone as many mood changes as the
soak's LEDs saw and measures, with tracemalloc, how much Python memory that leaves behind.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from moodcam.config import LedConfig
from moodcam.labels import DEFAULT_CLASSES
from moodcam.records import MoodUpdate
from moodcam.sinks.leds import LedSink

BENCH = Path(__file__).resolve().parent


def measure(changes: int) -> dict:
    factory = MockFactory(pin_class=MockPWMPin)
    sink = LedSink(LedConfig(enabled=True), pin_factory=factory)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(changes):
        sink.handle(MoodUpdate(t=float(i), mood=DEFAULT_CLASSES[i % len(DEFAULT_CLASSES)]))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    result = {
        "led_changes": sink.stats()["changes"],
        "mock_pin_states_recorded": sum(len(p.states) for p in factory.pins.values()),
        "traced_growth_mb": round(grown / 1e6, 2),
    }
    sink.close()  # counted first: switching off adds states of its own
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.mockpin_memory", description=__doc__.splitlines()[0]
    )
    p.add_argument("--soak", type=Path, default=BENCH / "soak.json")
    p.add_argument("--out", type=Path, default=BENCH / "mockpin_memory.json")
    args = p.parse_args(argv)
    soak = json.loads(args.soak.read_text())
    result = measure(soak["led_changes"]) | {
        "soak_rss_growth_mb": soak["rss_growth_mb"],
        "soak_led_changes": soak["led_changes"],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
