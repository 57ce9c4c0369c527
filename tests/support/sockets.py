"""Reading raw answers in tests: a socket's timeout does not fire at end of file, so a loop that adds
``sock.recv()`` until an answer is whole would spin forever once the peer closes early. Tests that send what an
HTTP library would normalise away (two spellings of a header, a lying Content-Length, pipelined requests) read
the answers here, framed as RFC 9112 section 6.3 frames them, so each test asserts on the answer, not on where
``recv`` happened to cut the bytes."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

_NO_BODY = (204, 304)  # and every 1xx, and any answer to a HEAD (RFC 9112 6.3)


def received(sock: socket.socket, size: int = 65536) -> bytes:
    """The next bytes from ``sock``; ConnectionError when the peer has closed (instead of b"" forever)."""
    chunk = sock.recv(size)
    if not chunk:
        raise ConnectionError("the peer closed the connection before its answer was whole")
    return chunk


def until_closed(sock: socket.socket, size: int = 65536) -> bytes:
    """Every byte ``sock`` gets until the peer closes (its timeout still bounds each wait)."""
    data = b""
    while chunk := sock.recv(size):
        data += chunk
    return data


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer as it came off the wire: ``raw`` is its head (with the blank line) and body, unchanged."""

    status: int
    reason: str
    headers: list[tuple[str, str]]  # in order, names as sent, values without the surrounding blanks
    body: bytes
    raw: bytes

    @property
    def status_line(self) -> bytes:
        return self.raw.split(b"\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        """The value of the header ``name`` (any case); None when absent. Twice with two values is an error."""
        values = {value for key, value in self.headers if key.lower() == name.lower()}
        assert len(values) <= 1, f"{name} twice, with different values: {self.raw[:400]!r}"
        return values.pop() if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReader:
    """The answers on one connection, in order: the bytes that arrive past one answer (pipelined answers) are
    kept for the next, where reading each on its own would drop them."""

    def __init__(self, sock: socket.socket, size: int = 65536) -> None:
        self.sock, self.size, self.pending = sock, size, b""

    def answer(self, method: str = "GET") -> HttpAnswer:
        """The next whole answer (a 1xx interim one too); ``method`` is the request's, as HEAD's has no body."""
        while b"\r\n\r\n" not in self.pending:
            self.pending += received(self.sock, self.size)
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (status_line.split(" ", 2) + ["", ""])[:3]
        assert version.startswith("HTTP/1.") and status.isdigit(), f"not an HTTP answer: {head[:400]!r}"
        assert all(":" in line for line in lines), f"a header line without a colon: {head[:400]!r}"
        headers = [(name, value.strip(" \t")) for name, _, value in (line.partition(":") for line in lines)]
        answer = HttpAnswer(int(status), reason, headers, b"", head + b"\r\n\r\n")
        assert answer.header("Transfer-Encoding") is None, f"a chunked answer is not read here: {head[:400]!r}"
        if method == "HEAD" or answer.status < 200 or answer.status in _NO_BODY:
            body = b""
        elif (length := answer.header("Content-Length")) is None:
            body, self.pending = self.pending + until_closed(self.sock, self.size), b""
        else:
            while len(self.pending) < int(length):
                self.pending += received(self.sock, self.size)
            body, self.pending = self.pending[: int(length)], self.pending[int(length) :]
        return HttpAnswer(answer.status, reason, headers, body, answer.raw + body)


def read_http_answer(sock: socket.socket, method: str = "GET", size: int = 65536) -> HttpAnswer:
    """The one answer to the one request sent on ``sock``: bytes past it would be the server answering what
    was not asked (say, a body after a HEAD's head), so they fail the test. Pipelining reads with HttpReader."""
    reader = HttpReader(sock, size)
    answer = reader.answer(method)
    assert not reader.pending, f"bytes past the answer: {reader.pending[:400]!r}"
    return answer


def exchange(address: tuple[str, int], request: bytes, timeout: float = 10.0) -> HttpAnswer:
    """Send raw ``request`` bytes (one request) on a new connection to ``address`` and read its one answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request)
        return read_http_answer(sock, request.split(b" ", 1)[0].decode("latin-1"))
