"""VaaS under a delete that comes while a create is still starting its runtime (the slot is STARTING, with
its instance hash, from the moment it is taken): the slot a later create takes must stay that create's."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from ipoc import rights
from ipoc.certs import new_identity
from ipoc.errors import Conflict, NoCapacity
from lambdas.vaas.service import NAME_HOST, STARTS_END_WITHIN, VaaS
from tests.fakes.stores import FakeSlotStore
from tests.fakes.vaas import RacingBackend
from tests.support import policies


def _policy(name: str) -> dict[str, Any]:
    return policies.vaas_policy([(new_identity(name), [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}])])


def _one_slot() -> tuple[FakeSlotStore, RacingBackend, VaaS]:
    slots, backend = FakeSlotStore(), RacingBackend()
    return slots, backend, VaaS(slots, backend, 3014, 3014)


def _delete_the_starting_slot(vaas: VaaS, slots: FakeSlotStore) -> dict[str, Any]:
    taken = slots.get("3014")
    assert taken is not None and taken["state"] in ("STARTING", "DELETING")
    return vaas.delete(f"{NAME_HOST}:3014", instance_hash=taken["instance_hash"])  # found by its hash already


def test_a_delete_during_a_start_does_not_let_the_start_take_over_the_next_creates_slot():
    """Review F7: the delete used to free the STARTING slot at once, the next create took the port, and the first
    start then wrote its runtime over it. Now the slot waits for the start, which gives it back."""
    slots, backend, vaas = _one_slot()
    seen: dict[str, Any] = {}

    def delete_then_create_again() -> None:
        seen["deleted"] = _delete_the_starting_slot(vaas, slots)
        seen["shown"] = vaas.show(f"{NAME_HOST}:3014")
        with pytest.raises(NoCapacity):  # the port is still the first start's
            vaas.create(_policy("second"))

    backend.meanwhile = delete_then_create_again
    with pytest.raises(Conflict, match="deleted while its runtime was starting"):
        vaas.create(_policy("first"))
    assert seen["deleted"] == {"deleted": f"{NAME_HOST}:3014"} and seen["shown"]["status"] == "DELETING"
    assert slots.get("3014") is None and backend.running == {}  # the first start stopped its runtime, freed the slot

    second = vaas.create(_policy("second"))
    item = slots.get("3014")
    assert item is not None and item["instance_hash"] == second["instance_hash"] and item["state"] == "RUNNING"
    assert item.get("facts") == {"runtime": second["instance_hash"]}, item
    assert backend.running == {3014: second["instance_hash"]}, backend.running


def test_a_repeated_delete_of_a_starting_slot_only_marks_it_once():
    slots, backend, vaas = _one_slot()
    replies: list[dict[str, Any]] = []
    backend.meanwhile = lambda: replies.extend([_delete_the_starting_slot(vaas, slots) for _ in range(2)])
    with pytest.raises(Conflict):
        vaas.create(_policy("first"))
    assert replies == [{"deleted": f"{NAME_HOST}:3014"}] * 2 and slots.get("3014") is None and backend.running == {}


def test_a_delete_after_the_start_ended_stops_the_runtime_and_frees_the_slot_at_once():
    slots, backend, vaas = _one_slot()
    reply = vaas.create(_policy("first"))
    assert vaas.delete(f"{NAME_HOST}:3014", instance_hash=reply["instance_hash"]) == {"deleted": f"{NAME_HOST}:3014"}
    assert slots.get("3014") is None and backend.running == {}


def test_a_slot_left_starting_by_a_create_that_died_is_freed_by_a_delete():
    """No invocation outlives Lambda's 15-minute limit, so a STARTING slot taken before that has no start to wait
    for (a create whose Lambda timed out): the delete frees it, or the port would be lost for good."""
    slots, backend, vaas = _one_slot()
    slots.take(
        ["3014"],
        {
            "allocation": "dead",
            "created_at": (_dt.datetime.now(_dt.UTC) - STARTS_END_WITHIN - _dt.timedelta(seconds=1)).isoformat(),
            "state": "STARTING",
            "instance_hash": "ab" * 29 + "a",
        },
    )
    vaas.delete(f"{NAME_HOST}:3014", instance_hash="ab" * 29 + "a")
    assert slots.get("3014") is None
    taken, item = vaas.create(_policy("next")), slots.get("3014")
    assert item is not None and item["instance_hash"] == taken["instance_hash"] and item["state"] == "RUNNING"
