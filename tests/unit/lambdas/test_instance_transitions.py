"""The instance status rules, held by ``InstanceStore.transition`` in one conditional write (DynamoDB on moto):
nothing after FAILED or DELETED; after TEARING_DOWN only FAILED, keeping the first failure's reason; FAILED only
after TEARING_DOWN. Also the typed execution state and the failure reason the workflow records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from moto import mock_aws

from lambdas.ccfaas.execution import Allocation, ExecutionState, StreamSource
from lambdas.ccfaas.lifecycle import failure_reason
from lambdas.shared import aws
from lambdas.shared.stores import InstanceStatus as S
from lambdas.shared.stores import InstanceStore
from tests.support.aws import configure

ACTIVE = {S.PENDING, S.ALLOCATING, S.PROVISIONING, S.READY, S.RELEASING}
# The expected rules, written out: for each target status, the statuses it may be written over.
EXPECTED = {
    S.ALLOCATING: ACTIVE,
    S.PROVISIONING: ACTIVE,
    S.READY: ACTIVE,
    S.RELEASING: ACTIVE,
    S.PENDING: ACTIVE,
    S.TEARING_DOWN: ACTIVE,
    S.DELETED: ACTIVE,
    S.FAILED: {S.TEARING_DOWN},
}


@pytest.fixture(scope="module")
def store() -> Iterator[InstanceStore]:
    """One moto table for the module (each test writes its own keys): 64 transitions stay a unit test's cost."""
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        configure(monkeypatch)
        yield InstanceStore()
    aws.reset()


def put(store: InstanceStore, status: S, reason: str = "first") -> str:
    key = f"i-{status.value.lower()}-{uuid.uuid4().hex[:8]}"
    store.create({"instance_id": key, "owner": "alice", "status": status.value, "reason": reason})
    return key


@pytest.mark.parametrize("to", list(S), ids=lambda s: s.value)
@pytest.mark.parametrize("stored", list(S), ids=lambda s: s.value)
def test_each_transition_is_written_exactly_when_the_rules_allow_it(store: InstanceStore, stored: S, to: S) -> None:
    key = put(store, stored)
    written = store.transition(key, to, "second")
    record = store.get(key)
    assert record is not None
    assert written == (stored in EXPECTED[to]), f"{stored} → {to}"
    if written:
        assert (record["status"], record["reason"]) == (to.value, "second")
    else:
        assert (record["status"], record["reason"]) == (stored.value, "first")  # untouched


def test_a_failure_reads_tearing_down_with_the_first_reason_then_failed(store: InstanceStore) -> None:
    key = put(store, S.READY)
    assert store.transition(key, S.TEARING_DOWN, "runtime died")
    assert not store.transition(key, S.TEARING_DOWN, "InstanceEnded: the instance ended")  # the workflow, later
    assert not store.transition(key, S.DELETED)  # a release under way cannot hide the failure
    assert store.transition(key, S.FAILED, torn_down_at="now", remove=("reason_detail",))
    record = store.get(key)
    assert record is not None and (record["status"], record["reason"], record["torn_down_at"]) == (
        "FAILED",
        "runtime died",
        "now",
    )


def test_a_missing_instance_is_never_created_by_a_transition(store: InstanceStore) -> None:
    assert not store.transition("i-none", S.ALLOCATING)
    assert store.get("i-none") is None


def test_status_changes_only_through_transition_and_marks_only_live_instances(store: InstanceStore) -> None:
    key = put(store, S.READY)
    with pytest.raises(ValueError, match="transition"):
        store.update(key, status="FAILED")
    assert store.mark(key, task_token="t")
    ending = put(store, S.TEARING_DOWN)
    assert not store.mark(ending, task_token="t")  # no workflow wait is kept for an ending instance
    assert "task_token" not in (store.get(ending) or {})


def test_statuses_are_plain_strings_in_items_and_json(store: InstanceStore) -> None:
    key = put(store, S.PENDING)
    store.transition(key, S.ALLOCATING)
    stored = (store.get(key) or {})["status"]
    assert type(stored) is str and stored == S.ALLOCATING
    assert json.dumps({"status": S.TEARING_DOWN}) == '{"status": "TEARING_DOWN"}'
    assert [s.terminal for s in S] == [False] * 6 + [True, True]


def test_the_execution_state_is_parsed_once_into_types() -> None:
    state = ExecutionState.parse(
        {
            "instance_id": "i-1.ab",
            "function": "echo",
            "version": 2,
            "owner": "alice",
            "ttl_seconds": 60,
            "user_policy": {"instanceid": "i-1"},
            "stream": {"bucket": "b", "key": "k", "filename": "/in/x"},
            "allocation": {
                "waiting": "",
                "vaas_name": "veracruz-nitro-server:3014",
                "instance_hash": "h",
                "policy": "{}",
                "veracruz_server_url": "h:3014",
                "answering": True,
            },
            "error": {"Error": "ProvisioningFailed", "Cause": "{}"},
            "runtime": {"ready": True},
        }
    )
    assert state.stream == StreamSource("b", "k", "/in/x")
    assert state.require_allocation() == Allocation("veracruz-nitro-server:3014", "h", "{}", "h:3014", answering=True)
    with pytest.raises(ValueError, match=r"\$\.allocation"):
        ExecutionState.parse({"instance_id": "i-2"}).require_allocation()
    with pytest.raises(ValueError, match=r"\$\.allocation"):  # a wait for a slot is not an allocation
        ExecutionState.parse({"instance_id": "i-2", "allocation": {"waiting": "NoCapacity"}}).require_allocation()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"Error": "ProvisioningFailed", "Cause": json.dumps({"errorMessage": "denied"})},
            "ProvisioningFailed: denied",
        ),
        ({"Error": "States.Timeout", "Cause": "timed out"}, "States.Timeout: timed out"),
        ({"Error": "RuntimeDied", "Cause": None}, "RuntimeDied"),  # a SendTaskFailure without a cause
        ({}, "Error"),
    ],
)
def test_failure_reason(error: dict, reason: str) -> None:
    assert failure_reason(error) == reason
