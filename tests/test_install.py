"""systemd/install.sh off the Pi: every file it lays down, idempotence, upgrade, uninstall, purge.

Most tests install into a temporary --root with the stub flags (--no-apt --no-user --no-pip), so
they need no network and change nothing on this machine. One test runs the real thing as root (user
creation, chown, systemctl) inside a private mount namespace whose /etc, /opt and /var/lib are
throwaway copies. The runtime choice per OS and architecture is checked through --dry-run.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "systemd" / "install.sh"
UNIT = ROOT / "systemd" / "moodcam.service"
WEB_UNIT = ROOT / "systemd" / "moodcam-web.service"
DEFAULT_CONFIG = ROOT / "systemd" / "moodcam.toml"
STUBS = ["--no-apt", "--no-user", "--no-pip"]
HAVE_SYSTEMCTL = shutil.which("systemctl") is not None
BOOKWORM = "PRETTY_NAME=Raspberry Pi OS\nVERSION_CODENAME=bookworm\n"


def run_install(
    *args: str, env: dict[str, str] | None = None, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    full_env.update(env or {})
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: type, mode, and content hash or link target (no times)."""
    out: dict[str, tuple] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        mode = stat.S_IMODE(st.st_mode)
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", oct(mode))
        else:
            out[rel] = ("file", oct(mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    ok(run_install("--root", str(root), *STUBS, *flags))
    return root


# --- the script itself -----------------------------------------------------------------------


# The installer, and the CI scripts beside it (.ci/trixie, .ci/arm64 and .ci/vm-test with its
# vm-scenario run only by hand, so nothing else would notice them rot; chroot.sh is the helper
# they source). -x follows the
# `source` lines, so a script is checked together with the helper it calls.
CI_SCRIPTS = ("run", "trixie", "arm64", "chroot.sh", "vm-test", "vm-scenario")


@pytest.mark.parametrize("script", [SCRIPT, *(ROOT / ".ci" / n for n in CI_SCRIPTS)],
                         ids=lambda p: p.name)  # fmt: skip
def test_shellcheck_clean(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    if script.suffix != ".sh":  # .sh files are sourced, not run
        assert os.access(script, os.X_OK), f"{script} is not executable"
    r = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_strict_mode_and_help() -> None:
    assert "set -euo pipefail" in SCRIPT.read_text()
    assert os.access(SCRIPT, os.X_OK)
    r = ok(run_install("--help"))
    assert "--uninstall" in r.stdout and "--purge" in r.stdout and "--root" in r.stdout


def test_bad_usage(tmp_path: Path) -> None:
    r = run_install("--frobnicate")
    assert r.returncode == 2 and "unknown option --frobnicate" in r.stderr
    r = run_install("--root", "relative/dir", *STUBS)
    assert r.returncode == 1 and "absolute" in r.stderr
    # Accounts are the host's: --root must not create one on the host.
    r = run_install("--root", str(tmp_path), "--no-apt", "--no-pip")
    assert r.returncode == 1 and "--no-user" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_needs_root_for_a_real_install() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the script as an unprivileged user")
    # `nobody` runs a copy in a world-readable folder under /tmp: the clone may sit in a private
    # folder (root's home, or any home on newer Debian is 0700), where `nobody` cannot read the
    # script and bash exits 126 before the script can say anything. (pytest's tmp_path is 0700
    # too.) The copy is the whole of systemd/, as the script finds its files beside itself.
    scratch = Path(tempfile.mkdtemp(prefix="moodcam-install-", dir="/tmp"))
    try:
        shutil.copytree(ROOT / "systemd", scratch / "systemd")
        for p in [scratch, *scratch.rglob("*")]:
            p.chmod(0o755 if p.is_dir() or os.access(p, os.X_OK) else 0o644)
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "bash", str(scratch / "systemd" / "install.sh")],
            capture_output=True,
            text=True,
            cwd=scratch,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch)
    assert r.returncode == 1 and "sudo make install" in r.stderr, (r.returncode, r.stderr)


def test_refuses_a_unit_that_runs_as_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "systemd", repo / "systemd")
    shutil.copytree(ROOT / "models", repo / "models")
    unit = repo / "systemd" / "moodcam.service"
    for replacement in ("User=root", "", "User = root"):  # systemd trims blanks around '='
        unit.write_text(UNIT.read_text().replace("User=moodcam", replacement))
        root = tmp_path / f"root{len(replacement)}"
        root.mkdir()
        r = run_install("--root", str(root), *STUBS, script=repo / "systemd" / "install.sh")
        assert r.returncode == 1 and "does not run as root" in r.stderr, r.stderr
        assert list(root.iterdir()) == []  # refused before touching anything


