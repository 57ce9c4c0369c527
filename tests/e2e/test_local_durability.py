"""The local stack keeps what it acknowledged across `down`/`up` and `kill -9`, and reconciles at start.

Each test runs `ipoc local up --detach` as a real subprocess tree (stack, local AWS,
runtimes) with its own IPOC_HOME and free ports, kills it with SIGKILL at chosen
moments and starts it again. The oracle for "acknowledged" is the 2xx the client got.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.persistence import LAYOUT_VERSION
from local.reconcile import RESTART_REASON
from tests.support import policies, processes
from tests.support.local_stack import aws_client, register_echo, stack_env, stack_ports, up_args
from tests.support.waiting import free_port_range, wait_until

SLOTS = 2
ALICE = {"X-Ipoc-Local-User": "alice"}


class Stack:
    """One IPOC_HOME and port set; `up`, `kill`, `down` as a developer runs them."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.base = free_port_range(5 + SLOTS)
        # No warm pool: every runtime found after a restart must then be an orphan of the killed stack (the warm
        # pool's own kill and restart paths are tests/e2e/test_warm_pool_stack.py's).
        self.env = stack_env(home, IPOC_WARM_POOL="0")
        self.url = {k: f"http://127.0.0.1:{p}" for k, p in stack_ports(self.base).items()}

    def up(self, *extra: str, check: bool = True) -> Any:
        args = up_args(self.base, SLOTS, "--reaper-interval", "1", "--api-workers", "2", *extra)
        started = processes.run(args, env=self.env, timeout=180)
        if check:
            assert started.returncode == 0, started.stderr
        return started

    def status(self) -> dict[str, Any]:
        return json.loads(processes.run(["local", "status", "--json"], env=self.env).stdout)

    def kill(self) -> None:
        """SIGKILL the stack process, as a crash would; its local AWS dies with it (PR_SET_PDEATHSIG)."""
        state = self.status()
        os.kill(state["pid"], signal.SIGKILL)
        wait_until(
            lambda: processes.run(["local", "status"], env=self.env).returncode == 1 and not _alive(state["aws_pid"]),
            timeout=30,
            what="the stack and its local AWS to be gone",
        )

    def down(self) -> None:
        assert processes.run(["local", "down"], env=self.env, timeout=120).returncode == 0

    def s3(self) -> Any:
        return aws_client(self.url["aws"], "s3")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def runtime_processes(home: Path) -> list[int]:
    """Every live process whose command line names this home's runtime directory (any stack's)."""
    marker = str(home / "local" / "runtimes").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes() and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "home")
    stack.up()
    try:
        yield stack
    finally:
        processes.run(["local", "down"], env=stack.env, timeout=120)
        assert runtime_processes(stack.home) == []


