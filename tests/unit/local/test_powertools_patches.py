"""Concurrent invocations of one Powertools resolver each see their own request (local/powertools_patches.py).

Two threads are held inside their route handlers at the same time (a barrier), as the local
stack's threads are when two clients call at once; each must answer from its own event.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import Router

from local.apigw import build_event
from local.context import LocalLambdaContext
from local.powertools_patches import thread_local_requests


def test_two_concurrent_requests_each_see_their_own_event():
    thread_local_requests()
    router = Router()
    app = APIGatewayRestResolver()
    both_inside = threading.Barrier(2, timeout=10)

    @router.get("/echo/<name>")
    def echo(name: str) -> dict:
        both_inside.wait()  # the other request has started too
        return {
            "name": name,
            "path": router.current_event.path,
            "user": router.current_event.request_context.identity.user,
            "route_args": app.context.get("_route_args"),
        }

    app.include_router(router)

    def call(name: str) -> dict:
        event = build_event("GET", f"/echo/{name}", user=f"user-{name}")
        return app.resolve(event, LocalLambdaContext())

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(call, ["alice", "bob"]))
    import json

    bodies = [json.loads(reply["body"]) for reply in replies]
    assert bodies == [
        {"name": "alice", "path": "/echo/alice", "user": "user-alice", "route_args": {"name": "alice"}},
        {"name": "bob", "path": "/echo/bob", "user": "user-bob", "route_args": {"name": "bob"}},
    ]
