"""How long the daemon takes from SIGTERM to exit (systemd's stop), measured, not asserted.

    python -m bench.stop_latency            # writes bench/stop.json

Each run starts `moodcam run` over the bundled clip in real time with the mood log on, waits for
its first log line (model loaded, frames flowing), sends SIGTERM and times the exit. The unit's
TimeoutStopSec is read from systemd/moodcam.service: past it, systemd would kill the daemon.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "demo" / "clip.mp4"
UNIT = ROOT / "systemd" / "moodcam.service"


def one_stop(log: Path) -> float:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moodcam.cli",
            "run",
            "--source",
            str(CLIP),
            "--realtime",
            "--log",
            str(log),
            "--log-interval",
            "0",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while (not log.exists() or log.stat().st_size == 0) and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"moodcam run exited with {proc.returncode} before logging")
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        stopped = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    if code != 0:
        raise RuntimeError(f"moodcam run exited with {code} after SIGTERM")
    return stopped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "stop.json")
    args = p.parse_args(argv)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            times.append(one_stop(Path(tmp) / f"mood-{i}.jsonl"))
    found = re.search(r"^TimeoutStopSec=(\d+)", UNIT.read_text(), re.M)
    result = {
        "runs": args.runs,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "unit_timeout_stop_s": int(found.group(1)) if found else None,
        "times_s": [round(t, 3) for t in times],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"SIGTERM to exit: median {result['median_s']} s, max {result['max_s']} s over "
        f"{args.runs} runs (unit TimeoutStopSec {result['unit_timeout_stop_s']} s); wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
