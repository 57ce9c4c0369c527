"""Reconciliation at start: what a stopped or killed stack left behind is ended, not resumed.

Runtime processes and Step Functions executions do not survive the stack (the
executions lived in moto's memory), so at ``ipoc local up``: every runtime
process a previous stack left running is stopped, every slot is freed, and
every instance that was still live ends FAILED with ``RESTART_REASON``. The
records themselves (and the functions and artifacts) are kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lambdas.shared.stores import InstanceStatus, InstanceStore, SlotStore, now_iso
from local.runtimes import stop_runtime

log = logging.getLogger(__name__)

RESTART_REASON = "the local stack restarted"


def stop_leftover_runtimes(runtimes_dir: Path) -> list[int]:
    """Stop every runtime process of a previous stack and remove its slot directory."""
    if not runtimes_dir.is_dir():
        return []
    ports = sorted(int(p.name) for p in runtimes_dir.iterdir() if p.is_dir() and p.name.isdigit())
    for port in ports:
        stop_runtime(runtimes_dir, port)
    return ports


def reconcile_records(slots: SlotStore, instances: InstanceStore) -> dict[str, list[str]]:
    """Free every slot and fail every live instance (their runtimes and workflows are gone)."""
    freed = []
    for item in list(slots.all()):
        if slots.release(item["slot"], item.get("allocation", "")):
            freed.append(item["slot"])
    failed = []
    for record in list(instances.all()):
        if record.get("status") not in InstanceStore.LIVE:
            continue
        # Its runtime and slot are gone (above): through TEARING_DOWN (which keeps a failure's reason already
        # recorded) to FAILED, as any failed instance goes.
        instances.transition(record["instance_id"], InstanceStatus.TEARING_DOWN, RESTART_REASON)
        if instances.transition(
            record["instance_id"], InstanceStatus.FAILED, torn_down_at=now_iso(), remove=("task_token",)
        ):
            failed.append(record["instance_id"])
    if freed or failed:
        log.info("reconciled after a restart: freed slots %s, failed instances %s", freed, failed)
    return {"freed_slots": freed, "failed_instances": failed}