# --- what a fresh install lays down -------------------------------------------------------------


def test_fresh_install_lays_down_exactly_these_files(installed: Path) -> None:
    r = installed
    models = sorted(p.name for p in (ROOT / "models").iterdir() if p.suffix in (".tflite", ".json"))
    expected_files = {
        "etc/moodcam/moodcam.toml": (0o640, DEFAULT_CONFIG),
        "etc/systemd/system/moodcam.service": (0o644, UNIT),
        "etc/systemd/system/moodcam-web.service": (0o644, WEB_UNIT),
        "opt/moodcam/README.md": (0o644, ROOT / "README.md"),
        "opt/moodcam/moodcam.toml.default": (0o644, DEFAULT_CONFIG),
        **{f"opt/moodcam/models/{m}": (0o644, ROOT / "models" / m) for m in models},
    }
    for rel, (want_mode, source) in expected_files.items():
        p = r / rel
        assert p.is_file(), rel
        assert mode(p) == want_mode, f"{rel}: {oct(mode(p))}"
        assert p.read_bytes() == source.read_bytes(), rel
    expected_dirs = {
        "etc/moodcam": 0o750,  # may hold a broker user and password file names
        "var/lib/moodcam": 0o750,
        "opt/moodcam": 0o755,
        "opt/moodcam/models": 0o755,
    }
    for rel, want_mode in expected_dirs.items():
        assert (r / rel).is_dir() and mode(r / rel) == want_mode, rel

    # The venv: the system's python, with apt's site-packages (picamera2, libcamera) visible.
    venv = r / "opt/moodcam/venv"
    assert (venv / "bin/python").exists()
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    assert not (r / "opt/moodcam/constraints.txt").exists()  # only written when pip runs

    if HAVE_SYSTEMCTL:  # enabled offline through systemctl --root
        link = r / "etc/systemd/system/multi-user.target.wants/moodcam.service"
        assert os.readlink(link) == "/etc/systemd/system/moodcam.service"
        link = r / "etc/systemd/system/multi-user.target.wants/moodcam-web.service"
        assert os.readlink(link) == "/etc/systemd/system/moodcam-web.service"

    # Nothing else anywhere: every path outside the venv is accounted for.
    parents = {str(Path(p).parent) for p in expected_files} | set(expected_dirs)
    allowed = (
        set(expected_files)
        | set(expected_dirs)
        | {str(Path(*Path(p).parts[:i])) for p in parents for i in range(1, len(Path(p).parts) + 1)}
    )
    allowed |= {
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/multi-user.target.wants/moodcam.service",
        "etc/systemd/system/multi-user.target.wants/moodcam-web.service",
    }
    stray = {
        str(p.relative_to(r))
        for p in r.rglob("*")
        if not str(p.relative_to(r)).startswith("opt/moodcam/venv")
    } - allowed
    assert stray == set()


def test_installed_config_is_valid_and_points_at_installed_paths(installed: Path) -> None:
    from moodcam import config

    cfg = config.load(installed / "etc/moodcam/moodcam.toml")
    model = Path(cfg.classifier.model)
    assert (installed / model.relative_to("/")).is_file()  # where install.sh put the model
    assert (installed / model.with_suffix(".json").relative_to("/")).is_file()  # its card
    # The log must be in the only directory the unit lets the service write.
    unit = UNIT.read_text()
    assert f"ReadWritePaths={Path(cfg.log.path).parent}\n" in unit
    assert cfg.log.path.startswith("/var/lib/moodcam/") and "StateDirectory=moodcam\n" in unit
    assert "--config /etc/moodcam/moodcam.toml" in unit


