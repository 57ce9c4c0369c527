"""Item 13 (publisher's files): a user policy cannot grant itself read access to a function's programs and data.

Decision (README, Security): a function's programs and data files are its
publisher's; users execute them inside the enclave and never read them. The
attacker here is a user who writes READ on ``/program/`` (or an ancestor, or a
data file) into the user policy, then reads the detector or the model weights
back over the attested channel.
"""

from __future__ import annotations

import hashlib

import pytest

from ipoc import rights
from ipoc.errors import PolicyError
from ipoc.policy import compose_vaas_policy
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from tests.support import policies
from tests.support.aws import call
from tests.support.lifecycle import running_plane

WEIGHTS = b"model weights: the publisher's"
DATA = "/program_data/weights.bin"


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, slots=1) as plane:
        yield plane


def test_a_user_cannot_read_the_program_or_the_model(plane, ids, echo_wasm):
    plane.register_echo(
        echo_wasm,
        loader_rights=[
            {"file_name": "/program/", "rights": int(rights.WRITE)},
            {"file_name": "/program_data/", "rights": int(rights.WRITE)},
        ],
        data={DATA: WEIGHTS},
    )
    for grant in (
        {"file_name": "/program/", "rights": int(rights.READ | rights.OPEN_EXECUTE)},
        {"file_name": "/", "rights": int(rights.READ)},
        {"file_name": "/program_data/", "rights": int(rights.READ)},
        {"file_name": DATA, "rights": int(rights.Rights.FD_READ)},
    ):
        reply = plane.create("thief", [(ids.user, [*policies.USER_RIGHTS[:-1], grant])], user="mallory")
        assert reply.status == 400, (grant, reply.body)  # before the fix: 202, then the bytes were readable
        assert reply.json["error"] == "InvalidPolicy" and "publisher" in reply.json["message"]
        assert call(ccfaas, "GET", "/instance/thief", user="mallory").status == 404  # nothing was recorded
    # the seed's rights (open and execute /program/, nothing on /program_data/) still make a working instance
    assert plane.create("user-1", [(ids.user, policies.USER_RIGHTS)], user="alice").status == 202
    record = plane.wait_status("user-1", ("READY", "FAILED"), user="alice")
    assert record["status"] == "READY", record.get("reason")
    call(ccfaas, "DELETE", "/instance/user-1", user="alice")


def test_the_composition_itself_refuses(ids, echo_wasm):
    """The one composition (also used outside CCFaaS) applies the same rule, by Veracruz's deepest-grant semantics."""
    function = policies.echo_function("echo", echo_wasm)
    function["data_files"] = [{"data_file": DATA, "pi_hash": hashlib.sha256(WEIGHTS).hexdigest()}]

    def user(*grants: dict) -> dict:
        return {
            "function": "echo",
            "instanceid": "i",
            "identities": [{"certificate": ids.user.certificate, "file_rights": list(grants)}],
        }

    with pytest.raises(PolicyError):
        compose_vaas_policy(
            function, user({"file_name": "/program", "rights": int(rights.READ)}), ids.loader.certificate
        )
    # a deeper grant without FD_READ decides for the files below it, as in Veracruz
    compose_vaas_policy(
        function,
        user(
            {"file_name": "/", "rights": int(rights.READ)},
            {"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)},
            {"file_name": "/program_data/", "rights": 0},
        ),
        ids.loader.certificate,
    )
