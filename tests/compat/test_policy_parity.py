"""Our policy reader against Veracruz v1.3's parser, row by row (docs/veracruz-policy-parity.md).

The oracle is policy-utils at tag iotex-demo-v.1.3.0 as recorded in
/work/shared/reference/veracruz-policy-types.md: §5's table gives, for each
input, whether Veracruz accepts it (most rows were run against the tag's own
parser). Each case below is one such input, built from a generate-policy
shaped policy; ``veracruz`` is the tag's answer, and our ``read_policy`` must
give the same one. Rows where a runtime refuses what the parser accepts are
checked at the runtime level (``parse_full_policy``) too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from ipoc.certs import new_identity
from ipoc.errors import PolicyError, ValidationError
from ipoc.policy import Infrastructure, complete_policy, parse_full_policy
from ipoc.policy_serde import POLICY_FIELDS, read_policy
from tests.compat.shapes import generate_policy_document, pem_text
from tests.support import policies

MEASUREMENT = "ab" * 32
USER, S3 = new_identity("user"), new_identity("s3")
BASE = generate_policy_document(
    "linux",
    [(S3, [{"file_name": "/s3_app_input/", "rights": 534084}]), (USER, [{"file_name": "/output/", "rights": 24582}])],
    measurement=MEASUREMENT,
    proxy_cert=pem_text(new_identity("proxy").certificate),
    file_hashes={"/program/detector.wasm": b"wasm"},
)
BASE["enclave_cert_expiry"] = {"year": 2030, "month": 12, "day": 31, "hour": 23, "minute": 59}
BASE_TEXT = json.dumps(BASE, indent=2)

Mutation = Callable[[], str | bytes]


def doc(change: Callable[[dict[str, Any]], object]) -> Mutation:
    """A mutation of the base document, serialised the way generate-policy writes."""

    def build() -> str:
        document = json.loads(BASE_TEXT)
        change(document)
        return json.dumps(document, indent=2)

    return build


def text(old: str, new: str, count: int = 1) -> Mutation:
    """A mutation of the base text: replace the first ``count`` occurrences of ``old``."""

    def build() -> str:
        assert old in BASE_TEXT, old
        return BASE_TEXT.replace(old, new, count)

    return build


def raw(value: str | bytes) -> Mutation:
    return lambda: value


def setter(*path_and_value: Any) -> Mutation:
    *path, value = path_and_value

    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return doc(change)


def deleter(*path: Any) -> Mutation:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return doc(change)


def as_array(document: dict[str, Any]) -> list[Any]:
    return [document[name] for name, _ in POLICY_FIELDS]


ACCEPT, REFUSE = True, False
# (row of §5, what, mutation, Veracruz accepts?)
CASES: list[tuple[str, str, Mutation, bool]] = [
    ("1", "the generate-policy shaped base", raw(BASE_TEXT), ACCEPT),
    ("2", "ciphersuite missing", deleter("ciphersuite"), REFUSE),
    (
        "3",
        "all runtime hashes absent",
        doc(lambda d: [d.pop(f"runtime_manager_hash_{p}") for p in ("linux", "nitro", "icecap")]),
        ACCEPT,
    ),
    (
        "3",
        "all runtime hashes null",
        doc(lambda d: d.update({f"runtime_manager_hash_{p}": None for p in ("linux", "nitro", "icecap")})),
        ACCEPT,
    ),
    (
        "4",
        "sgx and tz hashes of any type",
        doc(lambda d: d.update(runtime_manager_hash_sgx="x", runtime_manager_hash_tz=5)),
        ACCEPT,
    ),
    (
        "5",
        "unknown keys at every level and a policy_hash key",
        doc(
            lambda d: (
                d.update(extra=[1.5, None], policy_hash="x"),
                d["identities"][0].update(extra=1),
                d["enclave_cert_expiry"].update(second=3),
            )
        ),
        ACCEPT,
    ),
    ("6", "duplicate debug", text('"debug": true', '"debug": true, "debug": true'), REFUSE),
    ("6", "duplicate minute", text('"minute": 59', '"minute": 59, "minute": 59'), REFUSE),
    ("6", "duplicate identity id", text('"id": 0', '"id": 0, "id": 0'), REFUSE),
    (
        "6",
        "duplicate runtime_manager_hash_linux, the second null",
        text(
            f'"runtime_manager_hash_linux": "{MEASUREMENT}"',
            f'"runtime_manager_hash_linux": "{MEASUREMENT}", "runtime_manager_hash_linux": null',
        ),
        REFUSE,
    ),
    (
        "7",
        "duplicate unknown keys, top level and inside an ignored object",
        text('"debug": true', '"zz": 1, "zz": 2, "ign": {"a": 1, "a": 2}, "debug": true'),
        ACCEPT,
    ),
    ("8", "max_memory_mib 2000.0", text('"max_memory_mib": 2000', '"max_memory_mib": 2000.0'), REFUSE),
    ("8", "max_memory_mib 2.56e2", text('"max_memory_mib": 2000', '"max_memory_mib": 2.56e2'), REFUSE),
    ("8", "max_memory_mib 256E0", text('"max_memory_mib": 2000', '"max_memory_mib": 256E0'), REFUSE),
    ("8", "max_memory_mib 1.5", text('"max_memory_mib": 2000', '"max_memory_mib": 1.5'), REFUSE),
    ("9", "max_memory_mib -0", text('"max_memory_mib": 2000', '"max_memory_mib": -0'), REFUSE),
    ("10", "max_memory_mib -1", text('"max_memory_mib": 2000', '"max_memory_mib": -1'), REFUSE),
    ("10", "max_memory_mib 4294967296", text('"max_memory_mib": 2000', '"max_memory_mib": 4294967296'), REFUSE),
    (
        "10",
        "max_memory_mib beyond u64 (serde_json reads it as a float)",
        text('"max_memory_mib": 2000', '"max_memory_mib": 18446744073709551616'),
        REFUSE,
    ),
    ("11", "max_memory_mib 0", setter("max_memory_mib", 0), ACCEPT),
    ("11", "max_memory_mib 4294967295", setter("max_memory_mib", 4294967295), ACCEPT),
    ("12", 'max_memory_mib "256"', setter("max_memory_mib", "256"), REFUSE),
    ("12", "max_memory_mib null", setter("max_memory_mib", None), REFUSE),
    ("12", "max_memory_mib true", setter("max_memory_mib", True), REFUSE),
    ("13", "max_memory_mib 0256", text('"max_memory_mib": 2000', '"max_memory_mib": 0256'), REFUSE),
    ("13", "max_memory_mib 1e400", text('"max_memory_mib": 2000', '"max_memory_mib": 1e400'), REFUSE),
    ("13", "max_memory_mib NaN", text('"max_memory_mib": 2000', '"max_memory_mib": NaN'), REFUSE),
    (
        "14",
        "expiry month 13, day 0, hour 99, minute 255",
        setter("enclave_cert_expiry", {"year": 2030, "month": 13, "day": 0, "hour": 99, "minute": 255}),
        ACCEPT,
    ),
    ("15", "expiry month 256", setter("enclave_cert_expiry", "month", 256), REFUSE),
    ("15", "expiry minute 300 (a u8)", setter("enclave_cert_expiry", "minute", 300), REFUSE),
    ("15", "expiry year 4294967296", setter("enclave_cert_expiry", "year", 4294967296), REFUSE),
    ("15", "expiry year -1", setter("enclave_cert_expiry", "year", -1), REFUSE),
    ("15", "expiry year 2030.0", text('"year": 2030', '"year": 2030.0'), REFUSE),
    ("16", "expiry as a 5-element array", setter("enclave_cert_expiry", [2030, 12, 31, 23, 59]), ACCEPT),
    ("17", "expiry as a 4-element array", setter("enclave_cert_expiry", [2030, 12, 31, 23]), REFUSE),
    ("17", "expiry as a 6-element array", setter("enclave_cert_expiry", [2030, 12, 31, 23, 59, 0]), REFUSE),
    ("18", "the whole policy as a 15-element array", lambda: json.dumps(as_array(BASE)), ACCEPT),
    (
        "18",
        "identity and file hash as arrays",
        doc(
            lambda d: (
                d["identities"].__setitem__(0, list(d["identities"][0].values())),
                d["file_hashes"].__setitem__(0, list(d["file_hashes"][0].values())),
            )
        ),
        ACCEPT,
    ),
    ("19", "the whole policy as a 14-element array", lambda: json.dumps(as_array(BASE)[:14]), REFUSE),
    ("19", "top-level null", raw("null"), REFUSE),
    ("20", "debug null", setter("debug", None), REFUSE),
    ("20", "debug 1", setter("debug", 1), REFUSE),
    ("20", 'enable_clock "true"', setter("enable_clock", "true"), REFUSE),
    ("21", 'execution_strategy "jit"', setter("execution_strategy", "jit"), REFUSE),
    ("21", 'execution_strategy "JIT "', setter("execution_strategy", "JIT "), REFUSE),
    ("21", "execution_strategy 1", setter("execution_strategy", 1), REFUSE),
    ("22", 'execution_strategy "Interpretation"', setter("execution_strategy", "Interpretation"), ACCEPT),
    ("22", 'execution_strategy {"JIT": null}', setter("execution_strategy", {"JIT": None}), ACCEPT),
    ("23", 'execution_strategy {"JIT": {}}', setter("execution_strategy", {"JIT": {}}), REFUSE),
    (
        "23",
        "execution_strategy with both variants",
        setter("execution_strategy", {"JIT": None, "Interpretation": None}),
        REFUSE,
    ),
    (
        "24",
        "ciphersuite TLS1-3-CHACHA20-POLY1305-SHA256",
        setter("ciphersuite", "TLS1-3-CHACHA20-POLY1305-SHA256"),
        ACCEPT,
    ),
    (
        "24",
        "ciphersuite TLS1-3_CHACHA20-POLY1305_SHA256",
        setter("ciphersuite", "TLS1-3_CHACHA20-POLY1305_SHA256"),
        ACCEPT,
    ),
    ("24", "ciphersuite TLS1_3_AES_256_GCM_SHA384", setter("ciphersuite", "TLS1_3_AES_256_GCM_SHA384"), ACCEPT),
    ("24", "ciphersuite TLS1_3_AES_128_GCM_SHA256", setter("ciphersuite", "TLS1_3_AES_128_GCM_SHA256"), ACCEPT),
    ("24", "ciphersuite TLS1_3_AES_128_CCM_SHA256", setter("ciphersuite", "TLS1_3_AES_128_CCM_SHA256"), ACCEPT),
    ("24", "ciphersuite TLS1_3_AES_128_CCM_8_SHA256", setter("ciphersuite", "TLS1_3_AES_128_CCM_8_SHA256"), ACCEPT),
    ("25", "ciphersuite TLS_AES_128_GCM_SHA256 (IANA name)", setter("ciphersuite", "TLS_AES_128_GCM_SHA256"), REFUSE),
    ("25", "ciphersuite in lower case", setter("ciphersuite", "tls1_3_chacha20_poly1305_sha256"), REFUSE),
    ("25", 'ciphersuite ""', setter("ciphersuite", ""), REFUSE),
    ("25", "ciphersuite with a NUL", setter("ciphersuite", "TLS1_3_CHACHA20_POLY1305_SHA256\u0000"), REFUSE),
    ("27", "two identities with one id", doc(lambda d: d["identities"][1].update(id=0)), REFUSE),
    ("28", "two programs with one id and name", doc(lambda d: d["programs"].append(dict(d["programs"][0]))), ACCEPT),
    (
        "29",
        "certificate ending in \\n",
        doc(lambda d: d["identities"][0].update(certificate=d["identities"][0]["certificate"] + "\n")),
        REFUSE,
    ),
    (
        "29",
        "certificate ending in \\r\\n",
        doc(lambda d: d["identities"][0].update(certificate=d["identities"][0]["certificate"] + "\r\n")),
        REFUSE,
    ),
    (
        "30",
        "junk certificate ending with the END line",
        doc(lambda d: d["identities"][0].update(certificate="junk-----END CERTIFICATE-----")),
        ACCEPT,
    ),
    (
        "30",
        "certificate with leading spaces",
        doc(lambda d: d["identities"][0].update(certificate="  " + d["identities"][0]["certificate"])),
        ACCEPT,
    ),
    (
        "32",
        "empty proxy cert and server url, proxy url not a url",
        doc(
            lambda d: d.update(proxy_service_cert="", veracruz_server_url="", proxy_attestation_server_url="not a url")
        ),
        ACCEPT,
    ),
    ("33", 'file hash "zz"', doc(lambda d: d["file_hashes"][0].update(hash="zz")), ACCEPT),
    (
        "33",
        "runtime_manager_hash_linux not hex, nitro empty",
        doc(lambda d: d.update(runtime_manager_hash_linux="not-hex", runtime_manager_hash_nitro="")),
        ACCEPT,
    ),
    ("33", "CRLF line ends", lambda: BASE_TEXT.replace("\n", "\r\n"), ACCEPT),
    ("34", "runtime_manager_hash_nitro 5", setter("runtime_manager_hash_nitro", 5), REFUSE),
    ("35", "rights 4294967295", doc(lambda d: d["identities"][0]["file_rights"][0].update(rights=4294967295)), ACCEPT),
    ("36", "rights -1", doc(lambda d: d["identities"][0]["file_rights"][0].update(rights=-1)), REFUSE),
    ("36", "rights 4294967296", doc(lambda d: d["identities"][0]["file_rights"][0].update(rights=4294967296)), REFUSE),
    ("36", "rights 8198.0", text('"rights": 534084', '"rights": 8198.0'), REFUSE),
    (
        "36",
        "file_rights entry without rights",
        doc(lambda d: d["identities"][0]["file_rights"][0].pop("rights")),
        REFUSE,
    ),
    ("37", "identity id -1", doc(lambda d: d["identities"][0].update(id=-1)), REFUSE),
    ("37", 'identity id "0"', doc(lambda d: d["identities"][0].update(id="0")), REFUSE),
    ("37", "identity id 4294967295", doc(lambda d: d["identities"][0].update(id=4294967295)), ACCEPT),
    (
        "38",
        "empty identities, programs and file_hashes",
        doc(lambda d: d.update(identities=[], programs=[], file_hashes=[])),
        ACCEPT,
    ),
    ("39", "identities null", setter("identities", None), REFUSE),
    ("40", "trailing x", lambda: BASE_TEXT + "x", REFUSE),
    ("40", "trailing whitespace", lambda: BASE_TEXT + " \n\t", ACCEPT),
    ("41", "UTF-8 byte order mark", lambda: b"\xef\xbb\xbf" + BASE_TEXT.encode(), REFUSE),
    ("41", "a // comment", lambda: "// policy\n" + BASE_TEXT, REFUSE),
    ("41", "a trailing comma", text('"max_memory_mib": 2000', '"max_memory_mib": 2000,'), REFUSE),
    ("41", "an empty file", raw(""), REFUSE),
    ("42", "bytes that are not UTF-8", lambda: BASE_TEXT.encode().replace(b"/s3_app_input/", b"/s3_app_\xff/"), REFUSE),
    (
        "43",
        "a lone surrogate in veracruz_server_url",
        text('"veracruz_server_url": "', '"veracruz_server_url": "\\ud800'),
        REFUSE,
    ),
    (
        "43",
        "a lone surrogate in an unknown key's value",
        text('"debug": true', '"zz": "\\ud800", "debug": true'),
        ACCEPT,
    ),
    ("44", "a raw TAB inside a string", text('"veracruz_server_url": "', '"veracruz_server_url": "\t'), REFUSE),
    ("45", 'the key "deb\\u0075g"', text('"debug"', '"deb\\u0075g"'), ACCEPT),
    (
        "46",
        "arrays nested 300 deep in an unknown key",
        text('"debug": true', '"deep": ' + "[" * 300 + "]" * 300 + ', "debug": true'),
        ACCEPT,
    ),
]


@pytest.mark.parametrize(
    ("row", "what", "mutation", "veracruz_accepts"), CASES, ids=[f"row{c[0]}-{c[1]}" for c in CASES]
)
def test_read_policy_agrees_with_veracruz(row: str, what: str, mutation: Mutation, veracruz_accepts: bool) -> None:
    source = mutation()
    if veracruz_accepts:
        read_policy(source)
    else:
        with pytest.raises(PolicyError):
            read_policy(source)


def test_the_base_is_what_generate_policy_writes_and_a_runtime_loads():
    policy = parse_full_policy(BASE_TEXT)
    assert policy.document["runtime_manager_hash_nitro"] is None
    assert policy.runtime_hash("linux") == MEASUREMENT
    assert policy.runtime_hashes == {"linux": MEASUREMENT, "icecap": "0" * 64}
    with pytest.raises(PolicyError, match="no runtime_manager_hash_nitro"):
        policy.runtime_hash("nitro")


def test_serde_error_messages_name_the_field_and_the_rust_type():
    def message(mutation: Mutation) -> str:
        with pytest.raises(PolicyError) as caught:
            read_policy(mutation())
        return caught.value.message

    assert "$.max_memory_mib: invalid type: floating point `2000`, expected u32" in message(
        text('"max_memory_mib": 2000', '"max_memory_mib": 2000.0')
    )
    assert "$.enclave_cert_expiry.minute: invalid value: integer `300`, expected u8" in message(
        setter("enclave_cert_expiry", "minute", 300)
    )
    assert "$.enclave_cert_expiry.year: invalid value: integer `-1`, expected u32" in message(
        setter("enclave_cert_expiry", "year", -1)
    )
    assert "duplicate field `debug`" in message(text('"debug": true', '"debug": true, "debug": true'))
    assert "missing field `ciphersuite`" in message(deleter("ciphersuite"))
    assert "invalid length 14, expected struct Policy with 15 elements" in message(
        lambda: json.dumps(as_array(BASE)[:14])
    )
    assert "unknown variant `jit`" in message(setter("execution_strategy", "jit"))
    # row 31: identities are checked before the ciphersuite
    both = doc(lambda d: (d["identities"][0].update(certificate="x"), d.update(ciphersuite="nope")))
    assert "$.identities[0].certificate must end exactly with" in message(both)


def test_normalised_document_has_one_shape_whatever_the_spelling():
    array_form = read_policy(json.dumps(as_array(BASE)))
    map_strategy = read_policy(setter("execution_strategy", {"JIT": None})())
    base = read_policy(BASE_TEXT)
    assert array_form == base
    assert map_strategy["execution_strategy"] == "JIT"
    assert list(base) == [name for name, _ in POLICY_FIELDS]


# Where Veracruz's parser accepts and its runtime (ours and Veracruz's alike) refuses when loading.
RUNTIME_REFUSES = [
    (
        "30",
        "junk certificate ending with the END line",
        doc(lambda d: d["identities"][0].update(certificate="junk-----END CERTIFICATE-----")),
    ),
    ("33", 'file hash "zz" (not hex)', doc(lambda d: d["file_hashes"][0].update(hash="zz"))),
    ("33", "file hash of odd length", doc(lambda d: d["file_hashes"][0].update(hash="abc"))),
    ("38", "no identity at all", doc(lambda d: d.update(identities=[]))),
]
RUNTIME_ACCEPTS = [
    ("11", "max_memory_mib 0", setter("max_memory_mib", 0)),
    (
        "30",
        "certificate with leading spaces",
        doc(lambda d: d["identities"][0].update(certificate="  " + d["identities"][0]["certificate"])),
    ),
    (
        "33",
        "file hashes not 64 characters: empty, upper case, 2 bytes",
        doc(
            lambda d: d.update(
                file_hashes=[
                    {"file_path": "/a", "hash": ""},
                    {"file_path": "/b", "hash": "AB" * 32},
                    {"file_path": "/c", "hash": "abcd"},
                ]
            )
        ),
    ),
    (
        "32",
        "empty proxy_service_cert (the client refuses it, not the runtime's loader)",
        setter("proxy_service_cert", ""),
    ),
    (
        "3",
        "no runtime hash at all (clients then cannot verify any runtime)",
        doc(lambda d: d.update({f"runtime_manager_hash_{p}": None for p in ("linux", "nitro", "icecap")})),
    ),
    ("38", "no programs and no file hashes", doc(lambda d: d.update(programs=[], file_hashes=[]))),
]


@pytest.mark.parametrize(
    ("row", "what", "mutation"), RUNTIME_REFUSES, ids=[f"row{c[0]}-{c[1]}" for c in RUNTIME_REFUSES]
)
def test_runtime_loader_refuses_what_veracruz_runtime_refuses(row: str, what: str, mutation: Mutation) -> None:
    read_policy(mutation())  # Veracruz's parser accepts it...
    with pytest.raises(PolicyError):
        parse_full_policy(mutation())  # ...and its runtime does not load it


@pytest.mark.parametrize(
    ("row", "what", "mutation"), RUNTIME_ACCEPTS, ids=[f"row{c[0]}-{c[1]}" for c in RUNTIME_ACCEPTS]
)
def test_runtime_loader_accepts_what_veracruz_accepts(row: str, what: str, mutation: Mutation) -> None:
    parse_full_policy(mutation())


def test_tls12_suites_are_refused_although_veracruz_parses_them():
    """Stricter (row 26): mbedTLS's table has TLS 1.2 names, but Veracruz's client and runtime pin TLS 1.3."""
    with pytest.raises(PolicyError, match="speak only TLS 1.3"):
        read_policy(setter("ciphersuite", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")())


def test_paths_with_dot_dot_are_refused_although_veracruz_parses_them():
    """Stricter: file names are not checked by Veracruz's parser; a '..' component is refused by our runtime."""
    mutation = doc(lambda d: d["identities"][0]["file_rights"][0].update(file_name="/s3_app_input/../program/"))
    read_policy(mutation())
    with pytest.raises(ValidationError, match=r"\.\."):
        parse_full_policy(mutation())


