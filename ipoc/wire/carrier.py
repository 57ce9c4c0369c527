"""TLS bytes carried in ``POST /runtime_manager`` bodies (client side).

Request body: ``"<session_id> <base64>"``; session id 0 opens a session.
Reply body: ``"<session_id> <b64> <b64> ..."`` or empty. The Veracruz server
(actix-web) rejects text bodies over 256 KiB, so the TLS bytes are cut into
posts whose whole body, base64 included, stays below that.
"""

from __future__ import annotations

import binascii
import http.client
import io
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import pybase64

from ipoc.wire.framing import Buffer

MAX_BODY = 256 * 1024
# Largest raw chunk whose base64 (4/3, rounded up to 4) plus "<sid> " stays under MAX_BODY.
MAX_RAW_PER_POST = ((MAX_BODY - 64) // 4) * 3
# Posts in flight on the connection before the oldest reply is read (HTTP/1.1 pipelining): room for a
# streamed chunk's posts (about six per MiB) and the next chunk's, sent early (see after_sending).
DEFAULT_PIPELINE = 16
_MAX_LINE, _MAX_HEADERS = 65536, 100
# The largest reply read: a whole file of the enclave's (2 GiB by default) as base64 TLS records, with room.
# A reply is read as it arrives, never allocated from its announced length (which a hostile server picks).
MAX_REPLY = 4 << 30
_READ_STEP = 1 << 20
_RECORD_HEADER = 5  # TLS record: type, version (2), length (2)


def _read_up_to(reader: io.BufferedReader, length: int) -> bytes:
    """At most ``length`` bytes, fewer when the stream ends first; memory grows with what was received."""
    if length <= _READ_STEP:
        return reader.read(length)
    received = bytearray()
    while len(received) < length:
        piece = reader.read(min(_READ_STEP, length - len(received)))
        if not piece:
            break
        received += piece
    return bytes(received)


def _check_posts(chunks: Sequence[Buffer]) -> None:
    for data in chunks:
        if len(data) > MAX_RAW_PER_POST:
            raise ValueError(f"{len(data)} bytes exceed one post's {MAX_RAW_PER_POST}-byte budget")
        if not len(data):
            raise ValueError("nothing to send: veracruz-server refuses a body without TLS bytes")


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


def record_posts(data: Buffer, budget: int) -> list[memoryview]:
    """``data`` (TLS records) cut into posts of whole records, each at most ``budget`` bytes where records allow.

    A record is never cut: one larger than ``budget`` goes alone (TLS records
    stay under 17 KB, far below :data:`MAX_RAW_PER_POST`). A record split
    across posts is one the runtime must hold until its rest comes, which a
    stranger who knows the session id can then try to crowd out; whole
    records are authenticated the moment they arrive. Bytes that do not parse
    as records (never from our TLS stack) are cut at ``budget``.
    """
    view = memoryview(data).cast("B")
    posts: list[memoryview] = []
    start = position = 0
    while position < len(view):
        whole = len(view) - position >= _RECORD_HEADER
        end = position + _RECORD_HEADER + int.from_bytes(view[position + 3 : position + 5], "big") if whole else 0
        if not whole or end > len(view):
            if position > start:
                posts.append(view[start:position])
            return posts + [view[cut : cut + budget] for cut in range(position, len(view), budget)]
        if end - start > budget and position > start:
            posts.append(view[start:position])
            start = position
        position = end
    if start < len(view):
        posts.append(view[start:])
    return posts


def encode_body_parts(session_id: int, data: Buffer) -> tuple[bytes, bytes]:
    """A post's body as its two parts, ``b"<session_id> "`` and the base64 of ``data``."""
    return b"%d " % session_id, pybase64.b64encode(data)


def encode_body(session_id: int, data: Buffer) -> bytes:
    """A post's body, ``"<session_id> <base64>"``."""
    return b"".join(encode_body_parts(session_id, data))


def decode_reply(body: bytes) -> tuple[int | None, bytes]:
    """Parse a reply body into (session id or None when empty, concatenated TLS bytes)."""
    items = body.split()
    if not items:
        return None, b""
    try:
        session_id = int(items[0])
        return session_id, b"".join(pybase64.b64decode(item, validate=True) for item in items[1:])
    except (ValueError, binascii.Error) as exc:
        raise CarrierError(f"malformed runtime reply: {exc}") from None


class HttpCarrier:
    """One keep-alive HTTP/1.1 connection to a runtime's ``/runtime_manager`` endpoint.

    :meth:`exchange_all` keeps up to ``pipeline`` posts in flight (HTTP/1.1
    pipelining): replies come back in request order, so a server that answers
    one request at a time (veracruz-server's global lock) sees exactly the
    sequence it would see from one post at a time, only without the client's
    wait between posts. Replies to writes are a few bytes, so the server never
    blocks writing while we send.
    """

    def __init__(self, server_url: str, *, timeout: float = 60.0, pipeline: int = DEFAULT_PIPELINE) -> None:
        if pipeline < 1:
            raise ValueError("pipeline must be at least 1 post in flight")
        self.host, self.port = split_url(server_url)
        self._timeout = timeout
        self._pipeline = pipeline
        self._sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None
        self._head = (
            f"POST /runtime_manager HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
        ).encode()
        self.posts = 0
        self._after_sent: Callable[[], Sequence[Buffer]] | None = None
        # Posts of the next request sent early (see after_sending) whose replies the next exchange reads
        # first, and those the window had no room for, which it sends first.
        self._unread = 0
        self._early: list[Buffer] = []
        self._lost = False  # the connection ended with posts sent early on it unanswered (until close())

    def after_sending(self, work: Callable[[], Sequence[Buffer]]) -> None:
        """Run ``work`` once, when the next exchange's posts are all sent and before its replies are
        awaited: the client prepares its next request while the runtime handles this one. ``work``
        must not raise; it is dropped if the exchange fails before that.

        The posts ``work`` returns are sent at once, after the exchange's own, and their replies are
        left to the next exchange, which reads them first (a failure among them is its failure):
        they must belong to the next request and must not complete it, so that the runtime, which
        acts on a message only once it is whole, has work queued while the client waits for this
        exchange's replies, yet acts on the next request only once its last post is sent, after
        this one was answered."""
        self._after_sent = work

    def exchange(self, session_id: int, data: Buffer) -> tuple[int, bytes]:
        """POST one body of at most :data:`MAX_RAW_PER_POST` TLS bytes; return the reply."""
        return self.exchange_all(session_id, [data])

    def exchange_all(self, session_id: int, chunks: Sequence[Buffer]) -> tuple[int, bytes]:
        """POST each chunk in order on one connection, pipelined; return the session id and all
        reply bytes in order. Posts the previous exchange sent early (:meth:`after_sending`) come
        first: their replies, then any of them the window had no room for, go before ``chunks``.
        Every reply is awaited and its status checked before this returns, but those of the posts
        sent early now; the first failure is raised (later posts of the session fail after it, not
        before it)."""
        _check_posts(chunks)
        if session_id == 0 and (self._unread or self._early):
            raise ValueError("a new session cannot start while posts of this one await sending or replies")
        if self._lost:
            self._after_sent = None
            raise CarrierError(
                "the runtime closed the connection while posts of this request were on it, unanswered; "
                "they cannot be sent again (TLS has counted them): the session cannot go on"
            )
        work, self._after_sent = self._after_sent, None
        replies: list[bytes] = []
        failure: CarrierError | None = None
        broken: Exception | None = None  # a send failed: read what the server said before it closed
        # ``received`` counts from the early posts' replies still to read; all of ``posts`` up to
        # ``awaited`` are this exchange's, the ones ``work`` adds after them are sent early.
        posts, self._early = [*self._early, *chunks], []
        sent, received, awaited = 0, -self._unread, len(posts)
        self._unread = 0
        # No retry: a post the runtime may have fed to TLS cannot be replayed safely.
        try:
            sock = self._connection()
            if session_id == 0 and len(posts) > 1:  # the first reply names the session: wait for it
                session_id, first = self.exchange_all(0, posts[:1])
                replies.append(first)
                posts, awaited, sock = posts[1:], awaited - 1, self._connection()
            while True:
                going = failure is None and broken is None
                # (early posts wait for the next exchange once the server has closed the connection)
                open_to_send = sent < awaited or self._sock is not None
                if going and sent < len(posts) and sent - received < self._pipeline and open_to_send:
                    try:
                        self._send(sock, session_id, posts[sent])
                    except OSError as exc:  # e.g. the server refused an earlier post and closed
                        broken = exc
                        continue
                    sent += 1
                    if sent == awaited and work is not None:
                        run, work = work, None
                        early = run()
                        _check_posts(early)
                        posts += early
                    continue
                # This exchange's replies, or after a failure every reply in flight (or the connection's end).
                if received >= sent or (going and received >= awaited):
                    break
                status, payload = self._receive()
                received += 1
                self.posts += 1
                if failure is None and status != 200:
                    text = payload.decode("utf-8", "replace").strip()
                    failure = CarrierError(f"runtime answered HTTP {status}: {text}", status=status, body=text)
                elif failure is None:
                    reply_sid, tls_bytes = decode_reply(payload)
                    session_id = session_id if reply_sid is None else reply_sid
                    replies.append(tls_bytes)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: a malformed length
            broken = broken or exc
        except BaseException:  # stopped halfway (an interrupt): which replies are on their way is unknown
            self.close()
            raise
        if failure is not None or broken is not None:
            self.close()
            if failure is not None:
                raise failure
            raise CarrierError(f"cannot reach runtime at {self.host}:{self.port}: {broken}") from None
        self._unread, self._early = sent - received, posts[sent:]
        if self._sock is None and (self._unread or self._early):
            # The server ended the connection after this exchange's last reply (Connection: close) with
            # posts sent early still unanswered: the next request cannot be completed on a new one.
            self.close()
            self._lost = True
        return session_id, b"".join(replies)

    def _send(self, sock: socket.socket, session_id: int, data: Buffer) -> None:
        """One post: head, session id and base64 go out in one system call, not joined first (which
        copied the whole body once more)."""
        prefix, body = encode_body_parts(session_id, data)
        parts = [memoryview(self._head % (len(prefix) + len(body))), memoryview(prefix), memoryview(body)]
        while parts:  # sendmsg may send part of the list: send the rest
            sent = sock.sendmsg(parts)
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = parts[0][sent:]

    def _receive(self) -> tuple[int, bytes]:
        """Read one reply from the connection's one buffered reader (pipelined replies arrive back to
        back, so a reader per reply would swallow the next one's bytes); keeps the connection
        unless the server closes it. Lean on purpose: ``http.client``'s header parser costs more per
        post than the base64 of the body."""
        reader = self._reader
        if reader is None:
            raise ConnectionError("the runtime closed the connection")
        line = reader.readline(_MAX_LINE)
        if not line:
            raise http.client.RemoteDisconnected("the runtime closed the connection without a reply")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1", "replace").strip())
        status, headers = int(parts[1]), {}
        for _ in range(_MAX_HEADERS):
            line = reader.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        else:
            raise http.client.HTTPException("too many headers in the runtime's reply")
        close = headers.get(b"connection") == b"close" or (
            parts[0] == b"HTTP/1.0" and headers.get(b"connection") != b"keep-alive"
        )
        if headers.get(b"transfer-encoding", b"identity") != b"identity":
            payload = self._read_chunked(reader)
        elif b"content-length" in headers:
            raw_length = headers[b"content-length"]
            if not raw_length.isdigit() or int(raw_length) > MAX_REPLY:
                raise http.client.HTTPException(
                    f"the runtime's reply announces a Content-Length of {raw_length[:40]!r}"
                )
            payload = _read_up_to(reader, int(raw_length))
            if len(payload) < int(raw_length):
                raise http.client.IncompleteRead(payload, int(raw_length) - len(payload))
        else:  # no length: the body ends with the connection
            payload, close = _read_up_to(reader, MAX_REPLY + 1), True
            if len(payload) > MAX_REPLY:
                raise http.client.HTTPException(f"the runtime's reply runs past {MAX_REPLY} bytes")
        if close:
            self.close()
        return status, payload

    @staticmethod
    def _read_chunked(reader: io.BufferedReader) -> bytes:
        pieces: list[bytes] = []
        while True:
            size = int(reader.readline(_MAX_LINE).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(pieces)
            if size > MAX_REPLY - sum(len(p) for p in pieces):
                raise http.client.HTTPException(f"the runtime's chunked reply runs past {MAX_REPLY} bytes")
            piece = _read_up_to(reader, size)
            if len(piece) < size:
                raise http.client.IncompleteRead(piece, size - len(piece))
            pieces.append(piece)
            reader.readline(_MAX_LINE)

    def _connection(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            reader = sock.makefile("rb", buffering=1 << 16)
            assert isinstance(reader, io.BufferedReader)  # typeshed says IOBase for a buffering size
            self._reader = reader
        return self._sock

    def close(self) -> None:
        # Posts sent early on this connection are never completed, and those unsent never sent: they go with it.
        self._unread, self._early, self._lost = 0, [], False
        if self._reader is not None:
            # The reader holds the socket open (makefile) for as long as anything holds the reader, such as
            # the traceback of the failure that closes us: close it, so the connection ends now.
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
