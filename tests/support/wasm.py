"""Byte-level WebAssembly helpers for tests."""

from __future__ import annotations

import sys
from pathlib import Path


def custom_section(name: bytes, payload: bytes) -> bytes:
    """A custom section (id 0), appended to a module: runtimes ignore it, so the program runs the same but its
    bytes, and so its sha256, differ (a "rebuilt" program for version tests)."""
    content = bytes([len(name)]) + name + payload
    if len(content) >= 128:
        raise ValueError("keep custom sections under 128 bytes (one-byte LEB128 sizes)")
    return bytes([0, len(content)]) + content


def zig_wasi_command(source: Path, output: Path) -> list[str]:
    """The command that builds a C test program to wasm32-wasi as `make functions` builds the workloads."""
    return [sys.executable, "-m", "ziglang", "cc", "--target=wasm32-wasi", "-O2", "-s", "-o", str(output), str(source)]
