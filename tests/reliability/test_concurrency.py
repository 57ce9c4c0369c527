"""Concurrency against the local stack (`ipoc local up`, real subprocesses, 10 runtime slots):
50 instance creations at once, 20 uploads of one program at once, and deletes at once.

Zero double allocations (no two live instances on one runtime port, never more runtimes than
slots) and zero lost updates (every instance record ends terminal, none missing).
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.reliability.tally import TALLY
from tests.support import policies, processes
from tests.support.local_stack import SLOTS, aws_client
from tests.support.waiting import wait_until

ALICE = {"X-Ipoc-Local-User": "alice"}
CREATIONS = 50
UPLOADS = 20


def register(ccfaas: str, echo_wasm: bytes, name: str) -> None:
    assert (
        requests.post(f"{ccfaas}/function", json=policies.echo_function(name, echo_wasm), timeout=30).status_code == 201
    )


def upload(ccfaas: str, echo_wasm: bytes, name: str) -> None:
    segment = base64.b64encode(policies.ECHO.encode()).decode()
    assert requests.post(f"{ccfaas}/function/{name}/program/{segment}", data=echo_wasm, timeout=60).status_code == 201


def test_concurrent_uploads_of_one_program_keep_exactly_one_artifact(stack, echo_wasm):
    ccfaas = stack["url"]["ccfaas"]
    register(ccfaas, echo_wasm, "echo_uploads")
    segment = base64.b64encode(policies.ECHO.encode()).decode()
    url = f"{ccfaas}/function/echo_uploads/program/{segment}"
    with ThreadPoolExecutor(UPLOADS) as pool:
        statuses = list(pool.map(lambda _: requests.post(url, data=echo_wasm, timeout=120).status_code, range(UPLOADS)))
    TALLY.add(concurrent_operations=UPLOADS)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert requests.get(f"{ccfaas}/function/echo_uploads/status", timeout=30).json()["loaded"] is True
    s3 = aws_client(stack["url"]["aws"], "s3")
    bucket = stack["state"]["buckets"]["artifacts"]
    kept = s3.list_objects_v2(Bucket=bucket, Prefix="functions/echo_uploads/").get("KeyCount", 0)
    staged = s3.list_objects_v2(Bucket=bucket, Prefix="uploads/echo_uploads/").get("KeyCount", 0)
    TALLY.add(lost_updates=0 if kept == 1 else 1, leaks_found=staged)
    assert (kept, staged) == (1, 0)


def live_ports(ccfaas: str, ids: list[str]) -> list[int]:
    ports = []
    for instance_id in ids:
        record = requests.get(f"{ccfaas}/instance/{instance_id}", headers=ALICE, timeout=60).json()
        if record.get("status") == "READY":
            ports.append(int(record["veracruz_server_url"].rsplit(":", 1)[1]))
    return ports


def test_fifty_instances_on_ten_slots_then_fifty_deletes_at_once(stack, echo_wasm, ids):
    ccfaas, vaas = stack["url"]["ccfaas"], stack["url"]["vaas"]
    register(ccfaas, echo_wasm, "echo_many")
    upload(ccfaas, echo_wasm, "echo_many")
    instance_ids = [f"many-{n}" for n in range(CREATIONS)]

    def create(instance_id: str) -> int:
        body: dict[str, Any] = {
            "function": "echo_many",
            "instanceid": instance_id,
            "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
        }
        return requests.post(f"{ccfaas}/instance?wait=0", json=body, headers=ALICE, timeout=120).status_code

    with ThreadPoolExecutor(CREATIONS) as pool:
        statuses = list(pool.map(create, instance_ids))
    assert statuses == [202] * CREATIONS

    # Every slot fills, and never with two live instances.
    def full() -> list[int] | None:
        ports = live_ports(ccfaas, instance_ids)
        TALLY.add(double_allocations=len(ports) - len(set(ports)))
        assert len(ports) == len(set(ports)), f"two instances on one port: {sorted(ports)}"
        return ports if len(ports) == SLOTS else None

    wait_until(full, timeout=180, interval=0.5, what=f"{SLOTS} READY instances")
    runtimes = requests.get(f"{vaas}/veracruz", timeout=60).json()["veracruz"]
    assert len(runtimes) == SLOTS

    with ThreadPoolExecutor(CREATIONS) as pool:
        deleted = list(
            pool.map(lambda i: requests.delete(f"{ccfaas}/instance/{i}", headers=ALICE, timeout=120), instance_ids)
        )
    TALLY.add(concurrent_operations=2 * CREATIONS)
    assert all(reply.status_code in (200, 202) for reply in deleted), [r.text for r in deleted if r.status_code >= 300]

    def settled() -> list[dict] | None:
        records = [requests.get(f"{ccfaas}/instance/{i}", headers=ALICE, timeout=60).json() for i in instance_ids]
        return records if all(r.get("status") in ("DELETED", "FAILED") for r in records) else None

    records = wait_until(settled, timeout=300, interval=1, what="every instance to end")
    lost = [r for r in records if r.get("instance_id") not in instance_ids]
    TALLY.add(lost_updates=len(lost) + CREATIONS - len(records))
    assert not lost and len(records) == CREATIONS
    wait_until(
        lambda: requests.get(f"{vaas}/veracruz", timeout=60).json() == {"veracruz": []},
        timeout=60,
        what="every runtime slot to be free",
    )
    left = json.loads(processes.run(["local", "status", "--json"], env=stack["env"]).stdout)["running_runtimes"]
    TALLY.add(leaks_found=len(left))
    assert left == []


def test_the_same_instance_deleted_ten_times_at_once(stack, echo_wasm, ids):
    ccfaas = stack["url"]["ccfaas"]
    register(ccfaas, echo_wasm, "echo_once")
    upload(ccfaas, echo_wasm, "echo_once")
    body = {
        "function": "echo_once",
        "instanceid": "once",
        "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
    }
    assert requests.post(f"{ccfaas}/instance?wait=25", json=body, headers=ALICE, timeout=120).status_code == 200
    with ThreadPoolExecutor(10) as pool:
        replies = list(
            pool.map(lambda _: requests.delete(f"{ccfaas}/instance/once", headers=ALICE, timeout=120), range(10))
        )
    TALLY.add(concurrent_operations=10)
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert {r.json()["status"] for r in replies} == {"DELETED"}
