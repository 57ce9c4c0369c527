"""`ipoc local up` end to end over real HTTP: the acceptance walk of the control-plane issue.

The stack runs as a detached subprocess with its own IPOC_HOME and free ports;
runtimes are real processes, AWS is moto's server.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from pathlib import Path

import pytest
import requests

from ipoc.client import VeracruzClient
from tests.support import policies, processes
from tests.support.aws import b64
from tests.support.lifecycle import ALL_STATES_RELEASED
from tests.support.local_stack import SLOTS, aws_client, register_echo
from tests.support.waiting import wait_until


def test_status_reports_the_stack(stack):
    state = stack["state"]
    assert state["running"] is True
    assert state["tables"] == {"functions": "ipoc-functions", "instances": "ipoc-instances", "slots": "ipoc-slots"}
    assert state["running_runtimes"] == []
    doc = requests.get(stack["url"]["ccfaas"] + "/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.") and "/function/{name}/program/{segment}" in doc["paths"]


def test_register_function_small_flow_with_http(stack):
    url = stack["url"]["ccfaas"]
    program, names = b"\0asm program", b"person\n"
    policy = json.loads(Path(__file__).parent.parent.joinpath("data/seed/function_vod.json").read_text())
    policy["function"] = "vod_small"
    policy["programs"][0]["pi_hash"] = hashlib.sha256(program).hexdigest()
    policy["data_files"] = [{"data_file": "/program_data/coco.names", "pi_hash": hashlib.sha256(names).hexdigest()}]
    assert requests.delete(f"{url}/function/vod_small", timeout=10).status_code == 404
    assert requests.post(f"{url}/function", json=policy, timeout=10).status_code == 201
    # the seed's scripts send binaries with a JSON content type; that must not matter
    headers = {"Content-Type": "application/json"}
    prog = f"{url}/function/vod_small/program/{b64('/program/detector.wasm')}"
    data = f"{url}/function/vod_small/data_file/{b64('/program_data/coco.names')}"
    assert requests.post(prog, data=program, headers=headers, timeout=10).status_code == 201
    wrong = requests.post(data, data=b"wrong", headers=headers, timeout=10)
    assert wrong.status_code == 422
    assert requests.get(data, timeout=10).json()["status"] == "not loaded"
    assert requests.post(data, data=names, headers=headers, timeout=10).status_code == 201
    assert requests.get(f"{url}/function", timeout=10).json() == {"functions": ["vod_small"]}
    assert requests.get(f"{url}/function/vod_small/status", timeout=10).json()["loaded"] is True
    forbidden = requests.get(f"{url}/function", headers={"X-Ipoc-Local-User": "mallory"}, timeout=10)
    assert forbidden.status_code == 403


def test_vaas_and_streamer(stack, ids):
    vaas = stack["url"]["vaas"]
    policy = policies.vaas_policy(
        [(ids.user, policies.USER_RIGHTS), (ids.streamer, [{"file_name": "/input/", "rights": 534084}])]
    )
    created = requests.post(f"{vaas}/veracruz", json=policy, timeout=120)
    assert created.status_code == 201, created.text
    reply = created.json()
    # the runtime accepts attested connections
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/hello", b"hi")
    name = "veracruz-nitro-server:" + json.loads(reply["policy"])["veracruz_server_url"].rsplit(":", 1)[1]
    assert [next(iter(entry)) for entry in requests.get(f"{vaas}/veracruz", timeout=10).json()["veracruz"]] == [name]

    # an object put into the local S3 streams into the instance
    s3 = aws_client(stack["url"]["aws"], "s3")
    payload = os.urandom(2 * 1024 * 1024 + 3)
    s3.put_object(Bucket="ipoc-local-inputs", Key="users/local-admin/camera/video.enc", Body=payload)
    request = {
        "s3": {"bucket": "ipoc-local-inputs", "filename": "users/local-admin/camera/video.enc"},
        "veracruz": {
            "filename": "/input/video.enc",
            "policy": reply["policy"],
            "certificate": ids.streamer.certificate,
            "key": ids.streamer.private_key,
        },
    }
    streamed = requests.post(stack["url"]["s3stream"] + "/s3_stream_veracruz", json=request, timeout=120)
    assert streamed.status_code == 200, streamed.text
    assert streamed.json()["bytes"] == len(payload)
    runtime_dir = stack["home"] / "local" / "runtimes" / name.rsplit(":", 1)[1]
    copied = [p for p in runtime_dir.rglob("video.enc")]
    assert len(copied) == 1 and copied[0].read_bytes() == payload
    # another user can neither have that object read nor deliver into this runtime (issue 12 item 11)
    stolen = requests.post(
        stack["url"]["s3stream"] + "/s3_stream_veracruz",
        json=request,
        headers={"X-Ipoc-Local-User": "mallory"},
        timeout=60,
    )
    assert stolen.status_code == 403 and stolen.json()["error"] == "Forbidden"
    # a missing object: 502, the original's wording, and no file
    request["s3"]["filename"] = "users/local-admin/camera/missing.enc"
    request["veracruz"]["filename"] = "/input/missing.enc"
    missing = requests.post(stack["url"]["s3stream"] + "/s3_stream_veracruz", json=request, timeout=60)
    assert missing.status_code == 502
    assert (
        missing.json()["message"]
        == "Not able to read bucket ipoc-local-inputs file users/local-admin/camera/missing.enc from S3: 404"
    )
    assert not list(runtime_dir.rglob("missing.enc"))

    # delete stops the runtime process
    deleted = requests.delete(f"{vaas}/veracruz/{name}", params={"instance_hash": reply["instance_hash"]}, timeout=60)
    assert deleted.status_code == 200
    assert json.loads(processes.run(["local", "status", "--json"], env=stack["env"]).stdout)["running_runtimes"] == []


@pytest.mark.slow
def test_fifty_concurrent_creations_on_ten_slots(stack, ids):
    vaas = stack["url"]["vaas"]
    policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])

    def create(_: int) -> tuple[int, dict]:
        reply = requests.post(f"{vaas}/veracruz", json=policy, timeout=300)
        return reply.status_code, reply.json()

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(create, range(50)))
    created = [body for status, body in results if status == 201]
    assert sorted(status for status, _ in results) == [201] * SLOTS + [507] * (50 - SLOTS), [
        b for s, b in results if s not in (201, 507)
    ]
    urls = [json.loads(body["policy"])["veracruz_server_url"] for body in created]
    assert len(set(urls)) == SLOTS  # no slot is shared
    for body, url in zip(created, urls, strict=True):
        name = "veracruz-nitro-server:" + url.rsplit(":", 1)[1]
        reply = requests.delete(f"{vaas}/veracruz/{name}", params={"instance_hash": body["instance_hash"]}, timeout=60)
        assert reply.status_code == 200
    assert requests.get(f"{vaas}/veracruz", timeout=10).json() == {"veracruz": []}
    wait_until(
        lambda: (
            json.loads(processes.run(["local", "status", "--json"], env=stack["env"]).stdout)["running_runtimes"] == []
        ),
        timeout=30,
        what="every runtime to stop",
    )


def test_instance_lifecycle_over_http(stack, ids, echo_wasm):
    """POST /instance → READY → the user executes → DELETE → DELETED; the execution SUCCEEDED through every state."""
    import signal
    import time

    ccfaas = stack["url"]["ccfaas"]
    register_echo(ccfaas, "echo_e2e", echo_wasm)
    alice = {"X-Ipoc-Local-User": "alice"}

    def user_policy(instance_id: str) -> dict:
        return {
            "function": "echo_e2e",
            "instanceid": instance_id,
            "identities": [
                {"certificate": ids.streamer.certificate, "file_rights": [{"file_name": "/input/", "rights": 534084}]},
                {"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS},
            ],
        }

    def poll(instance_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
        def reached() -> dict | None:
            record = requests.get(f"{ccfaas}/instance/{instance_id}", headers=alice, timeout=10).json()
            return record if record["status"] in statuses else None

        return wait_until(reached, timeout=timeout, what=f"{instance_id} in {statuses}")

    accepted = requests.post(f"{ccfaas}/instance?wait=0", json=user_policy("e2e-1"), headers=alice, timeout=10)
    assert accepted.status_code == 202
    started = time.monotonic()
    ready = poll("e2e-1", ("READY", "FAILED"))
    assert ready["status"] == "READY", ready.get("reason")
    assert time.monotonic() - started < 30
    with VeracruzClient(ready["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"over http")
        assert client.execute(policies.ECHO) == 0
    deleted = requests.delete(f"{ccfaas}/instance/e2e-1", headers=alice, timeout=60).json()
    assert deleted["status"] == "DELETED"
    sfn = aws_client(stack["url"]["aws"], "stepfunctions")

    def ended() -> dict | None:
        description = sfn.describe_execution(executionArn=ready["execution_arn"])
        return description if description["status"] != "RUNNING" else None

    execution = wait_until(ended, timeout=30, what="the execution to end")
    assert execution["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=ready["execution_arn"], maxResults=1000)["events"]
    loops = {"WaitForSlot", "WaitBeforeRuntimeCheck"}  # expected waits, as often as timing makes them
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert list(dict.fromkeys(s for s in entered if s not in loops)) == ALL_STATES_RELEASED

    # Killing a READY instance's runtime: the reaper (1 s interval here) fails it and frees the slot.
    requests.post(f"{ccfaas}/instance?wait=0", json=user_policy("e2e-2"), headers=alice, timeout=10)
    ready = poll("e2e-2", ("READY", "FAILED"))
    port = ready["veracruz_server_url"].rsplit(":", 1)[1]
    pid = int((stack["home"] / "local" / "runtimes" / port / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    failed = poll("e2e-2", ("FAILED",), timeout=30)
    assert failed["reason"] == "runtime died"
    wait_until(
        lambda: requests.get(f"{stack['url']['vaas']}/veracruz", timeout=10).json() == {"veracruz": []},
        timeout=30,
        what="the slot to be freed",
    )
