"""Item 12: instance ids are scoped per owner, so creating one tells nobody whether another user has it.

CCFaaS through its real handler over moto (the workflow is registered but not
executed: instances stay PENDING, which is all the id rules need). Bob probes
the names alice uses; before the fix, 409 told him which exist.
"""

from __future__ import annotations

import pytest
from moto import mock_aws

from lambdas.ccfaas.handler import lambda_handler as ccfaas
from tests.support import policies
from tests.support.aws import call
from tests.support.lifecycle import control_plane
from tests.support.waiting import free_port_range


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path, echo_wasm):
    with mock_aws():  # Step Functions records executions without running them
        plane = control_plane(monkeypatch, proxy, tmp_path, free_port_range(1), 1)
        plane.register_echo(echo_wasm)
        yield plane


def test_a_name_another_user_holds_answers_as_a_free_one(plane, ids):
    users = [(ids.user, policies.USER_RIGHTS)]
    assert plane.create("camera-1", users, user="alice").status == 202
    taken = plane.create("camera-1", users, user="bob")  # alice has it
    free = plane.create("camera-2", users, user="bob")  # nobody has it
    assert taken.status == free.status == 202, taken.body  # before the fix: 409 for alice's name
    assert {k for k in taken.json} == {k for k in free.json}
    # two instances, each its owner's own
    alice = call(ccfaas, "GET", "/instance/camera-1", user="alice").json
    bob = call(ccfaas, "GET", "/instance/camera-1", user="bob").json
    assert alice["instance_id"] == bob["instance_id"] == "camera-1"
    assert alice["key"] != bob["key"] and alice["owner"] != bob["owner"]
    assert call(ccfaas, "GET", "/instance", user="bob").json["instances"] == ["camera-1", "camera-2"]
    # alice's key does not open her instance to bob, nor does a key to a name
    assert call(ccfaas, "GET", f"/instance/{alice['key']}", user="bob").status == 404
    assert call(ccfaas, "DELETE", f"/instance/{alice['key']}", user="bob").status == 404
    # a name in one's own namespace is still unique
    again = plane.create("camera-1", users, user="alice")
    assert again.status == 409 and "you already have" in again.json["message"]


def test_administrators_name_anyone_s_instance_by_key_or_unique_name(plane, ids):
    users = [(ids.user, policies.USER_RIGHTS)]
    for user in ("alice", "bob"):
        assert plane.create("same", users, user=user).status == 202
    assert plane.create("only-alice", users, user="alice").status == 202
    ambiguous = call(ccfaas, "GET", "/instance/same")  # the local administrator
    assert ambiguous.status == 409 and "name one by its key" in ambiguous.json["message"]
    key = call(ccfaas, "GET", "/instance/same", user="bob").json["key"]
    assert call(ccfaas, "GET", f"/instance/{key}").json["owner"].endswith("user/bob")
    assert call(ccfaas, "GET", "/instance/only-alice").json["owner"].endswith("user/alice")
