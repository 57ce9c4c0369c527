"""The instance lifecycle: the real ASL in moto's Step Functions interpreter, the real task Lambda
(through the in-process runner), real runtime processes. Success, failure, release, expiry and reaper paths."""

from __future__ import annotations

import json
import os
import signal

import boto3
import pytest

from ipoc.client import VeracruzClient
from ipoc.policy import policy_hash
from lambdas.ccfaas.execution import ExecutionState
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.ccfaas.lifecycle import Lifecycle
from lambdas.ccfaas.reaper import Reaper
from lambdas.shared.config import settings
from lambdas.shared.stores import FunctionStore
from local.runtimes import running_ports
from tests.support import policies
from tests.support.aws import call, instance_table_key
from tests.support.lifecycle import ALL_STATES_RELEASED, running_plane
from tests.support.settings import use_settings
from tests.support.waiting import wait_until

SLOTS = 2
LOOPS = {"WaitForSlot", "WaitBeforeRuntimeCheck"}  # expected waits: how often they run depends on timing


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, SLOTS) as plane:
        yield plane


def test_create_ready_execute_delete(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    # GIVEN the seed's user-policy shape: a streamer identity, then the user
    created = plane.create(
        "i-1", [(ids.streamer, [{"file_name": "/input/", "rights": 534084}]), (ids.user, policies.USER_RIGHTS)]
    )
    assert created.status == 202 and created.json["status"] == "PENDING"
    assert created.json["status_url"] == "/instance/i-1"
    # WHEN the workflow runs THEN the instance becomes READY with the exact policy text
    ready = plane.wait_status("i-1", ("READY", "FAILED"))
    assert ready["status"] == "READY", ready.get("reason")
    policy = json.loads(ready["policy"])
    assert [i["id"] for i in policy["identities"]] == [0, 1, 2]
    assert policy["identities"][2]["certificate"] == plane.loader.policy_certificate  # the program-load identity, last
    # AND the user executes the program without uploading it; the runtime reports the same policy hash
    with VeracruzClient(ready["policy"], ids.user.certificate, ids.user.private_key) as client:
        assert client.verified["policy_hash"] == policy_hash(ready["policy"])
        client.write_file("/input/data.txt", b"from the workflow")
        assert client.execute(policies.ECHO) == 0
        assert client.read_file("/output/result.txt") == b"ECHO 17\nFROM THE WORKFLOW"
    # AND others cannot see it
    assert call(ccfaas, "GET", "/instance/i-1", user="mallory").status == 404
    assert call(ccfaas, "GET", "/instance", user="mallory").json["instances"] == []
    assert call(ccfaas, "GET", "/instance", user="alice").json["instances"] == ["i-1"]
    # WHEN it is deleted THEN it ends DELETED, the runtime is gone, the execution SUCCEEDED through every state
    deleted = call(ccfaas, "DELETE", "/instance/i-1", user="alice")
    assert deleted.status == 200 and deleted.json["status"] == "DELETED"
    assert running_ports(plane.runtimes) == []
    execution = plane.execution(ready["execution_arn"])
    assert execution["status"] == "SUCCEEDED"
    assert dedupe(plane.states_entered(ready["execution_arn"])) == ALL_STATES_RELEASED
    assert call(ccfaas, "DELETE", "/instance/i-1", user="alice").json["status"] == "DELETED"  # idempotent
    assert boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"] == []


def test_wait_answers_with_the_original_shape(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    reply = plane.create("i-wait", [(ids.user, policies.USER_RIGHTS)], query="?wait=20")
    assert reply.status == 200 and list(reply.json)[:2] == ["instance", "policy"]
    assert reply.json["instance"] == "i-wait"
    call(ccfaas, "DELETE", "/instance/i-wait", user="alice")


def test_provisioning_denial_fails_the_instance_and_leaves_nothing(plane, ids, echo_wasm):
    # GIVEN a function whose program-load identity holds no rights on its data file's directory
    plane.register_echo(echo_wasm, data={"/model/weights.bin": b"\x01\x02"})
    reply = plane.create("i-denied", [(ids.user, policies.USER_RIGHTS)])
    assert reply.status == 202
    failed = plane.wait_status("i-denied", ("FAILED",))
    assert "ProvisioningFailed" in failed["reason"] and "/model/weights.bin" in failed["reason"]
    assert "AccessDenied" in failed["reason"]
    execution = plane.execution(failed["execution_arn"])
    assert execution["status"] == "FAILED" and execution["error"] == "ProvisioningFailed"
    assert plane.states_entered(failed["execution_arn"])[-3:] == ["RecordFailure", "TeardownAfterFailure", "Failed"]
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=10, what="the runtime to be gone")
    assert boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"] == []


def test_ttl_expiry_and_an_ended_workflow_tear_down(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    # An instance through the API (the API refuses TTLs under a minute)...
    call(
        ccfaas,
        "POST",
        "/instance?ttl=60",
        {
            "function": "echo",
            "instanceid": "i-live",
            "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
        },
        user="alice",
    )
    live = plane.wait_status("i-live", ("READY",))
    # ...and one started directly with a 2 s TTL, as an operator could from the console.
    sfn = boto3.client("stepfunctions")
    user_policy = {
        "function": "echo",
        "instanceid": "i-ttl",
        "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
    }
    boto3.resource("dynamodb").Table(settings().instances_table).put_item(
        Item={
            "instance_id": "i-ttl",
            "function": "echo",
            "owner": "arn:aws:iam::000000000000:user/alice",
            "status": "PENDING",
            "created_at": "2026-01-01T00:00:00+00:00",
            "ttl_seconds": 2,
        }
    )
    execution = sfn.start_execution(
        stateMachineArn=plane.state_machine,
        input=json.dumps(
            {"instance_id": "i-ttl", "function": "echo", "owner": "alice", "user_policy": user_policy, "ttl_seconds": 2}
        ),
    )
    assert plane.execution(execution["executionArn"])["status"] == "SUCCEEDED"
    assert "Expire" in plane.states_entered(execution["executionArn"])
    record = call(ccfaas, "GET", "/instance/i-ttl", user="alice").json
    assert record["status"] == "DELETED" and "TTL of 2 s expired" in record["reason"]
    # GIVEN a live instance whose workflow has ended (moto cannot stop an execution, so point it at the ended one)
    boto3.resource("dynamodb").Table(settings().instances_table).update_item(
        Key={"instance_id": live["key"]},
        UpdateExpression="SET execution_arn = :a",
        ExpressionAttributeValues={":a": execution["executionArn"]},
    )
    # WHEN the reaper runs THEN it tears the instance down itself
    assert Reaper(Lifecycle.from_settings()).run() == [{"instance_id": live["key"], "action": "torn down"}]
    reaped = call(ccfaas, "GET", "/instance/i-live", user="alice").json
    assert reaped["status"] == "FAILED" and "workflow ended (SUCCEEDED)" in reaped["reason"]
    assert live["instance_hash"] == reaped["instance_hash"]
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=10, what="every runtime to be gone")


def test_reaper_fails_an_instance_whose_runtime_died(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    plane.create("i-dies", [(ids.user, policies.USER_RIGHTS)])
    record = plane.wait_status("i-dies", ("READY",))
    port = int(record["veracruz_server_url"].rsplit(":", 1)[1])
    pid = int((plane.runtimes / str(port) / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=10, what="the runtime to die")
    actions = Reaper(Lifecycle.from_settings()).run()
    # the workflow tears down itself when it is already waiting for release, or as soon as it gets there
    assert actions in (
        [{"instance_id": record["key"], "action": "failed (runtime died); workflow tearing down"}],
        [{"instance_id": record["key"], "action": "failed (runtime died); torn down"}],
    )
    failed = plane.wait_status("i-dies", ("FAILED",))
    assert failed["reason"] == "runtime died"
    assert plane.execution(record["execution_arn"])["status"] == "FAILED"
    wait_until(
        lambda: not boto3.client("dynamodb").scan(TableName=settings().slots_table)["Items"],
        timeout=20,
        what="the slot to be freed",
    )


def test_tasks_are_idempotent(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    plane.create("i-idem", [(ids.user, policies.USER_RIGHTS)])
    record = plane.wait_status("i-idem", ("READY",))
    lifecycle = Lifecycle.from_settings()
    state = {"instance_id": record["key"], "function": "echo"}  # the workflow sees the owner-scoped key
    # a retried Allocate: same allocation, no new slot
    allocation = lifecycle.allocate(ExecutionState.parse(state))
    assert allocation["policy"] == record["policy"]
    assert len(running_ports(plane.runtimes)) == 1
    # same bytes again
    assert lifecycle.provision(ExecutionState.parse({**state, "allocation": allocation}))["provisioned"] == [
        policies.ECHO
    ]
    state = ExecutionState.parse(state)
    lifecycle.mark_ready(state)
    call(ccfaas, "DELETE", "/instance/i-idem", user="alice")
    lifecycle.teardown(state)  # a retried teardown changes nothing
    assert call(ccfaas, "GET", "/instance/i-idem", user="alice").json["status"] == "DELETED"
    assert running_ports(plane.runtimes) == []


def test_a_refused_function_deletion_does_not_fail_the_instances_it_was_refused_for(plane, ids, echo_wasm):
    """A deletion marks the versions, finds the live instances and takes the marks back (409). The workflow of
    such an instance read its version in that moment as "not registered" and failed (seen once in the suite,
    in test_instance_route_errors). The mark is held here, as in that moment, while the workflow's steps read."""
    plane.register_echo(echo_wasm)
    assert plane.create("i-marked", [(ids.user, policies.USER_RIGHTS)]).status == 202
    record = plane.wait_status("i-marked", ("READY",))
    arn = record["execution_arn"]  # the workflow's own input: what its steps read
    document = json.loads(boto3.client("stepfunctions").describe_execution(executionArn=arn)["input"])
    assert document["version"] == 1
    lifecycle, state = Lifecycle.from_settings(), ExecutionState.parse(document)
    unmarked = lifecycle.compose(state)
    assert FunctionStore().set_deleting("echo", 1, True)  # the refused deletion's moment
    try:
        assert lifecycle.compose(state) == unmarked
        allocation = lifecycle.allocate(state)  # a retried Allocate: composes again, keeps its slot
        provisioned = lifecycle.provision(ExecutionState.parse({**document, "allocation": allocation}))
        assert provisioned["provisioned"] == [policies.ECHO]
    finally:
        FunctionStore().set_deleting("echo", 1, False)
    assert call(ccfaas, "DELETE", "/function/echo").status == 409  # the deletion itself is still refused
    assert call(ccfaas, "GET", "/instance/i-marked", user="alice").json["status"] == "READY"


def test_instance_route_errors(plane, ids, echo_wasm):
    assert plane.create("i-x", [(ids.user, policies.USER_RIGHTS)]).status == 404  # no such function
    plane.register_echo(echo_wasm, data={"/program/extra.bin": b"x"})
    segment = "L3Byb2dyYW0vZXh0cmEuYmlu"
    call(ccfaas, "DELETE", f"/function/echo/data_file/{segment}")
    unloaded = plane.create("i-x", [(ids.user, policies.USER_RIGHTS)])
    assert unloaded.status == 409 and "/program/extra.bin" in unloaded.json["message"]
    call(ccfaas, "POST", f"/function/echo/data_file/{segment}", raw=b"x")
    assert plane.create("bad id!", [(ids.user, policies.USER_RIGHTS)]).status == 400
    assert plane.create("i-x", [(ids.user, policies.USER_RIGHTS)], query="?wait=99").status == 400
    assert plane.create("i-x", [(ids.user, policies.USER_RIGHTS)]).status == 202
    assert plane.create("i-x", [(ids.user, policies.USER_RIGHTS)]).status == 409
    # a function with a live instance cannot be deleted
    assert call(ccfaas, "DELETE", "/function/echo").status == 409
    plane.wait_status("i-x", ("READY", "FAILED"))
    assert call(ccfaas, "DELETE", "/instance/i-x", user="bob").status == 404  # not the owner
    assert call(ccfaas, "DELETE", "/instance/i-x", user="local-admin").json["status"] == "DELETED"  # admins may


def test_a_runtime_shut_down_by_its_user_is_released(plane, ids, echo_wasm):
    # GIVEN a READY instance whose user asks the runtime to shut down (as veracruz-client does after results)
    plane.register_echo(echo_wasm)
    plane.create("i-done", [(ids.user, policies.USER_RIGHTS)])
    record = plane.wait_status("i-done", ("READY",))
    with VeracruzClient(record["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.shutdown()
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=10, what="the runtime to exit")
    # WHEN the reaper runs THEN the instance is released, not failed, and its workflow ends normally
    actions = Reaper(Lifecycle.from_settings()).run()
    assert actions[0]["instance_id"] == record["key"] and actions[0]["action"].startswith("releas")
    deleted = plane.wait_status("i-done", ("DELETED", "FAILED"))
    assert deleted["status"] == "DELETED" and deleted["reason"] == "the runtime shut down"
    assert plane.execution(record["execution_arn"])["status"] == "SUCCEEDED"


def dedupe(states: list[str]) -> list[str]:
    """The states entered, with the expected-wait loops folded (each state once, first entry order)."""
    return list(dict.fromkeys(s for s in states if s not in LOOPS))


# -- the workflow against Lambda's and the alarms' rules (issue 13, defects 3-5) --------------------------------------


@pytest.fixture
def function_errors(monkeypatch) -> list[tuple[str, str]]:
    """(action, errorType) of every task invocation that ended in a function error: what Lambda's Errors metric,
    and so the task-errors alarm, counts."""
    from local import lambda_runner

    seen: list[tuple[str, str]] = []
    original = lambda_runner.invoke

    def counting(handler_path, payload, function_name="ipoc-task"):
        result, errored, logs = original(handler_path, payload, function_name)
        if errored:
            seen.append((payload.get("action"), json.loads(result)["errorType"]))
        return result, errored, logs

    monkeypatch.setattr(lambda_runner, "invoke", counting)
    return seen


def failed_tasks(plane, arn: str) -> list[str]:
    events = boto3.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]


def test_no_free_slot_and_a_starting_runtime_are_waits_not_errors(plane, ids, echo_wasm, function_errors, monkeypatch):
    """Defect 5: ordinary starts must not trip the task-errors alarm. The runtime's first four probes are made to
    say "not yet" (a runtime that starts slowly; patched because a local runtime starts too fast to see it): each
    of the two Allocates probes once, so at least two readiness probes of WaitForRuntime answer "not yet"."""
    from lambdas.ccfaas import lifecycle

    not_yet = [4]  # probes left to answer "not yet"
    real_probe = lifecycle.port_open

    def slow_probe(host: str, port: int, timeout: float) -> bool:
        if not_yet[0] > 0:
            not_yet[0] -= 1
            return False
        return real_probe(host, port, timeout)

    monkeypatch.setattr(lifecycle, "port_open", slow_probe)
    plane.register_echo(echo_wasm)
    # GIVEN every slot taken
    for name in ("i-a", "i-b"):
        plane.create(name, [(ids.user, policies.USER_RIGHTS)])
    plane.wait_status("i-a", ("READY",))
    plane.wait_status("i-b", ("READY",))
    # WHEN a third instance is asked for THEN it waits for a slot, and gets one once an instance is deleted
    plane.create("i-c", [(ids.user, policies.USER_RIGHTS)])
    waiting = boto3.resource("dynamodb").Table(settings().instances_table)
    wait_until(
        lambda: (
            "WaitForSlot"
            in plane.states_entered(
                waiting.get_item(Key={"instance_id": instance_table_key("i-c")})["Item"]["execution_arn"]
            )
        ),
        timeout=20,
        what="i-c to wait for a slot",
    )
    assert call(ccfaas, "DELETE", "/instance/i-a", user="alice").json["status"] == "DELETED"
    third = plane.wait_status("i-c", ("READY", "FAILED"))
    assert third["status"] == "READY", third.get("reason")
    # AND neither wait was a Lambda error or a failed task
    executions = [
        call(ccfaas, "GET", f"/instance/{n}", user="alice").json["execution_arn"] for n in ("i-a", "i-b", "i-c")
    ]
    assert any("WaitBeforeRuntimeCheck" in plane.states_entered(arn) for arn in executions)
    assert function_errors == []
    assert [failed_tasks(plane, arn) for arn in executions] == [[], [], []]
    for name in ("i-b", "i-c"):
        call(ccfaas, "DELETE", f"/instance/{name}", user="alice")


def test_a_lambda_throttle_at_the_release_wait_is_retried(plane, ids, echo_wasm, monkeypatch):
    """Defect 3: Lambda answers 429 TooManyRequestsException once when the workflow reaches WaitForRelease
    (injected into moto's Lambda service, where the interpreter invokes the task); the instance stays READY."""
    from moto.awslambda.models import LambdaBackend
    from moto.core.exceptions import JsonRESTError

    throttled: list[str] = []
    real_invoke = LambdaBackend.invoke

    def throttle_once(self, function_name, qualifier, body, headers, response_headers):
        if json.loads(body or "{}").get("action") == "await_release" and not throttled:
            throttled.append(function_name)
            error = JsonRESTError("TooManyRequestsException", "Rate exceeded")
            error.code = 429
            raise error
        return real_invoke(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaBackend, "invoke", throttle_once)
    plane.register_echo(echo_wasm)
    plane.create("i-throttled", [(ids.user, policies.USER_RIGHTS)])
    record = plane.wait_status("i-throttled", ("READY", "FAILED"))
    wait_until(
        lambda: (
            call(ccfaas, "GET", "/instance/i-throttled", user="alice").json.get("status") != "READY"
            or "task_token"
            in boto3.resource("dynamodb")
            .Table(settings().instances_table)
            .get_item(Key={"instance_id": instance_table_key("i-throttled")})["Item"]
        ),
        timeout=20,
        what="the workflow to reach its release wait",
    )
    assert throttled, "the throttle was not injected"
    assert failed_tasks(plane, record["execution_arn"]) == ["Lambda.TooManyRequestsException"]
    assert call(ccfaas, "GET", "/instance/i-throttled", user="alice").json["status"] == "READY"
    assert call(ccfaas, "DELETE", "/instance/i-throttled", user="alice").json["status"] == "DELETED"
    assert plane.execution(record["execution_arn"])["status"] == "SUCCEEDED"


def _start_directly(plane, ids, instance_id: str, ttl: int, created_ago: float) -> str:
    """An instance record created ``created_ago`` seconds ago (a slow start) and its workflow, started directly."""
    import datetime as dt

    created = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=created_ago)).isoformat()
    user_policy = {
        "function": "echo",
        "instanceid": instance_id,
        "identities": [{"certificate": ids.user.certificate, "file_rights": policies.USER_RIGHTS}],
    }
    boto3.resource("dynamodb").Table(settings().instances_table).put_item(
        Item={
            "instance_id": instance_id,
            "function": "echo",
            "owner": "arn:aws:iam::000000000000:user/alice",
            "status": "PENDING",
            "created_at": created,
            "ttl_seconds": ttl,
        }
    )
    return boto3.client("stepfunctions").start_execution(
        stateMachineArn=plane.state_machine,
        input=json.dumps(
            {
                "instance_id": instance_id,
                "function": "echo",
                "owner": "alice",
                "user_policy": user_policy,
                "ttl_seconds": ttl,
            }
        ),
    )["executionArn"]


def test_the_workflow_expires_at_the_instance_deadline_not_ttl_after_ready(plane, ids, echo_wasm):
    """Defect 4: after a 57 s start, an instance with a 60 s TTL expires about 3 s after READY, and ends DELETED."""
    plane.register_echo(echo_wasm)
    arn = _start_directly(plane, ids, "i-slow", ttl=60, created_ago=57)
    execution = plane.execution(arn, timeout=30)  # a TTL counted from READY would run for another minute
    assert execution["status"] == "SUCCEEDED"
    assert "Expire" in plane.states_entered(arn)
    record = call(ccfaas, "GET", "/instance/i-slow", user="alice").json
    assert record["status"] == "DELETED" and record["reason"] == "its TTL of 60 s expired"


def test_the_reaper_expires_at_the_same_deadline_and_the_instance_ends_deleted(plane, ids, echo_wasm):
    """Defect 4: when the reaper is the one to see the deadline pass, expiry still ends DELETED and the workflow
    SUCCEEDS (no failed-workflow alarm)."""
    from lambdas.ccfaas.reaper import GRACE_SECONDS

    plane.register_echo(echo_wasm)
    plane.create("i-old", [(ids.user, policies.USER_RIGHTS)])
    record = plane.wait_status("i-old", ("READY",))
    table = boto3.resource("dynamodb").Table(settings().instances_table)
    wait_until(
        lambda: "task_token" in table.get_item(Key={"instance_id": instance_table_key("i-old")})["Item"],
        timeout=20,
        what="the workflow to wait for release",
    )
    # GIVEN its deadline (created_at + TTL) passed a grace period ago, while its workflow still waits
    import datetime as dt

    ttl = int(record["ttl_seconds"])
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl + GRACE_SECONDS + 1)).isoformat()
    table.update_item(
        Key={"instance_id": instance_table_key("i-old")},
        UpdateExpression="SET created_at = :c",
        ExpressionAttributeValues={":c": past},
    )
    # WHEN the reaper runs THEN it releases the instance, as the workflow's own expiry would
    assert Reaper(Lifecycle.from_settings()).run() == [
        {"instance_id": instance_table_key("i-old"), "action": "released (TTL expired)"}
    ]
    ended = plane.wait_status("i-old", ("DELETED", "FAILED"))
    assert ended["status"] == "DELETED" and ended["reason"] == f"its TTL of {ttl} s expired"
    assert plane.execution(record["execution_arn"])["status"] == "SUCCEEDED"
    wait_until(lambda: running_ports(plane.runtimes) == [], timeout=10, what="the runtime to be gone")


