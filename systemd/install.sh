#!/usr/bin/env bash
# Install moodcam as a systemd service on Raspberry Pi OS (Bookworm or Trixie), or remove it.
# Idempotent: run it again after `git pull` to upgrade. `make install` / `make uninstall` call it.
#
# Lays down:
#   /opt/moodcam/venv                 Python venv (--system-site-packages: apt's picamera2/libcamera)
#   /opt/moodcam/models               the shipped model and its card
#   /opt/moodcam/moodcam.toml.default the default config of this version, to compare with yours
#   /etc/moodcam/moodcam.toml         the config, written only when absent (0640 root:moodcam)
#   /etc/moodcam/installer-groups     the groups it had to create (video, gpio off Pi OS)
#   /var/lib/moodcam                  state: the mood log (0750 moodcam:moodcam)
#   /etc/systemd/system/moodcam.service
#   /etc/systemd/system/moodcam-web.service   the dashboard (`moodcam web`), independent of the daemon
# and a system user `moodcam` (no login) in the groups video and gpio.
set -euo pipefail
umask 022

usage() {
    cat <<'EOF'
usage: install.sh [options]            install or upgrade (as root: sudo make install)
       install.sh --uninstall [--purge]

  --uninstall      remove the service, /opt/moodcam and the unit; keep /etc/moodcam and
                   /var/lib/moodcam (your config and mood log)
  --purge          with --uninstall: also remove /etc/moodcam, /var/lib/moodcam, the user
                   and the groups the installer created
  --dry-run        print what would be done, change nothing

For trying the installer off the Pi (the tests use these):
  --root DIR       prefix every path with DIR (needs --no-user)
  --no-apt         do not install Debian packages
  --no-user        do not create the moodcam user or chown anything
  --no-systemctl   do not call systemctl (with --root, `systemctl --root` enables the unit offline)
  --no-pip         create the venv without pip and install nothing into it (no network)
Environment, for tests: MOODCAM_OS_RELEASE (default /etc/os-release), MOODCAM_ARCH (default
from dpkg), MOODCAM_PYTHON (default /usr/bin/python3).
EOF
}

say() { printf 'moodcam-install: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

ROOT=""
MODE=install
PURGE=0
DO_APT=1
DO_USER=1
DO_SYSTEMCTL=1
DO_PIP=1
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
    --root=*) ROOT=${1#--root=} ;;
    --uninstall) MODE=uninstall ;;
    --purge) MODE=uninstall; PURGE=1 ;;
    --no-apt) DO_APT=0 ;;
    --no-user) DO_USER=0 ;;
    --no-systemctl) DO_SYSTEMCTL=0 ;;
    --no-pip) DO_PIP=0 ;;
    --dry-run) DRY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; say "error: unknown option $1"; exit 2 ;;
    esac
    shift
done

if [ -n "$ROOT" ]; then
    case "$ROOT" in /*) ;; *) die "--root must be an absolute path, got $ROOT" ;; esac
    ROOT=${ROOT%/}
    # Accounts live in the host's /etc/passwd: creating one "under" DIR would touch the host.
    [ "$DO_USER" = 0 ] || die "--root is for trying the installer off the Pi: add --no-user"
elif [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root: sudo make install (or add --dry-run to see what it would do)"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICE_USER=moodcam
PREFIX=$ROOT/opt/moodcam
VENV=$PREFIX/venv
MODELS=$PREFIX/models
ETC=$ROOT/etc/moodcam
CONFIG=$ETC/moodcam.toml
GROUPS_FILE=$ETC/installer-groups
CREATED_GROUPS=()
STATE=$ROOT/var/lib/moodcam
UNIT_DIR=$ROOT/etc/systemd/system
UNIT=$UNIT_DIR/moodcam.service
UNIT_SRC=$REPO/systemd/moodcam.service
WEB_UNIT=$UNIT_DIR/moodcam-web.service
WEB_UNIT_SRC=$REPO/systemd/moodcam-web.service
CONFIG_SRC=$REPO/systemd/moodcam.toml
PYTHON=${MOODCAM_PYTHON:-/usr/bin/python3}

# Every change goes through run, so --dry-run shows exactly what a real run does.
run() {
    if [ "$DRY" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# ------------------------------------------------------------------------------------ checks
# A User= line as systemd reads it: blanks around the key, the '=' and the value are ignored.
USER_LINE='^[[:space:]]*User[[:space:]]*='
# The last User= value in a unit file or drop-in (empty if none, or if it is set empty).
unit_user_of() {
    { grep -E "$USER_LINE" "$1" || true; } | tail -n 1 | sed -E 's/^[[:space:]]*User[[:space:]]*=[[:space:]]*//; s/[[:space:]]+$//'
}