# "Never hand out a policy a runtime would refuse": VaaS's completion refuses what Veracruz refuses.
@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("expiry minute 300 (a u8)", lambda v: v["enclave_cert_expiry"].update(minute=300)),
        ("negative expiry year", lambda v: v["enclave_cert_expiry"].update(year=-1)),
        ("expiry month 256", lambda v: v["enclave_cert_expiry"].update(month=256)),
        ("max_memory_mib beyond u32", lambda v: v.update(max_memory_mib=2**32)),
        ("negative max_memory_mib", lambda v: v.update(max_memory_mib=-1)),
        ("an identity id beyond u32", lambda v: v["identities"][0].update(id=2**32)),
        ("rights beyond u32", lambda v: v["identities"][0]["file_rights"][0].update(rights=2**32)),
        ("the IANA ciphersuite name", lambda v: v.update(ciphersuite="TLS_AES_128_GCM_SHA256")),
        ("an unknown execution strategy", lambda v: v.update(execution_strategy="jit")),
    ],
)
def test_vaas_completion_refuses_what_veracruz_refuses(what: str, change: Callable[[dict[str, Any]], None]) -> None:
    vaas = json.loads(json.dumps(policies.vaas_policy([(USER, policies.USER_RIGHTS)])))  # a copy: the change mutates it
    vaas["enclave_cert_expiry"] = {"day": 31, "hour": 23, "minute": 59, "month": 12, "year": 2030}
    change(vaas)
    with pytest.raises(ValidationError):
        complete_policy(vaas, _infra())


def test_vaas_completion_defaults_file_hashes_and_sets_only_its_platform():
    vaas = json.loads(json.dumps(policies.vaas_policy([(USER, policies.USER_RIGHTS)])))
    del vaas["file_hashes"]
    document = json.loads(complete_policy(vaas, _infra())["policy"])
    assert document["file_hashes"] == []
    assert document["runtime_manager_hash_linux"] == MEASUREMENT and "runtime_manager_hash_nitro" not in document


def _infra() -> Infrastructure:
    return Infrastructure(
        proxy_attestation_server_url="127.0.0.1:3010",
        proxy_service_cert=new_identity("proxy").certificate,
        runtime_hash=MEASUREMENT,
        veracruz_server_url="127.0.0.1:3014",
        platform="linux",
    )


def test_duplicate_keys_are_found_in_nested_structs_too():
    # serde refuses a repeated known field at any level (serde_derive de.rs:2502)
    nested = text('"file_name": "/s3_app_input/"', '"file_name": "/s3_app_input/", "file_name": "/x/"')
    with pytest.raises(PolicyError, match="duplicate field `file_name`"):
        read_policy(nested())
    assert re.search(r'"file_name": "/s3_app_input/"', BASE_TEXT)
