"""An HTTP server that serves one API by invoking its Lambda handler in process, as API Gateway would.

Requests become REST API proxy events (``local.apigw``); ``GET /openapi.json``
returns the API's OpenAPI document.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from local.apigw import LOCAL_ADMIN, MAX_PAYLOAD, USER_HEADER, build_event, response_parts
from local.context import LocalLambdaContext

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _RequestHandler(BaseHTTPRequestHandler):
    server: "ApiServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        if self.command == "GET" and self.path.split("?")[0] == "/openapi.json":
            self._send(200, {"Content-Type": "application/json"}, json.dumps(self.server.openapi(), indent=2).encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self.close_connection = True
            self._send_error(413, "PayloadTooLarge", f"request bodies are limited to {MAX_PAYLOAD} bytes (as API Gateway)")
            return
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        user = headers.pop(USER_HEADER, None) or LOCAL_ADMIN
        event = build_event(self.command, self.path, headers=headers, body=body, user=user, source_ip=self.client_address[0])
        try:
            result = self.server.handler(event, LocalLambdaContext(function_name=self.server.name))
        except Exception:  # a handler that raises is a 502 from API Gateway too
            log.exception("%s handler raised", self.server.name)
            self._send_error(502, "BadGateway", "the Lambda handler failed; see the local stack's log")
            return
        status, reply_headers, data = response_parts(result)
        self._send(status, reply_headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

    def _send_error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps({"error": code, "message": message}).encode())

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.info("%s %s", self.server.name, format % args)


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of clients
    allow_reuse_address = True

    def __init__(self, host: str, port: int, name: str, handler: Handler, openapi: Callable[[], dict[str, Any]]) -> None:
        self.name = name
        self.handler = handler
        self.openapi = openapi
        super().__init__((host, port), _RequestHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(10)
