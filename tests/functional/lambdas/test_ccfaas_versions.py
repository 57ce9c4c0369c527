"""Function versions and aliases through the real CCFaaS handler, over moto's DynamoDB and S3 (in process),
and with the real lifecycle workflow and runtime processes for what a running instance keeps."""

from __future__ import annotations

import copy
import hashlib
import json
import threading

import boto3
import pytest
from moto import mock_aws

from ipoc.client import VeracruzClient
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.shared.config import settings
from tests.support import policies, seed
from tests.support.aws import b64, call, configure
from tests.support.lifecycle import ECHO_FUNCTION, running_plane
from tests.support.wasm import custom_section

PROGRAM_V1 = b"\0asm detector v1"
PROGRAM_V2 = b"\0asm detector v2 (one constant changed)"
NAMES = b"person\nbicycle\ncar\n"
CFG = b"[net]\nwidth=416\n"
WEIGHTS = bytes(range(256)) * 64
DATA = {"/program_data/coco.names": NAMES, "/program_data/yolov3.cfg": CFG, "/program_data/yolov3.weights": WEIGHTS}


def vod(program: bytes, name: str = "vod") -> dict:
    """The seed's vod registration, with hashes of small stand-in files; only the program changes between versions."""
    policy = copy.deepcopy(seed.load("function_vod.json"))
    policy["function"] = name
    policy["programs"][0]["pi_hash"] = hashlib.sha256(program).hexdigest()
    for entry in policy["data_files"]:
        entry["pi_hash"] = hashlib.sha256(DATA[entry["data_file"]]).hexdigest()
    return policy


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        yield configure(monkeypatch)


def objects(bucket: str) -> set[str]:
    return {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}


def key(content: bytes, name: str = "vod") -> str:
    return f"functions/{name}/{hashlib.sha256(content).hexdigest()}"


def upload_all(reference: str, program: bytes) -> None:
    assert (
        call(ccfaas, "POST", f"/function/{reference}/program/{b64('/program/detector.wasm')}", raw=program).status
        == 201
    )
    for path, content in DATA.items():
        assert call(ccfaas, "POST", f"/function/{reference}/data_file/{b64(path)}", raw=content).status == 201


def test_publishing_makes_immutable_versions_sharing_their_bytes(aws):
    # GIVEN v1 registered through the seed's route and fully uploaded
    assert call(ccfaas, "POST", "/function", vod(PROGRAM_V1)).status == 201
    upload_all("vod", PROGRAM_V1)
    # WHEN the same policy is posted again THEN nothing new is made (200, still one version)
    assert call(ccfaas, "POST", "/function", vod(PROGRAM_V1)).status == 200
    assert [v["version"] for v in call(ccfaas, "GET", "/function/vod/versions").json["versions"]] == [1]
    # WHEN a policy with a changed program is published THEN it is version 2, its data files already loaded
    published = call(ccfaas, "POST", "/function/vod/versions", vod(PROGRAM_V2))
    assert published.status == 201 and published.json["version"] == 2 and published.json["created"] is True
    status = {f["path"]: f["status"] for f in published.json["files"]}
    assert status == {"/program/detector.wasm": "not loaded", **{p: "loaded" for p in DATA}}
    # AND the seed's routes now address the latest: the upload goes to v2, GET shows v2's policy
    assert call(ccfaas, "POST", f"/function/vod/program/{b64('/program/detector.wasm')}", raw=PROGRAM_V1).status == 422
    assert call(ccfaas, "POST", f"/function/vod/program/{b64('/program/detector.wasm')}", raw=PROGRAM_V2).status == 201
    assert call(ccfaas, "GET", "/function/vod").json == vod(PROGRAM_V2)
    assert call(ccfaas, "GET", "/function/vod:1").json == vod(PROGRAM_V1)
    assert call(ccfaas, "GET", "/function/vod/status").json["version"] == 2
    # AND each distinct file is stored once, content-addressed
    assert objects(aws.bucket) == {key(PROGRAM_V1), key(PROGRAM_V2), *(key(c) for c in DATA.values())}
    listing = call(ccfaas, "GET", "/function/vod/versions").json
    assert listing["latest"] == 2 and listing["aliases"] == {"latest": 2}
    assert [(v["version"], v["loaded"], v["aliases"]) for v in listing["versions"]] == [
        (1, True, []),
        (2, True, ["latest"]),
    ]
    assert listing["versions"][0]["policy_sha256"] != listing["versions"][1]["policy_sha256"]
    # AND the publishing route refuses a policy of another function
    other = call(ccfaas, "POST", "/function/vod/versions", vod(PROGRAM_V2, name="other"))
    assert other.status == 400 and other.json["error"] == "ValidationError"