def test_without_a_config_the_installed_cli_finds_the_installed_model(
    installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`moodcam classify` or `bench` without --config on the Pi: the package sits in the venv's
    site-packages, where no models/ is; the model install.sh laid down beside the venv is the
    default. (Off an install, the checkout's models/ stays the default.)"""
    from moodcam import config

    prefix = installed / "opt/moodcam"
    assert (prefix / "venv").is_dir()  # the layout install.sh made (a venv without pip here)
    monkeypatch.setattr(config, "PACKAGE_MODELS", tmp_path / "site-packages" / "models")
    monkeypatch.setattr(config.sys, "prefix", str(prefix / "venv"))
    assert config.default_model() == prefix / "models" / "moodcam.tflite"
    assert config.default_model().is_file()
    monkeypatch.setattr(config.sys, "prefix", str(tmp_path / "elsewhere" / "venv"))
    assert config.default_model() == tmp_path / "site-packages" / "models" / "moodcam.tflite"
    # ... and it is what the config's default is (both are computed when config is imported).
    assert config.ClassifierConfig().model == str(config.DEFAULT_MODEL)
    monkeypatch.undo()
    assert config.default_model() == config.DEFAULT_MODEL


def test_default_config_is_generated_from_the_schema() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_default_config", ROOT / "systemd" / "make_default_config.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert DEFAULT_CONFIG.read_text(encoding="utf-8") == mod.render(), (
        "systemd/moodcam.toml is out of date: run .venv/bin/python systemd/make_default_config.py"
    )
    data = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert data["log"]["path"] == "/var/lib/moodcam/mood.jsonl"
    assert data["classifier"]["model"] == "/opt/moodcam/models/moodcam.tflite"


# --- again, upgrade, uninstall --------------------------------------------------------------------


def test_reinstall_is_idempotent_and_keeps_the_users_config(installed: Path) -> None:
    r = installed
    cfg = r / "etc/moodcam/moodcam.toml"
    cfg.write_text('[device]\nid = "kitchen"\n')
    cfg.chmod(0o600)
    log = r / "var/lib/moodcam/mood.jsonl"
    log.write_text('{"t": 1}\n')
    before = snapshot(r)
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    res = ok(run_install("--root", str(r), *STUBS, *flags))
    assert snapshot(r) == before
    assert cfg.read_text() == '[device]\nid = "kitchen"\n' and mode(cfg) == 0o600
    assert "kept your" in res.stderr and "reusing" in res.stderr


def test_reinstall_repairs_what_it_owns(installed: Path) -> None:
    r = installed
    before = snapshot(r)
    (r / "var/lib/moodcam").chmod(0o777)
    (r / "etc/moodcam").chmod(0o755)
    (r / "etc/systemd/system/moodcam.service").write_text("[Service]\nUser=root\n")
    (r / "opt/moodcam/models/moodcam.tflite").unlink()
    shutil.rmtree(r / "opt/moodcam/venv")
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    ok(run_install("--root", str(r), *STUBS, *flags))
    assert snapshot(r) == before


def test_uninstall_keeps_config_and_log_purge_removes_them(installed: Path) -> None:
    r = installed
    (r / "var/lib/moodcam/mood.jsonl").write_text('{"t": 1}\n')
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    res = ok(run_install("--root", str(r), "--uninstall", "--no-user", *flags))
    assert not (r / "opt/moodcam").exists()
    for name in ("moodcam.service", "moodcam-web.service"):
        assert not (r / "etc/systemd/system" / name).exists()
        assert not (r / "etc/systemd/system/multi-user.target.wants" / name).is_symlink()
    assert (r / "etc/moodcam/moodcam.toml").read_bytes() == DEFAULT_CONFIG.read_bytes()
    assert (r / "var/lib/moodcam/mood.jsonl").read_text() == '{"t": 1}\n'
    assert "--purge" in res.stderr
    ok(run_install("--root", str(r), "--uninstall", "--no-user", *flags))  # again: no error
    dropin = r / "etc/systemd/system/moodcam.service.d"
    dropin.mkdir()
    (dropin / "override.conf").write_text("[Service]\nMemoryDenyWriteExecute=no\n")
    ok(run_install("--root", str(r), "--purge", "--no-user", *flags))
    for gone in (
        "etc/moodcam",
        "var/lib/moodcam",
        "opt/moodcam",
        "etc/systemd/system/moodcam.service.d",
    ):
        assert not (r / gone).exists(), gone


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    res = ok(run_install("--root", str(root), *STUBS, "--dry-run"))
    assert list(root.iterdir()) == []
    assert f"+ install -m 0640 {DEFAULT_CONFIG} {root}/etc/moodcam/moodcam.toml" in res.stdout
    assert "nothing was changed" in res.stderr


# --- which TFLite runtime, which numpy ------------------------------------------------------------


@pytest.fixture
def fake_python(tmp_path: Path):
    def make(version: str) -> str:
        p = tmp_path / f"python{version}"
        p.write_text(f"#!/bin/sh\necho {version}\n")  # plan() only asks it for its version
        p.chmod(0o755)
        return str(p)

    return make


@pytest.mark.parametrize(
    ("arch", "codename", "python", "extra", "numpy_pin"),
    [
        ("arm64", "bookworm", "3.11", "litert", True),  # apt simplejpeg is numpy 1.x
        ("aarch64", "trixie", "3.13", "litert", False),
        ("armhf", "bookworm", "3.11", "tflite-runtime", True),  # tflite-runtime needs numpy<2
        ("x86_64", "bookworm", "3.11", "litert", True),
    ],
)
def test_runtime_choice(
    tmp_path: Path, fake_python, arch: str, codename: str, python: str, extra: str, numpy_pin: bool
) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text(f"VERSION_CODENAME={codename}\n")
    root = tmp_path / "root"
    root.mkdir()
    env = {
        "MOODCAM_ARCH": arch,
        "MOODCAM_OS_RELEASE": str(os_release),
        "MOODCAM_PYTHON": fake_python(python),
    }
    res = ok(run_install("--root", str(root), "--no-apt", "--no-user", "--dry-run", env=env))
    # --dry-run prints each command shell-quoted (printf %q) after "+ ".
    commands = [shlex.split(line[2:]) for line in res.stdout.splitlines() if line.startswith("+ ")]
    pip = [c for c in commands if c[1:4] == ["-m", "pip", "install"]]
    assert len(pip) == 1
    assert pip[0][0] == f"{root}/opt/moodcam/venv/bin/python"
    assert pip[0][-1] == f"{ROOT}[{extra},report,web]"  # report: --format png; web: the dashboard
    assert "--only-binary=numpy,opencv-python-headless,ai-edge-litert,tflite-runtime" in pip[0]
    constraints = f"{root}/opt/moodcam/constraints.txt"
    assert (["--constraint", constraints] == pip[0][-3:-1]) is numpy_pin
    # OpenCV 4.12+ needs numpy 2: pinned too, or pip downloads every newer wheel to find out.
    pinned = ["write", constraints, "<<<", "numpy<2", "opencv-python-headless<4.12"]
    assert (pinned in commands) is numpy_pin
    assert f"system: {codename}" in res.stderr


@pytest.mark.parametrize(
    ("arch", "codename", "python", "message"),
    [
        ("armhf", "trixie", "3.13", "Install 64-bit Raspberry Pi OS"),
        ("armel", "bookworm", "3.11", "ARMv6"),
        ("riscv64", "trixie", "3.13", "unsupported architecture riscv64"),
        ("arm64", "bullseye", "3.9", "needs Python 3.11 or later"),
    ],
)
def test_unsupported_systems_say_why(
    tmp_path: Path, fake_python, arch: str, codename: str, python: str, message: str
) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text(f"VERSION_CODENAME={codename}\n")
    env = {
        "MOODCAM_ARCH": arch,
        "MOODCAM_OS_RELEASE": str(os_release),
        "MOODCAM_PYTHON": fake_python(python),
    }
    root = tmp_path / "root"
    root.mkdir()
    res = run_install("--root", str(root), "--no-apt", "--no-user", "--dry-run", env=env)
    assert res.returncode == 1 and message in res.stderr, res.stderr


# --- the real thing, as root, in a throwaway mount namespace ----------------------------------------

REAL_INSTALL = r"""
set -eu
mount -t tmpfs tmpfs /opt
mount -t tmpfs tmpfs /var/lib
mount --bind "$ETC_COPY" /etc
bash "$SCRIPT" --no-apt --no-pip >/dev/null 2>&1 || { echo "install failed"; exit 1; }
bash "$SCRIPT" --no-apt --no-pip >/dev/null 2>&1 || { echo "reinstall failed"; exit 1; }
echo "passwd $(getent passwd moodcam | cut -d: -f1,6,7)"
echo "uid $(id -u moodcam)"
echo "groups $(id -nG moodcam)"
for p in /etc/moodcam /etc/moodcam/moodcam.toml /var/lib/moodcam /opt/moodcam /etc/systemd/system/moodcam.service; do
  echo "stat $(stat -c '%a %U:%G' "$p") $p"
done
echo "enabled $(readlink /etc/systemd/system/multi-user.target.wants/moodcam.service || true)"
bash "$SCRIPT" --purge >/dev/null 2>&1 || { echo "purge failed"; exit 1; }
echo "after-purge-user $(getent passwd moodcam || echo none)"
echo "after-purge-files $(ls -d /etc/moodcam /var/lib/moodcam /opt/moodcam 2>/dev/null || echo none)"
"""


def test_real_install_as_root_in_a_private_mount_namespace(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.decode().strip()}")
    etc_copy = tmp_path / "etc"
    subprocess.run(["cp", "-a", "/etc", str(etc_copy)], check=True)
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", REAL_INSTALL],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SCRIPT": str(SCRIPT),
            "ETC_COPY": str(etc_copy),
        },
    )
    assert res.returncode == 0, res.stdout + res.stderr
    facts = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(" ")
        facts.setdefault(key, []).append(value)
    assert facts["passwd"] == ["moodcam:/var/lib/moodcam:/usr/sbin/nologin"]
    assert facts["uid"][0] != "0"
    assert {"moodcam", "video", "gpio"} <= set(facts["groups"][0].split())
    assert sorted(facts["stat"]) == sorted(
        [
            "750 root:moodcam /etc/moodcam",
            "640 root:moodcam /etc/moodcam/moodcam.toml",
            "750 moodcam:moodcam /var/lib/moodcam",
            "755 root:root /opt/moodcam",
            "644 root:root /etc/systemd/system/moodcam.service",
        ]
    )
    if HAVE_SYSTEMCTL:
        assert facts["enabled"] == ["/etc/systemd/system/moodcam.service"]
    assert facts["after-purge-user"] == ["none"]
    assert facts["after-purge-files"] == ["none"]


