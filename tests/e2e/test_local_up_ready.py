"""`ipoc local up --detach` returns when the stack is ready, and says why when it cannot start.

Ready means: the profile is written, the APIs answer, and a function registered and an instance created
right after (no wait in between) reach READY; the local AWS got the task Lambdas' settings (an instance's
workflow runs there). A stack that cannot start makes `up` exit 1 with the reason from the stack's log.
The stack runs as real detached processes with their own IPOC_HOME and free ports.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.support import processes
from tests.support.local_stack import create_ready, register_echo, stack_env, up_args
from tests.support.waiting import free_port_range

SLOTS = 2


def env_for(home: Path) -> dict[str, str]:
    return stack_env(home, IPOC_WARM_POOL="0")


def test_register_and_create_work_as_soon_as_up_returns(tmp_path, ids, echo_wasm):
    env, base = env_for(tmp_path / "home"), free_port_range(5 + SLOTS)
    started = processes.run(up_args(base, SLOTS), env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    said = " ".join(started.stderr.split())  # where the state and the profile are, as the foreground run says
    assert f"state under {tmp_path / 'home'}" in said and f"profile 'local' in {env['IPOC_CONFIG']}" in said, said
    try:
        listed = processes.run(["function", "list"], env=env)  # through the profile `up` wrote
        assert listed.returncode == 0, listed.stderr
        ccfaas = f"http://127.0.0.1:{base}"
        register_echo(ccfaas, "echo", echo_wasm)
        assert json.loads(create_ready(ccfaas, "first", ids.user))["veracruz_server_url"]  # waits for READY
    finally:
        stopped = processes.run(["local", "down"], env=env, timeout=120)
    assert stopped.returncode == 0, stopped.stderr


def test_a_stack_that_cannot_start_makes_up_fail_with_the_reason(tmp_path):
    env, base = env_for(tmp_path / "home"), free_port_range(5 + SLOTS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 4))  # the local AWS's port
        taken.listen()
        started = processes.run(up_args(base, SLOTS), env=env, timeout=180)
    assert started.returncode == 1
    assert f"port {base + 4} for moto (AWS) is in use" in started.stderr
    assert started.stderr.count("error:") == 1, started.stderr  # the stack's reason, not "error: ... error: ..."
    assert "stack.log" in started.stderr
    assert processes.run(["local", "status"], env=env).returncode == 1
