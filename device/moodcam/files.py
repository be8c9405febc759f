"""Reading the files a user names (config, model, model card, password files, images).

A device node, a FIFO or a multi-gigabyte file named by mistake is refused by what it is, before
a byte is read: /dev/zero would otherwise be read until memory runs out (2-3 GB, then
MemoryError), a FIFO would block forever, and opening some devices has effects of its own (a
watchdog device starts its timer), so nothing but a regular file is even opened.

Paths that are not valid UTF-8 (a name copied from a FAT stick or a camera: ``face\\xff.png``)
reach Python as str with surrogate escapes; OpenCV's path arguments crash on them (SIGSEGV in
VideoCapture and imread), so `opencv_path` says so before OpenCV sees one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

# A config, a card or a password file is a few kilobytes; anything past this is another file.
MAX_TEXT_BYTES = 1 << 20
MAX_IMAGE_BYTES = 512 * 2**20  # an uncompressed 64 MP BGR TIFF is 192 MiB


class FileRefused(ValueError):
    """The path exists but is not a file of the kind asked for; str(e) is the reason alone."""


def describe_kind(mode: int) -> str:
    """Why a stat mode is not a file to read, in a user's words."""
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a regular file (a device)"
    if stat.S_ISFIFO(mode):
        return "not a regular file (a FIFO)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket)"
    return "not a regular file"


def check_regular(
    path: str | os.PathLike[str], limit: int | None = None, what: str = "such a file"
) -> os.stat_result:
    """stat(path), FileRefused unless it is a regular file of at most `limit` bytes (`what` names
    the kind in the message); OSError (FileNotFoundError, PermissionError...) as os.stat raises."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(describe_kind(st.st_mode))
    if limit is not None and st.st_size > limit:
        raise FileRefused(f"file too large for {what} ({_size(st.st_size)})")
    return st


def read_regular(path: str | os.PathLike[str], limit: int, what: str = "such a file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see the module docstring).

    FileRefused for anything else; OSError as open/read raise it. The file is checked again once
    open (it may have been replaced in between) and never read past `limit`."""
    check_regular(path, limit, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(describe_kind(st.st_mode))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"file too large for {what} (over {_size(limit)})")
    return data


def read_text(path: str | os.PathLike[str], what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """`read_regular` decoded as UTF-8 (UnicodeDecodeError, a ValueError, if it is not)."""
    return read_regular(path, limit, what).decode("utf-8")


# Files that hold personal data (who was in view and how they seemed to feel: the mood log, face
# crops, reports) are private to the service's user and group, whatever the umask.
PRIVATE_FILE = 0o640
PRIVATE_DIR = 0o750


def open_private(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for writing (created or truncated) with mode PRIVATE_FILE or stricter,
    whatever the umask or the old file's mode; never a moment with more.

    Only a regular file (or a new one): FileRefused for a device, FIFO or folder, checked before
    the open (a FIFO without a reader would block it) and again on what was opened. Narrowing
    the mode of /dev/null, as root, took it from every other user."""
    check_output(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped in after the check
            raise FileRefused(describe_kind(st.st_mode))
        os.set_blocking(fd, True)
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "wb")


def check_output(path: str | os.PathLike[str]) -> None:
    """FileRefused if `path` exists and is not a regular file: an output moodcam writes (a report,
    figures, a summary) never replaces, truncates or re-modes a device, FIFO or folder. As root,
    `report --out /dev/null` replaced /dev/null with a regular file."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(describe_kind(st.st_mode))


def private_folder(path: str | os.PathLike[str]) -> None:
    """Create folder `path` (and its parents) if missing; its mode PRIVATE_DIR or stricter."""
    Path(path).mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & ~PRIVATE_DIR:
        os.chmod(path, mode & PRIVATE_DIR)


def opencv_path(path: str | os.PathLike[str]) -> str:
    """`path` as a str OpenCV can take; FileRefused if its name is not valid UTF-8 (see the
    module docstring)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FileRefused(
            "its name is not valid UTF-8, which OpenCV cannot open (rename it)"
        ) from None
    return text


def shown(path: str | os.PathLike[str]) -> str:
    """A path for a message: bytes that are not UTF-8 shown as \\xNN and characters that are
    not printable (a newline) escaped, so the line can be printed and stays one line."""
    return printable(os.fsencode(Path(path)).decode("utf-8", "backslashreplace"))


def printable(text: str) -> str:
    """`text` with each character that is not printable as its Python escape (\\n, \\x1b)."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"
