"""CCFaaS's instance rules (owner-scoped ids, what a creation records and starts, who sees what, release) on the
in-memory stores of tests/fakes.

Step Functions is the one AWS service replaced by a recorder here (``FakeWorkflow``:
the execution it would start, the task token it would settle); the workflow itself
runs for real in tests/functional/lambdas/test_lifecycle.py.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import pytest

from ipoc.certs import new_identity
from ipoc.errors import Conflict, DependencyFailed, NotFound, ValidationError
from ipoc.path_segments import encode_path
from lambdas.ccfaas.instances import Instances, instance_key
from lambdas.ccfaas.registry import Registry
from lambdas.ccfaas.release import ReleaseWait
from lambdas.shared import aws
from lambdas.shared.config import Settings
from lambdas.shared.stores import InstanceStatus
from local.apigw import LOCAL_ADMIN, principal_arn
from tests.fakes import FakeArtifactStore, FakeFunctionStore, FakeInstanceStore, FakeWorkflow
from tests.support import policies
from tests.support.settings import use_settings

WASM = b"\0asm\1\0\0\0 echo"
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:ipoc-instance-lifecycle"
ALICE, BOB, ADMIN = principal_arn("alice"), principal_arn("bob"), principal_arn(LOCAL_ADMIN)
USER = new_identity("user")


@pytest.fixture
def workflow(monkeypatch) -> FakeWorkflow:
    recorder = FakeWorkflow()
    monkeypatch.setattr(aws, "client", lambda service: recorder if service == "stepfunctions" else pytest.fail(service))
    return recorder


@pytest.fixture
def instances(monkeypatch, workflow) -> Instances:
    use_settings(monkeypatch, Settings(state_machine_arn=MACHINE, admin_principals=(ADMIN,)))
    store = FakeInstanceStore()
    registry = Registry(FakeFunctionStore(), FakeArtifactStore(), store)
    registry.publish(policies.echo_function("echo", WASM))
    registry.upload("echo", "program", encode_path(policies.ECHO), WASM)
    return Instances(store, registry)


def user_policy(name: str, function: str = "echo") -> dict[str, Any]:
    return {
        "function": function,
        "instanceid": name,
        "identities": [{"certificate": USER.certificate, "file_rights": policies.USER_RIGHTS}],
    }


def test_a_creation_records_a_pending_instance_under_its_owner_and_starts_its_workflow(instances, workflow) -> None:
    record = instances.create(user_policy("i-1"), ALICE, ttl=600)
    key = instance_key(ALICE, "i-1")
    assert record["instance_id"] == key and record["status"] == "PENDING" and record["version"] == 1
    [started] = workflow.started
    assert started["stateMachineArn"] == MACHINE and record["execution_arn"] == started["executionArn"]
    execution_input = json.loads(started["input"])
    assert (execution_input["instance_id"], execution_input["version"], execution_input["ttl_seconds"]) == (key, 1, 600)
    assert instances.instances.get(key)["execution_arn"] == started["executionArn"]


def test_an_id_is_the_owners_own(instances) -> None:
    instances.create(user_policy("i-1"), ALICE)
    with pytest.raises(Conflict, match="you already have an instance 'i-1'"):
        instances.create(user_policy("i-1"), ALICE)
    instances.create(user_policy("i-1"), BOB)  # another owner, another key
    assert instance_key(ALICE, "i-1") != instance_key(BOB, "i-1")


def test_an_ended_instance_keeps_its_name_until_its_record_expires_and_says_so(instances) -> None:
    """New-user QA: after `ipoc instance delete e1`, creating e1 again was refused with no word of why."""
    record = instances.create(user_policy("e1"), ALICE, ttl=600)
    assert instances.instances.transition(record["instance_id"], InstanceStatus.TEARING_DOWN, "the workflow failed")
    assert instances.instances.transition(record["instance_id"], InstanceStatus.FAILED, "the workflow failed")
    until = _dt.datetime.fromtimestamp(record["expires_at"], _dt.UTC).isoformat(timespec="seconds")
    with pytest.raises(Conflict) as refused:
        instances.create(user_policy("e1"), ALICE)
    assert refused.value.message == (
        f"you already have an instance 'e1': it is FAILED, and its record keeps the name until about {until}; "
        "choose another instanceid"
    )


def test_a_name_another_owner_holds_through_a_tag_collision_is_not_described(instances, monkeypatch) -> None:
    """The key's owner tag is 32 bits (an assumed role's session name is the caller's to choose): a colliding
    owner is refused, as the key says, and told nothing of the other owner's instance."""
    monkeypatch.setattr("lambdas.ccfaas.instances.instance_key", lambda owner, name: f"{name}.collided")
    instances.create(user_policy("secret-job"), ALICE)
    with pytest.raises(Conflict) as refused:
        instances.create(user_policy("secret-job"), BOB)
    assert refused.value.message == "you already have an instance 'secret-job'; choose another instanceid"


def test_a_function_not_fully_loaded_or_a_bad_ttl_starts_nothing(instances, workflow) -> None:
    instances.registry.publish({**policies.echo_function("echo", WASM), "debug": True, "max_memory_mib": 32})
    instances.registry.delete_file("echo:2", "program", encode_path(policies.ECHO))
    with pytest.raises(Conflict, match="not fully loaded"):
        instances.create(user_policy("i-1", "echo:2"), ALICE)
    with pytest.raises(ValidationError, match="ttl"):
        instances.create(user_policy("i-2", "echo:1"), ALICE, ttl=59)
    with pytest.raises(ValidationError, match="instanceid"):
        instances.create(user_policy("no spaces", "echo:1"), ALICE)
    assert workflow.started == [] and list(instances.instances.all()) == []


