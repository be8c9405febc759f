"""What moodcam.service's sandbox lets a process do, seen from inside it (.ci/vm-scenario's sandbox
step runs this as an ExecStartPre= of the unit, so it gets the unit's user, namespaces, device
policy, seccomp filter and capabilities). Standard library only; prints one line:

    VMPROBE {"allowed": {...}, "denied": {...}, "status": {...}}

`allowed` must all be true (what the daemon needs), `denied` must all be true (the attempt failed).
Exits 0 whatever it finds, so the service still starts; the scenario judges the line.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys

STATE = "/var/lib/moodcam"


def opens(path: str, flags: int) -> bool:
    try:
        os.close(os.open(path, flags))
    except OSError:
        return False
    return True


def writes(folder: str) -> bool:
    path = os.path.join(folder, f".vm-probe-{os.getpid()}")
    try:
        with open(path, "x") as f:
            f.write("x")
    except OSError:
        return False
    os.unlink(path)
    return True


def socket_opens(family: int, kind: int) -> bool:
    try:
        socket.socket(family, kind).close()
    except OSError:
        return False
    return True


def mount_refused() -> bool:
    """mount(2) is outside @system-service: the filter answers EPERM (SystemCallErrorNumber)."""
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
    return rc != 0 and ctypes.get_errno() == errno.EPERM


def status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    keep = ("Uid", "Groups", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp")
    return {k: fields.get(k, "").strip() for k in keep}


def main() -> int:
    allowed = {
        "open /dev/video0 rw": opens("/dev/video0", os.O_RDWR),
        f"write {STATE}": writes(STATE),
        "write /tmp (private)": writes("/tmp"),
        "read /etc/moodcam/moodcam.toml": opens("/etc/moodcam/moodcam.toml", os.O_RDONLY),
        "socket AF_INET": socket_opens(socket.AF_INET, socket.SOCK_STREAM),
    }
    denied = {
        "open /dev/mem": not opens("/dev/mem", os.O_RDONLY),
        "open /dev/vda": not opens("/dev/vda", os.O_RDONLY),
        "open /dev/kmsg": not opens("/dev/kmsg", os.O_RDONLY),
        "write /etc/moodcam": not writes("/etc/moodcam"),
        "write /opt/moodcam": not writes("/opt/moodcam"),
        "write /usr/local": not writes("/usr/local"),
        "write /var/log": not writes("/var/log"),
        "read /root": not os.access("/root", os.R_OK) or not os.listdir("/root"),
        "see pid 1 in /proc": not os.path.exists("/proc/1/cmdline"),
        "socket AF_PACKET": not socket_opens(socket.AF_PACKET, socket.SOCK_RAW),
        "mount(2)": mount_refused(),
    }
    print("VMPROBE " + json.dumps({"allowed": allowed, "denied": denied, "status": status()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
