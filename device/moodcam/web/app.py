"""The dashboard's web application (Starlette, served by uvicorn): read-only pages and JSON over
what the daemon writes (the mood log through the history index, the camera health file), and
never the camera.

Privacy: the guard answers 401 without the token when one is set (always when listening beyond
loopback), 429 to an address after [web] max_failures wrong tokens in a minute; every response
carries a Content-Security-Policy without inline scripts or styles, no framing, no referrer, no
caching. Only GET and HEAD. No endpoint returns an image type: charts are inline SVG in the page
and the report's PNG chart is a download (application/octet-stream). No file is served by a
name taken from the URL: the two static assets are read at start and served from memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import hmac
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, tzinfo
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from moodcam import __version__
from moodcam.config import Config, to_toml
from moodcam.errors import InputError, MoodcamError
from moodcam.history import Index, IndexUnusable, continues_mood, index_path
from moodcam.labels import DEFAULT_CLASSES
from moodcam.logreader import LogFollower
from moodcam.records import is_v1
from moodcam.report import FORMATS, Report, parse_date, to_json
from moodcam.report.summary import NONE
from moodcam.sinks.healthfile import read_health
from moodcam.urls import redact_url
from moodcam.web import charts

log = logging.getLogger("moodcam.web")

POLL_S = 0.25  # how often the log is looked at: a mood change shows within this (plus a frame)
SAVE_S = 60.0  # how often what was read is written to the index
BUILDING = "the history is being built from the mood log (minutes for a long one): reload then"
BUILDING_HTML = f'<p class="note building">{BUILDING[0].upper() + BUILDING[1:]}.</p>'
REBUILD_RETRY_S = 60.0  # after a failed rebuild of the index (a full disk), before the next
KEEPALIVE_S = 15.0
DOCTOR_CACHE_S = 60.0
DOWNLOADS = tuple(f for f in FORMATS if f != "text")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
STATIC = {"/static/app.js": "text/javascript", "/static/style.css": "text/css"}
# The checks of `moodcam doctor` that do not touch the camera or the GPIO pins (those belong to
# the daemon), run in a child so the TFLite runtime never loads into the dashboard's process.
_DOCTOR = """
import sys
from moodcam import config, doctor
cfg = config.load(sys.argv[1]) if sys.argv[1] else config.Config()
cfg.log.path = sys.argv[2]
broker = doctor.check_broker(cfg, 3.0)
for c in (doctor.check_model(cfg), broker,
          doctor.check_daemon(cfg, 3.0) if broker.ok else None,
          doctor.check_disk(cfg), doctor.check_service()):
    if c is not None:
        print(c.line(), flush=True)
