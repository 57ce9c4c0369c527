"""Reconciliation at ``ipoc local up`` ends every live instance FAILED, through InstanceStore.transition: the
restart's reason for instances that were working, the failure's own reason for one already tearing down, and
ended instances untouched (DynamoDB on moto)."""

from __future__ import annotations

from moto import mock_aws

from lambdas.shared.stores import InstanceStatus as S
from lambdas.shared.stores import InstanceStore, SlotStore
from local.reconcile import RESTART_REASON, reconcile_records
from tests.support.aws import configure


def test_live_instances_end_failed_and_ended_ones_stay(monkeypatch) -> None:
    with mock_aws():
        configure(monkeypatch)
        instances, slots = InstanceStore(), SlotStore()
        for status in S:
            instances.create(
                {
                    "instance_id": status.value,
                    "owner": "alice",
                    "status": status.value,
                    "reason": "before",
                    "task_token": "t",
                }
            )
        slots.take(["3014"], {"allocation": "a"})
        result = reconcile_records(slots, instances)
        assert result["freed_slots"] == ["3014"]
        assert sorted(result["failed_instances"]) == sorted(s.value for s in InstanceStore.LIVE)
        ended = {r["instance_id"]: (r["status"], r.get("reason"), "task_token" in r) for r in instances.all()}
        assert ended == {
            **{s.value: ("FAILED", RESTART_REASON, False) for s in InstanceStore.LIVE if s is not S.TEARING_DOWN},
            "TEARING_DOWN": ("FAILED", "before", False),
            "FAILED": ("FAILED", "before", True),
            "DELETED": ("DELETED", "before", True),
        }
        assert list(slots.all()) == []
