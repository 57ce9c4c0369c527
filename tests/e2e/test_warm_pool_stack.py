"""The warm pool in `ipoc local up` (a detached subprocess, real runtimes, moto's server): an instance is served
by a runtime started ahead, and no runtime outlives the stack, whether it is stopped or killed.

The pool lives in the local AWS process, beside the workflow's Allocate task that takes from it, so instances
are created as users create them: through CCFaaS and the lifecycle workflow."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil

from ipoc.client import VeracruzClient
from tests.support import processes
from tests.support.local_stack import create_ready, register_echo, stack_env, up_args
from tests.support.waiting import free_port_range, wait_until

SLOTS = 2


def runtimes_of(home: Path) -> dict[int, list[str]]:
    """Live runtime processes of this IPOC_HOME (by their command lines; zombies excluded)."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and "serve" in cmdline and any(str(home) in a for a in cmdline):
            found[proc.info["pid"]] = cmdline
    return found


def up(tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "home"
    base = free_port_range(5 + SLOTS)
    env = stack_env(home, IPOC_WARM_POOL="1")
    started = processes.run(up_args(base, SLOTS), env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    state = json.loads(processes.run(["local", "status", "--json"], env=env).stdout)
    return {"env": env, "home": home, "pid": int(state["pid"]), "ccfaas": f"http://127.0.0.1:{base}"}


def warm_pids(home: Path) -> set[int]:
    return {pid for pid, cmdline in runtimes_of(home).items() if "--warm" in cmdline}


def test_a_stack_serves_from_its_pool_and_down_leaves_no_runtime(tmp_path, ids, echo_wasm):
    stack = up(tmp_path)
    try:
        register_echo(stack["ccfaas"], "echo", echo_wasm)
        [warm] = wait_until(lambda: warm_pids(stack["home"]) or None, timeout=60, what="a warm runtime")
        policy = create_ready(stack["ccfaas"], "pooled", ids.user)
        port = json.loads(policy)["veracruz_server_url"].rsplit(":", 1)[1]
        assert int((stack["home"] / "local" / "runtimes" / port / "pid").read_text()) == warm
        with VeracruzClient(policy, ids.user.certificate, ids.user.private_key) as client:
            client.write_file("/input/data.txt", b"hi")
        wait_until(lambda: warm_pids(stack["home"]) - {warm} or None, timeout=60, what="the pool to refill")
    finally:
        stopped = processes.run(["local", "down"], env=stack["env"], timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert runtimes_of(stack["home"]) == {}


def test_killing_the_stack_ends_its_waiting_runtimes_and_down_the_rest(tmp_path, ids, echo_wasm):
    stack = up(tmp_path)
    try:
        register_echo(stack["ccfaas"], "echo", echo_wasm)
        waiting = wait_until(lambda: warm_pids(stack["home"]) or None, timeout=60, what="a warm runtime")
        create_ready(stack["ccfaas"], "pooled", ids.user)
        refilled = wait_until(lambda: warm_pids(stack["home"]) - waiting or None, timeout=60, what="the pool to refill")
        # WHEN the stack process dies without stopping anything
        os.kill(stack["pid"], signal.SIGKILL)
        # THEN a runtime still waiting for a policy sees its pipe close and exits by itself
        wait_until(lambda: not (warm_pids(stack["home"]) & refilled), timeout=30, what="the waiting runtime to exit")
        assert runtimes_of(stack["home"])  # the serving one stays up (as any instance's) until down/reconciliation
    finally:
        stopped = processes.run(["local", "down"], env=stack["env"], timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert runtimes_of(stack["home"]) == {}
