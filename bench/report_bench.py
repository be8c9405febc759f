"""Time `moodcam report` over a synthetic 1 Hz mood log and measure its peak memory.

    .venv/bin/python bench/report_bench.py --days 365 --out bench/report.json

The log is generated to a temporary directory in one streaming pass (constant memory), in the
writer's exact line format (checked against MoodUpdate.to_record at start), rotated into
`mood.jsonl.N ... mood.jsonl` files, with one invalid line in the middle and a torn last line.
A simulated day: the device is on all day, a face is seen in the morning and the evening, moods
follow each other in stretches of 30 s to 20 min, the device is off for 10 minutes once a week.

Generator and report each run in a child process, spawned while this parent is still small
(standard library only; `moodcam.speed` pulls in numpy and OpenCV, so it is imported after the
children ran). That matters for getrusage: Linux carries a process's ru_maxrss through fork and
exec (exec records the old address space's peak, and a vforked child's old address space is the
parent's), so a child of a fat parent reports the parent's peak as its own.
`peak_rss_mib` is therefore the report child's VmHWM from /proc (the peak of its own address
space after exec); `ru_maxrss_mib` is its getrusage(RUSAGE_SELF) figure, the cross-check: the
same to within what the child allocates between the two reads, unless the parent was the larger
at the spawn.
A year is ~31.5 million lines and ~3.6 GB of disk; the script checks the free space first.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START = 1767225600  # 2026-01-01T00:00:00Z
MOODS = ("angry", "happy", "sad", "neutral")
WEIGHTS = (0.08, 0.35, 0.12, 0.45)
VALENCE = {"angry": -0.6, "happy": 0.7, "sad": -0.5, "neutral": 0.0}
AROUSAL = {"angry": 0.7, "happy": 0.5, "sad": -0.3, "neutral": 0.0}
FACE_HOURS = ((7.0, 9.0), (17.5, 23.0))  # UTC hours in which someone is in the room
BYTES_PER_DAY = 13_500_000  # measured on the generator's output, with some headroom


# Runs in the report child: the report, then its own peak memory on stderr's last line.
_CHILD = """
import resource, sys
from moodcam.commands import report
code = report.main(sys.argv[1:])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next((l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")), "0")
sys.stderr.write(f"\\nPEAK_KIB {rss} {hwm}\\n")
sys.exit(code)
"""


def _record_line(t: int, mood: str | None, valence: float | None, arousal: float | None) -> str:
    """Reference line via the real record code: the fast templates must produce exactly this."""
    from moodcam.records import FaceResult, MoodUpdate

    faces = []
    if mood is not None:
        scores = dict.fromkeys(MOODS, 0.05) | {mood: 0.85}
        faces = [FaceResult(box=(212, 96, 180, 180), label=mood, scores=scores)]
    rec = MoodUpdate(t=t, faces=faces, mood=mood, valence=valence, arousal=arousal).to_record()
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"


def _templates() -> dict[str | None, str]:
    """Per mood a %-template taking (t, valence, arousal) strings; no json.dumps per line."""
    out: dict[str | None, str] = {None: _record_line(0, None, None, None).replace("0.0", "%s", 1)}
    for m in MOODS:
        line = _record_line(0, m, 0.125, 0.25)
        out[m] = line.replace('"t":0.0', '"t":%s', 1).replace("0.125", "%s").replace("0.25", "%s")
    return out


def _check_templates(tpl: dict[str | None, str]) -> None:
    for m in (None, *MOODS):
        v = None if m is None else round(VALENCE[m] + 0.0123, 4)
        a = None if m is None else round(AROUSAL[m] - 0.0456, 4)
        want = _record_line(START + 7, m, v, a)
        got = tpl[m] % ((f"{START + 7}.0",) if m is None else (f"{START + 7}.0", v, a))
        if got != want:
            raise SystemExit(f"bench: template drifted from the record format:\n{got}{want}")


def generate(folder: Path, days: int, file_bytes: int, seed: int = 1) -> dict[str, Any]:
    """Write `days` days of 1 Hz lines as rotated files in `folder`; returns counts."""
    rng = random.Random(seed)
    tpl = _templates()
    _check_templates(tpl)
    # Pools of pre-formatted values: a random.gauss per line would dominate the run time.
    pools = {
        m: [
            (
                round(max(-1.0, min(1.0, VALENCE[m] + rng.gauss(0, 0.15))), 4),
                round(max(-1.0, min(1.0, AROUSAL[m] + rng.gauss(0, 0.15))), 4),
            )
            for _ in range(997)
        ]
        for m in MOODS
    }
    parts: list[Path] = []
    f = None
    size = 0
    buf: list[str] = []

    def flush() -> None:
        nonlocal f, size
        if f is None or size >= file_bytes:
            if f is not None:
                f.close()
            parts.append(folder / f"part{len(parts):06d}")
            f = open(parts[-1], "w", encoding="utf-8")  # noqa: SIM115  (closed in turn)
            size = 0
        data = "".join(buf)
        f.write(data)
        size += len(data)
        buf.clear()

    k = 0
    for day in range(days):
        t0 = START + day * 86400
        off = (t0 + rng.randrange(86400 - 600)) if day % 7 == 3 else -1  # 10 min off weekly
        t = t0
        while t < t0 + 86400:
            hour = (t - t0) / 3600
            face = any(a <= hour < b for a, b in FACE_HOURS)
            n = rng.randint(30, 1200) if face else 600
            end = min(t + n, t0 + 86400)
            if face:
                # Stop the stretch where the face window ends, so the windows stay sharp.
                end = min(end, t0 + int(3600 * min(b for a, b in FACE_HOURS if a <= hour < b)))
                m = rng.choices(MOODS, WEIGHTS)[0]
                pool = pools[m]
                line = tpl[m]
                for s in range(t, end):
                    if off <= s < off + 600:
                        continue
                    v, a = pool[k % 997]
                    k += 1
                    buf.append(line % (f"{s}.0", v, a))
            else:
                line = tpl[None]
                buf.extend(line % f"{s}.0" for s in range(t, end) if not off <= s < off + 600)
            t = end
            if len(buf) >= 20000:
                flush()
        if day == days // 2:
            buf.append('{"v":1,"t":"not a time"}\n')  # an invalid record mid-log
    buf.append(f'{{"v":1,"t":{START + days * 86400}.0,"fa')  # the torn tail of a power cut
    flush()
    assert f is not None
    f.close()
    # Oldest first -> mood.jsonl.K ... mood.jsonl.1, mood.jsonl: the rotation's naming.
    total_bytes = 0
    for i, p in enumerate(parts):
        n = len(parts) - 1 - i
        total_bytes += p.stat().st_size
        p.rename(folder / ("mood.jsonl" if n == 0 else f"mood.jsonl.{n}"))
    return {"files": len(parts), "bytes": total_bytes}


def count_lines(folder: Path) -> int:
    n = 0
    for p in folder.glob("mood.jsonl*"):  # not the report written beside them
        with open(p, "rb") as f:
            while chunk := f.read(1 << 24):
                n += chunk.count(b"\n")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--out", default="bench/report.json", help="where to write the figures")
    ap.add_argument("--format", default="json", choices=("text", "csv", "json", "fhir", "png"))
    ap.add_argument("--file-mb", type=float, default=64.0, help="size of each rotated file")
    ap.add_argument("--tmp", help="folder for the generated log (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated log")
    ap.add_argument("--generate-into", help=argparse.SUPPRESS)  # the generator child
    args = ap.parse_args(argv)
    if args.days < 1:
        ap.error("--days must be at least 1")
    if args.generate_into:
        gen = generate(Path(args.generate_into), args.days, int(args.file_mb * 1e6))
        print(json.dumps(gen))
        return 0

    base = Path(args.tmp or tempfile.gettempdir())
    need = args.days * BYTES_PER_DAY
    free = shutil.disk_usage(base).free
    if free < need * 1.1:
        print(
            f"bench: {base} has {free / 1e9:.1f} GB free; {args.days} days need about "
            f"{need / 1e9:.1f} GB (use --tmp DIR or fewer --days)",
            file=sys.stderr,
        )
        return 2
    folder = Path(tempfile.mkdtemp(prefix="moodcam-report-bench-", dir=base))
    try:
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--days",
                str(args.days),
                "--file-mb",
                str(args.file_mb),
                "--generate-into",
                str(folder),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"bench: generating the log failed: {proc.stderr}", file=sys.stderr)
            return 1
        gen = json.loads(proc.stdout)
        gen_s = time.perf_counter() - t
        print(
            f"generated {gen['bytes'] / 1e9:.2f} GB in {gen['files']} files ({gen_s:.1f} s)",
            flush=True,
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the generator's CPU time

        out = folder / f"report.{args.format}"
        cmd = [
            sys.executable,
            "-c",
            _CHILD,
            str(folder / "mood.jsonl"),
            "--tz",
            "UTC",
            "--format",
            args.format,
            "--out",
            str(out),
        ]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        report_s = time.perf_counter() - t
        if proc.returncode != 0:
            print(f"bench: the report failed ({proc.returncode}): {proc.stderr}", file=sys.stderr)
            return 1
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        # Counted only now: its 16 MB reads would have raised this parent's peak before the spawn.
        lines = count_lines(folder) + 1  # + the torn tail, which has no newline
        stderr, _, peak = proc.stderr.strip().rpartition("PEAK_KIB ")
        rss_kib, hwm_kib = (int(x) for x in peak.split())
        summary: dict[str, Any] = {}
        if args.format == "json":
            doc = json.loads(out.read_text())
            summary = {"days": len(doc["days"]), "lines": doc["lines"]}
        from moodcam.speed import machine as bench_machine

        results = {
            "what": "moodcam report over a synthetic 1 Hz mood log (rotated files, 1 torn, 1 invalid line)",
            "machine": bench_machine(),  # imported late: see the module docstring
            "days": args.days,
            "lines": lines,
            "bytes": gen["bytes"],
            "files": gen["files"],
            "generate_s": round(gen_s, 2),
            "report": {
                "format": args.format,
                "seconds": round(report_s, 2),
                "lines_per_s": round(lines / report_s),
                "cpu_s": round(
                    usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2
                ),
                "peak_rss_mib": round(hwm_kib / 1024, 1),  # VmHWM, KiB
                "ru_maxrss_mib": round(rss_kib / 1024, 1),  # Linux: KiB
                "stderr": stderr.strip(),
                **summary,
            },
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        r = results["report"]
        print(
            f"report --format {args.format}: {r['seconds']} s, {r['lines_per_s']:,} lines/s, "
            f"{r['cpu_s']} s CPU, peak RSS {r['peak_rss_mib']} MiB; wrote {args.out}"
        )
        return 0
    finally:
        if args.keep:
            print(f"kept the log in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
