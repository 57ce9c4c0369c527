"""An HTTP server that serves one API by invoking its Lambda handler in process, as API Gateway would.

Requests become REST API proxy events (``local.apigw``); ``GET /openapi.json``
returns the API's OpenAPI document. API Gateway's limits hold here as in AWS:
a body over 10 MB is refused with 413, and a handler that has not answered
within the 29 s integration timeout gets the caller a 504 (the handler runs on,
as a Lambda does).

One thread per process reads every connection (kept alive, non-blocking, a
selector) until a request is whole, then hands it to a small pool of handler
threads in arrival order (at most :data:`MAX_QUEUED` wait: past that, 503); the
handler's thread writes the answer without blocking and gives the connection
back, the selector thread writing what the client has not taken yet (a client
that does not read holds no handler thread). A thread per connection (``http.server``) had 50 threads
contending for one GIL under 50 clients, which served them unfairly (long
tails) and parsed each head with the email parser. A handler that runs long
(an instance create waiting for READY, a stream) does not hold the others up:
past :data:`SLOW` the pool starts another thread in its place.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import http
import json
import logging
import mmap
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from local.apigw import INTEGRATION_TIMEOUT, MAX_PAYLOAD, IdentityRefused, build_event, response_parts, take_user
from local.context import LocalLambdaContext
from runtime.http_body import http_date, parse_length

log = logging.getLogger(__name__)

_DRAIN_LIMIT = 8 * MAX_PAYLOAD  # an oversized body up to this is read and dropped; beyond, the connection is closed
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
READ_TIMEOUT = 30.0  # seconds a request may take to arrive, and an idle kept-alive connection may stay silent
WORKERS = 4  # handler threads per process kept ready; more start while some run past SLOW
SLOW = 0.25  # seconds after which a running handler no longer counts as one of the ready WORKERS
MAX_WORKERS = 64
MAX_QUEUED = 256  # whole requests waiting for a handler thread; past this a request is answered 503 at once
ACCEPT_PAUSE = 0.1  # seconds the process stops accepting when the system is out of descriptors or buffers
_ACCEPT_PRESSURE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
MAX_HEAD = 65536  # bytes of request line and headers (http.server's line limit)
MAX_HEADERS = 100  # http.server's limit
_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}


class _Request:
    """One whole request, or the error answer the reader already decided on (``error``)."""

    __slots__ = ("method", "target", "version", "headers", "body", "close", "error", "line")

    def __init__(self, method: str, target: str, version: str, headers: list[tuple[str, str]], close: bool) -> None:
        self.method, self.target, self.version, self.headers, self.close = method, target, version, headers, close
        self.line = f"{method} {target} {version}"
        self.body = b""
        self.error: tuple[int, str, str] | None = None


class _Malformed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _parse_head(head: bytes) -> _Request:
    """The request line and headers (without the blank line), as http.server reads them, stricter where
    framing is at stake: a folded or nameless header line is refused, not guessed at."""
    if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\r\n"):
        raise _Malformed(400, "Bare LF or CR in the request head: lines end with CRLF")  # RFC 9112 2.2
    lines = head.split(b"\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise _Malformed(431, "Too many headers")
    words = lines[0].decode("latin-1").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise _Malformed(400, f"Bad request syntax ({lines[0][:80]!r})")
    method, target, version = words
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _Malformed(505, f"Invalid HTTP version ({version[:20]})")
    headers: list[tuple[str, str]] = []
    connection = ""
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise _Malformed(400, "Malformed header line")
        text = name.decode("latin-1"), value.lstrip(b" \t").decode("latin-1")
        headers.append(text)
        if text[0].lower() == "connection":
            connection = text[1].lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    return _Request(method, target, version, headers, close)


def _header(request: _Request, name: str) -> list[str]:
    lowered = name.lower()
    return [value for key, value in request.headers if key.lower() == lowered]


def _expects_continue(request: _Request) -> bool:
    return any(value.strip(" \t").lower() == "100-continue" for value in _header(request, "Expect"))


class _Connection:
    """A client's connection: read by the loop until a request is whole, then owned by one handler thread."""

    def __init__(self, server: ApiServer, sock: socket.socket, address: Any) -> None:
        self.server, self.sock, self.address = server, sock, address
        self.buffer = bytearray()
        self.request: _Request | None = None  # its head is in, its body is still coming
        self.length = 0  # of the body coming (or being drained)
        self.draining = False  # an oversized body read and dropped before the 413
        self.deadline = time.monotonic() + server.read_timeout
        self.closed = False
        self.output = b""  # of an answer the socket did not take at once: the loop writes it (from ``sent``)
        self.sent = 0
        self.close_after = False  # the connection closes once ``output`` is written

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> _Request | None:
        """Read what arrived; the next whole request, if there is one now. Raises OSError when it closed."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionResetError("closed by the client")
        if self.draining:
            self.length -= len(chunk)
        else:
            self.buffer += chunk
        return self.next_request()

    def next_request(self) -> _Request | None:
        """The next whole request in the buffer, or an error answer for a request that cannot be served."""
        if self.draining:
            return self.request if self.length <= 0 else None
        if self.request is None:
            while self.buffer.startswith(b"\r\n"):  # blank lines before a request are ignored (RFC 9112 2.2)
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if b"\n\n" in self.buffer or b"\n\r\n" in self.buffer:  # a head ended by bare LFs: not waited for
                    return self._refused(400, "ValidationError", "Bare LF in the request head: lines end with CRLF")
                if len(self.buffer) > MAX_HEAD:
                    return self._refused(431, "RequestHeaderFieldsTooLarge", "the request head is too large")
                return None
            try:
                request = _parse_head(bytes(self.buffer[:end]))
            except _Malformed as malformed:
                return self._refused(malformed.status, "ValidationError", malformed.message)
            del self.buffer[: end + 4]
            self.deadline = time.monotonic() + self.server.read_timeout  # the body has this long to arrive
            framing = self._framing(request)
            if framing is not None:
                return framing
            self.request = request
        request = self.request
        if len(self.buffer) < self.length:
            return None
        request.body, self.buffer[: self.length] = bytes(self.buffer[: self.length]), b""
        self.request, self.length = None, 0
        return request

    def _framing(self, request: _Request) -> _Request | None:
        """Decide how the body is framed; an error answer when it cannot be read safely."""
        if _header(request, "Transfer-Encoding"):  # bodies are framed by Content-Length only: no second framing
            return self._refused(  # to disagree on (request smuggling); what follows is not read
                400, "ValidationError", "Transfer-Encoding bodies are not supported: send a Content-Length", request
            )
        lengths = _header(request, "Content-Length")
        length = parse_length(lengths[0] if lengths else None)
        if length is None or len({value.strip(" \t") for value in lengths}) > 1:  # blanks as parse_length strips
            raw = lengths[0].strip() if lengths else ""
            return self._refused(
                400, "ValidationError", f"Content-Length must be a whole number of bytes, got {raw[:40]!r}", request
            )
        if length > MAX_PAYLOAD:  # decided before any 100 Continue: the client is not invited to send it
            refused = self._refused(
                413, "PayloadTooLarge", f"request bodies are limited to {MAX_PAYLOAD} bytes (as API Gateway)", request
            )
            if length > _DRAIN_LIMIT or _expects_continue(request):  # (that client sends no body now)
                return refused
            # read what the client sends first, so it sees the answer, not a reset
            self.draining, self.request, self.length = True, refused, length - len(self.buffer)
            self.buffer.clear()
            return refused if self.length <= 0 else None
        if length and request.version == "HTTP/1.1" and len(self.buffer) < length and _expects_continue(request):
            self.send_interim()
        self.length = length
        return None

    def _refused(self, status: int, code: str, message: str, request: _Request | None = None) -> _Request:
        refused = request or _Request("-", "-", "HTTP/1.1", [], True)
        refused.error, refused.close = (status, code, message), True
        self.draining = False
        return refused

    def timed_out(self) -> _Request | None:
        """Past the read deadline: the 408 for a body that did not all come, or None (just close)."""
        request = self.request
        if request is None or self.draining:
            return None
        got = len(self.buffer)
        return self._refused(
            408,
            "RequestTimeout",
            f"the body ended after {got} of the {self.length} bytes its "
            f"Content-Length announced (bodies must arrive within {self.server.read_timeout:g} s)",
            request,
        )

    def send_interim(self) -> None:
        try:
            self.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        except OSError:
            pass

    def send(self, status: int, headers: dict[str, str], data: bytes, close: bool, line: str, head_only: bool) -> None:
        """The answer, head and body in one non-blocking write (from the thread that owns the connection); what
        the socket does not take is left in ``output`` for the loop: a client that does not read its answers
        holds no handler thread. ``head_only``: a HEAD's answer (its Content-Length as a GET's), or a status
        that has no content (RFC 9110 6.4.1): bytes after it would be read as the next answer."""
        head = [f"HTTP/1.1 {status} {_PHRASES.get(status, '')}", f"Date: {http_date()}"]
        head += [f"{key}: {value}" for key, value in headers.items() if key.lower() not in _FRAMING_HEADERS]
        if status >= 200 and status != 204:
            head.append(f"Content-Length: {len(data)}")
        if close:
            head.append("Connection: close")
        answer = "\r\n".join(head).encode("latin-1") + b"\r\n\r\n"
        if not (head_only or status < 200 or status in (204, 304)):
            answer += data
        self.server.access.note(line, status)
        try:
            sent = self.sock.send(answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(answer):
            self.output, self.sent = answer, sent

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.server.balance is not None:
            self.server.balance.add(-1)
        try:
            self.sock.close()
        except OSError:
            pass


_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})


class _Balance:
    """How many connections each API process sharing a listening socket holds, and when its loop last ran, in
    memory they share (made before the fork; each process writes only its own slots). A process takes a
    connection only while it holds no more than the fewest any live process holds: accepting whoever woke first
    had split 50 clients 10/40 between two processes, and the clients of the busier one waited four times as
    long. A process whose loop has not run for :data:`LIVE` seconds (stopped, stuck, dead), or that is out of
    descriptors, is left out, so the others take its share."""

    PAUSE = 0.002  # seconds a process that holds more leaves the listening socket alone
    LIVE = 0.3  # seconds without a loop turn after which a process no longer counts (an idle loop turns every 0.1 s)

    def __init__(self, processes: int) -> None:
        self._memory = mmap.mmap(-1, 16 * processes)  # anonymous and shared: the forked processes see one
        slots = memoryview(self._memory).cast("q")
        self.counts, self.beats = slots[:processes], slots[processes:]  # connections; last loop turn (ns)
        for index in range(processes):  # each counts as live from its fork: one still starting gets its share
            self.beats[index] = time.monotonic_ns()
        self.me = 0
        self._lock = threading.Lock()  # this process's threads change its count: the loop's and the handlers'
        self._cramped_until = 0.0

    def serve_as(self, index: int) -> None:
        """This process is ``index``: a fresh one, holding no connection yet."""
        self.me = index
        self.counts[index] = 0
        self.beat()

    def beat(self) -> None:
        """The loop turned (CLOCK_MONOTONIC is one clock for every process); not while cramped."""
        if time.monotonic() >= self._cramped_until:
            self.beats[self.me] = time.monotonic_ns()

    def cramp(self, seconds: float) -> None:
        """Out of descriptors or buffers: for ``seconds`` the others stop leaving connections to this process,
        and it takes one only when no other process is live."""
        self._cramped_until = time.monotonic() + seconds
        self.beats[self.me] = 0

    def may_accept(self) -> bool:
        """Whether to take a waiting connection now; False: leave it to a live process that holds fewer.

        The patience this replaced (take one anyway after 20 ms of declining) never started over once it
        ran out: a process kept off the CPU for 20 ms at the start of a burst lost the rest of the burst,
        and 50 clients split 36/14."""
        stale = time.monotonic_ns() - int(self.LIVE * 1e9)
        live = [
            count
            for index, (count, beat) in enumerate(zip(self.counts, self.beats, strict=True))
            if index != self.me and beat >= stale
        ]
        if time.monotonic() < self._cramped_until:
            return not live
        return all(count >= self.counts[self.me] for count in live)

    def add(self, change: int) -> None:
        with self._lock:
            self.counts[self.me] += change


class _AccessLog:
    """The access log's lines (``ccfaas "GET /instance/x HTTP/1.1" 200 -``), made by the thread that answered and
    written by the loop's thread every :meth:`ApiServer._check_interval`: handler threads logging each line
    themselves contended for the log handler's lock and its write (~0.2 ms of CPU per read under 50 clients)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending: collections.deque[logging.LogRecord] = collections.deque()

    def note(self, line: str, status: int) -> None:
        if log.isEnabledFor(logging.INFO):  # the record's time is now: the line says when the answer left
            self._pending.append(
                log.makeRecord(log.name, logging.INFO, __file__, 0, '%s "%s" %s -', (self.name, line, status), None)
            )

    def flush(self) -> None:
        """Hand the pending lines to the log's handlers, as ``Logger.handle`` would; a plain StreamHandler (the
        stack's log) gets them in one write."""
        records = []
        while self._pending:
            records.append(self._pending.popleft())
        records = [record for record in records if log.filter(record)]
        if not records or log.disabled:
            return
        logger: logging.Logger | None = log
        while logger is not None:
            for handler in logger.handlers:
                if type(handler).emit is not logging.StreamHandler.emit:
                    for record in records:
                        if record.levelno >= handler.level:
                            handler.handle(record)
                    continue
                stream = cast(logging.StreamHandler[Any], handler)
                chosen = [r for r in records if r.levelno >= handler.level and handler.filter(r)]
                lines = [stream.format(r) + stream.terminator for r in chosen]
                if lines:
                    with handler.lock or contextlib.nullcontext():
                        try:
                            stream.stream.write("".join(lines))
                            stream.flush()
                        except Exception:  # as Handler.handleError: a log that cannot be written stops nothing
                            handler.handleError(records[0])
            logger = logger.parent if logger.propagate else None