"""


class HistoryNotReady(MoodcamError):
    """The first history index is still being built from the log."""


class Dashboard:
    """What the pages show: the index (kept up to date by `poll`), the newest line, health."""

    def __init__(
        self,
        cfg: Config,
        config_path: str | None,
        log_path: Path,
        tz: tzinfo,
        tz_name: str,
        max_gap: float,
    ) -> None:
        self.cfg, self.config_path, self.log_path = cfg, config_path, log_path
        self.tz, self.tz_name, self.max_gap = tz, tz_name, max_gap
        self.lock = threading.Lock()  # one SQLite connection, used from worker threads
        self.index: Index | None = None
        self.version = 0
        self.payload = ""  # the live event of this version
        self.changed: asyncio.Event | None = None
        self._saved = time.monotonic()
        self._health_key: Any = None
        self._doctor: tuple[float, list[tuple[str, str, str]]] | None = None
        self._rebuilder: threading.Thread | None = None  # rebuilding the index, when it must be
        self._swapped = 0  # 1 when a rebuilt index came in since the last poll
        self._rebuild_after = 0.0  # monotonic time before which no rebuild starts (one failed)
        # Until the first index is there: the log's newest lines, read as they come.
        self._follower: LogFollower | None = None
        self._last: dict[str, Any] | None = None
        self._since: float | None = None

    def open(self) -> None:
        """The index, or (none yet, another format, out of step with the log) its build in the
        background, minutes for a year on a Pi: the page listens at once and shows the newest
        line meanwhile, history when the index is there. A log or folder it cannot use is an
        error here, before anything listens."""
        with self.lock:
            if self.index is not None or self._rebuilder is not None:
                return
            try:
                self.index = Index.open(self.log_path, self.tz, self.tz_name, self.max_gap,
                                        rebuild=False)  # fmt: skip
            except IndexUnusable as e:
                log.info("history index: %s; building it from the log", e)
                self._follower = LogFollower(self.log_path)
                self._newest(self._follower.start())
                self._start_rebuild()

    def close(self) -> None:
        with self.lock:
            if self.index is not None:
                self.index.save()
                self.index.close()
            if self._follower is not None:
                self._follower.close()

    @property
    def building(self) -> bool:
        """True until the first index is there (history is being built from the log)."""
        return self.index is None

    # --- the log -------------------------------------------------------------------------

    def poll(self) -> bool:
        """Read new lines; True when the page should change (new lines or new health)."""
        with self.lock:
            new = self._follow() if self.index is None else self._update()
            new += self._swapped
            self._swapped = 0
        health = read_health(self.log_path)
        key = json.dumps(health, sort_keys=True)
        if new or key != self._health_key or not self.payload:
            self._health_key = key
            self.payload = json.dumps(self.live())
            self.version += 1
            return True
        return False

    def _follow(self) -> int:
        """The newest lines while the first index is built (lock held): how many came."""
        assert self._follower is not None
        if self._rebuilder is None and time.monotonic() >= self._rebuild_after:
            self._start_rebuild()
        try:
            recs = self._follower.read()
        except InputError as e:  # the log replaced by something that is no log: said once
            log.warning("%s", e)
            self._follower.close()
            self._follower = LogFollower(self.log_path)
            return 0
        for rec in recs:
            self._newest(rec)
        return len(recs)

    def _newest(self, rec: dict[str, Any] | None) -> None:
        """`rec` as the newest line, with since when its mood holds."""
        if rec is None or not is_v1(rec):
            return
        if not continues_mood(self._last, rec, self.max_gap):
            # When the first line it saw began its mood is not known (the log before is unread).
            self._since = rec["t"] if self._last is not None else None
        self._last = rec

    def _update(self) -> int:
        """New lines into the index (lock held): how many came."""
        assert self.index is not None
        stale: Exception | str | None = None
        try:
            # Past retention's deletions the old index goes on reading in memory, so the page
            # stays live while a new one is built (minutes for a year on a Pi).
            new = self.index.update(save=False, follow_rotation=True)
        except IndexUnusable as e:  # a file it read was replaced: it cannot go on
            stale, new = e, 0
        else:
            stale = None if self.index.writable else "its oldest log files were deleted"
        if self.index.writable and time.monotonic() - self._saved > SAVE_S:
            self.index.save()
            self._saved = time.monotonic()
        if (stale is not None and self._rebuilder is None
                and time.monotonic() >= self._rebuild_after):  # fmt: skip
            log.info("history index: %s; rebuilding it from the log", stale)
            # The old file is replaced under it: it must not write (nor its journal) again.
            self.index.writable = False
            self._start_rebuild()
        return new

    def _start_rebuild(self) -> None:
        self._rebuilder = threading.Thread(target=self._rebuild, name="index-rebuild", daemon=True)
        self._rebuilder.start()

    def _rebuild(self) -> None:
        """A new index from the log, built beside the one the pages keep reading (if any), then
        swapped in."""
        fresh = None
        try:
            fresh = Index.rebuild(self.log_path, self.tz, self.tz_name, self.max_gap,
                                  index_path(self.log_path))  # fmt: skip
        except MoodcamError as e:  # an unreadable log file, a full disk: said in one line
            log.error("history index: %s (trying again in %.0f s)", e, REBUILD_RETRY_S)
        except Exception:
            log.exception("history index: rebuilding it (trying again in %.0f s)", REBUILD_RETRY_S)
        if fresh is None:
            self._rebuild_after = time.monotonic() + REBUILD_RETRY_S
        with self.lock:
            if fresh is not None:
                old, self.index = self.index, fresh
                if old is not None:
                    old.close()
                if self._follower is not None:
                    self._follower.close()
                    self._follower = None
                self._swapped = 1
            self._rebuilder = None

    def report(self, first: date | None, last: date | None, timeline: bool = False) -> Report:
        """HistoryNotReady while the first index is being built."""
        with self.lock:
            if self.index is None:
                raise HistoryNotReady(BUILDING)
            return self.index.report(first, last, timeline)

    def today(self) -> date:
        return datetime.now(self.tz).date()

    # --- what the page shows -------------------------------------------------------------

    def now(self) -> dict[str, Any]:
        """The newest line and since when its mood holds, and the camera's health."""
        with self.lock:
            if self.index is None:
                last, since = self._last, self._since
            else:
                last, since = self.index.last, self.index.since
        health = read_health(self.log_path) or {}
        out: dict[str, Any] = {
            "mood": None,
            "valence": None,
            "arousal": None,
            "faces": 0,
            "t": None,
            "since": since,
            "age_s": None,
            "camera": health.get("camera", "unknown"),
            "camera_detail": str(health.get("detail", "")),
            "camera_since": health.get("since"),
        }
        if last:
            out |= {k: last.get(k) for k in ("mood", "valence", "arousal", "t")}
            out["faces"] = len(last.get("faces") or [])
            out["age_s"] = round(time.time() - last["t"], 1)
        # The log is written at least every interval_s: much older means no daemon writes it.
        out["stale"] = out["age_s"] is None or out["age_s"] > 2 * self.cfg.log.interval_s + 30
        return out

    def live(self) -> dict[str, Any]:
        """The live event: the Now panel, today's timeline and the framing help."""
        now = self.now()
        today = self.today()
        try:
            today_svg = charts.timeline(self.report(today, today, timeline=True), today)
        except HistoryNotReady:
            today_svg = BUILDING_HTML
        with self.lock:
            last = self.index.last if self.index else self._last
        return {
            "mood": now["mood"],
            "now_html": now_html(now, self.tz),
            "today_svg": today_svg,
            "framing_svg": self.framing(last),
        }

    def framing(self, last: dict[str, Any] | None) -> str:
        src, det = self.cfg.source, self.cfg.detector
        return charts.framing((last or {}).get("faces") or [], src.width, src.height, det.min_face)

    def doctor(self) -> list[tuple[str, str, str]]:
        """(mark, name, detail) of the camera-free doctor checks, cached for a minute."""
        if self._doctor and time.monotonic() - self._doctor[0] < DOCTOR_CACHE_S:
            return self._doctor[1]
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _DOCTOR, self.config_path or "", str(self.log_path)],
                capture_output=True, text=True, timeout=60, errors="replace",
            )  # fmt: skip
            lines = proc.stdout.splitlines() or [f"FAIL  doctor   {proc.stderr.strip()[-200:]}"]
        except (OSError, subprocess.TimeoutExpired) as e:
            lines = [f"FAIL  doctor   {e}"]
        rows = [(ln[:4].strip(), ln[6:15].strip(), ln[15:].strip()) for ln in lines]
        self._doctor = (time.monotonic(), rows)
        return rows

    def card(self) -> dict[str, Any]:
        """The model card's headline figures."""
        from moodcam.card import card_path_for

        path = self.cfg.classifier.card or card_path_for(self.cfg.classifier.model)
        try:
            card = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return {}
        head = card.get("headline") if isinstance(card, dict) else None
        return head if isinstance(head, dict) else {}

    def download(self, fmt: str, first: date, last: date) -> bytes:
        """`moodcam report` itself, in a child (FHIR validation and matplotlib stay out of the
        dashboard's memory), over the same index."""
        with tempfile.TemporaryDirectory(prefix="moodcam-web-") as tmp:
            out = Path(tmp) / f"report.{fmt}"
            argv = [str(self.log_path), "--tz", self.tz_name, "--max-gap", repr(self.max_gap),
                    "--from", first.isoformat(), "--to", last.isoformat(), "--format", fmt,
                    "--out", str(out)]  # fmt: skip
            if self.config_path:
                argv += ["--config", self.config_path]
            proc = subprocess.run([sys.executable, "-m", "moodcam.cli", "report", *argv],
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            if proc.returncode != 0:
                raise ValueError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
            return out.read_bytes()


def redacted(cfg: Config) -> Config:
    """The config as the page shows it: URLs without passwords, no user names, and only whether
    a secret file is set (the files are read by the daemon, never by the page)."""
    shown = copy.deepcopy(cfg)
    shown.mqtt.url = redact_url(shown.mqtt.url)
    shown.source.uri = redact_url(shown.source.uri)
    if shown.mqtt.username:
        shown.mqtt.username = "(set)"
    for section in dataclasses.fields(shown):
        obj = getattr(shown, section.name)
        if not dataclasses.is_dataclass(obj):
            continue
        for f in dataclasses.fields(obj):
            if f.name.endswith("_file") and getattr(obj, f.name):
                setattr(obj, f.name, "(set)")
    return shown


# --- HTML ------------------------------------------------------------------------------------


def _when(t: float | None, tz: tzinfo) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")


def _num(x: Any) -> str:
    return f"{x:+.2f}" if isinstance(x, (int, float)) else "-"


def now_html(now: dict[str, Any], tz: tzinfo) -> str:
    mood = now["mood"] or "no face"
    camera = escape(str(now["camera"]))
    stale = (
        f'<p class="warn">No line in the mood log since {_when(now["t"], tz)}: is the daemon '
        "running?</p>"
        if now["stale"]
        else ""
    )
    return (
        f'<p class="mood" data-mood="{escape(now["mood"] or NONE)}">{escape(mood)}</p>'
        f'<dl><dt>since</dt><dd class="since">{_when(now["since"], tz)}</dd>'
        f"<dt>valence</dt><dd>{_num(now['valence'])}</dd>"
        f"<dt>arousal</dt><dd>{_num(now['arousal'])}</dd>"
        f"<dt>faces</dt><dd>{int(now['faces'])}</dd>"
        f'<dt>camera</dt><dd class="camera {camera}">{camera}'
        f"{(': ' + escape(now['camera_detail'])) if now['camera_detail'] else ''}</dd>"
        f"<dt>last line</dt><dd>{_when(now['t'], tz)}</dd></dl>{stale}"
    )


def _period_html(dash: Dashboard, title: str, first: date, last: date, sid: str) -> str:
    try:
        rep = dash.report(first, last)
    except HistoryNotReady:
        return f'<section id="{sid}"><h2>{escape(title)}</h2>{BUILDING_HTML}</section>'
    q = f"from={first.isoformat()}&amp;to={last.isoformat()}"
    links = " ".join(
        f'<a class="download" href="/download/{f}?{q}" download>{f.upper()}</a>' for f in DOWNLOADS
    )
    t = to_json(rep)["totals"]
    face = t["face_share"]
    summary = (
        f"logged {t['logged_s'] / 3600:.1f} h, a face {100 * face:.0f} % of it"
        if face is not None
        else "nothing logged"
    )
    return (
        f'<section id="{sid}"><h2>{escape(title)}</h2><p class="note">{first} to {last}: '
        f"{summary}; {rep.skipped_note}</p>"
        f"<h3>Mood shares per day</h3>{charts.shares(rep)}"
        f"<h3>Valence and arousal by hour of day</h3>{charts.by_hour(rep)}"
        f'<p class="downloads">Download (as <code>moodcam report</code>): {links}</p></section>'
    )


def page(dash: Dashboard, first: date | None, last: date | None) -> str:
    today = dash.today()
    live = json.loads(dash.payload) if dash.payload else dash.live()
    moods = [*DEFAULT_CLASSES, NONE]
    rng = ""
    if first and last:
        rng = _period_html(dash, "Chosen period", first, last, "range")
    pick_from = (first or today - timedelta(days=6)).isoformat()
    pick_to = (last or today).isoformat()
    head = dash.card()
    card = ", ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in head.items()) or "-"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moodcam {escape(dash.cfg.device.name)}</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head><body>
<header><h1>moodcam <span class="device">{escape(dash.cfg.device.name)}</span></h1>
<nav><a href="#now">Now</a> <a href="#today">Today</a> <a href="#week">7 days</a>
<a href="#month">30 days</a> <a href="#pick">Period</a> <a href="#device">Device</a>
<a href="#framing">Framing</a></nav></header>
<main>
<section id="now"><h2>Now <span id="live" class="live">connecting</span></h2>
<div id="now-body">{live["now_html"]}</div></section>
<section id="today"><h2>Today</h2><div id="today-svg">{live["today_svg"]}</div>
{charts.legend(moods)}</section>
{_period_html(dash, "Last 7 days", today - timedelta(days=6), today, "week")}
{_period_html(dash, "Last 30 days", today - timedelta(days=29), today, "month")}
<section id="pick"><h2>Period</h2>
<form method="get" action="/#range"><label>from <input type="date" name="from" value="{pick_from}"></label>
<label>to <input type="date" name="to" value="{pick_to}"></label> <button type="submit">Show</button></form>
</section>
{rng}
<section id="device"><h2>Device</h2>
<p>moodcam {escape(__version__)}, model card: {card}; days and hours in {escape(dash.tz_name)}</p>
<div id="doctor" data-src="/fragment/doctor"><p class="note">checking…</p></div>
<details><summary>Configuration (secrets redacted)</summary>
<pre>{escape(to_toml(redacted(dash.cfg)))}</pre></details></section>
<section id="framing"><h2>Framing</h2>
<p class="note">Face boxes of the newest line of the log on an empty outline of the camera's
{dash.cfg.source.width}x{dash.cfg.source.height} frame, with the smallest face the detector
looks for ([detector] min_face). No picture is ever shown or stored.</p>
<div id="framing-svg">{live["framing_svg"]}</div></section>
</main></body></html>
"""


def doctor_html(rows: list[tuple[str, str, str]]) -> str:
    items = "".join(
        f'<tr class="{escape(m.lower())}"><td>{escape(m)}</td><td>{escape(n)}</td>'
        f"<td>{escape(d)}</td></tr>"
        for m, n, d in rows
    )
    return f'<table class="doctor">{items}</table>'


# --- the app ---------------------------------------------------------------------------------


def _period(request: Request) -> tuple[date | None, date | None]:
    q = request.query_params
    try:
        first = parse_date(q["from"]) if q.get("from") else None
        last = parse_date(q["to"]) if q.get("to") else None
    except Exception as e:
        raise ValueError(str(e)) from None
    if first and last and first > last:
        raise ValueError(f"from {first} is after to {last}")
    return first, last


def create_app(dash: Dashboard, token: str | None, max_failures: int) -> Any:
    static = {
        path: (resources.files("moodcam.web").joinpath(path.lstrip("/")).read_bytes(), kind)
        for path, kind in STATIC.items()
    }

    async def index(request: Request) -> Response:
        try:
            first, last = _period(request)
        except ValueError as e:
            return PlainTextResponse(f"bad period: {e}", 400)
        if (first is None) != (last is None):
            first = last = first or last
        html = await run_in_threadpool(page, dash, first, last)
        return HTMLResponse(html)

    async def asset(request: Request) -> Response:
        body, kind = static[request.url.path]
        return Response(body, media_type=kind)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def api_now(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(dash.now))

    async def api_report(request: Request) -> Response:
        try:
            first, last = _period(request)
            rep = await run_in_threadpool(dash.report, first, last)
        except HistoryNotReady as e:
            return PlainTextResponse(f"{e}", 503, headers={"Retry-After": "30"})
        except Exception as e:  # a period too long, a log that cannot be read
            return PlainTextResponse(f"{e}", 400)
        doc = to_json(rep)
        doc.pop("log")  # the page names no files
        doc.pop("files")
        return JSONResponse(doc)

    async def doctor(request: Request) -> Response:
        return HTMLResponse(doctor_html(await run_in_threadpool(dash.doctor)))

    async def download(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in DOWNLOADS:
            return PlainTextResponse("not found", 404)
        try:
            first, last = _period(request)
        except ValueError as e:
            return PlainTextResponse(f"bad period: {e}", 400)
        last = last or dash.today()
        first = first or last
        try:
            body = await run_in_threadpool(dash.download, fmt, first, last)
        except (ValueError, OSError, subprocess.TimeoutExpired) as e:
            return PlainTextResponse(f"{e}", 400)
        name = f"moodcam-{first}-{last}.{'fhir.json' if fmt == 'fhir' else fmt}"
        kind = {"csv": "text/csv", "json": "application/json", "fhir": "application/fhir+json"}
        return Response(body, media_type=kind.get(fmt, "application/octet-stream"),
                        headers={"content-disposition": f'attachment; filename="{name}"'})  # fmt: skip

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen = -1
            yield "retry: 2000\n\n"
            while True:
                if dash.version != seen and dash.payload:
                    seen = dash.version
                    yield f"data: {dash.payload}\n\n"
                changed = dash.changed
                assert changed is not None
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dash.changed = asyncio.Event()
        await run_in_threadpool(dash.open)
        await run_in_threadpool(dash.poll)

        async def poller() -> None:
            while True:
                await asyncio.sleep(POLL_S)
                try:
                    if await run_in_threadpool(dash.poll):
                        old, dash.changed = dash.changed, asyncio.Event()
                        assert old is not None
                        old.set()
                except Exception:
                    log.exception("reading the mood log")

        task = asyncio.create_task(poller())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(dash.close)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/events", events),
        Route("/api/now", api_now),
        Route("/api/report", api_report),
        Route("/fragment/doctor", doctor),
        Route("/download/{fmt}", download),
        *(Route(path, asset) for path in STATIC),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, token, max_failures)


class Guard:
    """ASGI middleware: read-only, the token (HTTP Basic password or Bearer), the failure rate
    limit, and the headers of every response (see the module doc)."""

    WINDOW_S = 60.0
    MAX_CLIENTS = 1024

    def __init__(self, app: Any, token: str | None, max_failures: int) -> None:
        self.app, self.max_failures = app, max_failures
        self.token = token.encode() if token else None
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"],
                    *HEADERS,
                ]
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            return await _plain(send_with_headers, 405, "read-only", [(b"allow", b"GET, HEAD")])
        if self.token is not None:
            client = (scope.get("client") or ("?", 0))[0]
            recent = self._recent(client)
            if len(recent) >= self.max_failures:
                wait = int(self.WINDOW_S - (time.monotonic() - recent[0])) + 1
                return await _plain(send_with_headers, 429, "too many wrong tokens",
                                    [(b"retry-after", str(wait).encode())])  # fmt: skip
            if not self._authorized(scope):
                if _presented(scope):
                    recent.append(time.monotonic())
                return await _plain(send_with_headers, 401, "token required",
                                    [(b"www-authenticate", b'Basic realm="moodcam", charset="UTF-8"')])  # fmt: skip
        await self.app(scope, receive, send_with_headers)

    def _recent(self, client: str) -> deque[float]:
        q = self.failures.get(client)
        if q is None:
            q = self.failures[client] = deque()
            while len(self.failures) > self.MAX_CLIENTS:
                self.failures.popitem(last=False)
        now = time.monotonic()
        while q and now - q[0] > self.WINDOW_S:
            q.popleft()
        return q

    def _authorized(self, scope: dict) -> bool:
        assert self.token is not None
        given = _credential(scope)
        # compare_digest: the time taken does not tell how much of a guess was right.
        return given is not None and hmac.compare_digest(given, self.token)


def _header(scope: dict, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", []) if k.lower() == name), None)


def _presented(scope: dict) -> bool:
    return _header(scope, b"authorization") is not None


def _credential(scope: dict) -> bytes | None:
    """The password of HTTP Basic (any user name) or a Bearer token."""
    value = _header(scope, b"authorization")
    if value is None:
        return None
    kind, _, rest = value.partition(b" ")
    if kind.lower() == b"bearer":
        return rest.strip()
    if kind.lower() == b"basic":
        try:
            return base64.b64decode(rest.strip(), validate=True).partition(b":")[2]
        except ValueError:
            return b""
    return b""


async def _plain(send: Any, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = text.encode() + b"\n"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
