"""systemd/moodcam.service: the daemon's contract, `systemd-analyze verify`, and its exposure score.

`systemd-analyze` ships in Debian's `systemd` package; both commands work offline, without systemd
running as PID 1. MOODCAM_SECURITY_REPORT=FILE also writes the full `security` table to FILE, so
the figure quoted in docs comes from a run, not from a hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "moodcam.service"
WEB_UNIT = ROOT / "systemd" / "moodcam-web.service"
MAX_EXPOSURE = 4.0
MAX_WEB_EXPOSURE = 2.5
EXEC = "/opt/moodcam/venv/bin/moodcam"

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (Debian package `systemd`: apt-get install systemd)",
)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value, in order (keys like DeviceAllow= repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= should be set once, got {values}"
    return values[0]


def test_daemon_contract(unit: dict[str, dict[str, list[str]]]) -> None:
    s = "Service"
    assert one(unit, s, "Type") == "notify"
    assert one(unit, s, "NotifyAccess") == "main"
    assert one(unit, s, "WatchdogSec") == "30"
    assert one(unit, s, "ExecStart") == f"{EXEC} run --config /etc/moodcam/moodcam.toml"
    assert one(unit, s, "Restart") == "on-failure"
    assert one(unit, s, "RestartSec") == "5"
    assert one(unit, s, "TimeoutStopSec") == "10"
    # Bad config (3) and bad model (4) cannot be fixed by restarting.
    assert one(unit, s, "RestartPreventExitStatus").split() == ["3", "4"]
    assert one(unit, "Unit", "StartLimitIntervalSec") and one(unit, "Unit", "StartLimitBurst")
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_runs_unprivileged_with_only_its_devices(unit: dict[str, dict[str, list[str]]]) -> None:
    s = "Service"
    assert one(unit, s, "User") == "moodcam" and one(unit, s, "Group") == "moodcam"
    assert one(unit, s, "SupplementaryGroups").split() == ["video", "gpio"]
    assert one(unit, s, "CapabilityBoundingSet") == ""
    assert one(unit, s, "AmbientCapabilities") == ""
    assert one(unit, s, "NoNewPrivileges") == "yes"
    assert one(unit, s, "StateDirectory") == "moodcam"
    assert one(unit, s, "ReadWritePaths") == "/var/lib/moodcam"
    assert one(unit, s, "ProtectSystem") == "strict"
    assert one(unit, s, "UMask") == "0027"
    assert one(unit, s, "DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in unit[s]["DeviceAllow"]}
    assert allowed == {
        "char-video4linux",  # /dev/video*, /dev/v4l-subdev*
        "char-media",
        "char-dma_heap",
        "char-vchiq",
        "char-gpiochip",
    }
    assert one(unit, s, "RestrictAddressFamilies").split() == [
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    ]
    # Frames are in memory: no core dumps to disk.
    assert one(unit, s, "LimitCORE") == "0"
    # Would turn the video/gpio groups into nogroup (see the comment in the unit).
    assert "PrivateUsers" not in unit[s]


def _verify_root(tmp_path: Path, with_executable: bool) -> Path:
    """A filesystem root holding the unit unchanged, the system's own units, and the executable."""
    root = tmp_path / "root"
    system_units = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    # verify follows the unit's dependencies (sysinit.target, ...): they must resolve in the root.
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/moodcam.service")
    if with_executable:
        exe = root / EXEC.lstrip("/")
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


def _verify(root: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "moodcam.service"],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # The unit is verified byte for byte; what the Pi has and this machine lacks (the venv's
    # moodcam executable) is provided inside --root, not by editing ExecStart.
    r = _verify(_verify_root(tmp_path, with_executable=True))
    # verify exits 0 on unknown keys too, printing a warning: any output at all is a failure.
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr + r.stdout


@needs_analyze
def test_verify_really_looks_inside_the_root(tmp_path: Path) -> None:
    """Without the executable in --root, the one and only complaint is the missing executable."""
    r = _verify(_verify_root(tmp_path, with_executable=False))
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and EXEC in lines[0] and "not executable" in lines[0], r.stderr


@needs_analyze
@pytest.mark.parametrize(
    ("unit_path", "most"),
    [(UNIT, MAX_EXPOSURE), (WEB_UNIT, MAX_WEB_EXPOSURE)],
    ids=["daemon", "web"],
)
def test_security_exposure(record_property: pytest.RecordProperty, unit_path: Path,
                           most: float) -> None:  # fmt: skip
    assert ANALYZE is not None
    r = subprocess.run(
        # --threshold is in tenths: systemd-analyze itself fails above `most`.
        [
            ANALYZE,
            "security",
            "--offline=true",
            f"--threshold={round(most * 10)}",
            "--no-pager",
            str(unit_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = r.stdout + r.stderr
    report = os.environ.get("MOODCAM_SECURITY_REPORT")
    if report:  # SECURITY.txt for the daemon, SECURITY-web.txt for the dashboard
        path = Path(report)
        if unit_path == WEB_UNIT:
            path = path.with_name(f"{path.stem}-web{path.suffix}")
        path.write_text(out, encoding="utf-8")
    m = re.search(rf"Overall exposure level for {re.escape(unit_path.name)}: (\d+(?:\.\d+)?)", out)
    assert m, out
    exposure = float(m.group(1))
    record_property("systemd_exposure", exposure)
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= most, out
    assert r.returncode == 0, out


# --- the dashboard's unit -------------------------------------------------------------------


def test_web_unit_is_independent_and_unprivileged() -> None:
    web = parse_unit(WEB_UNIT.read_text(encoding="utf-8"))
    daemon = UNIT.read_text(encoding="utf-8")
    assert one(web, "Service", "User") == "moodcam" and one(web, "Service", "Group") == "moodcam"
    assert one(web, "Service", "ExecStart") == (
        "/opt/moodcam/venv/bin/moodcam web --config /etc/moodcam/moodcam.toml"
    )
    # Neither waits for, stops with or pulls in the other.
    for key in ("Requires", "Wants", "BindsTo", "PartOf", "Requisite", "After", "Before"):
        assert "moodcam.service" not in " ".join(web["Unit"].get(key, [])), key
    assert "moodcam-web" not in daemon
    s = "Service"
    assert one(web, s, "ReadWritePaths") == "/var/lib/moodcam"
    assert one(web, s, "StateDirectory") == "moodcam"  # the daemon's: the log is read there
    assert one(web, s, "PrivateDevices") == "yes" and one(web, s, "DevicePolicy") == "closed"
    assert "DeviceAllow" not in web[s] and "SupplementaryGroups" not in web[s]
    assert one(web, s, "CapabilityBoundingSet") == "" and one(web, s, "NoNewPrivileges") == "yes"
    assert one(web, s, "RestartPreventExitStatus") == "3"


@needs_analyze
def test_web_unit_verifies(tmp_path: Path) -> None:
    root = _verify_root(tmp_path, with_executable=True)
    shutil.copy(WEB_UNIT, root / "etc/systemd/system/moodcam-web.service")
    python = root / "opt/moodcam/venv/bin/python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    r = subprocess.run([ANALYZE or "", "verify", f"--root={root}", "moodcam-web.service"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr + r.stdout
