"""The reaper: tears down instances whose runtime died, whose TTL passed, or whose workflow ended early.

Runs on a schedule (EventBridge in AWS, a timer in the local stack). A live
workflow is told through its task token, so teardown still happens in the
workflow and shows in its history; an instance whose workflow has already
ended is torn down here directly.

An instance is left TEARING_DOWN (never FAILED) when its teardown did not
finish: its workflow ended, or ours stopped. The reaper finishes it, so FAILED
still means the runtime and slot are gone.

Expiry has one deadline, the workflow's (``ttl_deadline``: created_at + TTL).
The workflow's own release wait times out at it; the reaper is the backstop a
grace period later, and releases the instance exactly as the workflow's expiry
does, so an expired instance ends DELETED and its execution SUCCEEDS (no
failed-workflow alarm for an ordinary expiry).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ipoc import errors
from lambdas.ccfaas.execution import ExecutionState
from lambdas.ccfaas.lifecycle import Lifecycle, ttl_deadline
from lambdas.ccfaas.release import Released, ReleaseWait
from lambdas.shared import aws
from lambdas.shared.stores import InstanceStatus, InstanceStore

logger = Logger()
GRACE_SECONDS = 60  # after the deadline: the workflow's own timeout normally gets there first


@dataclass
class Reaper:
    lifecycle: Lifecycle

    @property
    def release_wait(self) -> ReleaseWait:
        return self.lifecycle.release_wait

    def run(self) -> list[dict[str, str]]:
        actions = []
        for record in self.lifecycle.instances.all():
            if record.get("status") in InstanceStore.TERMINAL:
                continue
            try:
                action = self._check(record)
            except Exception as exc:  # one record's failure must not keep the others' runtimes and slots held
                logger.exception("reaper check failed", extra={"instance_id": record["instance_id"]})
                action = f"check failed ({type(exc).__name__}); tried again next run"
            if action:
                actions.append({"instance_id": record["instance_id"], "action": action})
                logger.info("reaped", extra={"instance_id": record["instance_id"], "reaper_action": action})
        return actions

    def _check(self, record: dict[str, Any]) -> str | None:
        execution = record.get("execution_arn")
        state = _execution_status(execution) if execution else None
        if state is None:
            execution = None  # recorded before its start, which has not happened (or never will): as without one
        elif state != "RUNNING":
            self._teardown(record, f"its workflow ended ({state}) without tearing it down")
            return "torn down"
        if record.get("status") == InstanceStatus.TEARING_DOWN:
            if execution:
                return None  # its running workflow is tearing it down
            self._teardown(
                record, record.get("reason") or "its teardown did not finish"
            )  # a teardown of ours that stopped
            return "torn down"
        if self._expired(record):
            return self._release(
                record, f"its TTL of {record.get('ttl_seconds')} s expired", "TTL expired", workflow=bool(execution)
            )
        if record.get("status") == InstanceStatus.READY and record.get("vaas_name"):
            try:
                runtime = self.lifecycle.vaas.show(record["vaas_name"], instance_hash=record.get("instance_hash"))[
                    "status"
                ]
            except errors.NotFound:
                runtime = "MISSING"
            if runtime == "EXITED":
                return self._release(record, "the runtime shut down", "runtime shut down", workflow=bool(execution))
            if runtime not in ("OK", "STARTING"):
                return self._fail(record, "RuntimeDied", "runtime died")
        return None

    @staticmethod
    def _expired(record: dict[str, Any]) -> bool:
        deadline = ttl_deadline(record)
        return deadline is not None and _dt.datetime.now(_dt.UTC) > deadline + _dt.timedelta(seconds=GRACE_SECONDS)

    def _fail(self, record: dict[str, Any], error: str, reason: str) -> str:
        if self.release_wait.fail(record["instance_id"], error, reason):
            return f"failed ({reason}); workflow tearing down"
        self._teardown(record, reason)
        return f"failed ({reason}); torn down"

    def _release(self, record: dict[str, Any], reason: str, label: str, *, workflow: bool) -> str:
        """An ordinary end (the runtime shut down cleanly, or the TTL passed): release the instance as a
        delete would, so it ends DELETED. ``workflow``: its execution runs (and will release it at its wait)."""
        released = self.release_wait.release(record["instance_id"], reason)
        if released is Released.SENT:
            return f"released ({label})"
        if released is Released.NOT_YET_WAITING and workflow:
            return f"release requested ({label})"  # the live workflow releases itself when it reaches its wait
        self.lifecycle.teardown(ExecutionState(record["instance_id"]))
        return f"torn down ({label})"

    def _teardown(self, record: dict[str, Any], reason: str) -> None:
        """Tear down here (no workflow will): TEARING_DOWN with ``reason``, the runtime and slot freed, FAILED."""
        self.lifecycle.instances.transition(record["instance_id"], InstanceStatus.TEARING_DOWN, reason)
        self.lifecycle.teardown(
            ExecutionState(record["instance_id"], error={"Error": "Reaped", "Cause": reason}), failed=True
        )


def _execution_status(arn: str) -> str | None:
    """The execution's status; None when it does not exist (CCFaaS records the ARN just before starting it)."""
    client = aws.client("stepfunctions")
    try:
        return str(client.describe_execution(executionArn=arn)["status"])
    except client.exceptions.ExecutionDoesNotExist:
        return None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"reaped": Reaper(Lifecycle.from_settings()).run()}