def test_a_file_unloaded_while_an_instance_is_being_created_stops_one_of_the_two(
    instances, workflow, monkeypatch
) -> None:
    """The unloading and the creation race both ways; whichever order they interleave in, no instance starts on
    a version whose program is gone (its provisioning would fail on missing bytes)."""
    segment = encode_path(policies.ECHO)
    registry, store = instances.registry, instances.instances
    # 1. the unloading runs after the creation checked the files but before it wrote its record: nothing is live
    #    yet, so the unloading succeeds, and the creation's second look refuses.
    checked = registry.get

    def get_then_unload(reference: str):
        record = checked(reference)
        monkeypatch.setattr(registry, "get", checked)  # the unloading's own lookups are plain ones
        registry.delete_file("echo:1", "program", segment)
        return record

    monkeypatch.setattr(registry, "get", get_then_unload)
    with pytest.raises(Conflict, match="was unloaded meanwhile"):
        instances.create(user_policy("i-1"), ALICE)
    assert workflow.started == [] and list(store.all()) == []
    registry.upload("echo", "program", segment, WASM)
    # 2. the unloading runs once the creation's record is written: it sees the instance and is refused, and the
    #    file is loaded again as it was, so the creation goes on.
    refusals = []
    write = store.create

    def create_then_unload(item):
        write(item)
        with pytest.raises(Conflict, match="has live instances") as refused:
            registry.delete_file("echo:1", "program", segment)
        refusals.append(refused.value)

    monkeypatch.setattr(store, "create", create_then_unload)
    instances.create(user_policy("i-2"), ALICE)
    assert len(refusals) == 1 and len(workflow.started) == 1
    assert registry.version("echo", 1).files[policies.ECHO]["status"] == "loaded"
    assert registry.artifacts.exists(registry.version("echo", 1).files[policies.ECHO]["key"])
    # 3. a whole creation runs just after the unloading looked for instances (and found none): the unloading
    #    marked the file first, so that creation is the one refused (and the refused unloading loaded it again).
    look = store.live_for_function
    outcomes: list[str] = []

    def look_then_create(function: str, version: int | None = None) -> list[str]:
        found = look(function, version)
        try:
            instances.create(user_policy("i-3"), BOB)
            outcomes.append("created")
        except Conflict as refused:
            outcomes.append(str(refused))
        return found

    monkeypatch.setattr(store, "create", write)
    monkeypatch.setattr(store, "live_for_function", look_then_create)
    with pytest.raises(Conflict, match="has live instances"):  # i-2 is still live
        registry.delete_file("echo:1", "program", segment)
    store.transition(instance_key(ALICE, "i-2"), InstanceStatus.DELETED)
    registry.delete_file("echo:1", "program", segment)
    assert outcomes == ["function 'echo' is not fully loaded: /program/echo.wasm still to upload"] * 2
    assert store.get(instance_key(BOB, "i-3")) is None


def test_a_workflow_that_cannot_start_leaves_no_record(instances, workflow) -> None:
    workflow.refuse_start = RuntimeError("throttled")
    with pytest.raises(DependencyFailed, match="throttled"):
        instances.create(user_policy("i-1"), ALICE)
    assert list(instances.instances.all()) == []


def test_users_see_their_own_instances_and_administrators_everyones(instances) -> None:
    instances.create(user_policy("same"), ALICE)
    instances.create(user_policy("same"), BOB)
    instances.create(user_policy("hers"), ALICE)
    assert instances.get("hers", ALICE)["owner"] == ALICE
    with pytest.raises(NotFound):
        instances.get("hers", BOB)
    assert [r["name"] for r in instances.list(BOB)] == ["same"]
    assert len(instances.list(ADMIN)) == 3
    assert instances.get("hers", ADMIN)["owner"] == ALICE  # unique name: found
    with pytest.raises(Conflict, match="2 users have an instance named 'same'"):
        instances.get("same", ADMIN)
    assert instances.get(instance_key(BOB, "same"), ADMIN)["owner"] == BOB  # by key


def test_a_delete_releases_a_waiting_workflow_and_ends_nothing_itself(instances, workflow) -> None:
    instances.create(user_policy("i-1"), ALICE)
    key = instance_key(ALICE, "i-1")
    instances.delete("i-1", ALICE, wait_seconds=0)
    assert instances.instances.get(key)["release_requested"] is True and workflow.settled == []  # no token yet
    instances.instances.transition(key, InstanceStatus.READY)
    instances.instances.mark(key, task_token="token-1")
    instances.delete("i-1", ALICE, wait_seconds=0)
    assert instances.instances.get(key)["status"] == "RELEASING" and workflow.settled == [("success", "token-1")]
    instances.instances.transition(key, InstanceStatus.DELETED)
    assert instances.delete("i-1", ALICE, wait_seconds=0)["status"] == "DELETED"  # idempotent once ended
    assert workflow.settled == [("success", "token-1")]


def test_a_delete_before_the_workflow_waits_reads_releasing_once_it_parks(instances, workflow) -> None:
    """The owner deleted while the instance was still provisioning: when the workflow reaches its wait it is
    released at once, and the owner reads RELEASING (not READY) until teardown ends it."""
    instances.create(user_policy("i-1"), ALICE)
    key = instance_key(ALICE, "i-1")
    instances.delete("i-1", ALICE, wait_seconds=0)
    instances.instances.transition(key, InstanceStatus.READY)  # Provision marked READY; the workflow parks its token
    ReleaseWait(instances.instances).park(key, "token-1")
    assert instances.instances.get(key)["status"] == "RELEASING" and workflow.settled == [("success", "token-1")]
