"""Build VaaS and full policies for tests through the real composition code."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from ipoc import rights
from ipoc.certs import Identity
from ipoc.policy import CIPHERSUITE, Infrastructure, complete_policy

ECHO = "/program/echo.wasm"

# The echo program may read /input and write /output and its streams.
ECHO_PROGRAM_RIGHTS = [
    {"file_name": "/input/", "rights": int(rights.READ)},
    {"file_name": "/output/", "rights": int(rights.READ_WRITE)},
    {"file_name": "stdout", "rights": int(rights.WRITE)},
    {"file_name": "stderr", "rights": int(rights.WRITE)},
]
USER_RIGHTS = [
    {"file_name": "/input/", "rights": int(rights.WRITE)},
    {"file_name": "/output/", "rights": int(rights.READ)},
    {"file_name": "stdout", "rights": int(rights.READ)},
    {"file_name": "stderr", "rights": int(rights.READ)},
    {"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)},
]
LOADER_RIGHTS = [{"file_name": "/program/", "rights": int(rights.WRITE)}]


def echo_function(name: str, wasm: bytes, *, loader_rights: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A function policy for the echo program (POST /function), the program-load identity writing /program/."""
    return {
        "function": name,
        "execution_strategy": "JIT",
        "max_memory_mib": 64,
        "debug": False,
        "enable_clock": False,
        "programs": [
            {
                "file_rights": ECHO_PROGRAM_RIGHTS,
                "id": 0,
                "pi_hash": hashlib.sha256(wasm).hexdigest(),
                "program_file_name": ECHO,
            }
        ],
        "file_rights": loader_rights or [{"file_name": "/program/", "rights": int(rights.WRITE)}],
    }


def vaas_policy(
    identities: Iterable[tuple[Identity, list[dict[str, Any]]]],
    *,
    programs: list[dict[str, Any]] | None = None,
    file_hashes: dict[str, bytes] | None = None,
    enable_clock: bool = True,
    max_memory_mib: int = 256,
) -> dict[str, Any]:
    return {
        "ciphersuite": CIPHERSUITE,
        "debug": True,
        "enable_clock": enable_clock,
        "execution_strategy": "JIT",
        "max_memory_mib": max_memory_mib,
        "programs": programs
        if programs is not None
        else [{"file_rights": ECHO_PROGRAM_RIGHTS, "id": 0, "program_file_name": ECHO}],
        "identities": [
            {"certificate": identity.policy_certificate, "file_rights": grants, "id": index}
            for index, (identity, grants) in enumerate(identities)
        ],
        "file_hashes": [
            {"file_path": path, "hash": hashlib.sha256(content).hexdigest()}
            for path, content in (file_hashes or {}).items()
        ],
        "instance_id": "test",
    }


def full_policy(vaas: dict[str, Any], *, proxy_url: str, proxy_cert: str, measurement: str, port: int) -> str:
    """Complete a VaaS policy for a local runtime on 127.0.0.1:<port>; returns the exact text."""
    reply = complete_policy(
        vaas,
        Infrastructure(
            proxy_attestation_server_url=proxy_url,
            proxy_service_cert=proxy_cert,
            runtime_hash=measurement,
            veracruz_server_url=f"127.0.0.1:{port}",
            platform="linux",
        ),
    )
    return reply["policy"]
