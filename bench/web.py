"""Figures of the dashboard: the history index over a year of 1 Hz lines, page and API latency,
the web process's memory, and how soon a mood change reaches an open page.

    .venv/bin/python -m bench.web --out bench/web.json --readme README.md   (make bench-web)

1. A year of 1 Hz lines (bench/report_bench.py's generator: its day, rotation, an invalid line
   and a torn tail) and the history index built from it (`Index.open` on no index: the rebuild
   `moodcam web` does at its first start): wall and CPU seconds, the index's size.
2. History queries in-process (`Index.report`, what the page and `moodcam report` call): today,
   7 days, 30 days and the whole year, median and p90 of repeated runs.
3. `moodcam web` as a child (as moodcam-web.service starts it) over that year, and over a log
   of today alone (1 Hz from local midnight to now): GET of the page (and of it with the whole
   log as its Period), /api/report for 7 days and the year, /api/now, median and p90 over HTTP
   on loopback.
4. The server's memory (VmRSS from /proc) after start and those requests, and with 10 live
   event streams open while lines are appended; and the delay from a mood change appended to
   the log to its event on an open stream (median, p90).

Timings are of this machine (x86_64, shared with other work): `machine` in the JSON says which.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
UTC_ZONE = ZoneInfo("UTC")
START, END = "<!-- web:start -->", "<!-- web:end -->"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def timing(values: list[float]) -> dict[str, float]:
    ms = [1000 * v for v in values]
    return {"median_ms": round(statistics.median(ms), 2), "p90_ms": round(pct(ms, 90), 2),
            "n": len(ms)}  # fmt: skip


def timed(fn: Any, n: int) -> dict[str, float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return timing(out)


def rss_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024  # noqa: E731
    return {"rss_mib": round(get("VmRSS"), 1), "hwm_mib": round(get("VmHWM"), 1)}


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- logs -----------------------------------------------------------------------------------


def year_log(folder: Path, days: int) -> dict[str, Any]:
    """bench/report_bench.py's year, generated in a child (its own memory)."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "report_bench.py"), "--days", str(days),
                          "--generate-into", str(folder)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    gen = json.loads(out.stdout.strip().splitlines()[-1])
    from bench.report_bench import count_lines

    gen["lines"] = count_lines(folder)
    return gen


def today_log(path: Path) -> int:
    """1 Hz lines from today's UTC midnight to now, in the writer's format (report_bench's)."""
    from bench.report_bench import _templates

    tpl = _templates()
    now = int(time.time())
    t = int(datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC).timestamp())
    moods = ("happy", "neutral", None, "sad", "angry")
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        while t < now:
            m = moods[(t // 600) % len(moods)]
            f.write(tpl[m] % ((f"{t}.0",) if m is None else (f"{t}.0", 0.25, 0.125)))
            t += 1
            n += 1
    return n


def append_change(path: Path, mood: str) -> None:
    """A mood change, written by the daemon's writer (which repairs a torn tail first)."""
    from moodcam.config import LogConfig
    from moodcam.records import FaceResult, MoodUpdate
    from moodcam.sinks.moodlog import MoodLogWriter

    face = FaceResult(box=(212, 96, 180, 180), label=mood, scores={mood: 0.85})
    update = MoodUpdate(t=time.time(), faces=[face], mood=mood, valence=0.5, arousal=0.25,
                        changed=True)  # fmt: skip
    with MoodLogWriter(LogConfig(path=str(path), fsync=False, max_bytes=10**12)) as w:
        w.handle(update)


# --- the server -----------------------------------------------------------------------------


class Server:
    def __init__(self, log: Path, folder: Path) -> None:
        from tests.servers import free_port, tail_log, wait_listening

        self.port = free_port()
        cfg = folder / "web.toml"
        cfg.write_text(f'[log]\npath = "{log}"\ninterval_s = 1.0\n[web]\nport = {self.port}\n')
        out = folder / "web.out"
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moodcam.cli", "web", "--config", str(cfg), "--tz", "UTC"],
                stdout=f, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_listening(self.proc, self.port, 1800, "moodcam web", lambda: tail_log(out))
        while self._request("/api/report")[0] == 503:  # it listens at once; history when built
            time.sleep(0.1)

    def _request(self, path: str) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, path: str) -> bytes:
        status, body = self._request(path)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:200]!r}")
        return body

    def stop(self) -> None:
        from tests.servers import terminate

        terminate(self.proc)


