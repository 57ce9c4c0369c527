"""Stream N bytes into a runtime from a generated source and report the client's memory growth.

Run as a subprocess (``python -m tests.support.stream_client POLICY CERT KEY PATH BYTES``)
so that the measured RSS is the client's alone. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import BinaryIO, cast

import psutil

from ipoc.client import VeracruzClient


class Pattern:
    """A read-only stream of ``size`` bytes that holds only one block in memory."""

    def __init__(self, size: int, block: int = 1 << 20) -> None:
        self.remaining = size
        self.block = bytes(i % 251 for i in range(block))

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        self.remaining -= n
        if n <= len(self.block):
            return self.block[:n]
        return (self.block * (n // len(self.block) + 1))[:n]


def peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM). Not ru_maxrss: across exec that keeps the forking
    parent's peak, so a child of a large test process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    policy, cert, key, path, size = sys.argv[1:6]
    client = VeracruzClient(Path(policy).read_text(), Path(cert).read_text(), Path(key).read_text())
    with client:
        baseline = psutil.Process().memory_info().rss
        started = time.monotonic()
        sent = client.stream_file(path, cast(BinaryIO, Pattern(int(size))))  # read() is all stream_file uses
        elapsed = time.monotonic() - started
    peak = peak_rss()
    print(json.dumps({"sent": sent, "seconds": elapsed, "rss_growth_mib": (peak - baseline) / 2**20}))


if __name__ == "__main__":
    main()
