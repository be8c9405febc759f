"""`moodcam web` over HTTP, a real server on a loopback port (tests/dashboard.py): the token,
the rate limit on wrong ones, odd URLs, the headers of every response, no image type, no secret
in any response, and the same numbers as `moodcam report`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moodcam.errors import EXIT_CONFIG
from tests.dashboard import LAST_MOOD, SECRETS, Served, serve, write_config
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent

HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'none'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
TODAY = datetime.now(UTC).date()
WEEK = f"from={TODAY - timedelta(days=6)}&to={TODAY}"
PAGES = [
    "/",
    f"/?{WEEK}",
    "/api/now",
    f"/api/report?{WEEK}",
    "/fragment/doctor",
    "/static/app.js",
    "/static/style.css",
    *(f"/download/{f}?{WEEK}" for f in ("csv", "json", "fhir", "png")),
]
ODD = [
    "/mood.jsonl",
    "/mood.jsonl.history.sqlite",
    "/moodcam.toml",
    "/token",
    "/static/",
    "/static/../mood.jsonl",
    "/static/%2e%2e/mood.jsonl",
    "/static/..%2fmood.jsonl",
    "/static/app.js/../../token",
    "//etc/passwd",
    "/download/txt",
    "/download/..%2f..%2fmood.jsonl",
    "/download/",
    "/api/",
    "/api/now/x",
    "/%00",
    "/index.html",
    "/.git/config",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("web")) as s:
        yield s


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("web-token"), token=True, max_failures=3) as s:
        yield s


def check_headers(path: str, headers: dict[str, str]) -> None:
    for k, v in HEADERS.items():
        assert headers.get(k) == v, (path, k, headers)
    assert "server" not in headers, path
    assert not headers.get("content-type", "").startswith("image/"), (path, headers)


def test_pages_answer_with_strict_headers_no_image_type_and_no_secret(server: Served) -> None:
    bodies = []
    for path in PAGES:
        status, headers, body = server.get(path)
        assert status == 200, (path, body[:300])
        check_headers(path, headers)
        bodies.append(body)
    status, headers, body = server.get("/events")  # the first live event
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    check_headers("/events", headers)
    bodies.append(body)
    assert b"data: " in body and LAST_MOOD.encode() in body
    # The PNG chart is a download, not an image a page shows.
    status, headers, body = server.get(f"/download/png?{WEEK}")
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment;") and body[:4] == b"\x89PNG"
    for secret in SECRETS.values():
        assert not any(secret.encode() in b for b in bodies), secret
    page = bodies[0].decode()
    assert "(set)" in page and "<script>" not in page and " style=" not in page


def test_the_dashboards_process_never_loads_numpy(server: Served) -> None:
    """moodcam-web.service runs `moodcam web` as it is: the command line (every command's parser),
    the pages and the downloads (made in a child) map no numpy or OpenCV into its memory."""
    for path in PAGES:
        server.get(path)
    assert server.get(f"/download/png?{WEEK}")[0] == 200
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "numpy" not in maps and "cv2" not in maps


def test_odd_urls_are_404_and_nothing_is_written(server: Served) -> None:
    for path in ODD:
        status, headers, body = server.get(path)
        assert status == 404, (path, status, body[:200])
        check_headers(path, headers)
        assert SECRETS["mqtt"].encode() not in body and b'"v":1' not in body, path
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = server.get("/", method=method)
        assert status == 405 and headers["allow"] == "GET, HEAD"
        check_headers(method, headers)


def test_now_and_history_are_the_reports(server: Served, tmp_path: Path) -> None:
    now = json.loads(server.get("/api/now")[2])
    assert now["mood"] == LAST_MOOD and now["faces"] == 1 and not now["stale"]
    assert abs(now["since"] - (time.time() - 60)) < 30
    first, last = TODAY - timedelta(days=6), TODAY
    _, _, api = server.get(f"/api/report?from={first}&to={last}")
    cli = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "report", str(server.log), "--tz", "UTC",
         "--config", str(server.config), "--from", str(first), "--to", str(last),
         "--format", "json", "--no-index"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    want = json.loads(cli.stdout)
    got = json.loads(api)
    for doc in (want, got):
        for k in ("generated", "log", "files"):
            doc.pop(k, None)
    assert got == want
    for fmt in ("csv", "json", "fhir", "png"):
        _, _, download = server.get(f"/download/{fmt}?from={first}&to={last}")
        out = tmp_path / f"cli.{fmt}"
        subprocess.run(
            [sys.executable, "-m", "moodcam.cli", "report", str(server.log), "--tz", "UTC",
             "--config", str(server.config), "--from", str(first), "--to", str(last),
             "--format", fmt, "--no-index", "--out", str(out)],
            capture_output=True, check=True,
        )  # fmt: skip
        assert undated(fmt, download) == undated(fmt, out.read_bytes()), fmt


def undated(fmt: str, body: bytes) -> Any:
    """A report without the time it was made (json: generated; FHIR: timestamp, issued)."""
    if fmt not in ("json", "fhir"):
        return body
    doc = json.loads(body)
    doc.pop("generated", None)
    doc.pop("timestamp", None)
    for entry in doc.get("entry", []):
        entry["resource"].pop("issued")
    return doc


def test_concurrent_requests(server: Served) -> None:
    """Requests at once run in several worker threads, which share the index (and its SQLite
    connection) in turn."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [f"/api/report?{WEEK}", "/", "/api/now", f"/api/report?{WEEK}"] * 6
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda p: server.get(p)[0], paths))
    assert statuses == [200] * len(paths)