check_sources() {
    [ -f "$UNIT_SRC" ] || die "$UNIT_SRC is missing"
    [ -f "$WEB_UNIT_SRC" ] || die "$WEB_UNIT_SRC is missing"
    [ "$(unit_user_of "$WEB_UNIT_SRC")" = "$SERVICE_USER" ] ||
        die "$WEB_UNIT_SRC must say User=$SERVICE_USER: moodcam does not run as root"
    [ -f "$CONFIG_SRC" ] || die "$CONFIG_SRC is missing"
    local unit_user
    unit_user=$(unit_user_of "$UNIT_SRC")
    # The camera, GPIO and network need no privileges: never run the sensor as root.
    [ "$unit_user" = "$SERVICE_USER" ] ||
        die "$UNIT_SRC must say User=$SERVICE_USER (it says '${unit_user:-nothing, i.e. root}'): moodcam does not run as root"
    # A drop-in (`systemctl edit moodcam`) overrides the unit: the last User= systemd reads wins,
    # and an empty User= means root. Refuse before changing anything, as for the unit itself.
    local dropin
    for dropin in "$UNIT_DIR"/moodcam.service.d/*.conf; do
        [ -f "$dropin" ] || continue
        if grep -Eq "$USER_LINE" "$dropin"; then
            unit_user=$(unit_user_of "$dropin")
        fi
    done
    case "$unit_user" in
    "$SERVICE_USER") ;;
    *) die "a drop-in in $UNIT_DIR/moodcam.service.d sets User=${unit_user:-(empty, i.e. root)}: moodcam does not run as root; remove it or set User=$SERVICE_USER" ;;
    esac
}

# The userland's architecture. uname -m says aarch64 under 32-bit Raspberry Pi OS on a Pi 4/5
# too (64-bit kernel, armhf userland), so ask dpkg, which knows what Python was built for.
detect_arch() {
    local a=${MOODCAM_ARCH:-}
    if [ -z "$a" ]; then
        if command -v dpkg >/dev/null; then a=$(dpkg --print-architecture); else a=$(uname -m); fi
    fi
    case "$a" in
    arm64 | aarch64) echo aarch64 ;;
    armhf | armv7l) echo armv7l ;;
    armel | armv6l) echo armv6l ;;
    amd64 | x86_64) echo x86_64 ;;
    *) echo "$a" ;;
    esac
}

plan() {
    local os_release=${MOODCAM_OS_RELEASE:-/etc/os-release}
    CODENAME=$(sed -n 's/^VERSION_CODENAME=//p' "$os_release" 2>/dev/null | tr -d '"' | head -n 1)
    ARCH=$(detect_arch)
    PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
        die "$PYTHON does not run: install python3 (apt-get install python3-venv)"
    local expected=""
    case "$CODENAME" in
    bookworm) expected=3.11 ;;
    trixie) expected=3.13 ;;
    *) say "warning: ${CODENAME:-this system} is neither Raspberry Pi OS Bookworm nor Trixie: untested" ;;
    esac
    [ -z "$expected" ] || [ "$expected" = "$PYVER" ] ||
        say "warning: $CODENAME ships Python $expected but $PYTHON is $PYVER"
    case "$PYVER" in 3.1[1-9] | 3.[2-9][0-9]) ;; *) die "moodcam needs Python 3.11 or later (Bookworm or newer); $PYTHON is $PYVER" ;; esac

    NUMPY_PIN=""
    case "$ARCH" in
    aarch64 | x86_64)
        EXTRA=litert
        RUNTIME=ai-edge-litert
        ;;
    armv7l)
        # ai-edge-litert has no 32-bit ARM wheels; tflite-runtime's last release (2.14) has
        # armv7l wheels for CPython 3.8-3.11 only, built against numpy 1.x.
        [ "$PYVER" = 3.11 ] ||
            die "32-bit Raspberry Pi OS with Python $PYVER: no TFLite runtime exists for it (tflite-runtime stops at Python 3.11, ai-edge-litert is 64-bit only). Install 64-bit Raspberry Pi OS."
        EXTRA=tflite-runtime
        RUNTIME=tflite-runtime
        NUMPY_PIN="tflite-runtime is built against numpy 1.x"
        ;;
    armv6l)
        die "ARMv6 (Pi Zero, Pi 1): neither tflite-runtime nor ai-edge-litert publish ARMv6 wheels. Use a Pi 3, 4 or 5 with 64-bit Raspberry Pi OS."
        ;;
    *) die "unsupported architecture $ARCH: moodcam runs on aarch64, armv7l or x86_64" ;;
    esac
    if [ "$CODENAME" = bookworm ]; then
        # picamera2 -> python3-simplejpeg from apt, compiled against Bookworm's numpy 1.24: a
        # numpy 2 in the venv would shadow it and break `import picamera2`.
        NUMPY_PIN="${NUMPY_PIN:+$NUMPY_PIN; }Bookworm's apt simplejpeg (picamera2) is built against numpy 1.x"
    fi
    say "system: ${CODENAME:-unknown} $ARCH, Python $PYVER"
    say "runtime: $RUNTIME (pip extra [$EXTRA])"
    say "numpy<2: ${NUMPY_PIN:-no}"
}

# ------------------------------------------------------------------------------------ steps
install_apt() {
    # python3-venv: ensurepip for the venv. picamera2 and libcamera come from Raspberry Pi's
    # archive, built for its kernel: pip's picamera2 would need libcap-dev and a compiler for
    # python-prctl and still lack libcamera's bindings. lgpio is gpiozero's pin driver on
    # Bookworm and the only one on a Pi 5. OpenCV comes from pip (headless, <5), not apt.
    local want=(python3 python3-venv python3-picamera2 python3-libcamera python3-lgpio)
    local have=() missing=() pkg
    run apt-get update -qq
    for pkg in "${want[@]}"; do
        if apt-cache show "$pkg" >/dev/null 2>&1; then have+=("$pkg"); else missing+=("$pkg"); fi
    done
    [ ${#missing[@]} = 0 ] ||
        say "warning: not in this system's apt sources: ${missing[*]} (not Raspberry Pi OS?); a USB camera through OpenCV still works"
    # --no-install-recommends: picamera2 recommends a Qt/OpenGL preview stack a headless sensor never uses.
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${have[@]}"
}

ensure_user() {
    local g
    for g in video gpio; do
        if ! getent group "$g" >/dev/null; then
            # The unit names both in SupplementaryGroups=; a missing group would stop it starting.
            say "group $g does not exist (not Raspberry Pi OS?): creating it"
            run groupadd --system "$g"
            CREATED_GROUPS+=("$g")
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        [ "$(id -u "$SERVICE_USER")" != 0 ] || die "the account $SERVICE_USER has uid 0: moodcam does not run as root"
        run usermod -a -G video,gpio "$SERVICE_USER"
    else
        run useradd --system --user-group --groups video,gpio --home-dir /var/lib/moodcam \
            --no-create-home --shell /usr/sbin/nologin --comment "moodcam mood sensor" "$SERVICE_USER"
    fi
}

venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        grep -qx 'include-system-site-packages = true' "$VENV/pyvenv.cfg" 2>/dev/null &&
        [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$PYVER" ] &&
        { [ "$DO_PIP" = 0 ] || "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }
}

install_venv() {
    run install -d -m 0755 "$PREFIX"
    if venv_ok; then
        say "reusing $VENV"
    else
        # Absent, broken, or from an older Python (after an OS upgrade): build it afresh.
        [ ! -e "$VENV" ] || run rm -rf "$VENV"
        local venv_args=(--system-site-packages)
        [ "$DO_PIP" = 1 ] || venv_args+=(--without-pip)
        run "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
    fi
    if [ "$DO_PIP" = 0 ]; then
        say "--no-pip: moodcam and its dependencies are not installed into $VENV"
        return
    fi
    # Never compile these on a Pi (hours, then out of memory): a wheel or a clear failure.
    local binary_only="numpy,opencv-python-headless,ai-edge-litert,tflite-runtime"
    local pip_args=(install --disable-pip-version-check --prefer-binary "--only-binary=$binary_only")
    if [ -n "$NUMPY_PIN" ]; then
        # opencv-python-headless 4.12 and later require numpy 2: without the second line pip
        # downloads each newer OpenCV wheel (about 60 MB apiece) to find that out, ~240 MB
        # for nothing on a Pi's link (seen in make vm-test's install step on Bookworm).
        run_write "$PREFIX/constraints.txt" "numpy<2" "opencv-python-headless<4.12"
        pip_args+=(--constraint "$PREFIX/constraints.txt")
    else
        run rm -f "$PREFIX/constraints.txt"
    fi
    # Build from a copy, so a root-owned build/ never lands in the maker's checkout.
    local src=$REPO
    if [ "$DRY" = 0 ]; then
        BUILD_DIR=$(mktemp -d)
        cp -R "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/device" "$BUILD_DIR/"
        src=$BUILD_DIR
    fi
    # report: `moodcam report --format png` (matplotlib) and FHIR validation on the device;
    # web: `moodcam web`, the dashboard (moodcam-web.service).
    if ! run "$VENV/bin/python" -m pip "${pip_args[@]}" "${src}[$EXTRA,report,web]"; then
        die "pip could not install moodcam with $RUNTIME for Python $PYVER on $ARCH (see above). On 32-bit Raspberry Pi OS OpenCV wheels come only from piwheels; 64-bit Raspberry Pi OS is the supported system."
    fi
}

run_append() {
    if [ "$DRY" = 1 ]; then
        printf '+ append %q <<< %q\n' "$1" "$2"
    else
        printf '%s\n' "$2" >>"$1"
    fi
}

# Write a small file, one argument a line (dry-run aware).
run_write() {
    if [ "$DRY" = 1 ]; then
        printf '+ write %q <<<' "$1"
        printf ' %q' "${@:2}"
        printf '\n'
    else
        printf '%s\n' "${@:2}" >"$1"
    fi
}

install_files() {
    run install -d -m 0755 "$MODELS"
    local f found=0
    for f in "$REPO"/models/*.tflite "$REPO"/models/*.json; do
        [ -e "$f" ] || continue
        run install -m 0644 "$f" "$MODELS/"
        found=1
    done
    [ "$found" = 1 ] || die "no model in $REPO/models"
    run install -m 0644 "$REPO/README.md" "$PREFIX/README.md"
    run install -m 0644 "$CONFIG_SRC" "$PREFIX/moodcam.toml.default"

    # The config may name password files and hold a broker user: not world-readable.
    local owner=()
    [ "$DO_USER" = 0 ] || owner=(-o root -g "$SERVICE_USER")
    run install -d -m 0750 "${owner[@]}" "$ETC"
    # Groups made here (off Raspberry Pi OS) are the installer's to remove: --purge reads this.
    local g
    for g in "${CREATED_GROUPS[@]}"; do
        grep -qx "$g" "$GROUPS_FILE" 2>/dev/null || run_append "$GROUPS_FILE" "$g"
    done
    if [ -e "$CONFIG" ]; then
        say "kept your $CONFIG (this version's defaults: $PREFIX/moodcam.toml.default)"
        # Yours to edit, but it names password files and the broker user: no access for others,
        # and the service may read it, never rewrite it.
        if [ -n "$(find "$CONFIG" -maxdepth 0 -perm /0027 2>/dev/null)" ]; then
            say "warning: $CONFIG was writable by its group or open to other users: now 0640 at most"
            run chmod o-rwx,g-w "$CONFIG"
        fi
    else
        run install -m 0640 "${owner[@]}" "$CONFIG_SRC" "$CONFIG"
        [ "$DRY" = 1 ] || say "wrote $CONFIG"
    fi

    [ "$DO_USER" = 0 ] || owner=(-o "$SERVICE_USER" -g "$SERVICE_USER")
    run install -d -m 0750 "${owner[@]}" "$STATE"

    run install -d -m 0755 "$UNIT_DIR"
    run install -m 0644 "$UNIT_SRC" "$UNIT"
    run install -m 0644 "$WEB_UNIT_SRC" "$WEB_UNIT"
}

# Belt and braces: umask 022 covers what this script creates; this catches what an older
# version, a hand edit or a careless `pip install` left world-writable under our paths.
fix_world_writable() {
    local p
    while IFS= read -r -d '' p; do
        say "warning: $p was world-writable: fixed"
        run chmod o-w "$p"
    done < <(find "$PREFIX" "$ETC" "$STATE" "$UNIT" "$WEB_UNIT" -xdev ! -type l -perm -0002 -print0 2>/dev/null)
}

check_config() {
    # The new code reads the old config: say now, not at the next boot, if a key went away.
    [ "$DO_PIP" = 1 ] && [ "$DRY" = 0 ] || return 0
    local as=()
    [ "$DO_USER" = 0 ] || as=(runuser -u "$SERVICE_USER" --)
    if ! "${as[@]}" "$VENV/bin/python" -c 'import sys; from moodcam import config; config.load(sys.argv[1])' "$CONFIG"; then
        say "warning: $CONFIG is not valid for this version (see above); the service will not start until it is fixed"
    fi
}

start_service() {
    if [ "$DO_SYSTEMCTL" = 0 ]; then
        say "--no-systemctl: not enabling the service"
        return
    fi
    if [ -n "$ROOT" ]; then
        run systemctl --root="$ROOT" enable moodcam.service moodcam-web.service
        return
    fi
    if ! systemd_running; then
        run systemctl enable moodcam.service moodcam-web.service
        say "systemd is not running here (container or chroot): enabled, not started"
        return
    fi
    run systemctl daemon-reload
    run systemctl enable moodcam.service moodcam-web.service
    # The dashboard first: it does not wait for the camera, and works while the daemon fails.
    if run systemctl restart moodcam-web.service; then
        say "the dashboard: ssh -L 8080:127.0.0.1:8080 <this Pi>, then open http://127.0.0.1:8080/"
    else
        say "moodcam-web did not start: see journalctl -u moodcam-web -e"
    fi
    # restart, not enable --now: an upgrade must replace the running old code. Type=notify makes
    # this wait until the daemon is ready (model loaded, first frame) or has failed.
    if run systemctl restart moodcam.service; then
        say "moodcam is running: journalctl -u moodcam -f"
    else
        say "moodcam did not start: see journalctl -u moodcam -e, and run: sudo -u moodcam $VENV/bin/moodcam doctor --config $CONFIG"
        exit 1
    fi
}

uninstall() {
    if [ "$DO_SYSTEMCTL" = 1 ]; then
        if [ -n "$ROOT" ]; then
            [ ! -e "$UNIT" ] || run systemctl --root="$ROOT" disable moodcam.service
            [ ! -e "$WEB_UNIT" ] || run systemctl --root="$ROOT" disable moodcam-web.service
        elif systemd_running; then
            run systemctl disable --now moodcam.service || true
            run systemctl disable --now moodcam-web.service || true
        else
            [ ! -e "$UNIT" ] || run systemctl disable moodcam.service
            [ ! -e "$WEB_UNIT" ] || run systemctl disable moodcam-web.service
        fi
    fi
    run rm -f "$UNIT" "$WEB_UNIT"
    run rm -rf "$PREFIX"
    if [ "$PURGE" = 1 ]; then
        local created=() g
        [ ! -f "$GROUPS_FILE" ] || mapfile -t created <"$GROUPS_FILE"
        # Drop-ins made with `systemctl edit moodcam` are configuration too.
        run rm -rf "$UNIT_DIR/moodcam.service.d" "$UNIT_DIR/moodcam-web.service.d" "$ETC" "$STATE"
        if [ "$DO_USER" = 1 ] && id -u "$SERVICE_USER" >/dev/null 2>&1; then
            run userdel "$SERVICE_USER"
        fi
        # The groups the installer created, unless someone else has joined them since (make
        # vm-test's uninstall step found gpio left behind on Debian).
        for g in "${created[@]}"; do
            if [ "$DO_USER" = 0 ] || ! getent group "$g" >/dev/null; then continue; fi
            if [ -z "$(getent group "$g" | cut -d: -f4)" ]; then
                run groupdel "$g"
            else
                say "kept group $g: it has members ($(getent group "$g" | cut -d: -f4))"
            fi
        done
    fi
    if [ "$DO_SYSTEMCTL" = 1 ] && systemd_running; then
        run systemctl daemon-reload
        run systemctl reset-failed moodcam.service moodcam-web.service 2>/dev/null || true
    fi
    if [ "$DRY" = 1 ]; then
        say "dry run: nothing was changed"
    elif [ "$PURGE" = 1 ]; then
        say "removed moodcam, its config and its mood log"
    else
        say "removed moodcam; kept $ETC (config) and $STATE (mood log): --purge removes them"
    fi
}

BUILD_DIR=""
cleanup() { [ -z "$BUILD_DIR" ] || rm -rf "$BUILD_DIR"; }
trap cleanup EXIT

if [ "$MODE" = uninstall ]; then
    uninstall
    exit 0
fi
check_sources
plan
[ "$DO_APT" = 0 ] || install_apt
[ "$DO_USER" = 0 ] || ensure_user
install_venv
install_files
fix_world_writable
check_config
start_service
if [ "$DRY" = 1 ]; then
    say "dry run: nothing was changed"
else
    say "installed: config $CONFIG, mood log in $STATE, unit $UNIT"
fi
