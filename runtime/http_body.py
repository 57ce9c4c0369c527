"""Reading a request body by its Content-Length, shared by the runtime and the proxy attestation service
(and the local stack's servers, with the Date header they send).

Both face untrusted clients (in AWS the proxy is reachable from the runtime pods, which the Nitro model
does not trust): a body is refused on its header before a byte is read, and a client that stalls
mid-body frees its thread.
"""

from __future__ import annotations

import io
import socket
import time
from email.message import Message
from email.utils import formatdate

BODY_TIMEOUT = 60.0  # seconds a connection may stay silent in the middle of a request

_dates: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value (``email.utils.formatdate``, as http.server's), made once a second."""
    global _dates
    now = int(time.time())
    if _dates[0] != now:
        _dates = (now, formatdate(now, usegmt=True))
    return _dates[1]


def declared_length(headers: Message) -> int | None:
    """The Content-Length as a non-negative integer (0 when absent); None when malformed, negative or absurd."""
    return parse_length(headers.get("Content-Length"))


def parse_length(raw: str | None) -> int | None:
    """A Content-Length value as a non-negative integer (0 when absent); None when malformed, negative or absurd
    (over 18 digits: int() raises past 4300, and no body here comes near 10**18 bytes). Only spaces and tabs
    may surround it (RFC 9110 5.6.3): ``str.strip()`` also took form feeds and the like, which another parser
    on the way might read otherwise."""
    raw = (raw or "0").strip(" \t")
    return int(raw) if len(raw) <= 18 and raw.isascii() and raw.isdigit() else None


def read_body(connection: socket.socket, rfile: io.BufferedIOBase, length: int, timeout: float) -> bytes | None:
    """Exactly ``length`` bytes, or None when the client went away or stalled for ``timeout`` seconds."""
    connection.settimeout(timeout)
    try:
        body = rfile.read(length)
    except (TimeoutError, ConnectionError):
        return None
    finally:
        connection.settimeout(None)
    return body if len(body) == length else None
