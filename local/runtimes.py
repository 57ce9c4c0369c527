"""The local VaaS backend: each instance is an ``ipoc runtime serve`` process on this machine.

The embedded deployment wires it into VaaS (:func:`register`, as ``IPOC_VAAS_BACKEND=local``) in each process
that runs the handlers; ``ipoc local down|status`` use its process bookkeeping (:func:`running_ports`,
:func:`stop_runtime`) directly.

Each slot has a directory ``<state>/<port>/`` holding the exact policy text,
the process's pid and its log. ``start`` returns once the runtime has attested
and opened its port (or fails, leaving nothing behind), so a client can
connect as soon as VaaS answers.

A warm pool (``IPOC_WARM_POOL`` runtimes, 0 disables; started by the process
that hosts VaaS, e.g. ``ipoc local up``) keeps runtimes started and attested
ahead of their policy: the enclave certificate binds the key and the
measurement, not the policy. Each waits in ``<state>/pool/<id>/`` (pid, log)
for its policy on stdin, a pipe only this process holds; ``start`` hands one
the slot's directory (for the instance's files) and policy, it binds the
slot's port and serves that one policy until stopped.
The pool refills in the background. A waiting runtime whose pipe closes (this
process stopped or died) exits by itself; ``stop_pool`` stops the rest.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipoc.errors import DependencyFailed
from ipoc.wire.carrier import port_open
from lambdas.shared.config import settings
from lambdas.vaas import backends
from lambdas.vaas.backends import RuntimeBackend, RuntimeSetup

_log = logging.getLogger(__name__)
NAME = "local"  # IPOC_VAAS_BACKEND's value for this backend
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
REFILL_SETTLE = 1.0  # seconds after a take before a refill starts, unless the pool is empty (see WarmPool._refill)
WARM_MAX_IDLE = 3600.0  # seconds a warm runtime waits before it is replaced (the local proxy certifies past it)
INSTANCE_MARGIN = 300.0  # seconds a handed-out certificate must outlive the longest instance (IPOC_MAX_TTL) by
POOL_DIR = "pool"
RUNTIME_DIR_FILE = "runtime-dir"  # in a slot served by a warm runtime: the pool directory its command line names
_children: dict[int, subprocess.Popen[bytes]] = {}  # reaped here when this process started them
_pools: dict[Path, WarmPool] = {}  # the running pool of each state directory, in this process
_pools_lock = threading.Lock()


@dataclass
class LocalBackend(RuntimeBackend):
    state_dir: Path
    setup: RuntimeSetup
    host: str = "127.0.0.1"
    pool: WarmPool | None = None

    @classmethod
    def from_settings(cls) -> LocalBackend:
        config = settings()
        if not config.state_dir:
            raise RuntimeError("IPOC_STATE_DIR must name the directory for local runtimes")
        if not config.proxy_cert or not config.runtime_hash:
            raise RuntimeError(
                "the local backend needs IPOC_PROXY_CERT and IPOC_RUNTIME_HASH (ipoc local up sets them)"
            )
        state_dir = Path(config.state_dir)
        with _pools_lock:
            pool = _pools.get(state_dir)
        return cls(
            state_dir=state_dir,
            setup=RuntimeSetup(
                proxy_url=config.proxy_url,
                proxy_cert=config.proxy_cert,
                runtime_hash=config.runtime_hash,
                platform="linux",
                endpoint_host=config.endpoint_host,
            ),
            pool=pool if pool is not None and pool.serves(config.proxy_url, config.proxy_cert) else None,
        )

    def runtime_setup(self) -> RuntimeSetup:
        return self.setup

    def has_warm_runtime(self) -> bool:
        return self.pool is not None and self.pool.has_usable()

    def _dir(self, port: int) -> Path:
        return self.state_dir / str(port)

    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        warm = self.pool.take() if self.pool is not None else None
        if warm is not None:
            started = self._start_warm(port, warm, policy_text)
            if started is not None:
                return started
        return self._start_cold(port, self._prepare(port, policy_text))

    def _prepare(self, port: int, policy_text: str) -> Path:
        """A fresh slot directory holding the exact policy text."""
        directory = self._dir(port)
        stop_runtime(self.state_dir, port)  # a leftover from a crashed stack must not hold the port
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, mode=0o700)
        (directory / "policy.json").write_text(policy_text)
        return directory

    def _start_warm(self, port: int, warm: WarmRuntime, policy_text: str) -> dict[str, Any] | None:
        """Give a warm runtime this slot's directory and policy and wait for its port; None when it died
        before taking them. The slot directory takes over its pid and log, so the pool holds waiting ones only."""
        directory = self._prepare(port, policy_text)
        (directory / RUNTIME_DIR_FILE).write_text(str(warm.directory))  # the path its command line names
        (directory / "pid").write_text(str(warm.proc.pid))
        os.replace(warm.directory / "runtime.log", directory / "runtime.log")  # its stderr keeps writing there
        shutil.rmtree(warm.directory, ignore_errors=True)
        try:
            assert warm.proc.stdin is not None
            warm.proc.stdin.write(str(directory).encode() + b"\n" + policy_text.encode())
            warm.proc.stdin.close()
        except OSError:  # it died while waiting: start one the usual way
            stop_runtime(self.state_dir, port)
            return None
        line = warm.read_line(START_TIMEOUT)
        if line is not None and line.startswith("listening "):
            warm.close_control()
            return {"pid": warm.proc.pid, "warm": True}
        tail = _log_tail(directory)
        self.stop(port, {})
        raise DependencyFailed(f"the warm runtime for port {port} did not start serving its policy: {tail}")

    def _start_cold(self, port: int, directory: Path) -> dict[str, Any]:
        policy = directory / "policy.json"
        log = directory / "runtime.log"
        with open(log, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "client", "runtime", "serve", str(policy), "--scratch-dir", str(directory)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        (directory / "pid").write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = _log_tail(directory)
                self.stop(port, {})
                raise DependencyFailed(
                    f"the runtime for port {port} exited with {proc.returncode} while starting: {tail}"
                )
            if port_open(self.host, port):
                return {"pid": proc.pid}
            time.sleep(0.05)
        self.stop(port, {})
        raise DependencyFailed(f"the runtime for port {port} did not open its port within {START_TIMEOUT:g} s")

    def stop(self, port: int, facts: dict[str, Any]) -> None:
        stop_runtime(self.state_dir, port)

    def status(self, port: int, facts: dict[str, Any]) -> str:
        pid = _read_pid(self._dir(port))
        if pid is None:
            return "missing"
        child = _children.get(pid)
        if child is not None:  # started by this process: its exit code tells a shutdown from a death
            code = child.poll()
            return "running" if code is None else "exited" if code == 0 else "died"
        return "running" if _alive(pid, self._dir(port)) else "died"


def register() -> None:
    """Make ``IPOC_VAAS_BACKEND=local`` mean this backend in this process (VaaS does not import deployments)."""
    backends.register(NAME, LocalBackend.from_settings)


def stop_runtime(state_dir: Path, port: int) -> None:
    """Stop the runtime process of a slot (SIGTERM, then SIGKILL) and remove its directory."""
    _stop_directory(state_dir / str(port))


def _stop_directory(directory: Path) -> None:
    """Stop the runtime recorded in ``directory`` (a slot's or a warm one's) and remove what it held."""
    pid = _read_pid(directory)
    if pid is not None and _alive(pid, directory):
        os.killpg(pid, signal.SIGTERM)  # the runtime leads its own session (start_new_session)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _alive(pid, directory):
            time.sleep(0.02)
        if _alive(pid, directory):
            os.killpg(pid, signal.SIGKILL)
    child = _children.pop(pid, None) if pid is not None else None
    if child is not None:
        child.wait(STOP_TIMEOUT)
    runtime_dir = _runtime_dir(directory)
    if runtime_dir != directory and runtime_dir.parent.name == POOL_DIR:  # only ever a warm pool's directory
        shutil.rmtree(runtime_dir, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)


def running_ports(state_dir: Path) -> list[int]:
    """Ports whose runtime process is alive (for ``ipoc local status`` and ``down``)."""
    if not state_dir.is_dir():
        return []
    ports = []
    for directory in sorted(state_dir.iterdir()):
        pid = _read_pid(directory)
        if directory.name.isdigit() and pid is not None and _alive(pid, directory):
            ports.append(int(directory.name))
    return ports


def _log_tail(directory: Path) -> str:
    """The last line a runtime logged (why it stopped), for the error a caller sees."""
    try:
        lines = (directory / "runtime.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def _read_pid(directory: Path) -> int | None:
    try:
        return int((directory / "pid").read_text())
    except (OSError, ValueError):
        return None


def _runtime_dir(directory: Path) -> Path:
    """The directory the runtime's command line names: the slot's own, or the warm pool's it started in."""
    try:
        return Path((directory / RUNTIME_DIR_FILE).read_text())
    except OSError:
        return directory


