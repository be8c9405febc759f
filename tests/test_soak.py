"""The soak harness (`make soak`) for a few seconds: every sink on, and the books balance.

This checks what the benchmark counts, not how fast: the daemon as its own process over the
looping clip with the mood log, MQTT (real Mosquitto), LEDs (gpiozero mock PWM pins) and MPD;
every mood change is in the log, acknowledged by the broker, received by a subscriber, shown on
the LEDs; nothing dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import soak
from tests.mosquitto import INSTALL_HINT as MOSQUITTO_HINT
from tests.mosquitto import find_mosquitto
from tests.mpd_server import INSTALL_HINT as MPD_HINT
from tests.mpd_server import find_mpd

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(find_mosquitto() is None, reason=MOSQUITTO_HINT)
@pytest.mark.skipif(find_mpd() is None, reason=MPD_HINT)
def test_short_soak_with_every_sink_balances_its_books(tmp_path: Path) -> None:
    r = soak.run(minutes=0.15, warmup_s=2.0, every_s=1.0, clip=ROOT / "demo" / "clip.mp4",
                 model=ROOT / "models" / "moodcam.tflite")  # fmt: skip
    assert r["exit_status"] == 0
    assert r["frames"] > 0 and r["faces"] > 0
    assert r["mood_changes"] > 0
    assert r["mood_changes_in_log"] == r["mood_changes"]
    assert r["events_acked_by_broker"] == r["mood_changes"]
    assert r["events_received"] >= r["events_received_distinct"] == r["mood_changes"]
    assert r["events_dropped"] == 0 and r["log_lines_dropped"] == 0
    assert r["led_changes"] == r["mood_changes"]
    assert r["playlist_switches"] > 0 and r["playlist_errors"] == 0
    assert r["mpd_state_at_end"] == "play"
    assert [s["t"] for s in r["samples"]] == sorted(s["t"] for s in r["samples"])
    assert r["rss_start_mb"] > 0 and r["open_fds_start"] > 0
    soak.plot(r["samples"], 2.0, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").stat().st_size > 0


def test_mock_pin_history_grows_with_led_changes() -> None:
    from bench.mockpin_memory import measure

    few, many = measure(10), measure(1000)
    assert few["led_changes"] == 10 and many["led_changes"] == 1000
    # Each change sets new duty cycles on the RGB pins, and the mock pins keep every one.
    assert many["mock_pin_states_recorded"] > 50 * few["mock_pin_states_recorded"] > 0
    assert many["traced_growth_mb"] is not None  # measured; bench/mockpin_memory.json quotes it


def test_stop_latency_bench_measures_a_clean_stop(tmp_path: Path) -> None:
    from bench.stop_latency import main

    out = tmp_path / "stop.json"
    assert main(["--runs", "1", "--out", str(out)]) == 0  # raises unless exit 0 after SIGTERM
    r = json.loads(out.read_text())
    assert r["runs"] == 1 and len(r["times_s"]) == 1 and r["median_s"] == r["max_s"] > 0
    assert r["unit_timeout_stop_s"] == 10  # read from systemd/moodcam.service
