"""The local backend: each instance is an ``ipoc runtime serve`` process on this machine.

Each slot has a directory ``<state>/<port>/`` holding the exact policy text,
the process's pid and its log. ``start`` returns once the runtime has attested
and opened its port (or fails, leaving nothing behind), so a client can
connect as soon as VaaS answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipoc.errors import DependencyFailed
from ipoc.wire.carrier import port_open
from lambdas.shared.config import settings
from lambdas.vaas.backends import Infrastructure, RuntimeBackend

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_children: dict[int, subprocess.Popen[bytes]] = {}  # reaped here when this process started them


@dataclass
class LocalBackend(RuntimeBackend):
    state_dir: Path
    infra: Infrastructure
    host: str = "127.0.0.1"

    @classmethod
    def from_settings(cls) -> "LocalBackend":
        config = settings()
        if not config.state_dir:
            raise RuntimeError("IPOC_STATE_DIR must name the directory for local runtimes")
        if not config.proxy_cert or not config.runtime_hash:
            raise RuntimeError("the local backend needs IPOC_PROXY_CERT and IPOC_RUNTIME_HASH (ipoc local up sets them)")
        return cls(
            state_dir=Path(config.state_dir),
            infra=Infrastructure(
                proxy_url=config.proxy_url,
                proxy_cert=config.proxy_cert,
                runtime_hash=config.runtime_hash,
                platform="linux",
                endpoint_host=config.endpoint_host,
            ),
        )

    def infrastructure(self) -> Infrastructure:
        return self.infra

    def _dir(self, port: int) -> Path:
        return self.state_dir / str(port)

    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        directory = self._dir(port)
        stop_runtime(self.state_dir, port)  # a leftover from a crashed stack must not hold the port
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, mode=0o700)
        policy = directory / "policy.json"
        policy.write_text(policy_text)
        log = directory / "runtime.log"
        with open(log, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "client", "runtime", "serve", str(policy), "--scratch-dir", str(directory)],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _children[proc.pid] = proc
        (directory / "pid").write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                self.stop(port, {})
                raise DependencyFailed(f"the runtime for port {port} exited with {proc.returncode} while starting: {tail[0]}")
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

def stop_runtime(state_dir: Path, port: int) -> None:
    """Stop the runtime process of a slot (SIGTERM, then SIGKILL) and remove its directory."""
    directory = state_dir / str(port)
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


def _read_pid(directory: Path) -> int | None:
    try:
        return int((directory / "pid").read_text())
    except (OSError, ValueError):
        return None


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
    return state != "Z" and str(directory / "policy.json").encode() in cmdline
