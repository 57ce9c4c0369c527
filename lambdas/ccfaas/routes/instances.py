"""Instance routes: create (waiting, bounded, for READY), list, show, delete.

The original CCFaaS answered ``POST /instance`` only once the instance was
loaded, with 200 ``{"instance", "policy"}``; its user app reads ``policy``
from that reply. So creation waits for READY by default, for at most
``IPOC_INSTANCE_WAIT`` seconds (25: under API Gateway's 29 s integration
timeout), and answers 202 with a status URL when the instance is not ready in
time. ``?wait=0`` asks for the 202 at once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ipoc.errors import ValidationError
from lambdas.ccfaas.instances import MAX_WAIT, RECORD_KEPT_SECONDS, name_of, view
from lambdas.ccfaas.services import services
from lambdas.shared.api import json_body, spec
from lambdas.shared.auth import caller, principal_id
from lambdas.shared.http import json_response
from lambdas.shared.stores import InstanceStore
from lambdas.shared.stream_access import check_source

router = APIGatewayRouter()


def _int_param(name: str, low: int, high: int) -> int | None:
    raw = router.current_event.get_query_string_value(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationError(f"query parameter {name} must be a whole number from {low} to {high}")
    return int(raw)


def _stream() -> dict[str, str] | None:
    event = router.current_event
    bucket, key, target = (event.get_query_string_value(n) for n in ("stream_bucket", "stream_key", "stream_to"))
    if not any((bucket, key, target)):
        return None
    if not (bucket and key and target):
        raise ValidationError("stream_bucket, stream_key and stream_to go together")
    check_source(bucket, key, principal_id(event.raw_event))  # the workflow reads with the service's own role
    return {"bucket": bucket, "key": key, "filename": target}


@router.post(
    "/instance",
    summary="Create an instance of a function from a user policy",
    tags=["instances"],
    **spec(
        200,
        400,
        403,
        404,
        409,
        413,
        502,
        admin=False,
        request="user",
        success_text="READY, with the policy (200); still starting after the wait (202)",
    ),
)
def create() -> Response[dict[str, Any]]:
    service = services(router).instances
    wait = _int_param("wait", 0, MAX_WAIT)
    if wait is None:
        wait = max(0, min(services(router).settings.instance_wait, MAX_WAIT))
    record = service.create(
        json_body(router.current_event),
        caller(router.current_event.raw_event),
        ttl=_int_param("ttl", 1, 10**7),
        stream=_stream(),
    )
    if wait:
        record = service.wait(record["instance_id"], ("READY", "FAILED", "DELETED"), wait) or record
        if record.get("status") == "READY":
            return json_response(200, original_view(record))
        if record.get("status") in InstanceStore.TERMINAL:
            return json_response(
                502,
                {
                    "error": "InstanceFailed",
                    "message": f"instance {name_of(record)} ended {record['status']} before it was ready: "
                    f"{record.get('reason') or 'no reason recorded'}; fix the cause and create it again under another "
                    f"instanceid (an ended instance's record keeps its name for {RECORD_KEPT_SECONDS // 3600} h after "
                    "its TTL)",
                    **view(record),
                },
            )
    return json_response(202, original_view(record))


def original_view(record: dict[str, Any]) -> dict[str, Any]:
    """Our view, led by the original's two keys: ``instance`` and ``policy`` (null until READY)."""
    shown = view(record)
    return {"instance": name_of(record), "policy": shown.pop("policy", None), **shown}


@router.get(
    "/instance", summary="List your instances (administrators see all)", tags=["instances"], **spec(200, admin=False)
)
def list_instances() -> Response[dict[str, Any]]:
    records = services(router).instances.list(caller(router.current_event.raw_event))
    return json_response(200, {"instances": [name_of(r) for r in records], "details": [view(r) for r in records]})


@router.get(
    "/instance/<instance_id>",
    summary="Show an instance: status, reason, workflow, and the policy once READY",
    tags=["instances"],
    **spec(200, 404, admin=False),
)
def show(instance_id: str) -> Response[dict[str, Any]]:
    return json_response(
        200, original_view(services(router).instances.get(instance_id, caller(router.current_event.raw_event)))
    )


@router.delete(
    "/instance/<instance_id>",
    summary="Release an instance into teardown and wait (bounded) for DELETED",
    tags=["instances"],
    **spec(200, 404, admin=False, success_text="DELETED (200) or still releasing (202)"),
)
def delete(instance_id: str) -> Response[dict[str, Any]]:
    record = services(router).instances.delete(instance_id, caller(router.current_event.raw_event))
    return json_response(200 if record.get("status") in InstanceStore.TERMINAL else 202, view(record))
