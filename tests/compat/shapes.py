"""Policies in the shape Veracruz v1.3's ``generate-policy`` writes them, built with our own code.

generate-policy serialises the ``Policy`` struct: fields in struct order,
``null`` for the runtime hashes of platforms it did not measure, and an IceCap
hash field always present (veracruz-policy-types.md §1, §4). Certificates are
the PEM files' text without the final newline (Veracruz requires the string to
end with the END line).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from ipoc import rights
from ipoc.certs import Identity

ICECAP_PLACEHOLDER = "0" * 64  # generate-policy writes a fixed IceCap value; its content does not matter here
DETECTOR = "/program/detector.wasm"


def pem_text(certificate: str) -> str:
    """A PEM file's text as a policy string: 64-column lines kept, final newline dropped."""
    return certificate.rstrip("\n")


def generate_policy_document(
    platform: str,
    identities: list[tuple[Identity, list[dict[str, Any]]]],
    *,
    measurement: str,
    proxy_url: str = "127.0.0.1:3010",
    proxy_cert: str = "",
    server_url: str = "127.0.0.1:3014",
    programs: list[dict[str, Any]] | None = None,
    file_hashes: dict[str, bytes] | None = None,
    ciphersuite: str = "TLS1_3_CHACHA20_POLY1305_SHA256",
    max_memory_mib: int = 2000,
    execution_strategy: str = "JIT",
    enable_clock: bool = True,
) -> dict[str, Any]:
    """The document generate-policy would write for ``platform`` ('linux' or 'nitro')."""
    hashes: dict[str, str | None] = {"linux": None, "nitro": None, "icecap": ICECAP_PLACEHOLDER}
    hashes[platform] = measurement
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    return {
        "identities": [
            {"certificate": pem_text(identity.certificate), "id": index, "file_rights": grants}
            for index, (identity, grants) in enumerate(identities)
        ],
        "programs": programs
        if programs is not None
        else [
            {
                "program_file_name": DETECTOR,
                "id": 0,
                "file_rights": [
                    {"file_name": "/program_data/", "rights": int(rights.READ)},
                    {"file_name": "/s3_app_input/", "rights": int(rights.READ)},
                    {"file_name": "/user_input/", "rights": int(rights.READ)},
                    {"file_name": "/program_internal/", "rights": int(rights.READ_WRITE)},
                    {"file_name": "/output/", "rights": int(rights.WRITE)},
                    {"file_name": "stdout", "rights": int(rights.WRITE)},
                    {"file_name": "stderr", "rights": int(rights.WRITE)},
                ],
            },
        ],
        "file_hashes": [
            {"file_path": path, "hash": hashlib.sha256(data).hexdigest()} for path, data in (file_hashes or {}).items()
        ],
        "veracruz_server_url": server_url,
        "enclave_cert_expiry": {
            "year": expiry.year,
            "month": expiry.month,
            "day": expiry.day,
            "hour": expiry.hour,
            "minute": expiry.minute,
        },
        "ciphersuite": ciphersuite,
        "runtime_manager_hash_linux": hashes["linux"],
        "runtime_manager_hash_nitro": hashes["nitro"],
        "runtime_manager_hash_icecap": hashes["icecap"],
        "proxy_attestation_server_url": proxy_url,
        "proxy_service_cert": proxy_cert,
        "debug": True,
        "execution_strategy": execution_strategy,
        "enable_clock": enable_clock,
        "max_memory_mib": max_memory_mib,
    }


def generate_policy(*args: Any, **kwargs: Any) -> str:
    """:func:`generate_policy_document` as text (serde_json's pretty printer: two-space indent)."""
    return json.dumps(generate_policy_document(*args, **kwargs), indent=2)


# The original VOD deploy scripts' principals, the S3 app and the user made from one cert.conf.
def vod_identities(program_provider: Identity, data_provider: Identity, s3_app: Identity, user: Identity) -> list:
    return [
        (program_provider, [{"file_name": "/program/", "rights": int(rights.WRITE)}]),
        (data_provider, [{"file_name": "/program_data/", "rights": int(rights.WRITE)}]),
        (s3_app, [{"file_name": "/s3_app_input/", "rights": int(rights.WRITE)}]),
        (
            user,
            [
                {"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)},
                {"file_name": "/user_input/", "rights": int(rights.WRITE)},
                {"file_name": "/output/", "rights": int(rights.READ)},
                {"file_name": "stdout", "rights": int(rights.READ)},
                {"file_name": "stderr", "rights": int(rights.READ)},
            ],
        ),
    ]
