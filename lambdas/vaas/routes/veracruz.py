"""VaaS routes: the seed's table (create, list, show, delete)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lambdas.shared.api import json_body, spec
from lambdas.shared.http import json_response
from lambdas.vaas.services import services

router = APIGatewayRouter()


def _filters() -> dict[str, str | None]:
    event = router.current_event
    return {
        "instance_id": event.get_query_string_value("instance_id"),
        "instance_hash": event.get_query_string_value("instance_hash"),
    }


@router.post(
    "/veracruz",
    summary="Create a Veracruz instance from a VaaS policy",
    tags=["veracruz"],
    **spec(201, 400, 403, 409, 502, 507, admin=True, request="vaas"),
)
def create() -> Response[dict[str, Any]]:
    return json_response(201, services(router).vaas.create(json_body(router.current_event)))


@router.get("/veracruz", summary="List Veracruz instances", tags=["veracruz"], **spec(200, 403, admin=True))
def list_instances() -> Response[dict[str, Any]]:
    return json_response(200, services(router).vaas.list(**_filters()))


@router.get(
    "/veracruz/<name>", summary="Show one Veracruz instance", tags=["veracruz"], **spec(200, 400, 403, 404, admin=True)
)
def show(name: str) -> Response[dict[str, Any]]:
    return json_response(200, services(router).vaas.show(name, **_filters()))


@router.delete(
    "/veracruz/<name>",
    summary="Stop and delete a Veracruz instance",
    tags=["veracruz"],
    **spec(200, 400, 403, 404, 502, admin=True),
)
def delete(name: str) -> Response[dict[str, Any]]:
    """An instance still starting shows DELETING until its start ends; its create then frees the slot (and
    answers 409), so the start cannot finish into the port's next instance."""
    return json_response(200, services(router).vaas.delete(name, **_filters()))