def test_a_delete_racing_the_release_wait_still_releases(plane, ids, echo_wasm, monkeypatch):
    """A delete that read the instance just before the workflow stored its release token (READY comes
    first) must still release it: the interleaving is forced by serving the delete that earlier read."""
    from lambdas.ccfaas.instances import Instances
    from local.apigw import principal_arn

    plane.register_echo(echo_wasm)
    plane.create("i-race", [(ids.user, policies.USER_RIGHTS)])
    ready = plane.wait_status("i-race", ("READY", "FAILED"))
    assert ready["status"] == "READY", ready.get("reason")
    wait_until(
        lambda: Instances.from_settings().get("i-race", principal_arn("alice")).get("task_token"),
        timeout=30,
        what="the release wait's token",
    )
    original_get = Instances.get

    def read_before_the_token(self, instance_id, caller):
        record = dict(original_get(self, instance_id, caller))
        record.pop("task_token", None)
        return record

    monkeypatch.setattr(Instances, "get", read_before_the_token)
    deleted = call(ccfaas, "DELETE", "/instance/i-race", user="alice")
    monkeypatch.undo()
    assert deleted.json["status"] == "DELETED", deleted.json


def _statuses_written(monkeypatch) -> list[str]:
    """Every status the lifecycle writes, in order (the store's one way to change a status, recorded)."""
    from lambdas.shared.stores import InstanceStore

    written: list[str] = []
    original = InstanceStore.transition

    def transition(self, instance_id, to, *args, **kwargs):
        changed = original(self, instance_id, to, *args, **kwargs)
        if changed:
            written.append(str(to))
        return changed

    monkeypatch.setattr(InstanceStore, "transition", transition)
    return written


