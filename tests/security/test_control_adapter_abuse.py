"""The local API adapter under hostile clients (review 3): one request must not stop a process, running out of
descriptors must not either, clients that do not read their answers (or handlers that hang) must not hold up
the others, and a HEAD or an ``Expect`` must not put a kept-alive connection out of step. Real sockets; the
server runs in this process except where the test needs its own descriptor limit (a subprocess)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from local import adapter
from local.adapter import ApiServer
from runtime.http_body import declared_length, parse_length
from tests.support.adapter import running_api
from tests.support.sockets import HttpReader, read_http_answer, until_closed
from tests.support.waiting import wait_until

_DOC = {"paths": {f"/p{i}": {"get": {"description": "x" * 200}} for i in range(500)}}  # ~130 KB of OpenAPI


def _echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"method": event["httpMethod"], "path": event["path"]}),
    }


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with running_api("abuse", _echo, lambda: _DOC, read_timeout=2) as api:
        yield api


def _status_line(api: ApiServer | int, request: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes on a new connection; the status line of the whole answer that comes back (b"" when the
    server closes or resets the connection without one)."""
    port = api if isinstance(api, int) else api.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        try:
            return read_http_answer(sock, request.split(b" ", 1)[0].decode()).status_line
        except OSError:  # closed, reset or timed out
            return b""


_GET = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


# -- 1. a Content-Length of thousands of digits, and any other failure on the loop's thread ---------------------


def test_declared_length_refuses_more_than_18_digits():
    """int() raises ValueError past 4300 digits: the bound keeps every caller (runtime, adapter) on None."""

    def length(raw: str) -> int | None:
        headers = Message()
        headers["Content-Length"] = raw
        return declared_length(headers)

    assert length("9" * 18) == 10**18 - 1
    assert length("1" * 19) is None
    assert length("1" * 5000) is None


def test_a_content_length_is_surrounded_only_by_spaces_and_tabs():
    """RFC 9110 5.6.3 (OWS is SP / HTAB): str.strip() also took a form feed or a vertical tab, which a proxy in
    front may read differently (a framing disagreement); both parsers, the runtime's and the adapter's, refuse."""
    headers = Message()
    headers["Content-Length"] = " 5\t"
    assert declared_length(headers) == 5
    for odd in ("5\x0c", "\x0b5", "5\x85", "5\xa0"):
        assert parse_length(odd) is None, repr(odd)


def test_a_content_length_of_5000_digits_is_a_400_and_the_process_serves_on(server):
    """Before the fix the ValueError killed the selector thread: every later client hung."""
    hostile = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n"
    assert _status_line(server, hostile) == b"HTTP/1.1 400 Bad Request"
    assert _status_line(server, _GET) == b"HTTP/1.1 200 OK"
    assert server.thread is not None and server.thread.is_alive()


