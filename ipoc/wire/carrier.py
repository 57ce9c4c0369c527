"""TLS bytes carried in ``POST /runtime_manager`` bodies (client side).

Request body: ``"<session_id> <base64>"``; session id 0 opens a session.
Reply body: ``"<session_id> <b64> <b64> ..."`` or empty. The Veracruz server
(actix-web) rejects text bodies over 256 KiB, so the TLS bytes are cut into
posts whose whole body, base64 included, stays below that.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import socket
from urllib.parse import urlsplit

MAX_BODY = 256 * 1024
# Largest raw chunk whose base64 (4/3, rounded up to 4) plus "<sid> " stays under MAX_BODY.
MAX_RAW_PER_POST = ((MAX_BODY - 64) // 4) * 3


class CarrierError(Exception):
    """The HTTP exchange failed; ``status`` is the HTTP status or None when nothing came back."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def split_url(server_url: str) -> tuple[str, int]:
    """``host:port`` (the policy's ``veracruz_server_url``) or an http URL → (host, port)."""
    parts = urlsplit(server_url if "://" in server_url else f"http://{server_url}")
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"veracruz_server_url {server_url!r} must be host:port")
    return parts.hostname, parts.port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections there (a runtime opens its port only once attested)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def encode_body(session_id: int, data: bytes) -> bytes:
    return f"{session_id} ".encode() + base64.b64encode(data)


def decode_reply(body: bytes) -> tuple[int | None, bytes]:
    """Parse a reply body into (session id or None when empty, concatenated TLS bytes)."""
    items = body.split()
    if not items:
        return None, b""
    try:
        session_id = int(items[0])
        return session_id, b"".join(binascii.a2b_base64(item, strict_mode=True) for item in items[1:])
    except (ValueError, binascii.Error) as exc:
        raise CarrierError(f"malformed runtime reply: {exc}") from None


class HttpCarrier:
    """One keep-alive HTTP connection to a runtime's ``/runtime_manager`` endpoint."""

    def __init__(self, server_url: str, *, timeout: float = 60.0) -> None:
        self.host, self.port = split_url(server_url)
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.posts = 0

    def exchange(self, session_id: int, data: bytes) -> tuple[int, bytes]:
        """POST one body of at most :data:`MAX_RAW_PER_POST` TLS bytes; return the reply."""
        if len(data) > MAX_RAW_PER_POST:
            raise ValueError(f"{len(data)} bytes exceed one post's {MAX_RAW_PER_POST}-byte budget")
        if not data:
            raise ValueError("nothing to send: veracruz-server refuses a body without TLS bytes")
        body = encode_body(session_id, data)
        # No retry: a post the runtime may have fed to TLS cannot be replayed safely.
        try:
            conn = self._connection()
            conn.request("POST", "/runtime_manager", body=body, headers={"Content-Type": "text/plain"})
            reply = conn.getresponse()
            payload = reply.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise CarrierError(f"cannot reach runtime at {self.host}:{self.port}: {exc}") from None
        self.posts += 1
        if reply.status != 200:
            text = payload.decode("utf-8", "replace").strip()
            raise CarrierError(f"runtime answered HTTP {reply.status}: {text}", status=reply.status, body=text)
        reply_sid, tls_bytes = decode_reply(payload)
        return (session_id if reply_sid is None else reply_sid), tls_bytes

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self._timeout)
            self._conn.connect()
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
