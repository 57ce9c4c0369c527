"""VaaS through the real handler over moto, with the local backend starting real runtime processes."""

from __future__ import annotations

import json

import pytest

from ipoc import errors
from ipoc.client import VeracruzClient
from lambdas.vaas.handler import lambda_handler as vaas
from local.runtimes import running_ports
from tests.support import policies
from tests.support.aws import call
from tests.support.settings import use_settings
from tests.support.vaas import SLOTS


def user_policy(ids) -> dict:
    vaas_policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])
    vaas_policy["instance_id"] = "CCFaaS"
    return vaas_policy


def test_create_connect_list_show_delete(aws, ids):
    # WHEN a VaaS policy is posted
    created = call(vaas, "POST", "/veracruz", user_policy(ids))
    assert created.status == 201, created.body
    reply = created.json
    assert list(reply) == ["instance_id", "instance_hash", "policy"]
    document = json.loads(reply["policy"])
    port = int(document["veracruz_server_url"].rsplit(":", 1)[1])
    assert port == aws.base
    # THEN its runtime accepts attested connections right away
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"hi")
    name = f"veracruz-nitro-server:{port}"
    listed = call(vaas, "GET", "/veracruz").json["veracruz"]
    assert listed == [
        {name: {**listed[0][name], "instance_id": "CCFaaS", "instance_hash": reply["instance_hash"], "status": "OK"}}
    ]
    assert call(vaas, "GET", "/veracruz?instance_id=other").json == {"veracruz": []}
    shown = call(vaas, "GET", f"/veracruz/{name}?instance_hash={reply['instance_hash']}")
    assert shown.status == 200 and shown.json["status"] == "OK"
    # the endpoint's own host:port names the same instance (the original only knew veracruz-nitro-server)
    assert call(vaas, "GET", f"/veracruz/{document['veracruz_server_url']}").status == 200
    assert call(vaas, "GET", f"/veracruz/{name}?instance_hash=00").status == 404
    # AND delete stops the process and frees the slot
    assert call(vaas, "DELETE", f"/veracruz/{name}").status == 400  # instance_hash is required
    deleted = call(vaas, "DELETE", f"/veracruz/{name}?instance_id=CCFaaS&instance_hash={reply['instance_hash']}")
    assert deleted.status == 200
    assert running_ports(aws.state_dir) == []
    assert call(vaas, "GET", "/veracruz").json == {"veracruz": []}
    with pytest.raises(errors.RuntimeUnreachable):
        VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key).connect()


def test_exhausted_pool_is_507_and_leaves_nothing_allocated(aws, ids):
    first = [call(vaas, "POST", "/veracruz", user_policy(ids)) for _ in range(SLOTS)]
    assert [r.status for r in first] == [201] * SLOTS
    refused = call(vaas, "POST", "/veracruz", user_policy(ids))
    assert refused.status == 507 and refused.json["error"] == "NoCapacity"
    assert len(call(vaas, "GET", "/veracruz").json["veracruz"]) == SLOTS
    assert len(running_ports(aws.state_dir)) == SLOTS


def test_invalid_policy_is_400_and_takes_no_slot(aws, ids):
    bad = user_policy(ids)
    bad["identities"][0]["certificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    reply = call(vaas, "POST", "/veracruz", bad)
    assert reply.status == 400 and "$.identities[0].certificate" in reply.json["message"]
    reply = call(vaas, "POST", "/veracruz", {"ciphersuite": 1})
    assert reply.status == 400
    assert call(vaas, "GET", "/veracruz").json == {"veracruz": []}


def test_a_runtime_that_cannot_start_frees_its_slot(aws, ids, monkeypatch):
    use_settings(monkeypatch, IPOC_PROXY_URL="127.0.0.1:1")  # nothing listens: attestation fails
    reply = call(vaas, "POST", "/veracruz", user_policy(ids))
    assert reply.status == 502 and "exited" in reply.json["message"]
    assert call(vaas, "GET", "/veracruz").json == {"veracruz": []}
    assert running_ports(aws.state_dir) == []


def test_bad_names_and_admin_only(aws, ids):
    assert call(vaas, "GET", "/veracruz/nonsense").status == 400
    assert call(vaas, "GET", f"/veracruz/elsewhere:{aws.base}").status == 404
    assert call(vaas, "GET", "/veracruz", user="mallory").status == 403