def test_allocating_is_written_unless_a_warm_runtime_is_handed_over(plane, ids, echo_wasm, monkeypatch):
    """A cold start shows ALLOCATING while the runtime starts; a warm pool's runtime is handed over at once, so the
    instance goes from PENDING to PROVISIONING (one durable write fewer on the path to READY)."""
    from local.runtimes import start_pool, stop_pool

    plane.register_echo(echo_wasm)
    written = _statuses_written(monkeypatch)
    plane.create("i-cold", [(ids.user, policies.USER_RIGHTS)])
    plane.wait_status("i-cold", ("READY",))
    assert written == ["ALLOCATING", "PROVISIONING", "READY"]
    call(ccfaas, "DELETE", "/instance/i-cold", user="alice")
    use_settings(monkeypatch, IPOC_MAX_TTL="3600")  # the test proxy certifies for a day, as Veracruz's
    pool = start_pool(1)
    try:
        assert pool is not None and pool.wait_full(60)
        written.clear()
        plane.create("i-warm", [(ids.user, policies.USER_RIGHTS)])
        ready = plane.wait_status("i-warm", ("READY",))
        assert written == ["PROVISIONING", "READY"]
        port = ready["veracruz_server_url"].rsplit(":", 1)[1]
        assert "attested" in (plane.runtimes / port / "runtime.log").read_text()  # the warm runtime's log
        assert dedupe(plane.states_entered(ready["execution_arn"]))[:3] == [
            "Allocate",
            "SlotAllocated",
            "Provision",
        ]
        call(ccfaas, "DELETE", "/instance/i-warm", user="alice")
    finally:
        stop_pool(plane.runtimes)


