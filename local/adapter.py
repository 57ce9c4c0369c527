"""An HTTP server that serves one API by invoking its Lambda handler in process, as API Gateway would.

Requests become REST API proxy events (``local.apigw``); ``GET /openapi.json``
returns the API's OpenAPI document. API Gateway's limits hold here as in AWS:
a body over 10 MB is refused with 413, and a handler that has not answered
within the 29 s integration timeout gets the caller a 504 (the handler runs on,
as a Lambda does).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import queue
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
        outcome = self.server.integrate(event)
        if outcome is None:
            self._send_error(
                504,
                "IntegrationTimeout",
                f"the Lambda handler did not answer within {self.server.integration_timeout:g} s "
                "(API Gateway's integration timeout); the request may still complete: check its status",
            )
            return
        result, failed = outcome
        if failed:  # a handler that raises is a 502 from API Gateway too
            self._send_error(502, "BadGateway", "the Lambda handler failed; see the local stack's log")
            return
        status, reply_headers, data = response_parts(result)
        self._send(status, reply_headers, data)

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


class _Invocations:
    """Daemon threads that run handlers, each reused once its handler returns (a thread per request cost a
    thread start each). A handler that runs on past the integration timeout keeps its thread, as a Lambda
    runs on; a new thread serves the next request meanwhile, so no request waits for a free thread."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[queue.SimpleQueue[Any]] = queue.SimpleQueue()

    def submit(self, function: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            inbox = self._idle.get_nowait()
        except queue.Empty:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), daemon=True, name="invocation").start()
        inbox.put((function, future))
        return future

    def _work(self, inbox: queue.SimpleQueue[Any]) -> None:
        while True:
            function, future = inbox.get()
            try:
                future.set_result(function())
            except BaseException as exc:  # noqa: BLE001  # the caller's to handle
                future.set_exception(exc)
            del function, future
            self._idle.put(inbox)


_invocations_lock = threading.Lock()
_invocations_of: dict[int, _Invocations] = {}


def _invocations() -> _Invocations:
    """This process's invocation threads (a forked API worker starts its own: threads do not survive a fork)."""
    with _invocations_lock:
        return _invocations_of.setdefault(os.getpid(), _Invocations())


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

    def integrate(self, event: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """Run the handler as API Gateway's integration does: (result, raised), or None past the timeout.

        The handler runs on a thread of a pool (a thread per request cost a thread start each); a
        handler past the timeout keeps its thread, as a Lambda runs on, and the pool grows instead."""

        def run() -> tuple[dict[str, Any], bool]:
            try:
                return self.handler(event, LocalLambdaContext(function_name=self.name)), False
            except Exception:
                log.exception("%s handler raised", self.name)
                return {}, True

        try:
            return _invocations().submit(run).result(self.integration_timeout)
        except concurrent.futures.TimeoutError:
            return None

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(10)
