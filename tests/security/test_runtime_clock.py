"""Item 6: with ``enable_clock: false`` a program cannot read the host's time from file timestamps."""

from __future__ import annotations

from ipoc import rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies

STAT = "/program/stat_time.wasm"


def run(start_runtime, wasm: bytes, *, enable_clock: bool) -> int:
    admin = fresh("admin")
    vaas = policies.vaas_policy(
        [(admin, ADMIN_RIGHTS)],
        programs=[program(STAT, [("/input/", rights.READ), ("/output/", rights.READ_WRITE)])],
        enable_clock=enable_clock,
    )
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        c.write_file(STAT, wasm)
        c.write_file("/input/f", b"data")
        return c.execute(STAT)


def test_timestamps_are_hidden_when_the_clock_is_off(start_runtime, attacker):
    assert run(start_runtime, attacker["stat_time"], enable_clock=False) == 0


def test_timestamps_are_real_when_the_clock_is_on(start_runtime, attacker):
    assert run(start_runtime, attacker["stat_time"], enable_clock=True) == 1
