"""Load and soak: the real daemon at full speed over a looping clip with every sink on.

    python -m bench.soak --minutes 30 --out bench/soak.json      (make soak)

What runs, all real: `moodcam run` as its own process over `demo/clip.mp4` with `[source] loop`,
no pacing (as fast as one process can go); the mood log; MQTT to a Mosquitto broker started here
on a loopback port, with a counting subscriber on the event topic; LEDs through gpiozero's
MockFactory with MockPWMPin (the only stand-in for pins off a Pi); playlists on an MPD started
here with a null audio output. Short holds make the playlist sink switch often: they are wall-clock
seconds (what a listener hears) while the clip plays at full speed, so a fast machine passes a mood
segment of the clip in a fraction of a second and longer holds would never let the music follow.

Measured from outside the daemon, through /proc/<pid>: resident memory and open file descriptors
every few seconds. "Start" is the first sample after the warm-up (model loaded, sinks connected,
caches and allocator pools filled); "end" is the last sample before SIGTERM. At the end the
daemon writes its counters (`--summary-json`): frames, mood changes, events the broker
acknowledged, log lines, LED changes, playlist switches; the subscriber's count is compared
with them. Also written: a PNG of memory and descriptors over time beside the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from moodcam.comms import mqtt
from moodcam.config import MqttConfig
from moodcam.speed import machine as bench_machine
from tests.mosquitto import Mosquitto
from tests.mpd_server import MpdServer
from tests.servers import tail_log, wait_until

ROOT = Path(__file__).resolve().parent.parent
DEVICE_ID = "soak"
PREFIX = "moodcam"


class EventCounter:
    """A paho subscriber counting mood events (and how many distinct ones: `t` identifies one)."""

    def __init__(self, port: int) -> None:
        self.events = 0
        self.distinct: set[float] = set()
        self.availability: list[str] = []
        self.lock = threading.Lock()
        topic = f"{PREFIX}/{DEVICE_ID}"
        self.client = mqtt.subscribe(
            MqttConfig(url=f"mqtt://127.0.0.1:{port}", keepalive_s=30),
            [f"{topic}/event", f"{topic}/availability"],
            self._on_message,
            f"soak-counter-{uuid.uuid4().hex[:6]}",
        )

    def _on_message(self, msg: Any) -> None:
        with self.lock:
            if msg.topic.endswith("/event"):
                self.events += 1
                self.distinct.add(json.loads(msg.payload)["t"])
            else:
                self.availability.append(msg.payload.decode())

    def close(self) -> None:
        mqtt.stop(self.client)


def proc_sample(pid: int) -> tuple[int, int, float]:
    """(resident bytes, open descriptors, CPU seconds) of process `pid`."""
    with open(f"/proc/{pid}/status") as f:
        rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return rss_kib * 1024, fds, cpu


def write_config(path: Path, tmp: Path, clip: Path, model: Path, broker: int, mpd: int) -> None:
    path.write_text(
        f"""[device]
