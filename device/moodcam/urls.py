"""URLs in moodcam's settings: the MQTT broker's, parsed and checked in one place (config
validation at start, the MQTT sink, `moodcam playlist --mqtt`), a source's ``file://`` URL, and
any URL made safe for logs.

A password never belongs in a URL here: it ends up in shell history, ps output and config files,
so it comes from a password file instead, and a URL that carries one is refused. Messages show
a URL with its password part replaced by ``***``, never the password.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit, urlunsplit

MQTT_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# A host name's letters (any script: IDNA), digits, dots, hyphens and underscores; or an IPv6
# address, with its zone (fe80::1%eth0). No blanks, controls or URL punctuation.
HOST_CHARS = re.compile(r"[\w.-]+|[0-9a-fA-F:.]+(%[\w.-]+)?")


@dataclass(frozen=True)
class BrokerAddress:
    """A parsed broker URL. Holds no password: that only ever comes from a file."""

    tls: bool
    host: str
    port: int
    username: str  # from the URL; "" if none

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def redact_url(url: str) -> str:
    """`url` with everything between the user name and the last ``@`` of its network location
    (what urllib calls the password) replaced by ``***``; other URLs unchanged. Never fails:
    it is used in messages about URLs that did not parse."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced "[" in the host; say nothing of what follows "//"
        head, sep, _ = url.partition("//")
        return head + sep + "***" if sep else url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://[user@]host[:port]`` or ``mqtts://...``; ValueError with one line if bad."""

    def bad(why: str) -> ValueError:
        return ValueError(
            f"bad MQTT URL {redact_url(url)!r}: {why} "
            "(expected mqtt://[user@]host[:port] or mqtts://[user@]host[:port])"
        )

    if any(c.isspace() or not c.isprintable() for c in url.strip()):
        # urllib drops tabs and newlines from a URL without a word: "ho\tst" would be "host".
        raise bad("a blank or control character in it")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a non-number or out-of-range port
    except ValueError as e:
        raise bad(f"not a URL ({e})") from None
    scheme = parts.scheme.lower()
    if parts.password is not None:
        raise bad("put the password in [mqtt] password_file, not in the URL")
    if scheme not in MQTT_DEFAULT_PORTS:
        raise bad(f"scheme must be mqtt or mqtts, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise bad("no host")
    if not HOST_CHARS.fullmatch(parts.hostname):
        # urllib takes "my host" as a host name; the broker would only fail later, out of sight.
        raise bad(f"host {parts.hostname!r} is not a host name or IP address")
    if port == 0:
        raise bad("port 0")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("unexpected path or query")
    return BrokerAddress(
        tls=scheme == "mqtts",
        host=parts.hostname,
        port=port or MQTT_DEFAULT_PORTS[scheme],
        username=unquote(parts.username or ""),
    )


def has_password(url: str) -> bool:
    """Whether `url` carries a password (user:password@host); False for what does not parse."""
    try:
        return urlsplit(url.strip()).password is not None
    except ValueError:
        return False


def with_password(url: str, password: str) -> str:
    """`url` with `password` put after its user name (from a password file, at open time only:
    the URL with it never reaches a message or the command line)."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo}:{quote(password, safe='')}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_file_url(uri: str) -> bool:
    """Whether `uri` is a ``file:`` URL (a path to pass through `file_url_path`)."""
    return uri[:5].lower() == "file:"


def file_url_path(url: str) -> str:
    """The local path of ``file:///path`` or ``file://localhost/path`` (percent-escapes decoded
    as bytes, so any file name can be named); ValueError with one line for another host. As a
    path, ``file:///x`` would be the relative path ``file:/x``."""
    parts = urlsplit(url)
    if parts.netloc.lower() not in ("", "localhost"):
        raise ValueError(
            f"{url}: the host {parts.netloc!r} is not on this machine (a file URL is file:///path)"
        )
    return os.fsdecode(unquote_to_bytes(parts.path))
