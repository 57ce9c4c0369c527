"""An in-process control plane for lifecycle tests: moto with the Step Functions interpreter on,
the real task Lambda through the in-process runner, and local runtimes as real processes."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ipoc.certs import Identity, new_identity
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.shared.config import settings
from local import workflow
from local.runtimes import running_ports
from tests.support import policies
from tests.support.aws import Reply, call, configure
from tests.support.settings import use_settings

ECHO_FUNCTION = "echo"
# The workflow's states, in order, for an instance that becomes READY and is released (loops left out). A local
# runtime answers once VaaS has started it, so Allocate goes straight to Provision (not through WaitForRuntime).
ALL_STATES_RELEASED = [
    "Allocate",
    "SlotAllocated",
    "Provision",
    "StreamRequested",
    "WaitForRelease",
    "Teardown",
]


@dataclass
class ControlPlane:
    state_machine: str
    runtimes: Path
    loader: Identity

    def register_echo(
        self, wasm: bytes, *, loader_rights: list[dict[str, Any]] | None = None, data: dict[str, bytes] | None = None
    ) -> None:
        policy = policies.echo_function(ECHO_FUNCTION, wasm, loader_rights=loader_rights)
        if data:
            policy["data_files"] = [{"data_file": p, "pi_hash": hashlib.sha256(c).hexdigest()} for p, c in data.items()]
        assert call(ccfaas, "POST", "/function", policy).status == 201
        uploads = {policies.ECHO: ("program", wasm), **{p: ("data_file", c) for p, c in (data or {}).items()}}
        for path, (kind, content) in uploads.items():
            segment = base64.b64encode(path.encode()).decode()
            assert call(ccfaas, "POST", f"/function/{ECHO_FUNCTION}/{kind}/{segment}", raw=content).status == 201

    def create(
        self,
        instance_id: str,
        identities: list[tuple[Identity, list[dict[str, Any]]]],
        *,
        user: str = "alice",
        query: str = "?wait=0",
    ) -> Reply:
        body = {
            "function": ECHO_FUNCTION,
            "instanceid": instance_id,
            "identities": [{"certificate": i.certificate, "file_rights": r} for i, r in identities],
        }
        return call(ccfaas, "POST", f"/instance{query}", body, user=user)

    def wait_status(
        self, instance_id: str, statuses: tuple[str, ...], user: str = "alice", timeout: float = 60
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            record = call(ccfaas, "GET", f"/instance/{instance_id}", user=user).json
            if record.get("status") in statuses:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} stayed {record.get('status')} ({record.get('reason')})")
            time.sleep(0.1)

    def execution(self, arn: str, timeout: float = 60) -> dict:
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running")
            time.sleep(0.1)

    def states_entered(self, arn: str) -> list[str]:
        events = boto3.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def control_plane(monkeypatch, proxy, tmp_path: Path, port_base: int, slots: int) -> ControlPlane:
    """Call inside ``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``."""
    from runtime.measurement import measurement

    loader = new_identity("program-load")
    loader.write(tmp_path / "loader.crt", tmp_path / "loader.key")
    configure(
        monkeypatch,
        IPOC_VAAS_BACKEND="local",
        IPOC_STATE_DIR=str(tmp_path / "runtimes"),
        IPOC_PROXY_URL=proxy.url,
        IPOC_PROXY_CERT=proxy.ca_pem,
        IPOC_RUNTIME_HASH=measurement(),
        IPOC_PORT_MIN=str(port_base),
        IPOC_PORT_MAX=str(port_base + slots - 1),
        IPOC_PROGRAM_LOAD_CERT_FILE=str(tmp_path / "loader.crt"),
        IPOC_PROGRAM_LOAD_KEY_FILE=str(tmp_path / "loader.key"),
    )
    arn = workflow.register(boto3.client("iam"), boto3.client("lambda"), boto3.client("stepfunctions"))
    use_settings(monkeypatch, IPOC_STATE_MACHINE_ARN=arn)
    return ControlPlane(state_machine=arn, runtimes=tmp_path / "runtimes", loader=loader)


@contextmanager
def running_plane(monkeypatch, proxy, tmp_path: Path, slots: int) -> Iterator[ControlPlane]:
    """A control plane on moto with Step Functions executing, stopping every runtime it started afterwards."""
    from moto import mock_aws

    from local.runtimes import stop_runtime
    from tests.support.waiting import free_port_range

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        plane = control_plane(monkeypatch, proxy, tmp_path, free_port_range(slots), slots)
        try:
            yield plane
        finally:
            for port in running_ports(plane.runtimes):
                stop_runtime(plane.runtimes, port)


def leaks(plane: ControlPlane) -> list[str]:
    """What a failed or finished operation must not leave: runtimes, slots, staged uploads, live records."""
    found = [f"runtime on port {port}" for port in running_ports(plane.runtimes)]
    found += [
        f"slot {item['slot']['S']}" for item in boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"]
    ]
    listed = boto3.client("s3").list_objects_v2(Bucket=settings().artifacts_bucket, Prefix="uploads/")
    found += [f"staged upload {o['Key']}" for o in listed.get("Contents", [])]
    return found
