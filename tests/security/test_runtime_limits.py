"""Item 5: ``max_memory_mib`` bounds all of a program's memory, not each memory.

Real wasmtime; the modules are what an attacker would hand-write: several
memories each just under the cap, and huge or many tables (8 bytes per element).
"""

from __future__ import annotations

import pytest
import wasmtime

from runtime.executor import Executor, Streams
from runtime.refusal import Refused

CAP_MIB = 64


def module(body: str) -> bytes:
    return bytes(wasmtime.wat2wasm(f'(module {body} (func (export "_start")))'))


ATTACKS = {
    # 8 × 62.5 MiB with a 64 MiB cap (multi-memory is on by default in wasmtime)
    "eight memories": module('(memory (export "memory") 1000) ' + " ".join(f"(memory {1000})" for _ in range(7))),
    # 4 × 20 M elements: 640 MiB of table
    "four huge tables": module(
        " ".join("(table 20000000 funcref)" for _ in range(4)) + ' (memory (export "memory") 1)'
    ),
    "one huge table": module('(table 20000000 funcref) (memory (export "memory") 1)'),
    "two tables": module('(table 1 funcref) (table 1 funcref) (memory (export "memory") 1)'),
    "a 64-bit memory": module('(memory (export "memory") i64 1)'),
    "a shared memory": module('(memory (export "memory") 1 1 shared)'),
}


@pytest.mark.parametrize("wasm", ATTACKS.values(), ids=ATTACKS.keys())
def test_memory_beyond_the_cap_is_refused(tmp_path, wasm):
    executor = Executor(max_memory_mib=CAP_MIB, enable_clock=True, time_limit=10)
    with pytest.raises(Refused) as info:
        executor.run(wasm, [], Streams())
    assert info.value.code == "ExecutionFailed"


def test_a_program_within_the_cap_still_runs():
    executor = Executor(max_memory_mib=CAP_MIB, enable_clock=True, time_limit=10)
    assert executor.run(module('(table 1000 funcref) (memory (export "memory") 1000)'), [], Streams()) == 0