def test_bad_periods_are_400(server: Served) -> None:
    for q in (
        "from=2026-13-01&to=2026-12-01",
        "from=2026-05-02&to=2026-05-01",
        "from=1900-01-01&to=2026-01-01",
    ):
        status, headers, body = server.get(f"/api/report?{q}")
        assert status == 400, (q, body)
        check_headers(q, headers)


def test_a_token_is_required_and_wrong_ones_are_rate_limited(locked: Served) -> None:
    status, headers, _ = locked.get("/", auth="")
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    check_headers("401", headers)
    for path in ("/api/now", "/events", "/static/app.js", f"/download/csv?{WEEK}"):
        assert locked.get(path, auth="")[0] == 401, path
    assert locked.get("/")[0] == 200  # the right token, as a browser sends it (Basic)
    status, _, body = locked.get(
        "/api/now", auth="", headers={"Authorization": f"Bearer {SECRETS['token']}"}
    )
    assert status == 200 and json.loads(body)["mood"] == LAST_MOOD
    for wrong in ("web-token-9d81", "WEB-TOKEN-9D81E", "web-token-9d81e0"):
        assert locked.get("/", auth=wrong)[0] == 401
    status, headers, body = locked.get("/")  # now even the right token waits
    assert status == 429 and 50 <= int(headers["retry-after"]) <= 61
    check_headers("429", headers)
    assert SECRETS["token"].encode() not in body


