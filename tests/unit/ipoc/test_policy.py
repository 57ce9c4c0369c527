"""Policy composition, completion, serialisation and hashing (no network)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoc.certs import new_identity, normalise_certificate
from ipoc.errors import PolicyError, ValidationError
from ipoc.policy import (
    Infrastructure,
    cert_expiry,
    complete_policy,
    compose_vaas_policy,
    instance_hash,
    parse_full_policy,
    policy_hash,
    provisioning_order,
    serialise,
)
from tests.support import seed

P_CERT = "-----BEGIN CERTIFICATE-----\nPPPPPPPPP\n-----END CERTIFICATE-----"
VAAS_ORDER = [
    "ciphersuite",
    "debug",
    "enable_clock",
    "execution_strategy",
    "max_memory_mib",
    "programs",
    "identities",
    "instance_id",
    "file_hashes",
]
FULL_ORDER = [
    "ciphersuite",
    "debug",
    "enable_clock",
    "execution_strategy",
    "max_memory_mib",
    "programs",
    "identities",
    "file_hashes",
    "enclave_cert_expiry",
    "proxy_attestation_server_url",
    "proxy_service_cert",
    "runtime_manager_hash_nitro",
    "runtime_manager_hash_sgx",
    "runtime_manager_hash_tz",
    "veracruz_server_url",
]
NOW = dt.datetime(2026, 11, 26, 15, 37, 9, tzinfo=dt.UTC)


def test_seed_vod_composes_into_the_seed_vaas_policy():
    # GIVEN the seed's vod function policy and user policy, and the program-load certificate
    function, user = seed.load("function_vod.json"), seed.load("user_vod.json")
    # WHEN CCFaaS composes them
    vaas = compose_vaas_policy(function, user, P_CERT, instance_id="instance1")
    # THEN the result is the seed's VaaS example, keys in the original's order
    expected = seed.load("vaas_vod.json")
    del expected["enclave_cert_expiry"]  # added by VaaS, not CCFaaS
    assert vaas == expected
    assert list(vaas) == VAAS_ORDER
    assert [list(i) for i in vaas["identities"]] == [["certificate", "file_rights", "id"]] * 3
    assert [list(p) for p in vaas["programs"]] == [["file_rights", "id", "program_file_name"]]


def test_composition_defaults_to_ccfaas_instance_id_and_skips_loader_without_uploads():
    function, user = seed.load("function_vod.json"), seed.load("user_vod.json")
    vaas = compose_vaas_policy(function, user, P_CERT, uploaded_programs=[], uploaded_data_files=[])
    assert vaas["instance_id"] == "CCFaaS"
    assert [i["id"] for i in vaas["identities"]] == [0, 1]
    # file_hashes name every registered file, uploaded or not
    assert [h["file_path"] for h in vaas["file_hashes"]] == [
        "/program/detector.wasm",
        "/program_data/coco.names",
        "/program_data/yolov3.cfg",
        "/program_data/yolov3.weights",
    ]


def test_composition_refuses_a_user_policy_for_another_function():
    user = seed.load("user_vod.json") | {"function": "other"}
    with pytest.raises(PolicyError, match="names function 'other'"):
        compose_vaas_policy(seed.load("function_vod.json"), user, P_CERT)


def test_composition_validates_both_inputs_and_names_the_path():
    user = seed.load("user_vod.json")
    user["identities"][1]["file_rights"][0]["rights"] = "all"
    with pytest.raises(ValidationError, match=r"\$\.identities\[1\]\.file_rights\[0\]\.rights"):
        compose_vaas_policy(seed.load("function_vod.json"), user, P_CERT)


def real_cert_user_policy():
    user = seed.load("user_vod.json")
    for identity in user["identities"]:
        identity["certificate"] = new_identity("someone").certificate  # standard multi-line PEM
    return user


def infra(**overrides):
    values = dict(
        proxy_attestation_server_url="veracruz-nitro-proxy:3010",
        proxy_service_cert=new_identity("ca").certificate,
        runtime_hash="f2ae0de7bec92bcdbd4a96e2ae08d85a575f1aa64acb797bc4afa6b1d3cc8798",
        veracruz_server_url="ec2-1-2-3-4.compute.amazonaws.com:3014",
        now=NOW,
    )
    values.update(overrides)
    return Infrastructure(**values)


def test_vaas_completion_produces_the_full_policy_in_the_original_order():
    vaas = compose_vaas_policy(
        seed.load("function_vod.json"), real_cert_user_policy(), new_identity("loader").certificate
    )
    reply = complete_policy(vaas, infra())
    text = reply["policy"]
    document = json.loads(text)
    assert list(document) == FULL_ORDER
    assert list(reply) == ["instance_id", "instance_hash", "policy"]
    assert reply["instance_id"] == "CCFaaS"
    # the one serialisation: json.dumps(indent=4), no trailing newline
    assert text == json.dumps(document, indent=4) and not text.endswith("\n")
    assert reply["instance_hash"] == hashlib.sha256(text.encode()).hexdigest()[:59]
    # identity certificates are normalised: one base64 line, ending exactly with the END line
    for identity in document["identities"]:
        assert identity["certificate"].count("\n") == 2
        assert identity["certificate"].endswith("-----END CERTIFICATE-----")


def test_cert_expiry_minute_is_the_minute():
    # The original wrote the seconds (9) into the minute field.
    assert cert_expiry(NOW, days=180) == {"day": 25, "hour": 15, "minute": 37, "month": 5, "year": 2027}
    assert list(cert_expiry(NOW)) == ["day", "hour", "minute", "month", "year"]


def test_completion_keeps_a_given_expiry_and_the_linux_hash_slot():
    vaas = compose_vaas_policy(seed.load("function_vod.json"), real_cert_user_policy(), new_identity("l").certificate)
    expiry = {"day": 1, "hour": 2, "minute": 3, "month": 4, "year": 2030}
    vaas["enclave_cert_expiry"] = expiry
    document = json.loads(complete_policy(vaas, infra(platform="linux"))["policy"])
    assert document["enclave_cert_expiry"] == expiry
    assert "runtime_manager_hash_linux" in document and "runtime_manager_hash_nitro" not in document


def test_hashes_are_of_the_exact_bytes():
    text = serialise({"a": 1})
    assert policy_hash(text) == hashlib.sha256(b'{\n    "a": 1\n}').hexdigest()
    assert policy_hash(text + "\n") != policy_hash(text)
    assert instance_hash(text) == policy_hash(text)[:59]


def test_provisioning_order_is_programs_then_stable_priority():
    function = seed.load("function_vod.json")
    function["data_files"][0]["priority"] = 100  # coco.names last; the others default to 99 and keep their order
    assert provisioning_order(function) == [
        "/program/detector.wasm",
        "/program_data/yolov3.cfg",
        "/program_data/yolov3.weights",
        "/program_data/coco.names",
    ]


def test_full_policy_checks_like_a_runtime():
    vaas = compose_vaas_policy(seed.load("function_vod.json"), real_cert_user_policy(), new_identity("l").certificate)
    document = json.loads(complete_policy(vaas, infra())["policy"])

    def broken(mutate):
        copy = json.loads(json.dumps(document))
        mutate(copy)
        return json.dumps(copy, indent=4)

    def dup_ids(d):
        d["identities"][1]["id"] = 0

    def trailing_newline(d):
        d["identities"][0]["certificate"] += "\n"

    def no_measurement(d):
        d["runtime_manager_hash_nitro"] = ""

    def bad_suite(d):
        d["ciphersuite"] = "TLS_AES_128_GCM_SHA256"  # the IANA name: not mbedTLS's

    with pytest.raises(PolicyError, match="used twice"):
        parse_full_policy(broken(dup_ids))
    with pytest.raises(PolicyError, match="must end exactly"):
        parse_full_policy(broken(trailing_newline))
    # Veracruz's parser accepts a policy without runtime hashes; a runtime on a platform refuses it
    with pytest.raises(PolicyError, match="no runtime_manager_hash_nitro"):
        parse_full_policy(broken(no_measurement)).runtime_hash("nitro")
    with pytest.raises(PolicyError, match="not a TLS 1.3 ciphersuite"):
        parse_full_policy(broken(bad_suite))
    with pytest.raises(PolicyError, match="not JSON"):
        parse_full_policy("{")


certificates = st.sampled_from([normalise_certificate(new_identity(f"c{i}").certificate) for i in range(3)])
file_rights = st.lists(
    st.fixed_dictionaries(
        {"file_name": st.sampled_from(["/a/", "/b/", "stdout"]), "rights": st.integers(0, 2**30 - 1)}
    ),
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(
    identities=st.lists(st.fixed_dictionaries({"certificate": certificates, "file_rights": file_rights}), max_size=4),
    uploaded=st.booleans(),
)
def test_composition_properties(identities, uploaded):
    function = seed.load("function_vod.json")
    user = {"function": "vod", "instanceid": "i", "identities": identities}
    loader = new_identity_cached()
    vaas = compose_vaas_policy(
        function, user, loader, uploaded_programs=["/program/detector.wasm"] if uploaded else [], uploaded_data_files=[]
    )
    # ids are 0..n-1 in order; the user's come first, the loader last iff something was uploaded
    assert [i["id"] for i in vaas["identities"]] == list(range(len(identities) + uploaded))
    assert [i["file_rights"] for i in vaas["identities"][: len(identities)]] == [i["file_rights"] for i in identities]
    if uploaded:
        assert vaas["identities"][-1]["file_rights"] == function["file_rights"]
    # composing is deterministic to the byte
    again = compose_vaas_policy(
        function, user, loader, uploaded_programs=["/program/detector.wasm"] if uploaded else [], uploaded_data_files=[]
    )
    assert serialise(vaas) == serialise(again)


_LOADER: list[str] = []


def new_identity_cached() -> str:
    if not _LOADER:
        _LOADER.append(new_identity("loader").certificate)
    return _LOADER[0]
