"""What a user polling ``GET /instance/<id>`` may read: never FAILED or DELETED while the instance's runtime
process or its slot is still held; while a failed instance is torn down it reads TEARING_DOWN with the reason.

The real ASL in moto's Step Functions interpreter, the real task Lambda, real runtime processes. VaaS is the
real one, reached through the lifecycle's port (``lambdas.shared.ports``) with a wrapper that, just before each
runtime is given back, reads the instance as its owner does: that read is the user's view while the runtime and
slot are still held. A poller reads the instance throughout as well and, each time it reads a terminal status,
checks that the runtime and slot are already gone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.ccfaas.lifecycle import Lifecycle
from lambdas.ccfaas.reaper import Reaper
from lambdas.shared import ports
from lambdas.shared.config import settings
from lambdas.vaas.service import VaaS
from local.runtimes import running_ports
from tests.support import policies
from tests.support.aws import call
from tests.support.lifecycle import ControlPlane, running_plane
from tests.support.waiting import wait_until

TERMINAL = ("FAILED", "DELETED")


def slots() -> list[str]:
    return [item["slot"]["S"] for item in boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"]]


@dataclass
class Seen:
    """What the owner read just before each runtime was given back: (status, reason, runtime still running)."""

    plane: ControlPlane
    user: str = "alice"
    before_release: list[tuple[str, str | None, bool]] = field(default_factory=list)
    refuse_deletes: bool = False  # VaaS failing every delete, as an unreachable cluster would


@dataclass
class Watched:
    """VaaS as deployed, with a look at the instance just before a runtime is deleted."""

    vaas: VaaS
    seen: Seen

    def create(self, vaas_policy: Any) -> dict[str, Any]:
        return self.vaas.create(vaas_policy)

    def starts_at_once(self) -> bool:
        return self.vaas.starts_at_once()

    def show(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        return self.vaas.show(name, instance_id, instance_hash)

    def delete(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        reply = call(ccfaas, "GET", f"/instance/{_name(instance_id)}", user=self.seen.user).json
        running = int(name.rsplit(":", 1)[1]) in running_ports(self.seen.plane.runtimes)
        self.seen.before_release.append((reply["status"], reply.get("reason"), running))
        if self.seen.refuse_deletes:
            raise RuntimeError("VaaS is unreachable (injected)")
        return self.vaas.delete(name, instance_id, instance_hash)


def _name(key: str | None) -> str:
    assert key, "the lifecycle names the instance it releases"
    return key.rsplit(".", 1)[0]  # instances.instance_key: "<name>.<owner tag>"


@dataclass
class Poller:
    """Reads the instance as its owner, again and again; at each terminal status, what is still held."""

    plane: ControlPlane
    name: str
    held_at_terminal: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            reply = call(ccfaas, "GET", f"/instance/{self.name}", user="alice")
            status = reply.json.get("status") if reply.status == 200 else None
            if status and (not self.statuses or self.statuses[-1] != status):
                self.statuses.append(status)
            if status in TERMINAL:
                # read after the status: a release written before the status is visible now
                self.held_at_terminal += [f"runtime on port {p}" for p in running_ports(self.plane.runtimes)]
                self.held_at_terminal += [f"slot {s}" for s in slots()]
                return
            self.stop.wait(0.02)


@pytest.fixture
def watched(monkeypatch, proxy, tmp_path) -> Iterator[Seen]:
    with running_plane(monkeypatch, proxy, tmp_path, 1) as plane:
        seen = Seen(plane)
        ports.wire(runtimes=lambda: Watched(VaaS.from_settings(), seen))
        try:
            yield seen
        finally:
            ports.unwire()


@pytest.fixture
def poll(watched: Seen) -> Iterator[Any]:
    pollers: list[tuple[Poller, threading.Thread]] = []

    def start(name: str) -> Poller:
        poller = Poller(watched.plane, name)
        thread = threading.Thread(target=poller.run, daemon=True)
        thread.start()
        pollers.append((poller, thread))
        return poller

    yield start
    for poller, thread in pollers:
        poller.stop.set()
        thread.join(timeout=30)


def finished(poller: Poller) -> Poller:
    wait_until(lambda: poller.statuses and poller.statuses[-1] in TERMINAL, timeout=90, what="a terminal status")
    return poller


def test_a_failed_instance_reads_tearing_down_until_its_runtime_and_slot_are_released(watched, poll, ids, echo_wasm):
    # GIVEN a function whose program-load identity may not write its data file: provisioning fails
    watched.plane.register_echo(echo_wasm, data={"/model/weights.bin": b"\x01\x02"})
    assert watched.plane.create("i-fails", [(ids.user, policies.USER_RIGHTS)]).status == 202
    poller = finished(poll("i-fails"))
    failed = call(ccfaas, "GET", "/instance/i-fails", user="alice").json
    watched.plane.execution(failed["execution_arn"])  # the workflow has finished its teardown
    # THEN the owner read FAILED only once nothing was left
    assert poller.held_at_terminal == []
    # AND just before its runtime was stopped the owner read TEARING_DOWN, with the reason, and the runtime ran
    [(status, reason, running)] = watched.before_release
    assert (status, running) == ("TEARING_DOWN", True)
    assert reason and "ProvisioningFailed" in reason
    # AND FAILED keeps that reason
    assert (failed["status"], failed["reason"]) == ("FAILED", reason)
    assert poller.statuses[-2:] == ["TEARING_DOWN", "FAILED"]
    assert watched.plane.states_entered(failed["execution_arn"])[-3:] == [
        "RecordFailure",
        "TeardownAfterFailure",
        "Failed",
    ]


def test_a_deleted_instance_reads_releasing_until_its_runtime_and_slot_are_released(watched, poll, ids, echo_wasm):
    watched.plane.register_echo(echo_wasm)
    watched.plane.create("i-del", [(ids.user, policies.USER_RIGHTS)])
    watched.plane.wait_status("i-del", ("READY",))
    poller = poll("i-del")
    assert call(ccfaas, "DELETE", "/instance/i-del", user="alice").json["status"] == "DELETED"
    assert finished(poller).held_at_terminal == []
    [(status, _, running)] = watched.before_release
    assert (status, running) == ("RELEASING", True)


def test_an_instance_the_reaper_fails_reads_tearing_down_until_its_slot_is_released(watched, poll, ids, echo_wasm):
    watched.plane.register_echo(echo_wasm)
    watched.plane.create("i-dies", [(ids.user, policies.USER_RIGHTS)])
    record = watched.plane.wait_status("i-dies", ("READY",))
    port = int(record["veracruz_server_url"].rsplit(":", 1)[1])
    os.kill(int((watched.plane.runtimes / str(port) / "pid").read_text()), signal.SIGKILL)
    wait_until(lambda: running_ports(watched.plane.runtimes) == [], timeout=10, what="the runtime to die")
    poller = poll("i-dies")
    Reaper(Lifecycle.from_settings()).run()
    assert finished(poller).held_at_terminal == []
    [(status, reason, _)] = watched.before_release  # the process is dead; its slot is what is still held
    assert (status, reason) == ("TEARING_DOWN", "runtime died")
    assert call(ccfaas, "GET", "/instance/i-dies", user="alice").json["status"] == "FAILED"


def test_a_teardown_that_fails_leaves_tearing_down_and_the_reaper_finishes_it(watched, poll, ids, echo_wasm):
    # GIVEN an instance that fails while VaaS cannot give its runtime back
    watched.plane.register_echo(echo_wasm, data={"/model/weights.bin": b"\x01\x02"})
    watched.refuse_deletes = True
    watched.plane.create("i-stuck", [(ids.user, policies.USER_RIGHTS)])
    stuck = watched.plane.wait_status("i-stuck", ("TEARING_DOWN",))
    # WHEN the workflow has given up (TeardownAfterFailure retried, then went to Failed)
    assert watched.plane.execution(stuck["execution_arn"], timeout=90)["status"] == "FAILED"
    # THEN the instance still reads TEARING_DOWN, with the failure's reason: its runtime still runs
    record = call(ccfaas, "GET", "/instance/i-stuck", user="alice").json
    assert record["status"] == "TEARING_DOWN" and "ProvisioningFailed" in record["reason"]
    assert running_ports(watched.plane.runtimes) and slots()
    # AND once VaaS answers again, the reaper finishes the teardown: FAILED, with the same reason, nothing left
    watched.refuse_deletes = False
    poller = poll("i-stuck")
    assert Reaper(Lifecycle.from_settings()).run() == [{"instance_id": record["key"], "action": "torn down"}]
    assert finished(poller).held_at_terminal == []
    failed = call(ccfaas, "GET", "/instance/i-stuck", user="alice").json
    assert (failed["status"], failed["reason"]) == ("FAILED", record["reason"])