def test_a_name_the_rule_refuses_is_told_the_rule_not_a_mismatch_with_the_route(aws):
    """New-user QA: "vod y" in the policy, POSTed (as the CLI quotes it) to /function/vod%20y/versions, was told
    "$.function must be 'vod%20y'", which no policy can satisfy."""
    refused = call(ccfaas, "POST", "/function/vod%20y/versions", vod(PROGRAM_V1, name="vod y"))
    assert refused.status == 400 and refused.json["error"] == "ValidationError"
    assert refused.json["message"].startswith("$.function must be 1-128 characters of letters, digits")
    assert "'vod y'" in refused.json["message"]


def test_aliases_name_versions_and_moving_one_is_the_rollback(aws):
    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    call(ccfaas, "POST", "/function", vod(PROGRAM_V2))
    # WHEN prod is pointed at v1 THEN vod:prod and the versions route resolve to v1; latest follows v2
    assert call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 1}).json["aliases"] == {"latest": 2, "prod": 1}
    assert call(ccfaas, "GET", "/function/vod:prod").json == vod(PROGRAM_V1)
    assert call(ccfaas, "GET", "/function/vod/versions/prod").json["version"] == 1
    assert call(ccfaas, "GET", "/function/vod:latest").json == vod(PROGRAM_V2)
    # AND moving it is one call
    assert call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 2}).json["aliases"]["prod"] == 2
    assert call(ccfaas, "GET", "/function/vod:prod").json == vod(PROGRAM_V2)
    # AND what cannot be: latest is not movable nor deletable, unknown versions and aliases are 404, bad names 400
    assert call(ccfaas, "PUT", "/function/vod/aliases/latest", {"version": 1}).status == 400
    assert call(ccfaas, "DELETE", "/function/vod/aliases/latest").status == 400
    missing = call(ccfaas, "PUT", "/function/vod/aliases/beta", {"version": 9})
    assert missing.status == 404 and "no version 9" in missing.json["message"]
    assert call(ccfaas, "PUT", "/function/nope/aliases/beta", {"version": 1}).status == 404
    assert call(ccfaas, "PUT", "/function/vod/aliases/beta", {"version": "1"}).status == 400
    assert call(ccfaas, "PUT", "/function/vod/aliases/9lives", {"version": 1}).status == 400
    unknown = call(ccfaas, "GET", "/function/vod:beta")
    assert unknown.status == 404 and "no alias 'beta'" in unknown.json["message"]
    assert call(ccfaas, "GET", "/function/vod:0").status == 400
    assert call(ccfaas, "DELETE", "/function/vod/aliases/prod").json["aliases"] == {"latest": 2}