id = "{DEVICE_ID}"
[source]
uri = "{clip}"
loop = true
[classifier]
model = "{model}"
threads = 1
[log]
path = "{tmp / "mood.jsonl"}"
interval_s = 1.0  # a line a second (heavier than the default), as bench/soak.json was measured
[mqtt]
url = "mqtt://127.0.0.1:{broker}"
enabled = true
topic_prefix = "{PREFIX}"
[leds]
enabled = true
[playlist]
enabled = true
host = "127.0.0.1"
port = {mpd}
hold_s = 0.1
min_interval_s = 0.5
resume_paused = true
[stdout]
enabled = false
""",
        encoding="utf-8",
    )


def plot(samples: list[dict], warmup_s: float, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    a.plot(t, [s["rss_mb"] for s in samples], color="tab:blue")
    a.set_ylabel("resident memory (MB)")
    b.step(t, [s["fds"] for s in samples], where="post", color="tab:orange")
    b.set_ylabel("open descriptors")
    b.set_xlabel("minutes")
    for ax in (a, b):
        ax.axvline(warmup_s / 60, color="grey", linestyle=":", label="end of warm-up")
        ax.grid(alpha=0.3)
    a.legend(loc="lower right")
    a.set_title("moodcam daemon soak: every sink on, looping clip at full speed")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def run(minutes: float, warmup_s: float, every_s: float, clip: Path, model: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="moodcam-soak-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "mosquitto").start()
        mpd = MpdServer(tmp / "mpd", {"calm": 2, "upbeat": 2, "comfort": 2, "focus": 2}).start()
        counter = EventCounter(broker.port)
        config = tmp / "soak.toml"
        write_config(config, tmp, clip, model, broker.port, mpd.port)
        env = os.environ | {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
        summary_path, stderr_path = tmp / "summary.json", tmp / "daemon.log"
        with open(stderr_path, "wb") as err:
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moodcam.cli",
                    "run",
                    "--config",
                    str(config),
                    "--summary-json",
                    str(summary_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=ROOT,
            )
        try:
            wait_until(
                lambda: "online" in counter.availability or daemon.poll() is not None,
                60,
                "the daemon online on MQTT",
            )
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited {daemon.returncode}:\n{tail_log(stderr_path)}")
            started = time.monotonic()
            samples: list[dict] = []
            end = started + warmup_s + minutes * 60
            while True:
                now = time.monotonic()
                rss, fds, cpu = proc_sample(daemon.pid)
                samples.append(
                    {
                        "t": round(now - started, 1),
                        "rss_mb": round(rss / 2**20, 2),
                        "fds": fds,
                        "cpu_s": round(cpu, 2),
                        "load1": round(os.getloadavg()[0], 2),
                    }
                )
                if now >= end:
                    break
                if daemon.poll() is not None:
                    raise RuntimeError(f"daemon died {daemon.returncode}:\n{tail_log(stderr_path)}")
                time.sleep(min(every_s, max(0.0, end - now)))
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(30)
            summary = json.loads(summary_path.read_text())
            acked = summary["sinks"]["MqttSink"]["events"]
            # QoS 1 in flight to the subscriber: let it drain; a shortfall shows in the figures.
            with contextlib.suppress(AssertionError):
                wait_until(lambda: counter.events >= acked, 30, f"{acked} events at the subscriber")
            time.sleep(1)
            log_path = tmp / "mood.jsonl"
            log_moods = [json.loads(line)["mood"] for line in log_path.open(encoding="utf-8")]
            log_changes = sum(a != b for a, b in itertools.pairwise([None, *log_moods]))
            with mpd.client() as c:
                mpd_status = c.status()
        finally:
            if daemon.poll() is None:
                daemon.kill()
            counter.close()
            mpd.stop()
            broker.stop()

    first = next(s for s in samples if s["t"] >= warmup_s)
    last = samples[-1]
    seconds = summary["seconds"]
    return {
        "machine": bench_machine(),
        "clip": str(clip.relative_to(ROOT) if clip.is_relative_to(ROOT) else clip),
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "minutes_measured": round((last["t"] - first["t"]) / 60, 2),
        "warmup_s": warmup_s,
        "exit_status": code,
        "frames": summary["frames"],
        "faces": summary["faces"],
        "seconds": round(seconds, 1),
        "fps": round(summary["frames"] / seconds, 1),
        "cpu_s_per_s": round((last["cpu_s"] - first["cpu_s"]) / (last["t"] - first["t"]), 2),
        # Other work on the machine (e.g. a training run) slows frames/s, not memory or files.
        "loadavg_1min_median": sorted(s["load1"] for s in samples)[len(samples) // 2],
        "rss_start_mb": first["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 2),
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_at_ready_mb": samples[0]["rss_mb"],
        "open_fds_start": first["fds"],
        "open_fds_end": last["fds"],
        "open_fds_max": max(s["fds"] for s in samples),
        "mood_changes": summary["changes"],
        "mood_changes_in_log": log_changes,
        "events_acked_by_broker": acked,
        "events_dropped": summary["sinks"]["MqttSink"]["dropped"],
        "events_received": counter.events,
        "events_received_distinct": len(counter.distinct),
        "log_lines_written": summary["sinks"]["MoodLogWriter"]["lines_written"],
        "log_lines_dropped": summary["sinks"]["MoodLogWriter"]["lines_dropped"],
        "led_changes": summary["sinks"]["LedSink"]["changes"],
        "playlist_switches": summary["sinks"]["PlaylistSink"]["switches"],
        "playlist_errors": summary["sinks"]["PlaylistSink"]["errors"],
        "mpd_state_at_end": mpd_status.get("state"),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="measured time after the warm-up")
    p.add_argument("--warmup", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--every", type=float, default=5.0, metavar="SECONDS", help="sample period")
    p.add_argument("--clip", type=Path, default=ROOT / "demo" / "clip.mp4")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "moodcam.tflite")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "soak.json")
    args = p.parse_args(argv)
    result = run(args.minutes, args.warmup, args.every, args.clip.resolve(), args.model.resolve())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result["samples"], args.warmup, args.out.with_suffix(".png"))
    r = result
    print(
        f"soak: {r['frames']} frames in {r['seconds']} s ({r['fps']} frames/s); RSS "
        f"{r['rss_start_mb']} -> {r['rss_end_mb']} MB ({r['rss_growth_mb']:+} MB); open fds "
        f"{r['open_fds_start']} -> {r['open_fds_end']}; events: {r['mood_changes']} changes, "
        f"{r['events_acked_by_broker']} acked, {r['events_received']} received "
        f"({r['events_received_distinct']} distinct), {r['events_dropped']} dropped; "
        f"{r['playlist_switches']} playlist switches, {r['led_changes']} LED changes"
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