# --- permissions: nothing world-writable, the config closed, never root --------------------------


def world_writable(root: Path) -> list[str]:
    """Every path under root (the venv included) that any local user could modify."""
    return sorted(
        str(p.relative_to(root))
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and p.lstat().st_mode & stat.S_IWOTH
    )


def test_nothing_installed_is_world_writable_even_with_umask_0(tmp_path: Path) -> None:
    """The script sets its own umask: a root shell with umask 000 must not leak into the files."""
    root = tmp_path / "root"
    root.mkdir()
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    args = " ".join(shlex.quote(a) for a in ["--root", str(root), *STUBS, *flags])
    r = subprocess.run(
        ["bash", "-c", f"umask 000; exec bash {shlex.quote(str(SCRIPT))} {args}"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
        timeout=300,
    )
    ok(r)
    root.chmod(0o755)  # the test's own directory, not the installer's
    assert world_writable(root) == []
    assert mode(root / "etc/moodcam/moodcam.toml") == 0o640
    assert mode(root / "etc/moodcam") == 0o750


def test_reinstall_fixes_world_writable_files_and_an_open_config(installed: Path) -> None:
    r = installed
    loose = [r / "opt/moodcam/models/moodcam.json", r / "opt/moodcam/venv/pyvenv.cfg"]
    for p in loose:
        p.chmod(0o666)
    cfg = r / "etc/moodcam/moodcam.toml"
    cfg.write_text('[device]\nid = "kitchen"\n')  # the user's own config: kept, but closed
    cfg.chmod(0o666)
    flags = [] if HAVE_SYSTEMCTL else ["--no-systemctl"]
    res = ok(run_install("--root", str(r), *STUBS, *flags))
    assert world_writable(r) == []
    assert mode(cfg) == 0o640 and cfg.read_text() == '[device]\nid = "kitchen"\n'
    assert f"{cfg} was writable by its group or open to other users" in res.stderr
    assert mode(loose[0]) == 0o644 and mode(loose[1]) == 0o664  # re-installed; swept (o-w)
    assert f"{loose[1]} was world-writable" in res.stderr


@pytest.mark.parametrize("line", ["User=root", "User=", "User=0", "User = root", "  User =root "])
def test_refuses_a_drop_in_that_runs_the_service_as_root(tmp_path: Path, line: str) -> None:
    """`systemctl edit moodcam` can override User=: the installer checks the result, not only
    its own unit, and refuses before touching anything."""
    root = tmp_path / "root"
    dropin = root / "etc/systemd/system/moodcam.service.d"
    dropin.mkdir(parents=True)
    (dropin / "10-ok.conf").write_text("[Service]\nUser=moodcam\n")
    (dropin / "override.conf").write_text(f"[Service]\nMemoryMax=30%\n{line}\n")
    r = run_install("--root", str(root), *STUBS, "--no-systemctl")
    assert r.returncode == 1 and "does not run as root" in r.stderr, r.stderr
    assert not (root / "opt").exists() and not (root / "etc/moodcam").exists()
    # A drop-in that keeps the service user is fine.
    (dropin / "override.conf").write_text("[Service]\nMemoryMax=30%\nUser=moodcam\n")
    ok(run_install("--root", str(root), *STUBS, "--no-systemctl"))


def test_uninstall_purges_only_when_purge_is_1() -> None:
    """README: `sudo make uninstall` keeps config and log; `PURGE=1` removes them. A stray
    PURGE=0 (or any other value) must not mean yes."""

    def command(*assignments: str) -> str:
        out = subprocess.run(["make", "-s", "-n", "uninstall", *assignments], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return next(ln for ln in out.splitlines() if "install.sh" in ln)

    assert "--purge" not in command()
    assert "--purge" not in command("PURGE=0")
    assert "--purge" not in command("PURGE=no")
    assert command("PURGE=1").endswith("--uninstall --purge")