def test_a_version_in_use_is_kept_and_its_unshared_bytes_go_with_it(aws):
    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    upload_all("vod", PROGRAM_V1)
    call(ccfaas, "POST", "/function", vod(PROGRAM_V2))
    upload_all_program = call(ccfaas, "POST", f"/function/vod/program/{b64('/program/detector.wasm')}", raw=PROGRAM_V2)
    assert upload_all_program.status == 201
    call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 1})
    # an instance of v1 (its record as CCFaaS writes it; the lifecycle test below runs a real one)
    boto3.resource("dynamodb").Table(aws.instances).put_item(
        Item={"instance_id": "alice-1", "function": "vod", "version": 1, "owner": "alice", "status": "READY"}
    )
    # WHEN v1 is deleted THEN 409 naming the instance and the alias, and nothing changed
    refused = call(ccfaas, "DELETE", "/function/vod/versions/1")
    assert refused.status == 409 and "alice-1" in refused.json["message"] and "prod" in refused.json["message"]
    assert call(ccfaas, "GET", "/function/vod:1").status == 200
    assert (
        call(ccfaas, "PUT", "/function/vod/aliases/beta", {"version": 1}).status == 200
    )  # not left marked for deletion
    call(ccfaas, "DELETE", "/function/vod/aliases/beta")
    # AND deleting the whole function is refused by the same rule
    assert call(ccfaas, "DELETE", "/function/vod").status == 409
    # WHEN the alias moves and the instance ends THEN v1 goes, with only the bytes no other version uses
    call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 2})
    boto3.resource("dynamodb").Table(aws.instances).update_item(
        Key={"instance_id": "alice-1"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "DELETED"},
    )
    assert call(ccfaas, "DELETE", "/function/vod/versions/1").status == 200
    assert objects(aws.bucket) == {key(PROGRAM_V2), *(key(c) for c in DATA.values())}
    assert call(ccfaas, "GET", "/function/vod:1").status == 404
    # AND version numbers are never given again: the next publish is v3, latest follows it
    reply = call(ccfaas, "POST", "/function/vod/versions", vod(PROGRAM_V1))
    assert reply.json["version"] == 3
    # AND the function's deletion takes every version and byte once nothing uses it
    call(ccfaas, "DELETE", "/function/vod/aliases/prod")
    assert call(ccfaas, "DELETE", "/function/vod").status == 200
    assert objects(aws.bucket) == set()
    assert call(ccfaas, "GET", "/function").json == {"functions": []}
    assert boto3.client("dynamodb").scan(TableName=aws.functions)["Items"] == []


