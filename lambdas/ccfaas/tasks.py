"""The lifecycle workflow's task Lambda: one handler, the action named in the payload."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ccfaas.lifecycle import Lifecycle

logger = Logger()
tracer = Tracer()

ACTIONS = {"compose", "allocate", "wait_ready", "provision", "mark_ready", "stream", "expire", "record_failure", "teardown"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action, state = event.get("action"), event.get("state") or {}
    logger.append_keys(instance_id=state.get("instance_id"), action=action)
    lifecycle = Lifecycle.from_settings()
    if action == "await_release":
        return lifecycle.await_release(state, event["token"])
    if action == "teardown":
        return lifecycle.teardown(state, failed=bool(event.get("failed")))
    if action not in ACTIONS:
        raise ValueError(f"unknown lifecycle action {action!r}")
    result = getattr(lifecycle, action)(state)
    logger.info("lifecycle step done")
    return result


def warm_up() -> None:
    """Make the clients the actions use (a Lambda's init phase); the local stack calls it ahead of the first instance."""
    Lifecycle.from_settings()