def test_the_reaper_takes_an_instance_whose_execution_never_started_for_one_without_a_workflow(plane):
    """CCFaaS records the execution's ARN with the instance, just before starting it: a reaper that runs in
    between, or after a crash there, treats the instance as one without a workflow (as before the ARN was
    written first) and does not wait for that workflow to release it."""
    from lambdas.shared.stores import InstanceStore
    from local.apigw import principal_arn

    key = instance_table_key("i-early", "alice")
    arn = plane.state_machine.replace(":stateMachine:", ":execution:") + ":i-early-never-started"
    InstanceStore().create(
        {
            "instance_id": key,
            "name": "i-early",
            "function": "echo",
            "version": 1,
            "owner": principal_arn("alice"),
            "status": "PENDING",
            "created_at": "2020-01-01T00:00:00+00:00",
            "execution_arn": arn,
            "ttl_seconds": 60,
        }
    )
    # WHEN the reaper finds it past its TTL THEN it tears it down itself: no workflow will
    assert Reaper(Lifecycle.from_settings()).run() == [{"instance_id": key, "action": "torn down (TTL expired)"}]
    assert InstanceStore().get(key)["status"] == "DELETED"


def test_one_record_the_reaper_cannot_check_does_not_stop_it_reaping_the_others(plane):
    """The reaper's run goes on past a record whose check fails (here its execution ARN is not one Step
    Functions takes: InvalidArn), so one bad record cannot keep every other expired instance's runtime and
    slot held; that record is reported, and tried again next run."""
    from lambdas.shared.stores import InstanceStore
    from local.apigw import principal_arn

    keys = []
    for name, arn in (("i-bad-arn", "arn:aws:states:not-an-execution"), ("i-expired", None)):
        keys.append(instance_table_key(name, "alice"))
        InstanceStore().create(
            {
                "instance_id": keys[-1],
                "name": name,
                "function": "echo",
                "version": 1,
                "owner": principal_arn("alice"),
                "status": "PENDING",
                "created_at": "2020-01-01T00:00:00+00:00",
                **({"execution_arn": arn} if arn else {}),
                "ttl_seconds": 60,
            }
        )
    actions = Reaper(Lifecycle.from_settings()).run()
    assert {"instance_id": keys[1], "action": "torn down (TTL expired)"} in actions, actions
    assert InstanceStore().get(keys[1])["status"] == "DELETED"
    failed = [a for a in actions if a["instance_id"] == keys[0]]
    assert len(failed) == 1 and failed[0]["action"].startswith("check failed"), actions
