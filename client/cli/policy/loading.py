"""Read a policy file for the policy commands, turning every failure into one clear line."""

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
        raise ValidationError(f"{path} is not UTF-8 text") from None


def detect_kind(document: Any) -> PolicyKind:
    """Guess a policy's kind from the keys only that kind has."""
    if not isinstance(document, dict):
        raise ValidationError("a policy is a JSON object")
    if "veracruz_server_url" in document:
        return "full"
    if "instanceid" in document:
        return "user"
    if "function" in document:
        return "function"
    if "ciphersuite" in document:
        return "vaas"
    raise ValidationError("cannot tell which kind of policy this is; pass --kind")
