"""The VM scenario's results (.ci/vm-test) into bench/vm.json, then the README's figures.

    python3 bench/vm_figures.py --results RUN/share --suite bookworm ... --out bench/vm.json

Reads what the guest wrote to the shared folder (steps.jsonl: one line per step with its result,
seconds and detail; figures.jsonl: measured figures), prints the step table, and stores it under
the suite's name in --out, keeping the other suites' last results. Runs on the host's own Python
(standard library only), so it needs no venv; README lines come from convert.figures.vm_lines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="the run's shared folder")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--accel", required=True, help="kvm or tcg")
    ap.add_argument("--image-built", choices=["true", "false"], required=True)
    ap.add_argument("--image-s", type=float, required=True, help="seconds spent on the image")
    ap.add_argument("--vm-s", type=float, required=True, help="seconds the VM ran")
    ap.add_argument("--total-s", type=float, required=True, help="seconds of the whole run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "vm.json")
    args = ap.parse_args(argv)

    steps = read_jsonl(args.results / "steps.jsonl")
    figures = {f["key"]: f["value"] for f in read_jsonl(args.results / "figures.jsonl")}
    env = dict(
        line.split("=", 1)
        for line in (args.results / "vm.env").read_text().splitlines()
        if "=" in line
    )
    finished = (args.results / "phase").is_file() and (
        args.results / "phase"
    ).read_text().strip() == "finished"
    passed = sum(s["result"] == "PASS" for s in steps)
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": env.get("COMMIT", "?"),
        "accel": args.accel,
        "finished": finished,
        "passed": passed,
        "failed": len(steps) - passed,
        "steps": steps,
        "figures": figures,
        "run": {
            "image_built": args.image_built == "true",
            "image_s": round(args.image_s, 1),
            "vm_s": round(args.vm_s, 1),
            "total_s": round(args.total_s, 1),
            "rss_minutes": float(env.get("RSS_MINUTES", "nan")),
        },
    }
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data[args.suite] = result
    args.out.write_text(json.dumps(data, indent=1) + "\n")

    for s in steps:
        print(f"{s['step']:<14} {s['result']:<4} {s['seconds']:>7.1f} s  {s['detail']}")
    print(f"{args.suite}: {passed} passed, {len(steps) - passed} failed"
          f"{'' if finished else ' (the scenario did not finish)'}; figures: "
          + ", ".join(f"{k} {v:g}" for k, v in figures.items()))  # fmt: skip
    print(f"wrote {args.out}")
    # The README's lines, from the file just written (convert.figures needs no third-party module).
    subprocess.run([sys.executable, "-m", "convert.figures"], cwd=ROOT, check=False)
    return 0 if steps and finished and passed == len(steps) else 1


if __name__ == "__main__":
    sys.exit(main())
