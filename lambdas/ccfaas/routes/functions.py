"""Function routes: register, list, show, status, delete."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lambdas.ccfaas.registry import LOADED, Registry, describe
from lambdas.shared.api import admin_only, json_body
from lambdas.shared.http import json_response
from lambdas.shared.openapi import spec

router = APIGatewayRouter()
ADMIN = [admin_only]  # registry and VaaS routes are for administrators


def registry() -> Registry:
    return Registry.from_settings()


@router.post("/function", summary="Register a function (the function policy)", tags=["functions"],
             openapi_extensions=spec(201, 400, 403, 409, request="function"), middlewares=ADMIN)
def register() -> Response[dict[str, Any]]:
    policy = registry().register(json_body(router.current_event))
    return json_response(201, policy)


@router.get("/function", summary="List registered functions", tags=["functions"], openapi_extensions=spec(200, 403), middlewares=ADMIN)
def list_functions() -> Response[dict[str, Any]]:
    return json_response(200, {"functions": registry().names()})


@router.get("/function/<name>", summary="Show a function's policy", tags=["functions"],
            openapi_extensions=spec(200, 403, 404), middlewares=ADMIN)
def show(name: str) -> Response[dict[str, Any]]:
    return json_response(200, registry().get(name).policy)


@router.get("/function/<name>/status", summary="Show whether every file of a function is loaded", tags=["functions"],
            openapi_extensions=spec(200, 403, 404), middlewares=ADMIN)
def status(name: str) -> Response[dict[str, Any]]:
    record = registry().get(name)
    files = [describe(path, entry) for path, entry in record.files.items()]
    return json_response(200, {"function": name, "loaded": all(f["status"] == LOADED for f in files), "files": files})


@router.delete("/function/<name>", summary="Delete a function and its binaries", tags=["functions"],
               openapi_extensions=spec(200, 403, 404, 409), middlewares=ADMIN)
def delete(name: str) -> Response[dict[str, Any]]:
    registry().delete(name)
    return json_response(200, {"deleted": name})