def test_listening_beyond_loopback_needs_a_token_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), bind="0.0.0.0")
    proc = subprocess.run([sys.executable, "-m", "moodcam.cli", "web", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "[web] bind: 0.0.0.0 listens beyond this machine: set [web] token_file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def hold_rebuilds(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Index rebuilds (the real ones) wait until the returned event is set: the test sees the
    dashboard while an index is being built, however fast the machine builds it."""
    from moodcam.history import Index

    gate = threading.Event()
    build = Index.rebuild.__func__  # type: ignore[attr-defined]

    def held(cls: type[Index], *args: Any) -> Index:
        assert gate.wait(60)
        return build(cls, *args)

    monkeypatch.setattr(Index, "rebuild", classmethod(held))
    return gate


def test_the_dashboard_follows_rotation_and_rebuilds_when_retention_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: Dashboard.poll over a log whose writer rotates and deletes its oldest files."""
    from zoneinfo import ZoneInfo

    from moodcam import config, report
    from moodcam.web.app import Dashboard
    from tests.test_report import upd, write_log

    log = tmp_path / "mood.jsonl"
    cfg = config.from_dict({"log": {"path": str(log), "interval_s": 10.0}})
    start = time.time() - 86400
    moods = ("happy", "sad", None, "angry")
    ups = [upd(start + 7 * i, moods[i // 50 % 4]) for i in range(4000)]
    rotation = {"max_bytes": 60_000, "backups": 3}
    write_log(log, ups[:500], **rotation)
    dash = Dashboard(cfg, None, log, ZoneInfo("UTC"), "UTC", 60.0)
    dash.open()
    dash._rebuilder.join(60)  # the first index, built in the background
    inode = dash.index.path.stat().st_ino

    def same() -> None:
        got = report.to_json(dash.report(None, None)) | {"generated": 0}
        want = report.summarize(log, ZoneInfo("UTC"), tz_name="UTC")
        assert got == report.to_json(want) | {"generated": 0}

    assert dash.poll() and dash.index.last["mood"] == ups[499].mood
    same()
    write_log(log, ups[500:700], **rotation)  # a rotation, nothing deleted yet
    assert dash.poll() and dash.index.path.stat().st_ino == inode
    same()
    # Retention deletes files the index has read: a new index is built in the background (held
    # here until the test lets it go) while the old one goes on reading, so the page stays live.
    gate = hold_rebuilds(monkeypatch)
    for end in range(1000, 4001, 300):  # polled as the writer goes on, rotating and deleting
        write_log(log, ups[end - 300 : end], **rotation)
        assert dash.poll() and json.loads(dash.payload)["mood"] == ups[end - 1].mood
        assert dash.index.path.stat().st_ino == inode
    assert dash._rebuilder is not None and not dash.index.writable
    assert dash.report(None, None).days  # history is still served meanwhile
    gate.set()
    dash._rebuilder.join(60)
    assert dash.poll() and dash.index.path.stat().st_ino != inode  # rebuilt, then swapped in
    assert dash._rebuilder is None and dash.index.writable
    same()
    assert json.loads(dash.payload)["mood"] == ups[-1].mood
    dash.close()


def _asgi_get(app: Any, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through the app's ASGI interface, in this process (the app's own routes and
    middleware; no server, so the test can hold the dashboard in a given state)."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path.split("?")[0], "raw_path": path.encode(),
             "query_string": path.partition("?")[2].encode(), "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_the_page_listens_and_stays_live_while_the_first_index_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No index yet (a first start over a long log, or one of an older format): the page is
    served at once with the newest line, live, and says the history is being built; the index
    comes in when built."""
    import sqlite3
    from zoneinfo import ZoneInfo

    from moodcam import config, history, report
    from moodcam.web.app import BUILDING, Dashboard, HistoryNotReady, create_app, page
    from tests.test_report import upd, write_log

    log = tmp_path / "mood.jsonl"
    cfg = config.from_dict({"log": {"path": str(log), "interval_s": 10.0}})
    start = time.time() - 3600
    moods = ("happy", "sad", None, "angry")
    ups = [upd(start + 5 * i, moods[i // 40 % 4]) for i in range(700)]
    write_log(log, ups[:500])
    old = history.index_path(log)  # an index of an older format: not usable, rebuilt
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('version', '2')")
    gate = hold_rebuilds(monkeypatch)
    dash = Dashboard(cfg, None, log, ZoneInfo("UTC"), "UTC", 60.0)
    dash.open()
    assert dash.building and dash.poll()
    live = json.loads(dash.payload)
    assert live["mood"] == ups[499].mood == "happy" and BUILDING[1:] in live["today_svg"]
    assert dash.now()["since"] is None  # the log before its newest line is not read yet
    html = page(dash, None, None)
    assert html.count(BUILDING[1:]) == 3  # today, 7 days, 30 days
    with pytest.raises(HistoryNotReady):
        dash.report(None, None)
    app = create_app(dash, None, 5)
    status, headers, body = _asgi_get(app, "/api/report")
    assert status == 503 and headers[b"retry-after"] == b"30" and BUILDING.encode() in body
    assert _asgi_get(app, "/")[0] == 200
    for end in range(540, 701, 40):  # the daemon goes on writing: every change shows
        write_log(log, ups[end - 40 : end])
        assert dash.poll() and json.loads(dash.payload)["mood"] == ups[end - 1].mood
        assert dash.building
    assert dash.now()["since"] == pytest.approx(
        ups[680].t, abs=1e-3
    )  # the mood that began while it was built
    gate.set()
    dash._rebuilder.join(60)
    assert dash.poll() and not dash.building
    got = report.to_json(dash.report(None, None)) | {"generated": 0}
    want = report.to_json(report.summarize(log, ZoneInfo("UTC"), tz_name="UTC"))
    assert got == want | {"generated": 0}
    assert dash.now()["since"] == pytest.approx(ups[680].t, abs=1e-3) and BUILDING[1:] not in page(
        dash, None, None
    )
    dash.close()


def test_what_the_daemon_writes_is_what_the_dashboard_shows(tmp_path: Path) -> None:
    """The real daemon over the bundled clip (wall clock: a log on the calendar): its
    camera health file and its log's newest faces reach the dashboard; at exit it says stopped."""
    from zoneinfo import ZoneInfo

    from moodcam import config
    from moodcam.sinks.healthfile import health_path, read_health
    from moodcam.web.app import Dashboard

    log = tmp_path / "mood.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "run", "--source", "demo/clip.mp4", "--clock",
         "wall", "--log", str(log), "--log-interval", "0"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    health = read_health(log)
    assert health is not None and health["camera"] == "stopped", health
    assert oct(health_path(log).stat().st_mode & 0o777) == "0o640"
    # The daemon's lines up to its last with faces (the clip may end on an empty room).
    lines = log.read_text().splitlines(keepends=True)
    end = max(i for i, line in enumerate(lines) if json.loads(line)["faces"]) + 1
    shown = tmp_path / "shown.jsonl"
    shown.write_text("".join(lines[:end]))
    health_path(shown).write_bytes(health_path(log).read_bytes())
    cfg = config.from_dict({"log": {"path": str(shown)}})
    dash = Dashboard(cfg, None, shown, ZoneInfo("UTC"), "UTC", 60.0)
    dash.open()
    dash.poll()
    now = dash.now()
    last = json.loads(lines[end - 1])
    assert last["faces"]
    assert (now["mood"], now["faces"], now["camera"]) == (
        last["mood"],
        len(last["faces"]),
        "stopped",
    )
    framing = json.loads(dash.payload)["framing_svg"]
    assert framing.count('class="face"') == len(last["faces"])
    for face in last["faces"]:
        x, y, w, h = face["box"]
        assert f'x="{x}" y="{y}" width="{w}" height="{h}"' in framing
    dash.close()


def test_a_port_in_use_or_an_unreadable_log_is_one_line(tmp_path: Path) -> None:
    import socket

    from moodcam.errors import EXIT_INPUT, EXIT_SINK

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, port)
        (tmp_path / "mood.jsonl").write_text("")
        proc = subprocess.run([sys.executable, "-m", "moodcam.cli", "web", "--config", str(config)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == EXIT_SINK, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if " INFO " not in ln]  # its log lines
    assert errors == [f"moodcam web: cannot listen on 127.0.0.1:{port}: Address already in use "
                      "([web] bind and port)"]  # fmt: skip
    (tmp_path / "mood.jsonl").unlink()
    (tmp_path / "mood.jsonl").mkdir()  # a folder named as the log
    proc = subprocess.run([sys.executable, "-m", "moodcam.cli", "web", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "mood.jsonl" in proc.stderr


def test_sigterm_stops_it_with_status_0_with_live_pages_open(tmp_path: Path) -> None:
    """systemctl stop: the open event streams end, the process exits 0 (not by the signal)."""
    import http.client

    with serve(tmp_path) as s:
        streams = []
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            conn.request("GET", "/events")
            assert conn.getresponse().status == 200
            streams.append(conn)
        t0 = time.monotonic()
        s.proc.terminate()
        assert s.proc.wait(timeout=15) == 0
        print(f"stopped in {time.monotonic() - t0:.2f} s")
        for conn in streams:
            conn.close()


def test_readme_dashboard_figures_are_the_benchs() -> None:
    """README's dashboard lines are what `make bench-web` wrote from bench/web.json."""
    from bench.web import END, START, lines

    figures = json.loads((ROOT / "bench" / "web.json").read_text())
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(START) + len(START) : readme.index(END)]
    assert block == "\n" + "\n".join(lines(figures)) + "\n", "run: make bench-web"