def user_policy(function: str, instance_id: str, ids: Any) -> dict[str, Any]:
    return {
        "function": function,
        "instanceid": instance_id,
        "identities": [
            {"certificate": ids.streamer.certificate, "file_rights": [{"file_name": "/input/", "rights": 534084}]},
            {"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS},
        ],
    }


def instance(stack: Stack, instance_id: str) -> dict[str, Any]:
    return requests.get(f"{stack.url['ccfaas']}/instance/{instance_id}", headers=ALICE, timeout=30).json()


def test_down_up_keeps_functions_artifacts_and_objects(stack, echo_wasm):
    register_echo(stack.url["ccfaas"], "kept", echo_wasm)
    payload = os.urandom(9 * 1024 * 1024 + 5)  # above moto's in-memory buffer: a spooled file
    stack.s3().put_object(Bucket="ipoc-local-inputs", Key="camera/video.enc", Body=payload)
    stack.s3().put_object(Bucket="ipoc-local-inputs", Key="camera/deleted.enc", Body=b"gone")
    stack.s3().delete_object(Bucket="ipoc-local-inputs", Key="camera/deleted.enc")
    ca = (stack.home / "attestation" / "ca-cert.pem").read_bytes()
    stack.down()
    stack.up()
    status = requests.get(f"{stack.url['ccfaas']}/function/kept/status", timeout=30).json()
    assert status["loaded"] is True
    assert stack.s3().get_object(Bucket="ipoc-local-inputs", Key="camera/video.enc")["Body"].read() == payload
    assert [o["Key"] for o in stack.s3().list_objects_v2(Bucket="ipoc-local-inputs").get("Contents", [])] == [
        "camera/video.enc"
    ]
    assert (stack.home / "attestation" / "ca-cert.pem").read_bytes() == ca
    layout = json.loads((stack.home / "local" / "state" / "FORMAT").read_text())
    assert layout == {"layout": "ipoc-local-state", "version": LAYOUT_VERSION}


@pytest.mark.parametrize("moment", ["accepted", "ready", "release requested"])
def test_kill_9_at_a_lifecycle_moment_then_up_reconciles(stack, ids, echo_wasm, moment):
    """After the crash: the function is still registered, the instance ended, no runtime runs, every slot is free,
    and a new instance becomes READY."""
    register_echo(stack.url["ccfaas"], "echo_crash", echo_wasm)
    ccfaas = stack.url["ccfaas"]
    accepted = requests.post(
        f"{ccfaas}/instance?wait=0", json=user_policy("echo_crash", "crash-1", ids), headers=ALICE, timeout=30
    )
    assert accepted.status_code == 202, accepted.text
    if moment != "accepted":
        wait_until(lambda: instance(stack, "crash-1")["status"] == "READY", timeout=60, what="READY")
    if moment == "release requested":

        def release() -> None:  # its answer may never come: the stack is killed while it waits
            try:
                requests.delete(f"{ccfaas}/instance/crash-1", headers=ALICE, timeout=30)
            except requests.RequestException:
                pass

        threading.Thread(target=release, daemon=True).start()
        wait_until(
            lambda: instance(stack, "crash-1")["status"] in ("RELEASING", "DELETED"), timeout=30, what="the release"
        )
    stack.kill()
    if moment == "ready":  # its runtime outlives the stack: status says so, and what stops it
        said = processes.run(["local", "status"], env=stack.env).stderr
        assert "runtime process(es) of the last stack still run" in said and "`ipoc local down`" in said, said
    stack.up()
    assert runtime_processes(stack.home) == []
    assert requests.get(f"{stack.url['vaas']}/veracruz", timeout=30).json() == {"veracruz": []}
    record = instance(stack, "crash-1")
    assert record["status"] in ("FAILED", "DELETED"), record
    if record["status"] == "FAILED":
        assert record["reason"] == RESTART_REASON
    assert requests.get(f"{ccfaas}/function/echo_crash/status", timeout=30).json()["loaded"] is True
    assert (
        requests.post(
            f"{ccfaas}/instance?wait=0", json=user_policy("echo_crash", "crash-2", ids), headers=ALICE, timeout=30
        ).status_code
        == 202
    )
    ready = wait_until(
        lambda: instance(stack, "crash-2")["status"] in ("READY", "FAILED") and instance(stack, "crash-2"),
        timeout=60,
        what="the new instance",
    )
    assert ready["status"] == "READY", ready.get("reason")


def test_every_acknowledged_registration_survives_kill_9_under_load(stack):
    """Writers register functions and upload objects while the stack is killed; whatever got a 2xx is there after
    `up`."""
    acknowledged: list[str] = []
    uploaded: list[str] = []
    stop = threading.Event()

    def register(worker: int) -> None:
        session = requests.Session()
        wasm = f"\0asm {worker}".encode()
        for n in range(10_000):
            if stop.is_set():
                return
            name = f"f{worker}_{n}"
            try:
                if (
                    session.post(
                        f"{stack.url['ccfaas']}/function", json=policies.echo_function(name, wasm), timeout=10
                    ).status_code
                    == 201
                ):
                    acknowledged.append(name)
            except requests.RequestException:
                return

    def upload() -> None:
        s3 = stack.s3()
        for n in range(10_000):
            if stop.is_set():
                return
            try:
                s3.put_object(Bucket="ipoc-local-inputs", Key=f"load/{n}", Body=os.urandom(64 * 1024))
                uploaded.append(f"load/{n}")
            except Exception:
                return

    threads = [threading.Thread(target=register, args=(w,)) for w in range(3)] + [threading.Thread(target=upload)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 20 and len(uploaded) >= 10, timeout=60, what="some acknowledged writes")
    stack.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    stack.up()
    names = set(requests.get(f"{stack.url['ccfaas']}/function", timeout=30).json()["functions"])
    assert set(acknowledged) <= names
    keys = {
        o["Key"]
        for page in stack.s3().get_paginator("list_objects_v2").paginate(Bucket="ipoc-local-inputs")
        for o in page.get("Contents", [])
    }
    assert set(uploaded) <= keys


def test_fresh_starts_empty_and_another_layout_is_refused(stack, echo_wasm):
    register_echo(stack.url["ccfaas"], "old", echo_wasm)
    stack.down()
    marker = stack.home / "local" / "state" / "FORMAT"
    marker.write_text(json.dumps({"layout": "ipoc-local-state", "version": LAYOUT_VERSION + 1}))
    refused = stack.up(check=False)
    assert refused.returncode == 1
    assert f"version {LAYOUT_VERSION + 1}" in refused.stderr and "ipoc local up --fresh" in refused.stderr
    assert processes.run(["local", "status"], env=stack.env).returncode == 1
    stack.up("--fresh")
    assert requests.get(f"{stack.url['ccfaas']}/function", timeout=30).json() == {"functions": []}


def test_reset_asks_before_deleting(stack, echo_wasm):
    register_echo(stack.url["ccfaas"], "kept", echo_wasm)
    running = processes.run(["local", "reset", "--yes"], env=stack.env)
    assert running.returncode == 1 and "ipoc local down" in running.stderr
    stack.down()
    declined = processes.run(["local", "reset"], input=b"n\n", env=stack.env)
    assert declined.returncode == 1 and (stack.home / "local" / "state").exists()
    accepted = processes.run(["local", "reset"], input=b"y\n", env=stack.env)
    assert accepted.returncode == 0, accepted.stderr
    assert not (stack.home / "local" / "state").exists()
    stack.up()
    assert requests.get(f"{stack.url['ccfaas']}/function", timeout=30).json() == {"functions": []}


def test_logs_prints_and_follows_the_stack_log(stack):
    printed = processes.run(["local", "logs", "-n", "5"], env=stack.env)
    assert printed.returncode == 0 and 0 < len(printed.stdout.splitlines()) <= 5
    follower = processes.start(["local", "logs", "-f", "-n", "0"], stack.home / "follow.out", env=stack.env)
    try:
        requests.get(f"{stack.url['ccfaas']}/function/nobody-has-this/status", timeout=30)
        wait_until(
            lambda: "/function/nobody-has-this/status" in follower.output(), timeout=30, what="the followed line"
        )
    finally:
        follower.stop()


def test_a_runtime_its_user_shut_down_is_released_by_the_stack_reaper(stack, ids, echo_wasm):
    """The reaper runs beside the workflow's tasks, which started the runtime: a clean exit is a release, not a
    death."""
    from ipoc.client import VeracruzClient

    register_echo(stack.url["ccfaas"], "echo_done", echo_wasm)
    ccfaas = stack.url["ccfaas"]
    assert (
        requests.post(
            f"{ccfaas}/instance?wait=0", json=user_policy("echo_done", "done-1", ids), headers=ALICE, timeout=30
        ).status_code
        == 202
    )
    ready = wait_until(
        lambda: instance(stack, "done-1")["status"] in ("READY", "FAILED") and instance(stack, "done-1"),
        timeout=60,
        what="READY",
    )
    assert ready["status"] == "READY", ready.get("reason")
    with VeracruzClient(ready["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.shutdown()
    ended = wait_until(
        lambda: instance(stack, "done-1")["status"] in ("DELETED", "FAILED") and instance(stack, "done-1"),
        timeout=60,
        what="the reaper to end the instance",
    )
    assert (ended["status"], ended["reason"]) == ("DELETED", "the runtime shut down")
    assert runtime_processes(stack.home) == []