class Stream(threading.Thread):
    """An open /events stream; `moods` collects (arrival time, mood) of each event."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.conn.request("GET", "/events")
        self.resp = self.conn.getresponse()
        self.moods: list[tuple[float, str | None]] = []
        self.start()

    def run(self) -> None:
        try:
            for raw in self.resp:
                if raw.startswith(b"data: "):
                    self.moods.append((time.time(), json.loads(raw[6:])["mood"]))
        except (OSError, ValueError, AttributeError):  # closed by live_figures
            pass


def http_figures(server: Server, first_day: date, last_day: date, n: int) -> dict[str, Any]:
    week = f"from={last_day - timedelta(days=6)}&to={last_day}"
    whole = f"from={first_day}&to={last_day}"
    return {
        "page": timed(lambda: server.get("/"), n),
        "page_all": timed(lambda: server.get(f"/?{whole}"), n),
        "api_now": timed(lambda: server.get("/api/now"), n),
        "api_report_7_days": timed(lambda: server.get(f"/api/report?{week}"), n),
        "api_report_all": timed(lambda: server.get(f"/api/report?{whole}"), n),
    }


def live_figures(server: Server, log: Path, changes: int = 10) -> dict[str, Any]:
    """10 open streams, `changes` mood changes appended; RSS then, and each change's delay."""
    streams = [Stream(server.port) for _ in range(10)]
    time.sleep(1.0)
    delays = []
    moods = ["angry", "happy"]
    for i in range(changes):
        mood = moods[i % 2]
        t0 = time.time()
        append_change(log, mood)
        deadline = time.time() + 10
        while time.time() < deadline:
            got = [next((t for t, m in s.moods if m == mood and t >= t0), None) for s in streams]
            if all(got):
                delays.extend(g - t0 for g in got if g)
                break
            time.sleep(0.005)
        else:
            raise RuntimeError(
                f"change {i} ({mood}) did not reach every stream within 10 s: "
                f"{[s.moods[-3:] for s in streams]}"
            )
        time.sleep(0.3)
    rss = rss_mib(server.proc.pid)
    for s in streams:
        s.conn.close()
    return {"streams": len(streams), "changes": changes, **rss, "event_delay": timing(delays)}


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench/web.json")
    ap.add_argument("--readme", help="write the figures' lines into this README")
    ap.add_argument("--days", type=int, default=365, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=30, help="runs of each timed request")
    ap.add_argument("--tmp", help="folder for the generated logs (default: the system temp dir)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from moodcam import __version__
    from moodcam.history import Index, index_path

    base = Path(tempfile.mkdtemp(prefix="moodcam-bench-web-", dir=args.tmp))
    result: dict[str, Any] = {
        "machine": {"machine": platform.machine(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)},
        "moodcam": __version__,
    }  # fmt: skip
    try:
        year = base / "year"
        year.mkdir()
        t0 = time.time()
        gen = year_log(year, args.days)
        print(f"bench web: {gen['lines']} lines in {gen['files']} files ({time.time() - t0:.0f} s)",
              file=sys.stderr)  # fmt: skip
        log = year / "mood.jsonl"
        t0, c0 = time.time(), cpu_s()
        idx = Index.open(log, UTC_ZONE, "UTC", 60.0)
        build = {"seconds": round(time.time() - t0, 1), "cpu_s": round(cpu_s() - c0, 1),
                 "index_mib": round(index_path(log).stat().st_size / 2**20, 2),
                 "peak_rss_mib": rss_mib(os.getpid())["hwm_mib"]}  # fmt: skip
        result["index"] = {"lines": gen["lines"], "files": gen["files"],
                           "log_gb": round(gen["bytes"] / 1e9, 2), "build": build}  # fmt: skip
        print(f"bench web: index built: {build}", file=sys.stderr)
        first_day = date(2026, 1, 1)  # report_bench's START
        last_day = first_day + timedelta(days=args.days - 1)
        queries = {
            "day": (last_day, last_day, True),
            "7_days": (last_day - timedelta(days=6), last_day, False),
            "30_days": (last_day - timedelta(days=29), last_day, False),
            "year": (first_day, last_day, False),
        }
        result["index"]["query"] = {
            k: timed(lambda a=a: idx.report(*a), args.repeat) for k, a in queries.items()
        }
        idx.close()
        print(f"bench web: queries {result['index']['query']}", file=sys.stderr)

        servers: dict[str, Any] = {}
        today = base / "today"
        today.mkdir()
        today_lines = today_log(today / "mood.jsonl")
        for name, folder, first in (("today", today, datetime.now(UTC).date()),
                                    ("year", year, first_day)):  # fmt: skip
            t0 = time.time()
            server = Server(folder / "mood.jsonl", folder)
            started = round(time.time() - t0, 2)
            try:
                last = datetime.now(UTC).date() if name == "today" else last_day
                figures = http_figures(server, first, last, args.repeat)
                rest = rss_mib(server.proc.pid)
                live = live_figures(server, folder / "mood.jsonl")
            finally:
                server.stop()
            servers[name] = {"start_s": started, "http": figures, "at_rest": rest, "live": live}
            print(f"bench web: {name}: {servers[name]}", file=sys.stderr)
        servers["today"]["lines"] = today_lines
        result["server"] = servers
    finally:
        shutil.rmtree(base, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.readme:
        write_readme(Path(args.readme), result)
    return 0


def lines(r: dict[str, Any]) -> list[str]:
    """The README's lines of these figures (and of systemd/SECURITY-web.txt)."""
    from convert.figures import exposure_line

    ix, sv = r["index"], r["server"]
    b, q = ix["build"], ix["query"]

    def t(x: dict[str, float]) -> str:
        return f"{x['median_ms']} / {x['p90_ms']} ms"

    out = [
        f"History index over a year at 1 Hz ({ix['lines']} lines, {ix['files']} rotated files, "
        f"{ix['log_gb']} GB): built in {b['seconds']} s ({b['cpu_s']} s CPU, peak RSS "
        f"{b['peak_rss_mib']} MiB), {b['index_mib']} MiB of SQLite. Queries (median / p90): a "
        f"day with its timeline {t(q['day'])}, 7 days {t(q['7_days'])}, 30 days "
        f"{t(q['30_days'])}, the whole year {t(q['year'])}.",
        "",
        "| over HTTP, median / p90 | page | page, all as the period | /api/report 7 days | "
        "/api/report all | /api/now |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("today", f"log of today ({sv['today']['lines']} lines)"),
                        ("year", "a year of history")):  # fmt: skip
        h = sv[name]["http"]
        out.append(f"| {label} | {t(h['page'])} | {t(h['page_all'])} | {t(h['api_report_7_days'])} | "
                   f"{t(h['api_report_all'])} | {t(h['api_now'])} |")  # fmt: skip
    y = sv["year"]
    out += [
        "",
        f"`moodcam web` memory (VmRSS) over a year of history: {y['at_rest']['rss_mib']} MiB at "
        f"rest, {y['live']['rss_mib']} MiB with {y['live']['streams']} live pages open; a mood "
        f"change reaches every open page in {t(y['live']['event_delay'])} "
        f"({y['live']['changes']} changes x {y['live']['streams']} pages). Over today's log: "
        f"{sv['today']['at_rest']['rss_mib']} / {sv['today']['live']['rss_mib']} MiB.",
    ]
    security = exposure_line(ROOT / "systemd" / "SECURITY-web.txt")
    if security:
        out += ["", f"systemd: {security} (`systemd/SECURITY-web.txt`, `make security-report`)."]
    m = r["machine"]
    out += ["", f"_Written by `make bench-web` (`bench/web.json`; {m['machine']}, Python "
            f"{m['python']}, {m['cpus']} CPUs shared, load {m['load_1min']})._"]  # fmt: skip
    return out


def write_readme(readme: Path, r: dict[str, Any]) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + "\n".join(lines(r)) + "\n" + END + tail)


if __name__ == "__main__":
    sys.exit(main())
