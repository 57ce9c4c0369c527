"""Item 4: a blocking WASI call stays inside the time limit, and does not stall other clients."""

from __future__ import annotations

import threading
import time

import pytest
import wasmtime

from ipoc import errors, rights
from runtime.executor import Executor, Streams
from runtime.refusal import Refused
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies
from tests.support.waiting import wait_until

SLEEPER = "/program/sleeper.wasm"
LIMIT = 3.0

# poll_oneoff with one relative clock subscription of {ns} ns; exits with the errno, or 100 + nevents.
POLL = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $errno i32)
    (i64.store (i32.const 0) (i64.const 7))            ;; userdata
    (i32.store8 (i32.const 8) (i32.const 0))           ;; tag: clock
    (i32.store (i32.const 16) (i32.const 1))           ;; monotonic
    (i64.store (i32.const 24) (i64.const {ns}))        ;; timeout
    (i32.store16 (i32.const 40) (i32.const {flags}))   ;; 0 relative, 1 absolute
    (local.set $errno (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 200)))
    (if (local.get $errno) (then (call $exit (local.get $errno))))
    (call $exit (i32.add (i32.const 100) (i32.load (i32.const 200))))))
"""


def poll(ns: int, flags: int = 0) -> bytes:
    return bytes(wasmtime.wat2wasm(POLL.format(ns=ns, flags=flags)))


def test_a_wait_past_the_limit_ends_at_the_limit():
    executor = Executor(max_memory_mib=16, enable_clock=True, time_limit=1.0)
    started = time.monotonic()
    with pytest.raises(Refused, match="time limit"):
        executor.run(poll(25 * 10**9), [], Streams())  # sleep(25) in one WASI call
    assert time.monotonic() - started < 4


def test_a_short_wait_still_works():
    executor = Executor(max_memory_mib=16, enable_clock=True, time_limit=5.0)
    assert executor.run(poll(10**7), [], Streams()) == 101  # one event after 10 ms


def test_an_absolute_wait_is_refused_without_a_clock():
    executor = Executor(max_memory_mib=16, enable_clock=False, time_limit=5.0)
    assert executor.run(poll(10**7, flags=1), [], Streams()) == 76  # NOTCAPABLE: it would tell the time


def sleep_while_a_bystander_writes(start_runtime, wasm: bytes, directory: str) -> tuple[dict[str, object], float]:
    """Run sleep(25) under the limit; once it sleeps, another identity connects, writes and reads in ``directory``."""
    admin, user, bystander = fresh("admin"), fresh("user"), fresh("bystander")
    vaas = policies.vaas_policy(
        [
            (admin, ADMIN_RIGHTS),
            (user, [{"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)}]),
            (bystander, [{"file_name": directory, "rights": int(rights.READ_WRITE)}]),
        ],
        programs=[program(SLEEPER, [("/output/", rights.READ_WRITE)])],
    )
    runtime = start_runtime(vaas, time_limit=LIMIT)
    with client(runtime, admin) as c:
        c.write_file(SLEEPER, wasm)

    outcome: dict[str, object] = {}

    def execute() -> None:
        started = outcome["started"] = time.monotonic()
        try:
            with client(runtime, user) as c:
                c.execute(SLEEPER)  # sleep(25)
        except errors.VeracruzError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started
        outcome["ended"] = time.monotonic()

    runner = threading.Thread(target=execute)
    runner.start()
    try:
        wait_until(
            lambda: (runtime.scratch / "fs" / "output" / "started").exists(), timeout=20, what="the program to start"
        )
        with client(runtime, bystander) as c:
            c.write_file(f"{directory}f", b"written")
            assert c.read_file(f"{directory}f") == b"written"
        bystander_done = time.monotonic()
    finally:
        runner.join(60)
    assert isinstance(outcome.get("error"), errors.ExecutionFailed)
    assert "time limit" in str(outcome["error"])
    assert (
        isinstance(outcome["seconds"], float) and outcome["seconds"] < LIMIT + 4
    )  # not the 25 s the program asked for
    return outcome, bystander_done


def test_sleep_is_stopped_at_the_limit_while_a_bystander_connects_and_writes(start_runtime, attacker):
    outcome, bystander_done = sleep_while_a_bystander_writes(start_runtime, attacker["sleeper"], "/bystander/")
    assert bystander_done < outcome["ended"]  # the bystander did not wait for the program


def test_a_client_waits_for_the_run_only_on_paths_the_program_sees(start_runtime, attacker):
    # /output/ is the sleeping program's directory: the write waits for the run, then succeeds.
    outcome, bystander_done = sleep_while_a_bystander_writes(start_runtime, attacker["sleeper"], "/output/")
    assert bystander_done >= outcome["started"] + LIMIT  # the run cannot have ended earlier
