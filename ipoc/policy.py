"""Policy composition, exact-bytes serialisation and the policy hash.

The policy text is produced once, by :func:`complete_policy` (VaaS), and then
passed on byte for byte: its sha256 is the policy hash the runtime reports and
every client checks. Key order is part of those bytes, so each builder below
writes keys in the original i-PoC's order (behaviour reference §1.2, §1.3).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ipoc import rights as _rights
from ipoc import schemas
from ipoc.certs import certificate_der, normalise_certificate, split_pem_certificates
from ipoc.errors import CertificateError, PolicyError
from ipoc.publisher_files import refuse_user_reads

CIPHERSUITE = "TLS1_3_CHACHA20_POLY1305_SHA256"
CCFAAS_INSTANCE_ID = "CCFaaS"
DEFAULT_DATA_PRIORITY = 99
DEFAULT_CERT_EXPIRY_DAYS = 180
PLATFORMS = ("linux", "nitro", "icecap")


def serialise(policy: Mapping[str, Any]) -> str:
    """The one serialisation: ``json.dumps(indent=4)``, ASCII-escaped, no trailing newline."""
    return json.dumps(policy, indent=4)


def policy_hash(policy_text: str | bytes) -> str:
    """Lowercase hex sha256 of the exact policy bytes (what Veracruz calls the policy hash)."""
    data = policy_text.encode("utf-8") if isinstance(policy_text, str) else policy_text
    return hashlib.sha256(data).hexdigest()


def instance_hash(policy_text: str | bytes) -> str:
    """The policy hash cut to 59 characters, so it fits a Kubernetes label value."""
    return policy_hash(policy_text)[:59]


def _rights_list(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copy a file_rights list with the key order ``file_name, rights``."""
    return [{"file_name": e["file_name"], "rights": e["rights"]} for e in entries]


def compose_vaas_policy(
    function: Mapping[str, Any],
    user: Mapping[str, Any],
    program_load_certificate: str,
    *,
    uploaded_programs: Sequence[str] | None = None,
    uploaded_data_files: Sequence[str] | None = None,
    instance_id: str = CCFAAS_INSTANCE_ID,
) -> dict[str, Any]:
    """CCFaaS composition: function policy + user policy + program-load identity → VaaS policy.

    ``uploaded_*`` name the files the registry holds (all of them when None).
    The program-load identity, with the function-level ``file_rights``, is
    appended only when at least one file was uploaded, exactly as the original;
    ``file_hashes`` lists every registered file, uploaded or not.
    """
    schemas.validate("function", function)
    schemas.validate("user", user)
    if user["function"] != function["function"]:
        raise PolicyError(f"user policy names function {user['function']!r} but the function is {function['function']!r}")
    refuse_user_reads(function, user)  # the publisher's files stay in the enclave (ipoc/publisher_files.py)
    programs = function["programs"]
    data_files = function.get("data_files", [])
    if uploaded_programs is None:
        uploaded_programs = [p["program_file_name"] for p in programs]
    if uploaded_data_files is None:
        uploaded_data_files = [d["data_file"] for d in data_files]

    file_hashes = [{"file_path": p["program_file_name"], "hash": p["pi_hash"]} for p in programs]
    file_hashes += [{"file_path": d["data_file"], "hash": d["pi_hash"]} for d in data_files]

    identities: list[dict[str, Any]] = []
    for index, identity in enumerate(user["identities"]):
        identities.append(
            {
                "certificate": _policy_certificate(identity["certificate"], f"$.identities[{index}].certificate"),
                "file_rights": _rights_list(identity["file_rights"]),
            }
        )
    if uploaded_programs or uploaded_data_files:
        identities.append(
            {
                "certificate": _policy_certificate(program_load_certificate, "program-load certificate"),
                "file_rights": _rights_list(function["file_rights"]),
            }
        )
    for index, identity in enumerate(identities):
        identity["id"] = index

    return {
        "ciphersuite": CIPHERSUITE,
        "debug": function["debug"],
        "enable_clock": function["enable_clock"],
        "execution_strategy": function["execution_strategy"],
        "max_memory_mib": function["max_memory_mib"],
        "programs": [
            {"file_rights": _rights_list(p["file_rights"]), "id": p["id"], "program_file_name": p["program_file_name"]}
            for p in programs
        ],
        "identities": identities,
        "instance_id": instance_id,
        "file_hashes": file_hashes,
    }


def provisioning_order(function: Mapping[str, Any]) -> list[str]:
    """Enclave paths in the order CCFaaS loads them: programs, then data files by priority.

    The sort is stable, so equal priorities keep registration order.
    """
    programs = [p["program_file_name"] for p in function["programs"]]
    data = sorted(function.get("data_files", []), key=lambda d: d.get("priority", DEFAULT_DATA_PRIORITY))
    return programs + [d["data_file"] for d in data]


@dataclass(frozen=True)
class Infrastructure:
    """The fields VaaS adds to a VaaS policy to make a full policy."""

    proxy_attestation_server_url: str
    proxy_service_cert: str
    runtime_hash: str
    veracruz_server_url: str
    platform: str = "nitro"
    enclave_cert_expiry: Mapping[str, int] | None = None
    now: _dt.datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise PolicyError(f"unknown platform {self.platform!r}; expected one of {', '.join(PLATFORMS)}")


def cert_expiry(now: _dt.datetime, days: int = DEFAULT_CERT_EXPIRY_DAYS) -> dict[str, int]:
    """``enclave_cert_expiry`` for ``now + days`` (UTC), keys in the schema's order.

    The original put the seconds in the minute field; this is the minute.
    """
    when = now + _dt.timedelta(days=days)
    return {"day": when.day, "hour": when.hour, "minute": when.minute, "month": when.month, "year": when.year}