def test_two_publishers_at_once_get_n_plus_1_and_n_plus_2(aws):
    """Real threads through the handler; moto made atomic the way DynamoDB is (local/moto_patches.py)."""
    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))

    def publish(content: bytes, start: threading.Barrier, replies: list) -> None:
        start.wait(10)
        replies.append(call(ccfaas, "POST", "/function/vod/versions", vod(content)))

    for round_ in range(3):
        contents = [f"\0asm publisher {who} round {round_}".encode() for who in "AB"]
        start = threading.Barrier(2)
        replies: list = []
        threads = [threading.Thread(target=publish, args=(c, start, replies)) for c in contents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(r.json["version"] for r in replies) == [2 + 2 * round_, 3 + 2 * round_]
        assert {r.status for r in replies} == {201}
    versions = [v["version"] for v in call(ccfaas, "GET", "/function/vod/versions").json["versions"]]
    assert versions == list(range(1, 8))


def test_instances_run_the_exact_version_they_were_composed_from(monkeypatch, proxy, tmp_path, ids, echo_wasm):
    """The real workflow and runtime: moving aliases and publishing never change a running instance."""
    echo_v2 = echo_wasm + custom_section(b"ipoc-version", b"2")  # the same program, other bytes: another hash
    with running_plane(monkeypatch, proxy, tmp_path, 3) as plane:
        plane.register_echo(echo_wasm)
        rights = [(ids.user, policies.USER_RIGHTS)]
        ready_v1 = _ready(plane, "run-v1", rights)
        # WHEN v2 is published and prod points at v1
        v2 = call(ccfaas, "POST", f"/function/{ECHO_FUNCTION}/versions", policies.echo_function(ECHO_FUNCTION, echo_v2))
        assert v2.json["version"] == 2
        assert (
            call(ccfaas, "POST", f"/function/{ECHO_FUNCTION}/program/{b64(policies.ECHO)}", raw=echo_v2).status == 201
        )
        call(ccfaas, "PUT", f"/function/{ECHO_FUNCTION}/aliases/prod", {"version": 1})
        # THEN the running instance still pins v1's program hash and runs it
        assert _program_hash(ready_v1) == hashlib.sha256(echo_wasm).hexdigest()
        assert ready_v1["version"] == 1
        with VeracruzClient(ready_v1["policy"], ids.user.certificate, ids.user.private_key) as client:
            client.write_file("/input/data.txt", b"v1")
            assert client.execute(policies.ECHO) == 0
        # AND echo:latest runs v2, echo:prod runs v1
        latest = _ready(plane, "run-latest", rights, reference=f"{ECHO_FUNCTION}:latest")
        assert (latest["version"], _program_hash(latest)) == (2, hashlib.sha256(echo_v2).hexdigest())
        with VeracruzClient(latest["policy"], ids.user.certificate, ids.user.private_key) as client:
            client.write_file("/input/data.txt", b"v2")
            assert client.execute(policies.ECHO) == 0
            assert client.read_file("/output/result.txt").endswith(b"V2")
        prod = _ready(plane, "run-prod", rights, reference=f"{ECHO_FUNCTION}:prod")
        assert (prod["version"], _program_hash(prod)) == (1, hashlib.sha256(echo_wasm).hexdigest())
        # WHEN v1 is deleted THEN 409 naming both instances and the alias
        refused = call(ccfaas, "DELETE", f"/function/{ECHO_FUNCTION}/versions/1")
        assert refused.status == 409
        assert all(word in refused.json["message"] for word in ("run-v1", "run-prod", "prod"))
        # WHEN prod moves to v2 and v1's instances end THEN v1 and its unshared program bytes go
        call(ccfaas, "PUT", f"/function/{ECHO_FUNCTION}/aliases/prod", {"version": 2})
        for instance in ("run-v1", "run-prod", "run-latest"):
            assert call(ccfaas, "DELETE", f"/instance/{instance}", user="alice").json["status"] == "DELETED"
        assert call(ccfaas, "DELETE", f"/function/{ECHO_FUNCTION}/versions/1").status == 200
        bucket = boto3.client("s3").list_objects_v2(Bucket=plane_bucket())["Contents"]
        assert [o["Key"] for o in bucket] == [key(echo_v2, ECHO_FUNCTION)]


def _ready(plane, instance_id: str, identities, reference: str = ECHO_FUNCTION) -> dict:
    body = {
        "function": reference,
        "instanceid": instance_id,
        "identities": [{"certificate": i.certificate, "file_rights": r} for i, r in identities],
    }
    assert call(ccfaas, "POST", "/instance?wait=0", body, user="alice").status == 202
    record = plane.wait_status(instance_id, ("READY", "FAILED"))
    assert record["status"] == "READY", record.get("reason")
    return record


def _program_hash(record: dict) -> str:
    """The hash the instance's policy pins for the program (what the runtime checks the loaded bytes against)."""
    hashes = {h["file_path"]: h["hash"] for h in json.loads(record["policy"])["file_hashes"]}
    return hashes[policies.ECHO]


def plane_bucket() -> str:

    return settings().artifacts_bucket


def test_the_version_routes_are_documented_for_administrators_only(monkeypatch):
    """API Gateway's routes and their admin-only resource policy are built from this document
    (infra/constructs/api.py)."""
    from lambdas.openapi import api_document

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    paths = api_document("ccfaas")["paths"]
    routes = {(m.upper(), p): op for p, item in paths.items() for m, op in item.items()}
    wanted = {
        ("POST", "/function/{name}/versions"),
        ("GET", "/function/{name}/versions"),
        ("GET", "/function/{name}/versions/{version}"),
        ("DELETE", "/function/{name}/versions/{version}"),
        ("GET", "/function/{name}/aliases"),
        ("PUT", "/function/{name}/aliases/{alias}"),
        ("DELETE", "/function/{name}/aliases/{alias}"),
    }
    assert wanted <= set(routes)
    assert all(routes[r]["x-ipoc-admin"] is True for r in wanted)
    assert "409" in routes[("DELETE", "/function/{name}/versions/{version}")]["responses"]


def test_non_admins_cannot_publish_or_move_aliases(aws):
    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    assert call(ccfaas, "POST", "/function/vod/versions", vod(PROGRAM_V2), user="mallory").status == 403
    assert call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 1}, user="mallory").status == 403
    assert call(ccfaas, "DELETE", "/function/vod/versions/1", user="mallory").status == 403
    assert [v["version"] for v in call(ccfaas, "GET", "/function/vod/versions").json["versions"]] == [1]


