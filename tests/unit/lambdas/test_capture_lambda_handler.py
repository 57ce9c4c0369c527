"""``lambdas.shared.api.capture_lambda_handler``: Powertools' tracing where it is on, none of its cost where off.

The oracle is the real X-Ray SDK: with tracing on, the handler's subsegment (``## <handler>``, annotated with
ColdStart) is in the segment as Powertools records it; with tracing off, the handler runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk import global_sdk_config  # type: ignore[import-untyped]  # no stubs
from aws_xray_sdk.core import xray_recorder  # type: ignore[import-untyped]  # no stubs

from lambdas.shared.api import capture_lambda_handler


@pytest.fixture
def tracer_config() -> Iterator[None]:
    """Tracer's configuration is class-wide and the SDK's switch global: both as they were, afterwards."""
    enabled = global_sdk_config.sdk_enabled()
    Tracer._reset_config()
    xray_recorder.configure(sampling=False)  # no sampling rules from a daemon: every segment is sampled
    yield
    xray_recorder.configure(sampling=True)
    Tracer._reset_config()
    global_sdk_config.set_sdk_enabled(enabled)


def make_handler(tracer: Tracer, seen: list[Any]) -> Any:
    @capture_lambda_handler(tracer)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(xray_recorder.get_trace_entity())
        return {"statusCode": 200, "body": event["body"]}

    return lambda_handler


def test_an_enabled_tracer_records_the_handler_subsegment(tracer_config):
    tracer = Tracer(service="ipoc-test", disabled=False, auto_patch=False)
    global_sdk_config.set_sdk_enabled(True)
    seen: list[Any] = []
    handler = make_handler(tracer, seen)
    assert handler.__name__ == "lambda_handler"
    segment = xray_recorder.begin_segment("test", sampling=1)
    try:
        assert handler({"body": "x"}, None) == {"statusCode": 200, "body": "x"}
    finally:
        xray_recorder.end_segment()
    (subsegment,) = seen  # the entity the handler ran in (the segment sends its subsegments once it ends)
    assert type(subsegment).__name__ == "Subsegment" and subsegment.parent_id == segment.id
    assert subsegment.name == "## lambda_handler"
    assert "ColdStart" in subsegment.annotations and subsegment.annotations["Service"] == "ipoc-test"
    assert subsegment.metadata["ipoc-test"]["lambda_handler response"] == {"statusCode": 200, "body": "x"}


def test_a_disabled_tracer_runs_the_handler_without_subsegments(tracer_config, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    tracer = Tracer()
    assert tracer.disabled
    opened: list[str] = []
    begin = tracer.provider.begin_subsegment
    monkeypatch.setattr(
        tracer.provider, "begin_subsegment", lambda name, *a, **k: opened.append(name) or begin(name, *a, **k)
    )
    assert make_handler(tracer, [])({"body": "y"}, None) == {"statusCode": 200, "body": "y"}
    assert opened == []  # Powertools' wrapper opens a (dummy) "## lambda_handler" subsegment even when disabled
