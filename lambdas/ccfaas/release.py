"""The workflow's release wait, and every way to end it: the one home of the task token.

A READY instance's workflow waits at WaitForRelease with a task token, which it keeps on the instance
(:meth:`ReleaseWait.park`). A delete or the reaper's expiry ends the wait with success (:meth:`release`:
the workflow tears down and the instance ends DELETED); the reaper's "runtime died" ends it with a failure
(:meth:`fail`: the workflow records the reason and tears down, and the instance ends FAILED).

Both sides write before they read: the workflow keeps its token and then reads the instance, the others
change the instance and then read the token, so one of the two always sees the other and no release is lost.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared import aws
from lambdas.shared.stores import InstanceStatus, InstanceStorage, InstanceStore

GONE_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class Released(enum.Enum):
    SENT = "sent"  # the waiting workflow was released: it tears down
    NOT_YET_WAITING = "not yet waiting"  # no token kept yet: the workflow releases itself when it reaches its wait
    NOT_WAITING = "not waiting"  # a token, but the workflow has left its wait (its TTL or a failure): it tears down


@dataclass
class ReleaseWait:
    instances: InstanceStorage

    def park(self, instance_id: str, token: str) -> None:
        """Keep the workflow's token with the instance. A release asked for earlier is honoured at once; an instance
        that is ending (the reaper got there first) sends the workflow on to its teardown."""
        kept = self.instances.mark(instance_id, task_token=token)
        record = self.instances.get(instance_id) or {}
        if not kept or record.get("status") in InstanceStore.ENDING:
            fail_task(token, "InstanceEnded", record.get("reason") or "the instance ended before it was released")
        elif record.get("release_requested"):
            # released before the workflow reached its wait: the owner reads RELEASING from here, as after a
            # release of a waiting workflow (only now: before the wait, Provision would write READY over it)
            self.instances.transition(instance_id, InstanceStatus.RELEASING)
            release_task(token)

    def release(self, instance_id: str, reason: str | None = None) -> Released:
        """Ask for the instance's release: RELEASING (with ``reason``) once its workflow is waiting, or at once when
        a reason is given (the reaper's); the flag makes a workflow not yet waiting release itself."""
        if reason is None:
            self.instances.mark(instance_id, release_requested=True)
        else:
            self.instances.transition(instance_id, InstanceStatus.RELEASING, reason, release_requested=True)
        token = self._token(instance_id)
        if token is None:
            return Released.NOT_YET_WAITING
        if reason is None:
            self.instances.transition(instance_id, InstanceStatus.RELEASING)
        return Released.SENT if release_task(token) else Released.NOT_WAITING

    def fail(self, instance_id: str, error: str, reason: str) -> bool:
        """Record the failure (TEARING_DOWN, ``reason``) and fail the workflow's wait so it tears down; False when
        no workflow is waiting (the caller tears down itself)."""
        self.instances.transition(instance_id, InstanceStatus.TEARING_DOWN, reason)
        token = self._token(instance_id)
        return token is not None and fail_task(token, error, reason)

    def _token(self, instance_id: str) -> str | None:
        """The token as it is now: read after our own write (see the module's docstring)."""
        return (self.instances.get(instance_id) or {}).get("task_token")


def release_task(token: str) -> bool:
    """Let a workflow waiting on ``token`` go on to its teardown; False when it is no longer waiting."""
    return _settle(lambda sfn: sfn.send_task_success(taskToken=token, output=json.dumps({"released": True})))


def fail_task(token: str, error: str, reason: str) -> bool:
    """Fail the task waiting on ``token`` (the workflow records it and tears down); False when it is gone."""
    return _settle(
        lambda sfn: sfn.send_task_failure(taskToken=token, error=error, cause=json.dumps({"errorMessage": reason}))
    )


def _settle(send: Callable[[Any], Any]) -> bool:
    try:
        send(aws.client("stepfunctions"))
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE_TOKEN_ERRORS:
            return False  # the workflow is past its wait (expired or failed): its teardown is under way
        raise