def test_an_unexpected_error_on_one_connection_closes_only_that_one(server, monkeypatch, caplog):
    parse = adapter._parse_head

    def failing(head: bytes) -> Any:
        if b"/boom" in head:
            raise RuntimeError("a bug in the head parser")
        return parse(head)

    monkeypatch.setattr(adapter, "_parse_head", failing)
    with socket.create_connection(server.server_address, timeout=5) as kept:
        kept.sendall(b"GET /before HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_http_answer(kept).raw.startswith(b"HTTP/1.1 200 ")
        assert _status_line(server, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n") == b""  # closed, no answer
        kept.sendall(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")  # another connection, and new ones, still served
        assert read_http_answer(kept).raw.startswith(b"HTTP/1.1 200 ")
    assert _status_line(server, _GET) == b"HTTP/1.1 200 OK"
    assert "a bug in the head parser" in caplog.text


# -- 2. out of descriptors ---------------------------------------------------------------------------------------

_SERVE_WITH_128_FDS = """
import resource, sys, threading
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
from local.adapter import ApiServer
api = ApiServer("127.0.0.1", 0, "emfile", lambda e, c: {"statusCode": 200, "body": "ok"}, dict)
api.start()
print(api.server_address[1], flush=True)
sys.stdin.read()
print("alive" if api.thread.is_alive() else "dead", flush=True)
"""


def test_running_out_of_descriptors_pauses_accepting_and_then_serves_on():
    """EMFILE on accept used to end the selector thread for good (its listening socket stayed open: clients
    hung or were reset). Now the process closes its longest idle kept-alive connections, pauses accepting a
    moment, and accepts again."""
    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVE_WITH_128_FDS, root],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    held: list[socket.socket] = []
    try:
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        kept = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(kept)
        kept.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_http_answer(kept).raw.startswith(b"HTTP/1.1 200 ")
        errors: list[str] = []
        assert child.stderr is not None
        threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True).start()
        held += [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(160)]  # past 128 fds
        wait_until(lambda: "Too many open files" in "".join(errors), timeout=10, what="EMFILE in the server")
        # a new client behind the idle ones is served while they are still open: the longest idle make room
        assert _status_line(port, _GET, timeout=10) == b"HTTP/1.1 200 OK"
        for sock in held[1:]:
            sock.close()
        del held[1:]

        def served() -> bool:
            try:
                return _status_line(port, _GET, timeout=2) == b"HTTP/1.1 200 OK"
            except OSError:
                return False

        wait_until(served, timeout=15, what="a new connection served after the burst closed")
        out, _ = child.communicate("", timeout=10)
        assert out.strip() == "alive", "".join(errors)[-2000:]
    finally:
        for sock in held:
            sock.close()
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)


# -- 3. clients that do not read, handlers that hang, a full queue ------------------------------------------------


def test_clients_that_never_read_their_answers_hold_no_handler_thread(server, monkeypatch):
    """Pipelining requests for a large answer and never reading it kept a handler thread in sendall (up to
    read_timeout) per client: more such clients than threads and every other client waited."""
    monkeypatch.setattr(adapter, "MAX_WORKERS", 4)
    attackers = []
    try:
        for _ in range(8):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.server_address)
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: a\r\n\r\n" * 50)
            attackers.append(sock)
        wait_until(lambda: len(_writing(server)) == 8, timeout=10, what="the attackers' answers filling their sockets")
        started = time.monotonic()
        assert _status_line(server, _GET) == b"HTTP/1.1 200 OK"
        assert time.monotonic() - started < 1.0
        # a client that does not take its answer within read_timeout (2 s) is dropped, and its answer with it
        wait_until(lambda: not server._connections, timeout=10, what="the non-reading clients dropped")
    finally:
        for sock in attackers:
            sock.close()


def _writing(api: ApiServer) -> list[Any]:
    """The connections whose answer the loop is writing (the client has not taken it all yet)."""
    return [c for c in list(api._connections) if getattr(c, "output", b"")]


def test_large_pipelined_answers_arrive_whole_to_a_slow_reader(server):
    """The answers the socket does not take at once are written by the loop, in order and intact."""
    want = json.dumps(_DOC, indent=2).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(server.server_address)
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: a\r\n\r\n" * 40 + b"GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_until(lambda: _writing(server), timeout=10, what="an answer left to the loop")
        reader = HttpReader(sock, 4096)
        replies = [reader.answer() for _ in range(41)]
        assert not reader.pending
    assert [reply.status_line for reply in replies] == [b"HTTP/1.1 200 OK"] * 41
    assert [reply.body for reply in replies[:40]] == [want] * 40
    assert replies[40].json() == {"method": "GET", "path": "/last"}


@pytest.fixture
def hanging() -> Iterator[tuple[ApiServer, threading.Event]]:
    release = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["path"] == "/hang":
            release.wait(30)
        return _echo(event, context)

    with running_api("hung", handler, integration_timeout=1) as api:
        try:
            yield api, release
        finally:
            release.set()