class _Pool:
    """Handler threads taking whole requests in arrival order. :data:`WORKERS` are kept ready: a thread whose
    handler has run past :data:`SLOW` no longer counts, and another starts (up to :data:`MAX_WORKERS`)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self._work: collections.deque[_Reply] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._idle = 0
        self._busy_since: dict[int, float] = {}  # thread ident -> when its current request started
        self._threads = 0
        self._stopped = False

    def put(self, reply: _Reply) -> bool:
        """Queue a whole request for a handler thread; False when :data:`MAX_QUEUED` wait already."""
        with self._ready:
            if len(self._work) >= MAX_QUEUED:
                return False
            self._work.append(reply)
            if self._idle:
                self._idle -= 1  # that thread is no longer idle from now: the next request wakes another
                self._ready.notify()
            elif self._threads < MAX_WORKERS and self._threads - self._slow() < WORKERS:
                self._start()
            return True

    def check(self) -> None:
        """Start a thread if work waits while every thread is slow (the loop calls this periodically)."""
        with self._ready:
            if self._work and not self._idle and self._threads < MAX_WORKERS and self._threads - self._slow() < WORKERS:
                self._start()

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify_all()

    def _slow(self) -> int:
        limit = time.monotonic() - SLOW
        return sum(1 for since in self._busy_since.values() if since < limit)

    def _start(self) -> None:
        self._threads += 1
        threading.Thread(target=self._run, daemon=True, name=f"{self.server.name}-handler").start()

    def _run(self) -> None:
        me = threading.get_ident()
        while True:
            with self._ready:
                while not self._work and not self._stopped:
                    if self._idle >= WORKERS:  # enough threads wait already: this one ends
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._ready.wait()  # put() took it off the idle count when it woke this thread
                if self._stopped:
                    self._threads -= 1
                    return
                reply = self._work.popleft()
                self._busy_since[me] = time.monotonic()
            try:
                self.server.serve(reply)
            except Exception:
                log.exception("%s: serving a request failed", self.server.name)
                reply.connection.close()
            finally:
                with self._ready:
                    self._busy_since.pop(me, None)


class _Reply:
    """A request's one answer: its handler's, or the 504 the watchdog sends once the integration timeout
    passes, counted from when the request was whole (a request still queued for a handler thread gets its 504
    in time too). The handler runs on, as a Lambda does; what it returns then is dropped, and the connection
    closes, since its thread is the handler's until then."""

    def __init__(self, connection: _Connection, request: _Request, deadline: float) -> None:
        self.connection, self.request, self.deadline = connection, request, deadline
        self.close = request.close  # after this answer: a late handler's connection closes too
        self._lock = threading.Lock()
        self.sent = False

    def send(self, status: int, headers: dict[str, str], data: bytes, *, close: bool = False) -> bool:
        with self._lock:
            if self.sent:
                return False
            self.sent = True
            self.close = self.close or close
            request = self.request
            self.connection.send(status, headers, data, self.close, request.line, request.method == "HEAD")
            return True

    def error(self, status: int, code: str, message: str, *, close: bool = False) -> bool:
        body = json.dumps({"error": code, "message": message}).encode()
        return self.send(status, {"Content-Type": "application/json"}, body, close=close)

    def time_out(self) -> None:
        timeout = self.connection.server.integration_timeout
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


