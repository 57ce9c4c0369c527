"""Read the files commands are given (policies, PEM identities and keys), turning every failure into one clear
line (a ValidationError naming the file) instead of a decoder's exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from ipoc.errors import ValidationError
from ipoc.schemas import SchemaKind

PolicyKind = Literal["full"] | SchemaKind  # a full (Veracruz) policy, or one with a schema of ours


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text: a policy is a JSON file") from None


def load_text(path: Path, what: str) -> str:
    """The text of ``path``, which holds ``what`` (for example "a PEM private key")."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text: it should hold {what}") from None


def detect_kind(document: Any) -> PolicyKind:
    """Guess a policy's kind from the keys only that kind has."""
    if not isinstance(document, dict):
        raise ValidationError("a policy is a JSON object")
    # what completion adds to a VaaS policy: any of it makes a full policy (one with a key missing is then told so)
    if {"veracruz_server_url", "proxy_attestation_server_url", "proxy_service_cert"} & document.keys() or any(
        key.startswith("runtime_manager_hash") for key in document
    ):
        return "full"
    if "instanceid" in document:
        return "user"
    if "function" in document:
        return "function"
    if "ciphersuite" in document:
        return "vaas"
    raise ValidationError("cannot tell which kind of policy this is; pass --kind")


def load_credentials(policy_file: Path, identity: Path, key: Path) -> tuple[str, str, str]:
    """The policy, certificate and private key texts a command talks to an instance with."""
    return (
        load_text(policy_file, "the instance's policy (JSON)"),
        load_text(identity, "a PEM certificate"),
        load_text(key, "a PEM private key"),
    )
