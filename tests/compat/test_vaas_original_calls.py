"""Items 5 and 6 at VaaS: the original CCFaaS's calls, as it made them.

The original CCFaaS always sent ``instance_id: "CCFaaS"`` and deleted with
``DELETE /veracruz/<veracruz_server_url>?instance_id=CCFaaS&instance_hash=<59>``;
ours records the user's instance id. The hash identifies the instance, so the
original's call is accepted. A VaaS policy without ``file_hashes`` (the seed's
VaaS schema makes it optional) gets ``[]``: Veracruz requires the field.
"""

from __future__ import annotations

import json

from lambdas.vaas.handler import lambda_handler as vaas
from local.runtimes import running_ports
from tests.support import policies
from tests.support.aws import call


def test_original_style_delete_with_instance_id_ccfaas(aws, ids):  # noqa: F811
    policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])
    policy["instance_id"] = "user-instance-7"  # what our CCFaaS sends
    created = call(vaas, "POST", "/veracruz", policy)
    assert created.status == 201, created.body
    reply = created.json
    server_url = json.loads(reply["policy"])["veracruz_server_url"]
    # a wrong hash with the original's id is still refused
    refused = call(vaas, "DELETE", f"/veracruz/{server_url}?instance_id=CCFaaS&instance_hash={'0' * 59}")
    assert refused.status == 404
    # the original's call: its veracruz_server_url as the name, instance_id=CCFaaS, the 59-character hash
    shown = call(vaas, "GET", f"/veracruz/{server_url}?instance_id=CCFaaS&instance_hash={reply['instance_hash']}")
    assert shown.status == 200 and shown.json["instance_id"] == "user-instance-7"
    deleted = call(vaas, "DELETE", f"/veracruz/{server_url}?instance_id=CCFaaS&instance_hash={reply['instance_hash']}")
    assert deleted.status == 200, deleted.body
    assert running_ports(aws.state_dir) == []


def test_a_vaas_policy_without_file_hashes_gets_an_empty_list(aws, ids):  # noqa: F811
    policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])
    del policy["file_hashes"]
    created = call(vaas, "POST", "/veracruz", policy)
    assert created.status == 201, created.body
    assert json.loads(created.json["policy"])["file_hashes"] == []
    server_url = json.loads(created.json["policy"])["veracruz_server_url"]
    assert call(vaas, "DELETE", f"/veracruz/{server_url}?instance_hash={created.json['instance_hash']}").status == 200
