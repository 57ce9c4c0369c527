"""Schemathesis against the local stack's own OpenAPI documents (served at /openapi.json):
valid and invalid requests for every route of CCFaaS, VaaS and the S3 streamer.

Every answer must be below 500, or a 502/507 the route documents (a dependency or capacity
answer); every 4xx must carry the JSON error shape ``{"error": ..., "message": ...}``.
At least 10,000 requests in all (counted).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err

from tests.reliability.tally import TALLY

SERVICES = ("ccfaas", "vaas", "s3stream")
EXAMPLES_PER_MODE = 420  # 26 routes, valid and invalid (routes without input have no invalid form)
DOCUMENTED_5XX = {"502", "507"}
MINIMUM_REQUESTS = 10_000


def operations(stack: dict) -> list[tuple[str, Any, dict]]:
    found = []
    for service in SERVICES:
        document = requests.get(stack["url"][service] + "/openapi.json", timeout=30).json()
        document["servers"] = [{"url": stack["url"][service]}]
        schema = schemathesis.openapi.from_dict(document)
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # a route schemathesis cannot read: our document is wrong
            operation = result.ok()
            responses = document["paths"][operation.path][operation.method.lower()]["responses"]
            found.append((service, operation, responses))
    return found


def check(reply: requests.Response, responses: dict, problems: list[str], label: str) -> None:
    status = reply.status_code
    if status >= 500:
        if str(status) in DOCUMENTED_5XX and str(status) in responses:
            TALLY.add(documented_dependency_errors=1)
        else:
            TALLY.add(server_errors=1)
            problems.append(
                f"{label}: {status} {reply.text[:300]} <- {reply.request.method} {reply.request.url} "
                f"{str(reply.request.body)[:400]}"
            )
    if 400 <= status < 600:
        try:
            body = reply.json()
            shaped = set(body) == {"error", "message"} and all(isinstance(body[k], str) and body[k] for k in body)
        except (ValueError, TypeError):
            shaped = False
        if not shaped:
            TALLY.add(malformed_errors=1)
            problems.append(f"{label}: {status} without the error shape: {reply.text[:300]}")


def fuzz(
    operation: Any,
    mode: schemathesis.GenerationMode,
    base_url: str,
    responses: dict,
    session: requests.Session,
    problems: list[str],
) -> int:
    """Send ``operation``'s generated requests of one mode (valid or invalid) and check each answer; how many sent."""
    label = f"{mode.value} {operation.method} {operation.path}"
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        reply = case.call(base_url=base_url, session=session, timeout=60)
        sent += 1
        check(reply, responses, problems, label)

    try:
        run()
    except Unsatisfiable:
        assert mode is schemathesis.GenerationMode.NEGATIVE, label  # nothing to make invalid (no input)
    return sent


@pytest.mark.timeout(900)  # about 10,000 requests through the local stack take 5-6 minutes here
def test_fuzz_every_route_with_valid_and_invalid_requests(stack):
    found = operations(stack)
    assert len(found) >= 26
    problems: list[str] = []
    session = requests.Session()
    sent = 0
    for service, operation, responses in found:
        for mode in schemathesis.GenerationMode:
            sent += fuzz(operation, mode, stack["url"][service], responses, session, problems)
    TALLY.add(requests_fuzzed=sent)
    assert problems == [], "\n".join(problems[:20])
    assert sent >= MINIMUM_REQUESTS