def _alive(pid: int, directory: Path) -> bool:
    """Alive, not a zombie, and still our runtime for this directory (pids get reused)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    runtime_dir = _runtime_dir(directory)
    marker = str(runtime_dir if (directory / RUNTIME_DIR_FILE).exists() else directory / "policy.json")
    return state != "Z" and marker.encode() in cmdline


# -- the warm pool ---------------------------------------------------------------


@dataclass
class WarmRuntime:
    """A runtime process that has attested and waits for its policy on stdin."""

    proc: subprocess.Popen[bytes]
    directory: Path
    attested_at: float = 0.0  # wall clock (a monotonic clock stops while a laptop sleeps)
    valid_until: float = 0.0  # when its enclave certificate expires (wall clock)

    def usable(self, instance_seconds: float) -> bool:
        """Alive, not idle past WARM_MAX_IDLE, and certified for longer than an instance may live from now."""
        now = time.time()
        return (
            self.proc.poll() is None
            and now - self.attested_at < WARM_MAX_IDLE
            and self.valid_until >= now + instance_seconds + INSTANCE_MARGIN
        )

    def read_line(self, timeout: float) -> str | None:
        """The runtime's next control line (stdout), or None when it ended or stayed silent ``timeout`` s."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buffer = b""
        deadline = time.monotonic() + timeout
        while not buffer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 256)
            if not chunk:
                return None
            buffer += chunk
        return buffer.decode(errors="replace").strip()

    def close_control(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class WarmPool:
    """``size`` runtimes started and attested ahead, each handed one policy by :meth:`take`, refilled by a thread."""

    state_dir: Path
    proxy_url: str
    proxy_cert: str
    size: int
    _ready: list[WarmRuntime] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _thread: threading.Thread | None = None
    _last_take: float = float("-inf")

    @property
    def directory(self) -> Path:
        return self.state_dir / POOL_DIR

    def serves(self, proxy_url: str, proxy_cert: str) -> bool:
        """Whether its runtimes attested with the proxy the policies will name."""
        return (proxy_url, proxy_cert) == (self.proxy_url, self.proxy_cert)

    def begin(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.directory / "proxy-cert.pem").write_text(self.proxy_cert)
        self._thread = threading.Thread(target=self._refill, name="warm-pool", daemon=True)
        self._thread.start()

    def take(self) -> WarmRuntime | None:
        """An attested runtime, at once, or None when none is ready (the caller starts one the usual way)."""
        with self._lock:
            self._last_take = time.monotonic()
            while self._ready:
                warm = self._ready.pop(0)
                if warm.usable(settings().max_ttl):
                    self._lock.notify_all()
                    return warm
                threading.Thread(target=_stop_directory, args=(warm.directory,), daemon=True).start()
            self._lock.notify_all()
            return None

    def has_usable(self) -> bool:
        """Whether :meth:`take` would now return a runtime."""
        with self._lock:
            return any(warm.usable(settings().max_ttl) for warm in self._ready)

    def ready_count(self) -> int:
        with self._lock:
            return len(self._ready)

    def wait_full(self, timeout: float) -> bool:
        """Block until every place holds an attested runtime (for start-up and benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._ready) < self.size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return len(self._ready) >= self.size

    def close(self) -> None:
        """Stop refilling, and stop every runtime still waiting (closing stdin ends it; then signals)."""
        with self._lock:
            self._closed = True
            waiting, self._ready = self._ready, []
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(START_TIMEOUT + STOP_TIMEOUT)
        for warm in waiting:
            _stop_directory(warm.directory)

    def _refill(self) -> None:
        failures = 0
        while True:
            with self._lock:
                while not self._closed and not self._should_start():
                    settle = self._last_take + REFILL_SETTLE - time.monotonic()
                    self._lock.wait(settle if len(self._ready) < self.size and settle > 0 else None)
                if self._closed:
                    return
            warm = self._start_one()
            with self._lock:
                if warm is not None and not self._closed:
                    self._ready.append(warm)
                    self._lock.notify_all()
                    failures = 0
                    continue
                closed = self._closed
            if warm is not None:
                _stop_directory(warm.directory)
            if closed:
                return
            failures += 1  # e.g. the proxy is down: back off (bounded), cold starts still work meanwhile
            with self._lock:
                self._lock.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))

    def _should_start(self) -> bool:
        """Below size, and either empty or quiet for REFILL_SETTLE: a runtime's start-up (imports, key,
        attestation with the proxy in the stack's process) would otherwise compete for CPU with the
        instance just allocated, whose workflow is still running."""
        if len(self._ready) >= self.size:
            return False
        return not self._ready or time.monotonic() - self._last_take >= REFILL_SETTLE

    def _start_one(self) -> WarmRuntime | None:
        directory = self.directory / uuid.uuid4().hex
        directory.mkdir(mode=0o700)
        (directory / RUNTIME_DIR_FILE).write_text(str(directory))
        with open(directory / "runtime.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "client",
                    "runtime",
                    "serve",
                    "--warm",
                    "--proxy-url",
                    self.proxy_url,
                    "--proxy-cert",
                    str(self.directory / "proxy-cert.pem"),
                    "--scratch-dir",
                    str(directory),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        (directory / "pid").write_text(str(proc.pid))
        warm = WarmRuntime(proc, directory)
        word, _, valid_until = (warm.read_line(START_TIMEOUT) or "").partition(" ")
        if word != "attested" or not valid_until.isascii() or not valid_until.isdigit():
            _log.warning("a warm runtime did not attest: %s", _log_tail(directory))
            _stop_directory(directory)
            return None
        warm.attested_at, warm.valid_until = time.time(), float(valid_until)
        if not warm.usable(settings().max_ttl):
            _log.warning(
                "the proxy certifies warm runtimes for less than the longest instance (IPOC_MAX_TTL) "
                "lives: instances start cold; give the proxy a longer certificate validity"
            )
            _stop_directory(directory)
            return None
        return warm


def start_pool(size: int | None = None) -> WarmPool | None:
    """Start the warm pool for this process's settings (``IPOC_WARM_POOL``; 0 starts nothing)."""
    config = settings()
    size = config.warm_pool if size is None else size
    if size <= 0:
        return None
    state_dir = Path(config.state_dir)
    stop_pool(state_dir)  # one pool per state directory; a crashed predecessor's leftovers go first
    pool = WarmPool(state_dir, config.proxy_url, config.proxy_cert, size)
    with _pools_lock:
        _pools[state_dir] = pool
    pool.begin()
    return pool


def stop_pool(state_dir: Path) -> None:
    """Stop this process's pool for ``state_dir`` and every warm runtime recorded under ``<state_dir>/pool``
    (also those a crashed process left: found by their pid files, checked against their command lines)."""
    with _pools_lock:
        pool = _pools.pop(state_dir, None)
    if pool is not None:
        pool.close()
    directory = state_dir / POOL_DIR
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.is_dir():
                _stop_directory(entry)
        shutil.rmtree(directory, ignore_errors=True)