def test_an_alias_moved_while_its_version_is_being_deleted_is_taken_back(aws, monkeypatch):
    """The race window made certain: a deletion marks the version right after the alias is written (the mark is
    what DELETE .../versions/N writes first); the move must then be refused and the alias restored."""
    from lambdas.shared.stores import FunctionStore

    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    call(ccfaas, "POST", "/function", vod(PROGRAM_V2))
    call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 2})
    put_alias = FunctionStore.put_alias

    def racing(self, name, alias, version):
        previous = put_alias(self, name, alias, version)
        assert self.set_deleting(name, version, True)
        return previous

    monkeypatch.setattr(FunctionStore, "put_alias", racing)
    moved = call(ccfaas, "PUT", "/function/vod/aliases/prod", {"version": 1})
    assert FunctionStore().set_deleting("vod", 1, False)  # that deletion gave up; the next one races a new alias
    created = call(ccfaas, "PUT", "/function/vod/aliases/beta", {"version": 1})
    monkeypatch.setattr(FunctionStore, "put_alias", put_alias)
    assert moved.status == 409 and created.status == 409 and "being deleted" in moved.json["message"]
    assert call(ccfaas, "GET", "/function/vod/aliases").json["aliases"] == {"latest": 2, "prod": 2}


def test_an_instance_created_while_its_version_is_being_deleted_is_refused(aws, monkeypatch):
    """As above for instances: the version is marked for deletion right after the instance record is written."""
    from lambdas.shared.stores import FunctionStore, InstanceStore

    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    upload_all("vod", PROGRAM_V1)
    create = InstanceStore.create

    def racing(self, item):
        create(self, item)
        assert FunctionStore().set_deleting(item["function"], item["version"], True)

    monkeypatch.setattr(InstanceStore, "create", racing)
    body = {"function": "vod:1", "instanceid": "late", "identities": []}
    refused = call(ccfaas, "POST", "/instance", body, user="alice")
    monkeypatch.setattr(InstanceStore, "create", create)
    assert refused.status == 409 and "deleted meanwhile" in refused.json["message"]
    assert boto3.client("dynamodb").scan(TableName=aws.instances)["Items"] == []


def test_shared_bytes_removed_by_a_racing_deletion_are_uploaded_again(aws, monkeypatch):
    """A publish reuses v1's weights while v1's deletion removes them (made certain by removing the object right
    as the new version is written): the new version must not claim bytes that are gone."""
    from lambdas.shared.stores import FunctionStore

    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    upload_all("vod", PROGRAM_V1)
    create_version = FunctionStore.create_version

    def racing(self, record):
        boto3.client("s3").delete_object(Bucket=aws.bucket, Key=key(WEIGHTS))
        return create_version(self, record)

    monkeypatch.setattr(FunctionStore, "create_version", racing)
    published = call(ccfaas, "POST", "/function/vod/versions", vod(PROGRAM_V2))
    monkeypatch.setattr(FunctionStore, "create_version", create_version)
    status = {f["path"]: f["status"] for f in published.json["files"]}
    assert status["/program_data/yolov3.weights"] == "not loaded" and status["/program_data/coco.names"] == "loaded"
    assert published.json["loaded"] is False


def test_only_ascii_version_numbers_name_a_version(aws):
    """Python's str.isdigit() takes '²' (int() then raises: a 500) and '١' (int() reads 1: another spelling of a
    version); a reference names a version with ASCII digits only, anything else is a clear 4xx."""
    call(ccfaas, "POST", "/function", vod(PROGRAM_V1))
    for reference in ("vod:²", "vod:١", "vod:𝟙"):
        reply = call(ccfaas, "GET", f"/function/{reference}")
        assert 400 <= reply.status < 500 and reply.json["error"], (reference, reply.status, reply.body)
    assert call(ccfaas, "DELETE", "/function/vod/versions/²").status == 400
    user_policy = {"function": "vod", "instanceid": "digits", "identities": []}
    assert call(ccfaas, "POST", "/instance?wait=²", user_policy, user="alice").status == 400
