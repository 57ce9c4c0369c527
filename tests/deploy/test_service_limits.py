"""AWS service limits, enforced locally as in AWS, and what a user gets at them.

Oracles: API Gateway's documented quotas (10 MB request payload, 29 s integration timeout) and Step Functions'
256 KiB payload quota, which moto's interpreter enforces on every state's output (``States.DataLimitExceeded``)
and ``local.workflow`` on ``StartExecution``'s input. The local API adapter is the real HTTP server the local
stack runs; the workflow is the real ASL in moto's interpreter with the real task Lambda.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ipoc.certs import new_identity
from lambdas.ccfaas import instances as instances_module
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.ccfaas.lifecycle import STATE_QUOTA, Lifecycle, state_size_bound
from lambdas.ccfaas.reaper import Reaper
from local import apigw, workflow
from local.adapter import ApiServer
from local.runtimes import running_ports
from tests.support import policies
from tests.support.adapter import running_api
from tests.support.aws import call
from tests.support.lifecycle import running_plane
from tests.support.sockets import read_http_answer, until_closed
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def request(
    server: ApiServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, Any], float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        reply = connection.getresponse()
        data = reply.read()
        return reply.status, json.loads(data or b"{}"), time.monotonic() - started
    finally:
        connection.close()


def test_the_api_adapter_refuses_a_body_over_api_gateways_10_mb():
    seen: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(len(event["body"] or ""))
        return {"statusCode": 200, "body": "{}"}

    assert apigw.MAX_PAYLOAD == 10 * 1024 * 1024
    with running_api("limits-test", handler) as server:
        at_limit = b"a" * apigw.MAX_PAYLOAD
        assert request(server, "POST", "/x", at_limit, {"Content-Type": "text/plain"})[0] == 200
        status, body, _ = request(server, "POST", "/x", at_limit + b"a", {"Content-Type": "text/plain"})
    assert status == 413 and body["error"] == "PayloadTooLarge" and str(apigw.MAX_PAYLOAD) in body["message"]
    assert seen == [apigw.MAX_PAYLOAD]  # the oversized request never reached the handler


def test_the_api_adapter_answers_504_when_the_handler_outlives_the_integration_timeout():
    """API Gateway's 29 s, shortened to 0.5 s here so the test is quick; the default is checked to be 29 s."""
    release = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(30)
        return {"statusCode": 200, "body": "{}"}

    assert apigw.INTEGRATION_TIMEOUT == 29.0
    with running_api("limits-test", slow) as default:
        assert default.integration_timeout == 29.0
    try:
        with running_api("limits-test", slow, integration_timeout=0.5) as server:
            status, body, elapsed = request(server, "GET", "/slow")
            assert status == 504 and body["error"] == "IntegrationTimeout" and "0.5 s" in body["message"]
            assert 0.5 <= elapsed < 10
            release.set()
            assert request(server, "GET", "/fast")[0] == 200  # a handler that answers in time is unaffected
    finally:
        release.set()


def test_a_late_handlers_answer_is_dropped_and_its_connection_closes():
    """Each request gets one answer: after the 504, the handler (which runs on, as a Lambda) finishes and
    its result is not written to the connection; the 504 said ``Connection: close``, and the server closes it.
    Requests on other connections are answered meanwhile."""
    release, finished = threading.Event(), threading.Event()

    def slow_then_fast(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["path"] == "/slow":
            release.wait(30)
            finished.set()
            return {"statusCode": 200, "body": '{"late": true}'}
        return {"statusCode": 200, "body": "{}"}

    try:
        with running_api("limits-test", slow_then_fast, integration_timeout=0.3) as server:
            with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
                sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                head = read_http_answer(sock).raw
                assert head.startswith(b"HTTP/1.1 504") and b"Connection: close" in head
                assert request(server, "GET", "/fast")[0] == 200  # another connection is served meanwhile
                release.set()
                assert finished.wait(10)
                rest = until_closed(sock)  # ends when the server closes the connection
                assert b"late" not in head + rest and b"HTTP/1.1 200" not in rest
    finally:
        release.set()


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, 1) as plane:
        yield plane


def test_the_local_workflow_refuses_an_input_over_256_kib(plane):
    sfn = boto3.client("stepfunctions")
    padding = "x" * (workflow.PAYLOAD_QUOTA - len('{"pad": ""}') + 1)
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=plane.state_machine, name="too-big", input=json.dumps({"pad": padding}))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert str(workflow.PAYLOAD_QUOTA) in refused.value.response["Error"]["Message"]