def complete_policy(vaas_policy: Mapping[str, Any], infra: Infrastructure) -> dict[str, Any]:
    """VaaS completion: VaaS policy + infrastructure fields → VaaS's reply.

    The reply is ``{"instance_id"?, "instance_hash", "policy"}`` where
    ``policy`` is the exact full-policy text; ``instance_id`` is popped from
    the policy (it is not part of it) and returned only when it was given.
    """
    schemas.validate("vaas", vaas_policy)
    policy = dict(vaas_policy)
    instance_id = policy.pop("instance_id", None)
    if "enclave_cert_expiry" not in policy:
        policy["enclave_cert_expiry"] = dict(infra.enclave_cert_expiry or {}) or cert_expiry(
            infra.now or _dt.datetime.now(_dt.timezone.utc)
        )
    policy["proxy_attestation_server_url"] = infra.proxy_attestation_server_url
    policy["proxy_service_cert"] = infra.proxy_service_cert
    policy[f"runtime_manager_hash_{infra.platform}"] = infra.runtime_hash
    policy["runtime_manager_hash_sgx"] = ""
    policy["runtime_manager_hash_tz"] = ""
    policy["veracruz_server_url"] = infra.veracruz_server_url
    text = serialise(policy)
    parse_full_policy(text)  # never hand out a policy a runtime would refuse
    reply: dict[str, Any] = {}
    if instance_id is not None:
        reply["instance_id"] = instance_id
    reply["instance_hash"] = instance_hash(text)
    reply["policy"] = text
    return reply


def _policy_certificate(pem: str, where: str) -> str:
    try:
        return normalise_certificate(pem)
    except CertificateError as exc:
        raise PolicyError(f"{where}: {exc.message}", path=where) from None


# ---------------------------------------------------------------------------
# The full policy, as a runtime and a client read it.


@dataclass(frozen=True)
class Principal:
    """An identity (by id) or a program (by file name) with its rights table."""

    name: str
    grants: dict[str, _rights.Rights]


@dataclass(frozen=True)
class FullPolicy:
    """A parsed, checked full policy plus the exact text it came from."""

    text: str
    document: dict[str, Any]
    identities: list[tuple[int, bytes, Principal]]  # (id, certificate DER, principal)
    programs: dict[str, Principal]
    file_hashes: dict[str, str]

    @property
    def hash(self) -> str:
        return policy_hash(self.text)

    @property
    def server_url(self) -> str:
        return self.document["veracruz_server_url"]

    @property
    def proxy_url(self) -> str:
        return self.document["proxy_attestation_server_url"]

    @property
    def proxy_service_cert(self) -> str:
        return self.document["proxy_service_cert"]

    @property
    def runtime_hashes(self) -> dict[str, str]:
        """Non-empty ``runtime_manager_hash_<platform>`` values by platform."""
        return {
            platform: self.document[f"runtime_manager_hash_{platform}"].lower()
            for platform in PLATFORMS
            if self.document.get(f"runtime_manager_hash_{platform}")
        }

    def identity_for(self, der: bytes) -> tuple[int, Principal] | None:
        """The identity whose certificate DER matches; the last match in policy order wins."""
        found = None
        for identity_id, cert_der, principal in self.identities:
            if cert_der == der:
                found = (identity_id, principal)
        return found


def parse_full_policy(text: str | bytes) -> FullPolicy:
    """Parse and check a full policy the way a Veracruz v1.3 runtime would before loading it."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError("the policy is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"the policy is not JSON: {exc}") from None
    schemas.validate("full", document)

    identities = []
    seen_ids: set[int] = set()
    for index, identity in enumerate(document["identities"]):
        where = f"$.identities[{index}]"
        if identity["id"] in seen_ids:
            raise PolicyError(f"{where}.id: identity id {identity['id']} is used twice", path=f"{where}.id")
        seen_ids.add(identity["id"])
        certificate = identity["certificate"]
        if not certificate.endswith("-----END CERTIFICATE-----"):
            raise PolicyError(
                f"{where}.certificate must end exactly with -----END CERTIFICATE----- (no trailing newline)",
                path=f"{where}.certificate",
            )
        try:
            der = certificate_der(certificate)
        except CertificateError as exc:
            raise PolicyError(f"{where}.certificate: {exc.message}", path=f"{where}.certificate") from None
        grants = _rights.table(identity["file_rights"])
        identities.append((identity["id"], der, Principal(f"identity {identity['id']}", grants)))

    programs = {}
    for program in document["programs"]:
        name = _rights.normalise_path(program["program_file_name"])
        programs[name] = Principal(f"program {name}", _rights.table(program["file_rights"]))

    file_hashes = {}
    for entry in document["file_hashes"]:
        file_hashes[_rights.normalise_path(entry["file_path"])] = entry["hash"].lower()

    if not split_pem_certificates(document["proxy_service_cert"]):
        raise PolicyError("$.proxy_service_cert holds no PEM certificate", path="$.proxy_service_cert")
    if not any(document.get(f"runtime_manager_hash_{p}") for p in PLATFORMS):
        raise PolicyError(
            "the policy names no runtime measurement: set runtime_manager_hash_linux or runtime_manager_hash_nitro"
        )
    for platform in PLATFORMS:
        value = document.get(f"runtime_manager_hash_{platform}")
        if value:
            try:
                bytes.fromhex(value)
            except ValueError:
                raise PolicyError(f"$.runtime_manager_hash_{platform} is not hex") from None
    if document["ciphersuite"] != CIPHERSUITE:
        raise PolicyError(f"$.ciphersuite {document['ciphersuite']!r} is not supported; use {CIPHERSUITE}")
    return FullPolicy(text=text, document=document, identities=identities, programs=programs, file_hashes=file_hashes)
