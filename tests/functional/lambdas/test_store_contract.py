"""One contract, two implementations: every assertion here runs against the DynamoDB/S3 stores (on moto) and
against the in-memory fakes of ``tests/fakes``, so the fakes the unit tests use cannot drift from the real stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from ipoc.errors import Conflict, DependencyFailed
from lambdas.shared.stores import (
    ArtifactStorage,
    ArtifactStore,
    FunctionRecord,
    FunctionStorage,
    FunctionStore,
    InstanceStatus,
    InstanceStorage,
    InstanceStore,
    SlotStorage,
    SlotStore,
)
from tests.fakes import FakeArtifactStore, FakeFunctionStore, FakeInstanceStore, FakeSlotStore
from tests.support.aws import configure


@dataclass
class Stores:
    functions: FunctionStorage
    artifacts: ArtifactStorage
    instances: InstanceStorage
    slots: SlotStorage
    send_part: Callable[[str, str, bytes], None]  # the client's PUT to a presigned part URL: (key, upload id, data)


@pytest.fixture(params=["moto", "fake"])
def stores(request, monkeypatch) -> Iterator[Stores]:
    if request.param == "fake":
        artifacts = FakeArtifactStore()
        yield Stores(FakeFunctionStore(), artifacts, FakeInstanceStore(), FakeSlotStore(), artifacts.upload_part)
        return
    with mock_aws():
        configure(monkeypatch)
        real = ArtifactStore()

        def send_part(key: str, upload_id: str, data: bytes) -> None:
            real.s3.upload_part(Bucket=real.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data)

        yield Stores(FunctionStore(), real, InstanceStore(), SlotStore(), send_part)


def record(name: str = "f", version: int = 1, **files: dict[str, Any]) -> FunctionRecord:
    return FunctionRecord(
        name,
        {"function": name, "n": version},
        files or {"/program/a.wasm": {"kind": "program", "pi_hash": "ab" * 32, "status": "missing"}},
        "2026-01-01T00:00:00+00:00",
        version,
        "cd" * 32,
    )


# -- functions ---------------------------------------------------------------------------------------------


def test_version_numbers_count_per_function_and_heads_name_the_functions(stores: Stores) -> None:
    functions = stores.functions
    assert [functions.next_version("a", "t"), functions.next_version("a", "t"), functions.next_version("b", "t")] == [
        1,
        2,
        1,
    ]
    assert functions.names() == ["a", "b"]
    functions.delete_head("a")
    assert functions.names() == ["b"]
    assert functions.next_version("a", "t") == 1  # a new function of the same name starts again


def test_a_version_is_written_once_and_read_back_as_written(stores: Stores) -> None:
    functions = stores.functions
    first = record("f", 1)
    assert functions.create_version(first) is True
    assert functions.create_version(record("f", 1)) is False
    assert functions.get_version("f", 1) == first
    assert functions.get_version("f", 2) is None and functions.get_version("", 1) is None
    assert functions.versions("") == [] and functions.newest("") is None and functions.aliases("") == {}


def test_versions_are_oldest_first_and_newest_skips_a_version_being_deleted(stores: Stores) -> None:
    functions = stores.functions
    for version in (2, 1, 3):
        functions.create_version(record("f", version))
    assert [r.version for r in functions.versions("f")] == [1, 2, 3]
    assert functions.set_deleting("f", 3, True) is True
    assert functions.set_deleting("f", 3, True) is False  # already marked
    newest, third = functions.newest("f"), functions.get_version("f", 3)
    assert newest is not None and newest.version == 2
    assert third is not None and third.deleting is True
    assert functions.set_deleting("f", 3, False) is True
    newest = functions.newest("f")
    assert newest is not None and newest.version == 3
    assert functions.set_deleting("f", 9, True) is False and functions.set_deleting("f", 9, False) is False
    functions.delete_version("f", 3)
    assert [r.version for r in functions.versions("f")] == [1, 2]


def test_a_file_entry_is_replaced_only_when_declared_and_not_in_the_excluded_status(stores: Stores) -> None:
    functions = stores.functions
    functions.create_version(record("f", 1))
    loaded = {"kind": "program", "pi_hash": "ab" * 32, "status": "loaded", "size": 3, "key": "functions/f/x"}
    assert functions.update_file("f", 1, "/program/other.wasm", loaded) is False  # not declared by this version
    assert functions.update_file("f", 2, "/program/a.wasm", loaded) is False  # no such version
    assert functions.update_file("f", 1, "/program/a.wasm", loaded, unless_status="loaded") is True
    assert functions.update_file("f", 1, "/program/a.wasm", {**loaded, "size": 4}, unless_status="loaded") is False
    first = functions.get_version("f", 1)
    assert first is not None and first.files["/program/a.wasm"] == loaded
    cleared = {"kind": "program", "pi_hash": "ab" * 32, "status": "missing"}
    assert functions.update_file("f", 1, "/program/a.wasm", cleared, if_status="loaded") is True
    assert functions.update_file("f", 1, "/program/a.wasm", cleared, if_status="loaded") is False  # not loaded now


def test_aliases_move_and_a_restore_keeps_a_later_move(stores: Stores) -> None:
    functions = stores.functions
    assert functions.put_alias("f", "prod", 1) is None
    assert functions.put_alias("f", "prod", 2) == 1
    assert functions.put_alias("f", "beta", 2) is None
    assert functions.aliases("f") == {"beta": 2, "prod": 2}
    functions.restore_alias("f", "prod", 2, 1)  # undo: back to 1
    assert functions.aliases("f")["prod"] == 1
    functions.restore_alias("f", "prod", 2, 1)  # it no longer points at 2: nothing changes
    assert functions.aliases("f")["prod"] == 1
    functions.restore_alias("f", "beta", 2, None)  # undo a new alias: gone
    assert functions.aliases("f") == {"prod": 1}
    assert functions.delete_alias("f", "prod") is True and functions.delete_alias("f", "prod") is False
    assert functions.aliases("f") == {}


# -- artifacts ---------------------------------------------------------------------------------------------


def test_objects_are_put_read_hashed_copied_and_deleted(stores: Stores) -> None:
    artifacts = stores.artifacts
    artifacts.put("functions/f/1", b"hello")
    assert artifacts.exists("functions/f/1") and not artifacts.exists("functions/f/2")
    assert artifacts.open("functions/f/1").read() == b"hello"
    assert artifacts.hash_object("functions/f/1", 100) == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        5,
    )
    artifacts.copy("functions/f/1", "functions/f/2")
    artifacts.delete("functions/f/1")
    artifacts.delete("functions/f/1")  # deleting what is gone is fine
    assert not artifacts.exists("functions/f/1") and artifacts.open("functions/f/2").read() == b"hello"
    with pytest.raises(DependencyFailed, match="functions/f/1"):
        artifacts.open("functions/f/1")


def test_an_upload_finishes_only_once_its_part_arrived_and_only_once(stores: Stores) -> None:
    artifacts = stores.artifacts
    upload_id, url = artifacts.start_upload("uploads/f/t", 60)
    assert url.startswith("http")
    assert artifacts.finish_upload("uploads/f/t", upload_id) is False  # nothing sent yet: still open
    stores.send_part("uploads/f/t", upload_id, b"weights")
    assert artifacts.finish_upload("uploads/f/t", upload_id) is True
    assert artifacts.open("uploads/f/t").read() == b"weights"
    with pytest.raises(Conflict):
        artifacts.finish_upload("uploads/f/t", upload_id)


def test_an_aborted_upload_cannot_be_finished_and_abort_is_idempotent(stores: Stores) -> None:
    artifacts = stores.artifacts
    upload_id, _ = artifacts.start_upload("uploads/f/u", 60)
    artifacts.abort_upload("uploads/f/u", upload_id)
    artifacts.abort_upload("uploads/f/u", upload_id)
    with pytest.raises(Conflict):
        artifacts.finish_upload("uploads/f/u", upload_id)
    assert not artifacts.exists("uploads/f/u")


# -- instances ---------------------------------------------------------------------------------------------


def instance(key: str, status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    return {
        "instance_id": key,
        "name": key,
        "function": "f",
        "version": 1,
        "owner": "alice",
        "status": status,
        "ttl_seconds": 3600,
        **extra,
    }


def test_an_instance_is_created_once_and_read_back_as_written(stores: Stores) -> None:
    instances = stores.instances
    instances.create(instance("i-1", nested={"a": [1, "x"], "ok": True}))
    with pytest.raises(Conflict, match="i-1"):
        instances.create(instance("i-1"))
    assert instances.get("i-1") == instance("i-1", nested={"a": [1, "x"], "ok": True})
    assert instances.get("i-2") is None and instances.get("") is None
    instances.delete("i-1")
    instances.delete("i-1")
    assert instances.get("i-1") is None


def test_an_update_sets_and_removes_fields_but_never_the_status(stores: Stores) -> None:
    instances = stores.instances
    assert instances.update("missing", reason="x") is False
    instances.create(instance("i-1", task_token="t"))
    assert instances.update("i-1", reason="up", remove=("task_token",)) is True
    stored = instances.get("i-1")
    assert stored is not None and stored["reason"] == "up" and "task_token" not in stored and stored["updated_at"]
    with pytest.raises(ValueError, match="transition"):
        instances.update("i-1", status="READY")


def test_transitions_follow_the_status_rules(stores: Stores) -> None:
    """Nothing after a terminal status; after TEARING_DOWN only FAILED (first reason kept); FAILED only after it."""
    instances = stores.instances
    assert instances.transition("missing", InstanceStatus.READY) is False
    instances.create(instance("i-1", "PENDING"))
    assert instances.transition("i-1", InstanceStatus.FAILED, "too early") is False
    assert instances.transition("i-1", InstanceStatus.READY) is True
    assert instances.mark("i-1", task_token="t") is True
    assert instances.transition("i-1", InstanceStatus.TEARING_DOWN, "first", remove=("task_token",)) is True
    assert instances.transition("i-1", InstanceStatus.TEARING_DOWN, "second") is False
    assert instances.mark("i-1", task_token="u") is False  # not live-and-active any more
    assert instances.transition("i-1", InstanceStatus.FAILED) is True
    assert instances.transition("i-1", InstanceStatus.READY) is False
    assert instances.transition("i-1", InstanceStatus.DELETED) is False
    stored = instances.get("i-1")
    assert (
        stored is not None
        and stored["status"] == "FAILED"
        and stored["reason"] == "first"
        and "task_token" not in stored
    )


def test_live_instances_of_a_function_and_scans(stores: Stores) -> None:
    instances = stores.instances
    instances.create(instance("a", "READY"))
    instances.create(instance("b", "DELETED"))
    instances.create(instance("c", "PROVISIONING", version=2))
    instances.create({k: v for k, v in instance("d", "PENDING").items() if k != "version"})  # from before versions
    instances.create({**instance("e", "READY"), "function": "g"})
    assert sorted(instances.live_for_function("f")) == ["a", "c", "d"]
    assert sorted(instances.live_for_function("f", 1)) == ["a", "d"]
    assert sorted(instances.live_for_function("f", 2)) == ["c"]
    assert sorted(i["instance_id"] for i in instances.all()) == ["a", "b", "c", "d", "e"]
    assert sorted(i["instance_id"] for i in instances.matching("status", "READY")) == ["a", "e"]


def test_the_live_instances_a_deletion_relies_on_are_read_consistently(monkeypatch) -> None:
    """The oracle is DynamoDB's own rule: only reads of a table's own keys can be strongly consistent, a query of
    a global secondary index never is (``ConsistentRead`` on one is a ValidationException). A deletion that looked
    for live instances through an index could miss one written a moment before, and delete what it runs on."""
    with mock_aws():
        configure(monkeypatch)
        instances = InstanceStore()
        instances.create(instance("a", "READY"))
        calls: list[tuple[str, dict[str, Any]]] = []
        events = instances.table.meta.client.meta.events
        events.register(
            "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append((model.name, params))
        )
        assert instances.live_for_function("f") == ["a"]
        assert calls, "live_for_function made no DynamoDB call"
        for operation, params in calls:
            assert operation in ("GetItem", "Query", "Scan"), operation
            assert params.get("ConsistentRead") is True and "IndexName" not in params, (operation, params)


# -- slots -------------------------------------------------------------------------------------------------


def test_slots_are_taken_first_free_first_and_released_only_by_their_allocation(stores: Stores) -> None:
    slots = stores.slots
    assert slots.take(["3014", "3015"], {"allocation": "x", "state": "ALLOCATING"}) == "3014"
    assert slots.take(["3014", "3015"], {"allocation": "y", "state": "ALLOCATING"}) == "3015"
    assert slots.take(["3014", "3015"], {"allocation": "z", "state": "ALLOCATING"}) is None
    assert slots.update("3014", "y", state="RUNNING") is False  # another allocation's slot
    assert slots.update("3014", "x", only_from="STARTING", state="RUNNING") is False  # not in that state
    assert slots.update("3016", "x", state="RUNNING") is False and slots.get("3016") is None  # no such slot
    assert slots.update("3014", "x", only_from="ALLOCATING", state="RUNNING", facts={"pid": 12}) is True
    assert slots.get("3014") == {"slot": "3014", "allocation": "x", "state": "RUNNING", "facts": {"pid": 12}}
    assert slots.release("3014", "y") is False
    assert slots.release("3014", "x") is True and slots.get("3014") is None
    assert [s["slot"] for s in slots.all()] == ["3015"] and [s["slot"] for s in slots.matching("allocation", "y")] == [
        "3015"
    ]


def test_the_slots_held_are_their_keys_read_consistently_without_their_items(stores: Stores) -> None:
    """A create polled while every slot is busy reads ``held``: the keys of the slots taken and no more (on
    DynamoDB a consistent scan projected to the key, not the items with their facts)."""
    slots = stores.slots
    assert slots.held() == set()
    for slot in ("3014", "3016"):
        slots.take([slot], {"allocation": slot, "state": "RUNNING", "facts": {"pid": 12, "home": "/tmp/x"}})
    assert slots.held() == {"3014", "3016"}
    slots.release("3014", "3014")
    assert slots.held() == {"3016"}
    if isinstance(slots, SlotStore):
        calls: list[dict[str, Any]] = []
        slots.table.meta.client.meta.events.register(
            "provide-client-params.dynamodb.Scan", lambda params, **_: calls.append(params)
        )
        assert slots.held() == {"3016"}
        [params] = calls
        assert params["ConsistentRead"] is True and "IndexName" not in params
        projected = params["ProjectionExpression"]
        assert params.get("ExpressionAttributeNames", {}).get(projected, projected) == "slot"


def test_a_slot_is_taken_with_the_fields_of_the_slot_it_gets(stores: Stores) -> None:
    """VaaS writes the runtime's hash and URL, which depend on the port, in the take itself."""
    slots = stores.slots
    slots.take(["3020"], {"allocation": "x"})
    taken = slots.take(["3020", "3021"], {"allocation": "y"}, fields_for=lambda slot: {"url": f"host:{slot}"})
    assert taken == "3021"
    assert slots.get("3021") == {"slot": "3021", "allocation": "y", "url": "host:3021"}