def _hang(api: ApiServer, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(api.server_address, timeout=10)
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        socks.append(sock)
    return socks


def test_a_request_queued_behind_hung_handlers_gets_its_504_in_time(hanging, monkeypatch):
    """The integration timeout ran from when a handler thread took the request: behind hung handlers filling
    the pool, a queued request got neither an answer nor its 504."""
    api, release = hanging
    monkeypatch.setattr(adapter, "MAX_WORKERS", 2)
    hung = _hang(api, 2)
    try:
        for sock in hung:  # their 504s: every handler thread is taken now
            assert read_http_answer(sock).raw.startswith(b"HTTP/1.1 504 ")
        started = time.monotonic()
        assert _status_line(api, _GET, timeout=10) == b"HTTP/1.1 504 Gateway Timeout"
        assert time.monotonic() - started < 3
    finally:
        release.set()
        for sock in hung:
            sock.close()


def test_a_full_queue_is_answered_503_at_once(hanging, monkeypatch):
    api, release = hanging
    monkeypatch.setattr(adapter, "MAX_WORKERS", 1)
    monkeypatch.setattr(adapter, "MAX_QUEUED", 2)
    hung = _hang(api, 1)
    try:
        wait_until(lambda: api._pool._busy_since, timeout=5, what="the one handler thread running")
        hung += _hang(api, 2)
        wait_until(lambda: len(api._pool._work) == 2, timeout=5, what="two queued requests")
        with socket.create_connection(api.server_address, timeout=5) as sock:
            sock.sendall(_GET)
            data = until_closed(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        assert json.loads(body)["error"] == "ServiceUnavailable"
    finally:
        release.set()
        for sock in hung:
            sock.close()


# -- 4. HEAD ------------------------------------------------------------------------------------------------------


def test_a_head_answer_has_no_body_and_the_connection_stays_in_step(server):
    """The handler's body followed a HEAD's head: a kept-alive client read it as its next answer. The stdlib's
    client (not ours) is the oracle: it reads no body after a HEAD."""
    client = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        client.request("GET", "/x")
        got = client.getresponse()
        body = got.read()
        client.request("HEAD", "/x")
        head = client.getresponse()
        assert head.status == 200 and head.read() == b""
        as_get = json.dumps({"method": "HEAD", "path": "/x"}).encode()  # what the handler answered, as to a GET
        assert head.getheader("Content-Length") == str(len(as_get)) and len(body) == len(as_get) - 1
        client.request("GET", "/y")
        after = client.getresponse()
        assert after.status == 200 and json.loads(after.read()) == {"method": "GET", "path": "/y"}
    finally:
        client.close()
    with socket.create_connection(server.server_address, timeout=5) as sock:  # what http.client would skip past
        sock.sendall(b"HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n")
        data = sock.recv(65536)
        sock.sendall(_GET)
        data += until_closed(sock)
    assert data.partition(b"\r\n\r\n")[2].startswith(b"HTTP/1.1 200 OK\r\n"), data


# -- 5. Expect, and line endings -------------------------------------------------------------------------------


def test_expect_100_continue_with_a_too_large_body_gets_413_and_no_100(server):
    with socket.create_connection(server.server_address, timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 50000000\r\n\r\n")
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 413 "), data[:80]
    assert b"100 Continue" not in data


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /x HTTP/1.1\nHost: a\n\n",
        b"GET /x HTTP/1.1\r\nHost: a\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\rContent-Length: 5\r\n\r\nhello",
    ],
)
def test_bare_lf_or_cr_in_a_head_is_a_prompt_400(server, request_bytes):
    """A head ended by bare LFs waited for read_timeout and was dropped unanswered; a bare LF or CR inside one is
    where two parsers could read different headers (RFC 9112 2.2)."""
    started = time.monotonic()
    assert _status_line(server, request_bytes) == b"HTTP/1.1 400 Bad Request"
    assert time.monotonic() - started < 1.5  # read_timeout is 2 s
