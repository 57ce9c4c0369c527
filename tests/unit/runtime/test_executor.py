"""Each execution limit, tested with tiny inline WAT modules and real wasmtime."""

from __future__ import annotations

import time
from typing import Any

import pytest
import wasmtime

from runtime.executor import ERRNO_NOTCAPABLE, Executor, Streams
from runtime.refusal import Refused
from runtime.vfs import Preopen


def wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


EXIT_WITH = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {code}))))
"""

SPIN = """
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
"""

# Grows memory by 64 pages (4 MiB) at a time until memory.grow fails, then exits with the MiB reached.
GROW = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $done
      (loop $l
        (br_if $done (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))
        (br $l)))
    (call $exit (i32.div_u (memory.size) (i32.const 16)))))
"""

# Calls clock_time_get and exits with the errno it returned.
CLOCK = """
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (call $now (i32.const 0) (i64.const 1) (i32.const 16)))))
"""

# Opens "f.txt" in the first preopen (fd 3) for writing and exits with the errno.
CREATE = """
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "f.txt")
  (func (export "_start")
    (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 1)
      (i64.const 0x1ffffff) (i64.const 0x1ffffff) (i32.const 0) (i32.const 64)))))
"""


def executor(**overrides: Any) -> Executor:
    options: dict[str, Any] = dict(max_memory_mib=64, enable_clock=True, time_limit=5.0)
    options.update(overrides)
    return Executor(**options)


def test_exit_code_comes_back():
    assert executor().run(wasm(EXIT_WITH.format(code=42)), [], Streams()) == 42


def test_returning_from_start_is_exit_zero():
    assert executor().run(wasm('(module (memory (export "memory") 1) (func (export "_start")))'), [], Streams()) == 0


def test_time_limit_stops_a_runaway_program():
    started = time.monotonic()
    with pytest.raises(Refused, match="exceeded the 0.3 s time limit"):
        executor(time_limit=0.3).run(wasm(SPIN), [], Streams())
    assert time.monotonic() - started < 5


def test_memory_cap_is_max_memory_mib():
    # GIVEN a 16 MiB cap WHEN the program grows memory 4 MiB at a time THEN growth stops at the cap
    reached = executor(max_memory_mib=16).run(wasm(GROW), [], Streams())
    assert reached <= 16
    assert reached >= 12


def test_clock_is_hidden_unless_enabled():
    assert executor(enable_clock=False).run(wasm(CLOCK), [], Streams()) == ERRNO_NOTCAPABLE
    assert executor(enable_clock=True).run(wasm(CLOCK), [], Streams()) == 0


def test_read_only_preopen_refuses_creation(tmp_path):
    read_only = [Preopen(host_dir=tmp_path, guest_path="/in", writable=False)]
    writable = [Preopen(host_dir=tmp_path, guest_path="/in", writable=True)]
    assert executor().run(wasm(CREATE), read_only, Streams()) != 0
    assert not (tmp_path / "f.txt").exists()
    assert executor().run(wasm(CREATE), writable, Streams()) == 0
    assert (tmp_path / "f.txt").exists()


def test_traps_and_bad_modules_are_refusals():
    with pytest.raises(Refused, match="trapped"):
        executor().run(
            wasm('(module (memory (export "memory") 1) (func (export "_start") unreachable))'), [], Streams()
        )
    with pytest.raises(Refused, match="not a valid WebAssembly module"):
        executor().run(b"\0asm garbage", [], Streams())
    with pytest.raises(Refused, match="exports no _start"):
        executor().run(wasm("(module)"), [], Streams())


def test_modules_are_compiled_once():
    runner = executor()
    binary = wasm(EXIT_WITH.format(code=1))
    assert runner.module(binary) is runner.module(binary)
