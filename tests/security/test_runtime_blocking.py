"""Item 4: a blocking WASI call stays inside the time limit, and does not stall other clients."""

from __future__ import annotations

import threading
import time

import pytest

from ipoc import errors
from ipoc import rights as R
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies as P
from tests.support.waiting import wait_until

SLEEPER = "/program/sleeper.wasm"
LIMIT = 2.0


def test_sleep_is_stopped_at_the_limit_while_a_bystander_connects_and_writes(start_runtime, attacker):
    admin, user, bystander = fresh("admin"), fresh("user"), fresh("bystander")
    vaas = P.vaas_policy(
        [
            (admin, ADMIN_RIGHTS),
            (user, [{"file_name": "/program/", "rights": int(R.OPEN_EXECUTE)}]),
            (bystander, [{"file_name": "/bystander/", "rights": int(R.READ_WRITE)}]),
        ],
        programs=[program(SLEEPER, [("/output/", R.READ_WRITE)])],
    )
    runtime = start_runtime(vaas, time_limit=LIMIT)
    with client(runtime, admin) as c:
        c.write_file(SLEEPER, attacker["sleeper"])

    outcome: dict[str, object] = {}

    def execute() -> None:
        started = time.monotonic()
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
        wait_until(lambda: (runtime.scratch / "fs" / "output" / "started").exists(), timeout=20, what="the program to start")
        # While the program sleeps, a bystander opens a session, writes and reads back.
        with client(runtime, bystander) as c:
            c.write_file("/bystander/f", b"not waiting")
            assert c.read_file("/bystander/f") == b"not waiting"
        bystander_done = time.monotonic()
    finally:
        runner.join(60)
    assert isinstance(outcome.get("error"), errors.ExecutionFailed)
    assert "time limit" in str(outcome["error"])
    assert outcome["seconds"] < LIMIT + 4  # not the 25 s the program asked for
    assert bystander_done < outcome["ended"]  # the bystander did not wait for the program
