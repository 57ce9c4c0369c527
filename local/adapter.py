"""An HTTP server that serves one API by invoking its Lambda handler in process, as API Gateway would.

Requests become REST API proxy events (``local.apigw``); ``GET /openapi.json``
returns the API's OpenAPI document. API Gateway's limits hold here as in AWS:
a body over 10 MB is refused with 413, and a handler that has not answered
within the 29 s integration timeout gets the caller a 504 (the handler runs on,
as a Lambda does). Each connection (kept alive) has a thread, which runs the
handler of each of its requests itself.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.apigw import INTEGRATION_TIMEOUT, MAX_PAYLOAD, IdentityRefused, build_event, response_parts, take_user
from local.context import LocalLambdaContext
from runtime.http_body import declared_length

log = logging.getLogger(__name__)

_DRAIN_LIMIT = 8 * MAX_PAYLOAD  # an oversized body up to this is read and dropped; beyond, the connection is closed
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
READ_TIMEOUT = 30.0  # seconds a connection may sit silent mid-request (a body shorter than its Content-Length)


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def timeout(self) -> float:  # type: ignore[override]  # socketserver applies it to the connection's socket
        return self.server.read_timeout

    def _handle(self) -> None:
        if self.command == "GET" and self.path.split("?")[0] == "/openapi.json":
            self._send(200, {"Content-Type": "application/json"}, json.dumps(self.server.openapi(), indent=2).encode())
            return
        if "Transfer-Encoding" in self.headers:  # bodies are framed by Content-Length only: no second framing
            self.close_connection = True  # to disagree on (request smuggling); what follows is not read
            self._send_error(
                400, "ValidationError", "Transfer-Encoding bodies are not supported: send a Content-Length"
            )
            return
        length = declared_length(self.headers)
        if length is None:
            self.close_connection = True
            raw_length = (self.headers.get("Content-Length") or "").strip()
            self._send_error(
                400, "ValidationError", f"Content-Length must be a whole number of bytes, got {raw_length[:40]!r}"
            )
            return
        if length > MAX_PAYLOAD:
            self.close_connection = True
            if length <= _DRAIN_LIMIT:  # read what the client sends first, so it sees the answer, not a reset
                while length > 0:
                    length -= len(self.rfile.read(min(length, 1 << 16)) or b"\0" * length)
            self._send_error(
                413, "PayloadTooLarge", f"request bodies are limited to {MAX_PAYLOAD} bytes (as API Gateway)"
            )
            return
        body = self._read_body(length)
        if len(body) < length:  # the client announced more than it sent, then went quiet (or hung up)
            self.close_connection = True
            self._send_error(
                408,
                "RequestTimeout",
                f"the body ended after {len(body)} of the {length} bytes its "
                f"Content-Length announced (bodies must arrive within {self.server.read_timeout:g} s)",
            )
            return
        try:
            user, headers = take_user(self.headers.items())
        except IdentityRefused as refused:
            self._send_error(refused.status, refused.code, refused.message)
            return
        event = build_event(
            self.command, self.path, headers=headers, body=body, user=user, source_ip=self.client_address[0]
        )
        reply = _Reply(self, time.monotonic() + self.server.integration_timeout)
        _watchdog().watch(reply)
        try:  # on this connection's thread: no hand-off to another thread and back for every request
            result, failed = self.server.handler(event, LocalLambdaContext(function_name=self.server.name)), False
        except Exception:
            log.exception("%s handler raised", self.server.name)
            result, failed = {}, True
        finally:
            _watchdog().forget(reply)
        if failed:  # a handler that raises is a 502 from API Gateway too
            reply.error(502, "BadGateway", "the Lambda handler failed; see the local stack's log")
            return
        reply.send(*response_parts(result))

    def _read_body(self, length: int) -> bytes:
        """Up to ``length`` bytes, all within one read timeout (a trickle cannot hold the thread longer)."""
        body = bytearray()
        deadline = time.monotonic() + self.server.read_timeout
        try:
            while len(body) < length:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    break
                body += chunk
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.connection.settimeout(self.server.read_timeout)
        return bytes(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

    def _send_error(self, status: int, code: str, message: str) -> None:
        self._send(
            status, {"Content-Type": "application/json"}, json.dumps({"error": code, "message": message}).encode()
        )

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # The head and the body in one write (http.server writes them apart: two system calls a reply)
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]  # http.server's own, untyped
        self.flush_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.info("%s %s", self.server.name, format % args)


class _Reply:
    """A request's one answer: its handler's, or the 504 the watchdog sends once the integration timeout
    passes (the handler runs on, as a Lambda does; what it returns then is dropped, and the connection closes,
    since its thread is the handler's until then)."""

    def __init__(self, request: _RequestHandler, deadline: float) -> None:
        self.request, self.deadline = request, deadline
        self._lock = threading.Lock()
        self._sent = False

    def send(self, status: int, headers: dict[str, str], data: bytes, *, close: bool = False) -> bool:
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            if close:
                self.request.close_connection = True
            self.request._send(status, headers, data)
            return True

    def error(self, status: int, code: str, message: str, *, close: bool = False) -> bool:
        body = json.dumps({"error": code, "message": message}).encode()
        return self.send(status, {"Content-Type": "application/json"}, body, close=close)

    def time_out(self) -> None:
        timeout = self.request.server.integration_timeout
        try:
            self.error(
                504,
                "IntegrationTimeout",
                f"the Lambda handler did not answer within {timeout:g} s "
                "(API Gateway's integration timeout); the request may still complete: check its status",
                close=True,
            )
        except OSError:  # the client has gone
            pass


class _Watchdog:
    """One thread per process that answers 504 for requests whose handler is past its deadline (a timer per
    request cost a thread each). It sleeps until the earliest deadline, woken only when a request comes with
    an earlier one (deadlines of one server only grow, so that is rare)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: dict[int, _Reply] = {}
        self._next = float("inf")  # the deadline the thread sleeps until
        threading.Thread(target=self._run, daemon=True, name="integration-timeout").start()

    def watch(self, reply: _Reply) -> None:
        with self._changed:
            self._watched[id(reply)] = reply
            if reply.deadline < self._next:
                self._next = reply.deadline
                self._changed.notify()

    def forget(self, reply: _Reply) -> None:
        with self._changed:
            self._watched.pop(id(reply), None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                late = [reply for reply in self._watched.values() if reply.deadline <= now]
                for reply in late:
                    del self._watched[id(reply)]
                if not late:
                    self._next = min((reply.deadline for reply in self._watched.values()), default=float("inf"))
                    self._changed.wait(None if self._next == float("inf") else self._next - now)
                    continue
            for reply in late:
                reply.time_out()


_watchdog_lock = threading.Lock()
_watchdog_of: dict[int, _Watchdog] = {}


def _watchdog() -> _Watchdog:
    """This process's watchdog (a forked API worker starts its own: threads do not survive a fork)."""
    pid = os.getpid()
    watchdog = _watchdog_of.get(pid)
    if watchdog is None:
        with _watchdog_lock:
            watchdog = _watchdog_of.get(pid)
            if watchdog is None:
                watchdog = _watchdog_of[pid] = _Watchdog()
    return watchdog


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of clients
    allow_reuse_address = True

    def __init__(
        self,
        host: str,
        port: int,
        name: str,
        handler: Handler,
        openapi: Callable[[], dict[str, Any]],
        read_timeout: float = READ_TIMEOUT,
        integration_timeout: float = INTEGRATION_TIMEOUT,
    ) -> None:
        self.name = name
        self.read_timeout = read_timeout
        self.handler = handler
        self.openapi = openapi
        self.integration_timeout = integration_timeout
        super().__init__((host, port), _RequestHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(10)
