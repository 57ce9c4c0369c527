"""Bounded waits that poll a condition: the only way tests synchronise."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy (that, never None); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A port the kernel just had free on 127.0.0.1 (a tiny race remains; tests use it at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_range(count: int, start: int = 20000, end: int = 32000) -> int:
    """The first port of ``count`` consecutive ports that are free on 127.0.0.1 right now, below the
    kernel's ephemeral range (32768+) so that outgoing connections cannot take them meanwhile."""
    import random

    for _ in range(200):
        base = random.randrange(start, end - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
