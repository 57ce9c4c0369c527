"""The attacker's programs, compiled once per session from ``programs/*.c`` (as `make functions` builds ours).

Each is a small C program run by the real runtime (wasmtime) under a policy
that grants it only what its test says; what it tries is what a malicious
publisher or a compromised program could try.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.wasm import zig_wasi_command

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).resolve().parent / "programs"
BUILD = ROOT / "build" / "security"


def compile_programs(names: list[str]) -> dict[str, bytes]:
    """Build ``programs/<name>.c`` to wasm32-wasi, in parallel, each only when its source (or a shared header) is
    newer."""
    BUILD.mkdir(parents=True, exist_ok=True)
    jobs = []
    headers = [header.stat().st_mtime for header in SOURCES.glob("*.h")]  # every program may include them
    for name in names:
        source, target = SOURCES / f"{name}.c", BUILD / f"{name}.wasm"
        if target.exists() and target.stat().st_mtime >= max([source.stat().st_mtime, *headers]):
            continue
        partial = target.with_suffix(".tmp")
        jobs.append((subprocess.Popen(zig_wasi_command(source, partial)), partial, target))
    try:
        for process, partial, target in jobs:
            if process.wait(timeout=240) != 0:
                raise RuntimeError(f"compiling {target.stem}.c failed (exit {process.returncode})")
            partial.replace(target)
    finally:
        for process, _, _ in jobs:
            if process.poll() is None:
                process.kill()
                process.wait()
    return {name: (BUILD / f"{name}.wasm").read_bytes() for name in names}


@pytest.fixture(scope="session")
def attacker() -> dict[str, bytes]:
    """Every attacker program by name (``plant_links``, ``copy_program``, ...)."""
    return compile_programs(sorted(source.stem for source in SOURCES.glob("*.c")))
