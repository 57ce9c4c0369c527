"""Item 4: the original user app's ``POST /instance`` (no query) gets 200 ``{"instance", "policy", ...}``.

The original CCFaaS answered once the instance was loaded; its user app exits
unless the status is 200 and then reads ``resp["policy"]``. We wait for READY,
bounded under API Gateway's 29 s integration timeout (infra/constructs/api.py
sets 29000 ms), and answer 202 with a status URL when the wait runs out or
when ``?wait=0`` asks for it. The control plane is the real one: moto's Step
Functions interpreter running the real workflow, real runtime processes.
"""

from __future__ import annotations

import time

import pytest

from ipoc.client import VeracruzClient
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.shared.config import settings
from tests.support import policies
from tests.support.aws import call
from tests.support.lifecycle import running_plane
from tests.support.settings import use_settings

API_GATEWAY_TIMEOUT = 29.0


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, 2) as plane:
        yield plane


def test_post_without_query_waits_for_ready_and_answers_the_original_shape(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    started = time.monotonic()
    reply = plane.create(
        "orig-1",
        [(ids.streamer, [{"file_name": "/input/", "rights": 534084}]), (ids.user, policies.USER_RIGHTS)],
        query="",
    )
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.json
    assert list(reply.json)[:2] == ["instance", "policy"]
    assert reply.json["instance"] == "orig-1" and reply.json["status"] == "READY"
    assert elapsed < API_GATEWAY_TIMEOUT
    # the policy is the exact text the runtime loaded: the original app writes it to policy_<id> and uses it
    with VeracruzClient(reply.json["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"x")
    shown = call(ccfaas, "GET", "/instance/orig-1", user="alice").json
    assert shown["instance"] == "orig-1" and shown["policy"] == reply.json["policy"]
    assert call(ccfaas, "DELETE", "/instance/orig-1", user="alice").status == 200


def test_wait_0_answers_202_at_once_and_get_keeps_the_original_keys(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    reply = plane.create("orig-2", [(ids.user, policies.USER_RIGHTS)], query="?wait=0")
    assert reply.status == 202
    assert reply.json["instance"] == "orig-2" and reply.json["policy"] is None
    assert reply.json["status_url"] == "/instance/orig-2"
    pending = call(ccfaas, "GET", "/instance/orig-2", user="alice").json
    assert {"instance", "policy"} <= set(pending)
    ready = plane.wait_status("orig-2", ("READY", "FAILED"))
    assert ready["status"] == "READY" and ready["instance"] == "orig-2" and ready["policy"].startswith("{")
    call(ccfaas, "DELETE", "/instance/orig-2", user="alice")


def test_the_default_wait_is_configurable_and_capped(plane, ids, echo_wasm, monkeypatch):
    assert settings().instance_wait == 25  # the default stays under API Gateway's 29 s
    plane.register_echo(echo_wasm)
    use_settings(monkeypatch, IPOC_INSTANCE_WAIT="0")
    reply = plane.create("orig-3", [(ids.user, policies.USER_RIGHTS)], query="")
    assert reply.status == 202 and reply.json["instance"] == "orig-3"
    plane.wait_status("orig-3", ("READY", "FAILED"))
    call(ccfaas, "DELETE", "/instance/orig-3", user="alice")


def test_an_instance_that_fails_while_waited_for_is_an_error(plane, ids, echo_wasm):
    """The original app checks for 200 only; a failed creation must not look like success."""
    plane.register_echo(echo_wasm, data={"/model/weights.bin": b"\x01\x02"})  # the loader may not write /model/
    reply = plane.create("orig-4", [(ids.user, policies.USER_RIGHTS)], query="")
    assert reply.status == 502
    assert reply.json["error"] == "InstanceFailed" and reply.json["status"] == "FAILED"
    assert "orig-4" in reply.json["message"]
    # AND the advice can be followed: the name stays taken by the failed record, so another name, said so
    assert "create it again under another instanceid" in reply.json["message"]
    again = plane.create("orig-4", [(ids.user, policies.USER_RIGHTS)], query="")
    assert again.status == 409 and "it is FAILED, and its record keeps the name" in again.json["message"]
