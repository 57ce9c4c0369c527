"""VaaS's create over the real slot store (moto) with runtimes in memory: what a create costs while slots are
busy (the workflow's Allocate polls create while it waits for one), and that what it hands out and writes is
what a fresh completion of the policy for the port it gets gives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from ipoc import rights
from ipoc.certs import new_identity
from ipoc.errors import NoCapacity, ValidationError
from ipoc.policy import Infrastructure, complete_policy
from lambdas.shared.stores import SlotStore
from lambdas.vaas import service
from lambdas.vaas.service import NAME_HOST, VaaS
from tests.fakes.vaas import RacingBackend
from tests.support import policies
from tests.support.aws import configure

PORT_MIN, PORT_MAX = 3014, 3023  # ten slots, as the stack's default range


@dataclass
class Slots:
    vaas: VaaS
    store: SlotStore
    backend: RacingBackend
    completions: list[int]  # the port of each complete_policy call VaaS made
    writes: list[str]  # the DynamoDB operation of each write to the slots table


@pytest.fixture
def slots(monkeypatch) -> Iterator[Slots]:
    with mock_aws():
        configure(monkeypatch)
        store, backend = SlotStore(), RacingBackend()
        completions: list[int] = []
        writes: list[str] = []

        def counted(vaas_policy: Any, infra: Infrastructure) -> dict[str, Any]:
            completions.append(int(infra.veracruz_server_url.rsplit(":", 1)[1]))
            return complete_policy(vaas_policy, infra)

        monkeypatch.setattr(service, "complete_policy", counted)

        def count_write(model: Any, **_: Any) -> None:
            if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
                writes.append(model.name)

        store.table.meta.client.meta.events.register("provide-client-params.dynamodb.*", count_write)
        yield Slots(VaaS(store, backend, PORT_MIN, PORT_MAX), store, backend, completions, writes)


def _policy(name: str) -> dict[str, Any]:
    policy = policies.vaas_policy([(new_identity(name), [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}])])
    # a fixed expiry: a fresh completion a minute later would otherwise name another minute (cert_expiry(now))
    policy["enclave_cert_expiry"] = {"day": 1, "hour": 0, "minute": 0, "month": 1, "year": 2030}
    return policy


def _fill(slots: Slots, count: int) -> None:
    for index in range(count):
        slots.vaas.create(_policy(f"holder-{index}"))
    slots.completions.clear()
    slots.writes.clear()


def _fresh(slots: Slots, vaas_policy: dict[str, Any], port: int) -> dict[str, Any]:
    """The oracle: ipoc.policy.complete_policy itself (not the counted one VaaS calls here), made now for the
    port, not a completion a create kept from another port."""
    return complete_policy(vaas_policy, service.infrastructure(slots.backend.runtime_setup(), port))


def test_a_create_that_finds_every_slot_busy_completes_the_policy_once_and_writes_nothing(slots: Slots) -> None:
    """Review F8: it completed the policy for each of the ten ports, trying each slot's conditional put (~7 ms
    of CPU in completions alone, per poll of a waiting create). One completion still refuses a bad policy first."""
    _fill(slots, PORT_MAX - PORT_MIN + 1)
    before = sorted(slots.store.all(), key=lambda item: item["slot"])
    with pytest.raises(NoCapacity, match="all 10 runtime slots"):
        slots.vaas.create(_policy("late"))
    assert slots.completions == [PORT_MIN]
    assert slots.writes == []
    assert sorted(slots.store.all(), key=lambda item: item["slot"]) == before


def test_a_create_behind_busy_slots_hands_out_and_writes_a_fresh_completion_for_its_port(slots: Slots) -> None:
    _fill(slots, 9)
    vaas_policy = _policy("tenth")
    seen: dict[str, Any] = {}
    slots.backend.meanwhile = lambda: seen.update(starting=slots.store.get(str(PORT_MAX)))
    reply = slots.vaas.create(vaas_policy)
    expected = _fresh(slots, vaas_policy, PORT_MAX)
    assert reply == expected  # the same policy text, hence the same instance hash
    assert slots.completions == [PORT_MAX]  # once, for the port it got
    assert slots.writes == ["PutItem", "UpdateItem"]  # the take, then RUNNING
    # what a reader (list, show, delete) of the slot sees while the runtime starts: complete from the take on
    starting = seen["starting"]
    assert starting == {
        "slot": str(PORT_MAX),
        "allocation": starting["allocation"],
        "created_at": starting["created_at"],
        "state": "STARTING",
        "instance_hash": expected["instance_hash"],
        "veracruz_server_url": f"127.0.0.1:{PORT_MAX}",
        "instance_id": expected["instance_id"],
    }
    shown = slots.vaas.show(f"{NAME_HOST}:{PORT_MAX}", instance_hash=expected["instance_hash"])
    assert shown["status"] == "OK" and shown["veracruz_server_url"] == f"127.0.0.1:{PORT_MAX}"


def test_a_slot_taken_after_the_create_read_it_free_goes_to_the_next_free_one(slots: Slots, monkeypatch) -> None:
    """The read of the slots only picks candidates: the conditional put decides. A slot another create takes in
    between is skipped (its put fails), and the policy is completed again, for the port the create gets."""
    _fill(slots, 7)
    read = SlotStore.held

    def read_then_another_create_takes(store: SlotStore) -> set[str]:
        held = read(store)
        monkeypatch.setattr(SlotStore, "held", read)
        other = slots.store.take([str(PORT_MIN + 7)], {"allocation": "other", "created_at": "now", "state": "STARTING"})
        assert other == str(PORT_MIN + 7)
        return held

    monkeypatch.setattr(SlotStore, "held", read_then_another_create_takes)
    vaas_policy = _policy("raced")
    reply = slots.vaas.create(vaas_policy)
    assert reply == _fresh(slots, vaas_policy, PORT_MIN + 8)
    assert slots.completions == [PORT_MIN + 7, PORT_MIN + 8]
    assert slots.store.get(str(PORT_MIN + 7))["allocation"] == "other"  # type: ignore[index]
    assert slots.store.get(str(PORT_MIN + 8))["state"] == "RUNNING"  # type: ignore[index]


def test_a_bad_policy_is_refused_before_the_busy_slots_are_reported(slots: Slots) -> None:
    _fill(slots, PORT_MAX - PORT_MIN + 1)
    bad = _policy("bad")
    bad["identities"][0]["certificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    with pytest.raises(ValidationError, match=r"\$\.identities\[0\]\.certificate"):
        slots.vaas.create(bad)
    assert slots.writes == []
