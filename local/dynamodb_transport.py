"""The local network between the handlers and the local AWS, for DynamoDB reads: a kept-alive socket per thread.

In the local stack a handler's DynamoDB call goes over loopback HTTP to the local AWS (moto). botocore
sends it through urllib3 and ``http.client`` (a connection pool, the email parser for the answer's
headers): after the lean GetItem, that was the largest part of the API process's CPU per read (~0.3 ms
of ~1.2 ms, py-spy). Here the API processes send DynamoDB's read operations themselves over plain HTTP/1.1
on a connection each thread keeps: the same request bytes botocore prepared (signed, with its headers),
the answer handed back to botocore as it would hand it back, so the handlers' code and what they see are
unchanged. It is installed on botocore's ``before-send`` hook (where moto's in-process mock answers too),
only in the local stack, only for ``http://`` endpoints. Only reads, which may be sent twice: anything
unexpected (a refused connection, a malformed answer) returns None, and botocore sends the request itself.
"""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from local.patching import mark

READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable")
TIMEOUT = 60.0  # botocore's default connect and read timeouts
_MAX_HEAD = 65536


class _Raw:
    """What botocore reads an answer's body from (``AWSResponse.raw``): already read here."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, *_: Any, **__: Any) -> list[bytes]:
        return [self.content]

    def close(self) -> None:
        pass


class _Unusable(Exception):
    """Not an answer this reads (botocore then sends the request itself)."""


class Transport:
    """The ``before-send`` handler: one kept-alive connection per (thread, endpoint)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        url = urlsplit(request.url)
        body = request.body
        if url.scheme != "http" or url.hostname is None or request.stream_output:
            return None
        if body is None:
            body = b""
        if not isinstance(body, bytes):
            return None
        try:
            port = url.port or 80
        except ValueError:
            return None
        headers = request.headers
        if "Transfer-Encoding" in headers or "Expect" in headers:
            return None
        lines = [f"{request.method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1"]
        if "Host" not in headers:
            lines.append(f"Host: {url.netloc}")  # what http.client sends: the URL's host and port as written
        lines += [f"{_text(name)}: {_text(value)}" for name, value in headers.items()]  # as http.client writes them
        if "Content-Length" not in headers:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        endpoint = (url.hostname, port)
        for attempt in (0, 1):  # a kept connection the server closed meanwhile: once more, on a new one
            reused, sock = self._connection(endpoint)
            try:
                sock.sendall(data)
                status, answer_headers, content, close = _read_answer(sock, request.method)
            except (OSError, _Unusable) as failure:
                self._forget(endpoint)
                if attempt == 0 and reused and isinstance(failure, (ConnectionError, _Closed)):
                    continue
                return None
            if close:
                self._forget(endpoint)
            # a dict, as urllib3's HTTPHeaderDict that botocore passes (the stubs say HTTPHeaders)
            return AWSResponse(request.url, status, answer_headers, _Raw(content))  # type: ignore[arg-type]
        return None

    def _connection(self, endpoint: tuple[str, int]) -> tuple[bool, socket.socket]:
        kept: dict[tuple[str, int], socket.socket] = self._local.__dict__.setdefault("sockets", {})
        sock = kept.get(endpoint)
        if sock is not None:
            return True, sock
        sock = socket.create_connection(endpoint, timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kept[endpoint] = sock
        return False, sock

    def _forget(self, endpoint: tuple[str, int]) -> None:
        sock = self._local.__dict__.get("sockets", {}).pop(endpoint, None)
        if sock is not None:
            sock.close()


def _text(value: str | bytes) -> str:
    """A header name or value as http.client sends it (botocore gives some as bytes)."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class _Closed(_Unusable):
    """The connection ended before any byte of an answer (a kept connection the server had closed)."""


def _read_answer(sock: socket.socket, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, close) of one HTTP/1.1 answer framed by Content-Length."""
    buffer = b""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > _MAX_HEAD:
            raise _Unusable("head too large")
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise _Closed("closed") if not buffer else _Unusable("closed mid-answer")
        buffer += chunk
    lines = buffer[:end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isdigit():
        raise _Unusable(f"status line {lines[0][:40]!r}")
    status = int(code)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Unusable("malformed header")
        name, value = name.strip(), value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value  # as urllib3 joins repeats
    lowered = {name.lower(): value for name, value in headers.items()}
    if status < 200 or "transfer-encoding" in lowered:
        raise _Unusable("an interim or chunked answer")
    raw_length = lowered.get("content-length", "")
    if method == "HEAD" or status in (204, 304):
        length = 0
    elif raw_length.isdigit():
        length = int(raw_length)
    else:
        raise _Unusable("no Content-Length")
    content = buffer[end + 4 :]
    while len(content) < length:
        chunk = sock.recv(max(1 << 16, length - len(content)))
        if not chunk:
            raise _Unusable("closed mid-body")
        content += chunk
    if len(content) > length:
        raise _Unusable("more than one answer")
    close = "close" in lowered.get("connection", "").lower() or version == "HTTP/1.0"
    return status, headers, content, close


def install(session: Any) -> Transport:
    """Send DynamoDB's reads of every client ``session`` (a boto3 Session) makes from now on (idempotent)."""
    transport: Transport | None = getattr(session, "_ipoc_local_transport", None)
    if transport is None:
        transport = Transport()
        for operation in READS:
            session.events.register(f"before-send.dynamodb.{operation}", transport, unique_id=f"ipoc-local-{operation}")
        session._ipoc_local_transport = transport
    return transport


def install_for_handlers() -> None:
    """Install on the handlers' shared Session (``lambdas.shared.aws.session``) whenever it is made, a forked
    API worker's after ``aws.reset()`` included (idempotent)."""
    from lambdas.shared import aws

    made = aws.session
    if getattr(made, "_ipoc_local_transport", False):
        return

    def session() -> Any:
        current = made()
        install(current)
        return current

    session.cache_clear = made.cache_clear  # type: ignore[attr-defined]  # aws.reset() clears the made one
    mark(session, "_ipoc_local_transport")
    aws.session = session  # type: ignore[assignment]  # every client and table is made from it
