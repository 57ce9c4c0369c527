"""Policy composition, exact-bytes serialisation and the policy hash.

The policy text is produced once, by :func:`complete_policy` (VaaS), and then
passed on byte for byte: its sha256 is the policy hash the runtime reports and
every client checks. Key order is part of those bytes, so each builder below
writes keys in the original i-PoC's order (README "Compatibility with Veracruz v1.3 and the
original i-PoC", key order of composed policies).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipoc import rights as _rights
from ipoc import schemas
from ipoc.certs import certificate_der, normalise_certificate, split_pem_certificates
from ipoc.errors import CertificateError, PolicyError
from ipoc.policy_serde import read_policy
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
        raise PolicyError(
            f"user policy names function {user['function']!r} but the function is {function['function']!r}"
        )
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
    # The seed's VaaS schema makes file_hashes optional but Veracruz requires the field.
    policy.setdefault("file_hashes", [])
    if "enclave_cert_expiry" not in policy:
        policy["enclave_cert_expiry"] = dict(infra.enclave_cert_expiry or {}) or cert_expiry(
            infra.now or _dt.datetime.now(_dt.UTC)
        )
    policy["proxy_attestation_server_url"] = infra.proxy_attestation_server_url
    policy["proxy_service_cert"] = infra.proxy_service_cert
    policy[f"runtime_manager_hash_{infra.platform}"] = infra.runtime_hash
    policy["runtime_manager_hash_sgx"] = ""
    policy["runtime_manager_hash_tz"] = ""
    policy["veracruz_server_url"] = infra.veracruz_server_url
    text = serialise(policy)
    # Never hand out a policy a runtime would refuse, or one no client could verify.
    parse_full_policy(text).runtime_hash(infra.platform)
    if not split_pem_certificates(infra.proxy_service_cert):
        raise PolicyError(
            "the proxy_service_cert VaaS adds holds no PEM certificate: clients could not attest the runtime"
        )
    reply: dict[str, Any] = {}
    if instance_id is not None:
        reply["instance_id"] = instance_id
    reply["instance_hash"] = instance_hash(text)
    reply["policy"] = text
    return reply


def is_hex(text: str) -> bool:
    """What Rust's ``hex::decode`` accepts: pairs of hex digits, either case, nothing else ("" included)."""
    return re.fullmatch(r"(?:[0-9a-fA-F]{2})*", text) is not None


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
        value: str = self.document["veracruz_server_url"]
        return value

    @property
    def proxy_url(self) -> str:
        value: str = self.document["proxy_attestation_server_url"]
        return value

    @property
    def proxy_service_cert(self) -> str:
        value: str = self.document["proxy_service_cert"]
        return value

    @property
    def runtime_hashes(self) -> dict[str, str]:
        """The ``runtime_manager_hash_<platform>`` values that are set (not null), by platform."""
        return {
            platform: self.document[f"runtime_manager_hash_{platform}"].lower()
            for platform in PLATFORMS
            if self.document[f"runtime_manager_hash_{platform}"] is not None
        }

    def runtime_hash(self, platform: str) -> str:
        """The measurement a runtime on ``platform`` must have (Veracruz's ``runtime_manager_hash``).

        Other platforms' fields may be null: generate-policy writes null for
        the platforms it did not measure.
        """
        value: str | None = self.document.get(f"runtime_manager_hash_{platform}")
        if not value:
            raise PolicyError(
                f"the policy has no runtime_manager_hash_{platform}: a runtime on the {platform} platform cannot "
                "be verified by any client; set it to the runtime's measurement",
                path=f"$.runtime_manager_hash_{platform}",
            )
        if not is_hex(value):
            raise PolicyError(
                f"$.runtime_manager_hash_{platform} is not hex", path=f"$.runtime_manager_hash_{platform}"
            )
        return value.lower()

    def identity_for(self, der: bytes) -> tuple[int, Principal] | None:
        """The identity whose certificate DER matches; the last match in policy order wins."""
        found = None
        for identity_id, cert_der, principal in self.identities:
            if cert_der == der:
                found = (identity_id, principal)
        return found


def parse_full_policy(text: str | bytes) -> FullPolicy:
    """Read a full policy as Veracruz v1.3 does, then check what its runtime checks when it loads one.

    :func:`ipoc.policy_serde.read_policy` is ``Policy::from_json``. A runtime
    then also needs (as Veracruz's does in ``ProtocolState::new`` and
    ``SessionContext::set_policy``): hex ``file_hashes``, identity
    certificates it can parse, and at least one identity. Nothing else is
    required here: which runtime hash must be present depends on who reads
    the policy (:meth:`FullPolicy.runtime_hash`).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError("the policy is not UTF-8 text") from None
    document = read_policy(text)

    if not document["identities"]:
        raise PolicyError(
            "$.identities is empty: a runtime needs at least one identity certificate", path="$.identities"
        )
    identities = []
    for index, identity in enumerate(document["identities"]):
        where = f"$.identities[{index}].certificate"
        try:
            der = certificate_der(identity["certificate"])
        except CertificateError as exc:
            raise PolicyError(f"{where}: {exc.message}", path=where) from None
        grants = _rights.table(identity["file_rights"])
        identities.append((identity["id"], der, Principal(f"identity {identity['id']}", grants)))

    programs = {}
    for program in document["programs"]:  # a repeated name: the later entry wins, as in Veracruz
        name = _rights.normalise_path(program["program_file_name"])
        programs[name] = Principal(f"program {name}", _rights.table(program["file_rights"]))

    file_hashes = {}
    for index, entry in enumerate(document["file_hashes"]):
        if not is_hex(entry["hash"]):
            where = f"$.file_hashes[{index}].hash"
            raise PolicyError(
                f"{where} is not hex: a runtime hex-decodes every file hash when it loads the policy", path=where
            )
        file_hashes[_rights.normalise_path(entry["file_path"])] = entry["hash"].lower()
    return FullPolicy(text=text, document=document, identities=identities, programs=programs, file_hashes=file_hashes)