def _identities(count: int) -> list[dict[str, Any]]:
    return [
        {"certificate": new_identity(f"member-{i}").certificate, "file_rights": policies.USER_RIGHTS}
        for i in range(count)
    ]


def _execution_input(instance_id: str, identities: list[dict[str, Any]]) -> dict[str, Any]:
    policy = {"function": "echo", "instanceid": instance_id, "identities": identities}
    return {
        "instance_id": instance_id,
        "function": "echo",
        "owner": "x",
        "user_policy": policy,
        "ttl_seconds": 3600,
        "stream": None,
    }


def _largest_state(arn: str) -> int:
    events = boto3.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return max(len(e["stateExitedEventDetails"]["output"].encode()) for e in events if "stateExitedEventDetails" in e)


def test_a_user_policy_too_large_for_the_workflow_gets_a_413_not_a_failed_execution(plane, echo_wasm, monkeypatch):
    plane.register_echo(echo_wasm)
    function_policy = policies.echo_function("echo", echo_wasm)
    pool = _identities(160)
    # The most identities whose instance fits (the bound grows with every identity)
    fits = max(
        n
        for n in range(1, len(pool))
        if state_size_bound(_execution_input("i", pool[:n]), function_policy) <= STATE_QUOTA
    )
    assert fits + 1 < len(pool), "the pool is too small to reach the limit"
    sfn = boto3.client("stepfunctions")
    with running_api("limits-test", ccfaas) as server:

        def post(instance_id: str, identities: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
            body = json.dumps({"function": "echo", "instanceid": instance_id, "identities": identities}).encode()
            status, reply, _ = request(server, "POST", "/instance?wait=0", body, {"X-Ipoc-Local-User": "alice"})
            return status, reply

        # WHEN a user asks for one identity too many THEN a clear 413 at once, and nothing recorded or started
        before = len(sfn.list_executions(stateMachineArn=plane.state_machine)["executions"])
        status, refused = post("i-over", pool[: fits + 1])
        assert status == 413 and refused["error"] == "PayloadTooLarge", refused
        assert f"{fits + 1} identities" in refused["message"] and "fewer identities" in refused["message"]
        # AND the API's OpenAPI document, which API Gateway is built from, declares that answer
        document = json.loads((ROOT / "infra" / "openapi" / "ccfaas.json").read_text())
        assert "413" in document["paths"]["/instance"]["post"]["responses"]
        assert call(ccfaas, "GET", "/instance/i-over", user="alice").status == 404
        assert len(sfn.list_executions(stateMachineArn=plane.state_machine)["executions"]) == before
        # AND at the limit the instance runs through the real workflow, whose states stay under the quota
        status, accepted = post("i-limit", pool[:fits])
        assert status == 202, accepted
        ready = plane.wait_status("i-limit", ("READY", "FAILED"), timeout=90)
        assert ready["status"] == "READY", ready.get("reason")
        largest = _largest_state(ready["execution_arn"])
        print(
            f"\n{fits} identities: largest workflow state {largest} B of {STATE_QUOTA} B "
            f"(bound {state_size_bound(_execution_input('i-limit', pool[:fits]), function_policy)} B)"
        )
        assert 0.8 * STATE_QUOTA < largest <= STATE_QUOTA  # the bound is safe and not wasteful
        call(ccfaas, "DELETE", "/instance/i-limit", user="alice")
        assert plane.wait_status("i-limit", ("DELETED", "FAILED"), timeout=90)["status"] == "DELETED"
        # Without the edge check, what the user would get: an accepted request, then an execution that fails with
        # States.DataLimitExceeded, which no Catch (not even States.ALL) handles: no teardown, the runtime is left
        # to the reaper. This is why the size is checked at the edge.
        monkeypatch.setattr(instances_module, "STATE_QUOTA", 10 * STATE_QUOTA)
        status, accepted = post("i-unchecked", pool[: fits + 10])
        assert status == 202
        execution = plane.execution(accepted["execution_arn"], timeout=90)
        assert execution["status"] == "FAILED" and execution.get("error") == "States.DataLimitExceeded", execution
        assert call(ccfaas, "GET", "/instance/i-unchecked", user="alice").json["status"] not in ("READY", "DELETED")
    Reaper(Lifecycle.from_settings()).run()  # the reaper's "workflow ended" branch cleans up after it
    assert call(ccfaas, "GET", "/instance/i-unchecked", user="alice").json["status"] == "FAILED"
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=20, what="every runtime to be gone")
