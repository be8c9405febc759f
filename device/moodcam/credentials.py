"""Secrets come from files, never from URLs, config values or the command line."""

from __future__ import annotations

from moodcam.files import FileRefused, read_text

MAX_PASSWORD_BYTES = 64 * 1024


def read_password_file(path: str, what: str) -> str:
    """The password in `path`, trailing newline stripped; ValueError naming `what` and the file
    (never the password)."""
    try:
        text = read_text(path, "a password file", MAX_PASSWORD_BYTES)
    except FileRefused as e:
        raise ValueError(f"{what} password_file {path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ValueError(f"{what} password_file {path}: cannot read it ({why})") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ValueError(f"{what} password_file {path}: is empty")
    return password
