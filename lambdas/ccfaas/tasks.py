"""The lifecycle workflow's task Lambda: one handler; the payload's ``action`` picks the row of :data:`ACTIONS`.

The payload is ``{"action": ..., "state": $, ...}`` (see statemachines/instance_lifecycle.asl.json): the state is
parsed once into an :class:`ExecutionState`, and each action gets it with the payload's own extras (the task
token of WaitForRelease, the ``failed`` flag of TeardownAfterFailure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ccfaas.execution import ExecutionState
from lambdas.ccfaas.lifecycle import Lifecycle
from lambdas.shared.api import capture_lambda_handler

logger = Logger()
tracer = Tracer()


@dataclass(frozen=True)
class TaskEvent:
    """What a Task state sends: the action, the typed state and the payload's extras."""

    action: str
    state: ExecutionState
    token: str | None = None  # "token.$": "$$.Task.Token" (WaitForRelease)
    failed: bool = False  # "failed": true (TeardownAfterFailure)

    @classmethod
    def parse(cls, event: dict[str, Any]) -> TaskEvent:
        return cls(
            str(event.get("action")),
            ExecutionState.parse(event.get("state") or {}),
            event.get("token"),
            bool(event.get("failed")),
        )

    def require_token(self) -> str:
        if not self.token:
            raise ValueError(f"the {self.action!r} task needs the workflow's task token ($$.Task.Token)")
        return self.token


@dataclass(frozen=True)
class Action:
    """One workflow task: what it runs, and which of the steps' results (ResultPath keys) it needs."""

    run: Callable[[Lifecycle, TaskEvent], dict[str, Any]]
    reads: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {
    "allocate": Action(lambda lifecycle, event: lifecycle.allocate(event.state)),
    "wait_ready": Action(lambda lifecycle, event: lifecycle.wait_ready(event.state), reads=("allocation",)),
    "provision": Action(lambda lifecycle, event: lifecycle.provision(event.state), reads=("allocation",)),
    "stream": Action(lambda lifecycle, event: lifecycle.stream(event.state), reads=("allocation",)),
    "await_release": Action(lambda lifecycle, event: lifecycle.await_release(event.state, event.require_token())),
    "expire": Action(lambda lifecycle, event: lifecycle.expire(event.state)),
    "record_failure": Action(lambda lifecycle, event: lifecycle.record_failure(event.state), reads=("error",)),
    "teardown": Action(lambda lifecycle, event: lifecycle.teardown(event.state, failed=event.failed)),
}


@logger.inject_lambda_context
@capture_lambda_handler(tracer)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = TaskEvent.parse(event)
    logger.append_keys(instance_id=task.state.instance_id, action=task.action)
    action = ACTIONS.get(task.action)
    if action is None:
        raise ValueError(f"unknown lifecycle action {task.action!r}")
    result = action.run(Lifecycle.from_settings(), task)
    logger.info("lifecycle step done")
    return result


def warm_up() -> None:
    """Make the clients the actions use (a Lambda's init phase).

    The local stack calls it ahead of the first instance.
    """
    Lifecycle.from_settings()
