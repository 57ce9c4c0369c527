"""Who is calling: the API Gateway request context, and the admin check.

In AWS every route uses IAM authorization, so API Gateway puts the caller's ARN
in ``requestContext.identity.userArn``; the local adapter fills the same field.
Admins are the principals (ARN patterns, ``*`` wildcards) in
``IPOC_ADMIN_PRINCIPALS``.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ipoc.errors import Forbidden
from lambdas.shared.config import settings


def caller(event: Any) -> str:
    """The caller's principal ARN, or ``anonymous`` when API Gateway gave none."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("userArn") or identity.get("caller") or "anonymous"


def principal_id(event: Any) -> str:
    """The caller's unique principal id, empty when API Gateway gave none.

    With IAM authorization API Gateway sets ``requestContext.identity.user`` to
    what IAM policies call ``${aws:userid}`` (``AIDA...`` for a user,
    ``AROA...:session`` for a role session), so a bucket policy can give each
    caller a prefix of its own; the local adapter sets it to the user's name.
    """
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return identity.get("user") or ""


def _assumed_role_as_role(arn: str) -> str:
    """``arn:aws:sts::1:assumed-role/R/session`` also matches patterns written for ``arn:aws:iam::1:role/R``."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return arn


def is_admin(principal: str) -> bool:
    candidates = {principal, _assumed_role_as_role(principal)}
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates for pattern in settings().admin_principals)


def require_admin(event: Any) -> str:
    principal = caller(event)
    if not is_admin(principal):
        raise Forbidden(f"{principal} is not an i-PoC administrator; registry and VaaS routes need the admin role")
    return principal