class ApiServer:
    """One API on ``host:port``: :meth:`start` serves it from this process (a forked API worker calls it on the
    socket its parent bound: several processes then share the listening socket)."""

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
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)  # a burst of clients connecting at once is queued, not reset
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.access = _AccessLog(name)
        self.balance: _Balance | None = None

    def share_among(self, processes: int) -> None:
        """Before forking ``processes`` processes that will serve this socket: they share its connections evenly."""
        self.balance = _Balance(processes)

    def serve_as(self, index: int) -> None:
        """In the forked process ``index`` (of :meth:`share_among`'s): start serving."""
        if self.balance is not None:
            self.balance.serve_as(index)
        self.start()

    def start(self) -> None:
        self._pool = _Pool(self)
        self._selector = selectors.DefaultSelector()
        self._waker, self._wake_end = socket.socketpair()
        self._waker.setblocking(False)
        self._wake_end.setblocking(False)
        self._returned: collections.deque[_Connection] = collections.deque()
        self._connections: set[_Connection] = set()
        self.thread = threading.Thread(target=self._serve, daemon=True, name=self.name)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self._wake()
            self.thread.join(10)
            self._pool.stop()
        self.server_close()

    def server_close(self) -> None:
        self.socket.close()

    # -- the loop: reads connections until a request is whole ----------------------------------------------

    def _serve(self) -> None:
        selector = self._selector
        selector.register(self.socket, selectors.EVENT_READ, None)
        selector.register(self._wake_end, selectors.EVENT_READ, self._wake_end)
        next_check = time.monotonic() + self._check_interval()
        self._accept_paused_until = 0.0
        try:
            while not self._stop.is_set():
                if self.balance is not None:
                    self.balance.beat()
                timeout = self._check_interval()
                if self._accept_paused_until:
                    timeout = max(0.0, min(timeout, self._accept_paused_until - time.monotonic()))
                for key, events in selector.select(timeout):
                    try:
                        if key.data is None:
                            self._accept()
                        elif key.data is self._wake_end:
                            self._take_back()
                        elif events & selectors.EVENT_WRITE:
                            self._write(key.data)
                        else:
                            self._read(key.data)
                    except Exception:  # one connection's trouble (or accept's) ends neither the loop nor the others
                        log.exception("%s: serving a connection failed", self.name)
                        if key.data is None:
                            self._pause_accepting(ACCEPT_PAUSE)
                        elif key.data is not self._wake_end:
                            self._drop(key.data)
                now = time.monotonic()
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    selector.register(self.socket, selectors.EVENT_READ, None)
                if now >= next_check:
                    next_check = now + self._check_interval()
                    try:
                        self._expire(now)
                        self._pool.check()
                        self.access.flush()
                    except Exception:
                        log.exception("%s: the periodic check failed", self.name)
        finally:
            self.access.flush()
            for connection in list(self._connections):
                connection.close()
            selector.close()
            self._waker.close()
            self._wake_end.close()

    def _check_interval(self) -> float:
        return min(0.1, self.read_timeout / 8)

    def _pause_accepting(self, seconds: float) -> None:
        """Leave the listening socket alone for ``seconds`` (the loop registers it again)."""
        if not self._accept_paused_until:
            self._selector.unregister(self.socket)
        self._accept_paused_until = time.monotonic() + seconds

    def _accept(self) -> None:
        if self.balance is not None and not self.balance.may_accept():  # another process holds fewer: its turn
            self._pause_accepting(self.balance.PAUSE)
            return
        try:
            sock, address = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):  # taken by another process, or gone
            return
        except OSError as error:
            if self._stop.is_set():
                return
            if error.errno not in _ACCEPT_PRESSURE:
                raise
            # out of descriptors or memory: the longest idle kept-alive connections make room (their clients
            # reconnect), the waiting ones stay queued meanwhile
            shed = self._shed_idle()
            log.warning(
                "%s: cannot accept (%s); closed %d idle connections, pausing %g s",
                self.name,
                error.strerror,
                shed,
                ACCEPT_PAUSE,
            )
            self._pause_accepting(ACCEPT_PAUSE)
            if self.balance is not None:  # the others stop leaving connections to this process
                self.balance.cramp(2 * self.balance.LIVE)
            return
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # reset already
            sock.close()
            return
        if self.balance is not None:
            self.balance.add(1)
        connection = _Connection(self, sock, address)
        self._connections.add(connection)
        self._selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, connection: _Connection) -> None:
        try:
            request = connection.readable()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(connection)
            return
        if request is not None:
            self._hand_over(connection, request)

    def _shed_idle(self) -> int:
        """Close a quarter of the idle kept-alive connections (nothing of a request read, no answer pending),
        those idle longest first; how many closed."""
        idle = [c for c in self._connections if c.request is None and not c.buffer and not c.output]
        idle.sort(key=lambda connection: connection.deadline)
        shed = idle[: max(1, len(idle) // 4)]
        for connection in shed:
            self._drop(connection)
        return len(shed)

    def _write(self, connection: _Connection) -> None:
        """Write what is left of an answer; once written, read (or hand over) the next request."""
        try:
            connection.sent += connection.sock.send(memoryview(connection.output)[connection.sent :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(connection)
            return
        if connection.sent < len(connection.output):
            return
        connection.output, connection.sent = b"", 0
        if connection.close_after:
            self._drop(connection)
            return
        connection.deadline = time.monotonic() + self.read_timeout
        request = connection.next_request()
        if request is not None:
            self._hand_over(connection, request)
        else:
            self._selector.modify(connection.sock, selectors.EVENT_READ, connection)

    def _reply(self, connection: _Connection, request: _Request) -> _Reply:
        """The request's answer-to-be; its integration timeout runs from now (the request is whole)."""
        reply = _Reply(connection, request, time.monotonic() + self.integration_timeout)
        _watchdog().watch(reply)
        return reply

    def _hand_over(self, connection: _Connection, request: _Request) -> None:
        self._selector.unregister(connection.sock)
        self._connections.discard(connection)
        reply = self._reply(connection, request)
        if self._pool.put(reply):
            return
        _watchdog().forget(reply)
        reply.error(
            503,
            "ServiceUnavailable",
            f"{MAX_QUEUED} requests are waiting for a handler already: try again shortly",
            close=True,
        )
        self._give_back(connection, closing=True)

    def _give_back(self, connection: _Connection, closing: bool) -> None:
        """After an answer (from any thread): close the connection, or have the loop write the rest of the answer
        and read the next request."""
        if connection.closed:
            return
        if closing and not connection.output:
            connection.close()
            return
        connection.close_after = closing
        self._returned.append(connection)
        self._wake()

    def _drop(self, connection: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):  # not registered (handed over, or its socket closed)
            self._selector.unregister(connection.sock)
        self._connections.discard(connection)
        connection.close()

    def _expire(self, now: float) -> None:
        for connection in [c for c in self._connections if c.deadline <= now]:
            late = connection.timed_out()
            if late is None:
                self._drop(connection)
            else:
                self._hand_over(connection, late)

    def _wake(self) -> None:
        try:
            self._waker.send(b"\0")
        except (BlockingIOError, OSError):  # already woken (a full buffer) or stopped
            pass

    def _take_back(self) -> None:
        try:
            while self._wake_end.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._returned:
            connection = self._returned.popleft()
            if self._stop.is_set():
                connection.close()
                continue
            connection.deadline = time.monotonic() + self.read_timeout  # to read its next request, or take its answer
            self._connections.add(connection)
            events = selectors.EVENT_WRITE if connection.output else selectors.EVENT_READ
            try:
                self._selector.register(connection.sock, events, connection)
            except (KeyError, ValueError, OSError):
                log.exception("%s: taking a connection back failed", self.name)
                self._drop(connection)

    # -- a handler thread: answers, then gives the connection back --------------------------------------------

    def serve(self, reply: _Reply) -> None:
        """Answer ``reply``'s request and any whole request already behind it, then give the connection back to the
        loop (with the rest of an answer the client has not taken yet). Never waits on the client's socket."""
        connection = reply.connection
        try:
            while True:
                closing = self._answer(reply)
                if closing or connection.output or connection.closed:
                    break
                request = connection.next_request()
                if request is None:
                    break
                reply = self._reply(connection, request)
        except OSError:
            connection.close()
            return
        self._give_back(connection, closing)

    def _answer(self, reply: _Reply) -> bool:
        """Answer one request; True when the connection closes after it."""
        try:
            return self._respond(reply)
        finally:
            _watchdog().forget(reply)

    def _respond(self, reply: _Reply) -> bool:
        request = reply.request
        if reply.sent:  # its 504 went while it waited for a handler thread
            return True
        if request.error is not None:
            reply.error(*request.error, close=True)
            return True
        if request.method in ("GET", "HEAD") and request.target.split("?")[0] == "/openapi.json":
            reply.send(200, {"Content-Type": "application/json"}, json.dumps(self.openapi(), indent=2).encode())
            return reply.close
        try:
            user, headers = take_user(request.headers)
        except IdentityRefused as refused:
            reply.error(refused.status, refused.code, refused.message)
            return reply.close
        event = build_event(
            request.method,
            request.target,
            headers=headers,
            body=request.body,
            user=user,
            source_ip=reply.connection.address[0],
        )
        try:  # on this thread: the handler's answer is written here, no hand-off back to another thread
            result, failed = self.handler(event, LocalLambdaContext(function_name=self.name)), False
        except Exception:
            log.exception("%s handler raised", self.name)
            result, failed = {}, True
        if failed:  # a handler that raises is a 502 from API Gateway too
            reply.error(502, "BadGateway", "the Lambda handler failed; see the local stack's log")
        else:
            reply.send(*response_parts(result))
        return reply.close
