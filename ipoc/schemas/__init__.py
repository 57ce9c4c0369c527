"""The seed's JSON schemas (verbatim data files beside this module) and their validation.

``function``, ``user``, ``vaas`` and ``s3_app_input`` are the seed's schemas,
unchanged. The full policy a runtime loads has no schema here: the seed gives
none, and Veracruz's parser (serde) has rules no JSON Schema can state
(duplicate keys, ``256.0`` is not an integer, structs written as arrays).
:mod:`ipoc.policy_serde` reads it as Veracruz does.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as _SchemaError

from ipoc.errors import ValidationError

SchemaKind = Literal["function", "user", "vaas", "s3_app_input"]
KINDS: tuple[SchemaKind, ...] = ("function", "user", "vaas", "s3_app_input")
LABELS: dict[str, str] = {
    "function": "function policy",
    "user": "user policy",
    "vaas": "VaaS policy",
    "s3_app_input": "S3 app input",
    "full": "full policy",  # read by ipoc.policy_serde, not by a schema
}


@cache
def schema(kind: SchemaKind) -> dict[str, Any]:
    """Load one schema document (cached: they never change at run time)."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {', '.join(KINDS)}")
    text = resources.files(__package__).joinpath(f"{kind}.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _validator(kind: SchemaKind) -> Draft202012Validator:
    document = schema(kind)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def json_path(error: _SchemaError) -> str:
    """Render where an error is, as a JSONPath such as ``$.identities[1].certificate``."""
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def problems(kind: SchemaKind, document: Any) -> list[tuple[str, str]]:
    """Every way ``document`` breaks the schema, as (JSON path, message), in document order (stable run to run)."""
    errors = sorted(_validator(kind).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [(json_path(error), error.message) for error in errors]


def validate(kind: SchemaKind, document: Any) -> None:
    """Raise :class:`ValidationError` naming the offending JSON path, or return quietly.

    When several errors exist, the first one in document order is reported (``problems`` lists them all).
    """
    found = problems(kind, document)
    if not found:
        return
    where, message = found[0]
    more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
    raise ValidationError(f"{LABELS[kind]} is invalid at {where}: {message}{more}", path=where)
