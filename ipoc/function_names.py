"""What a function may be named: one rule for CCFaaS, which refuses other names, and for the CLI, which checks
a policy's name before building the routes it goes into (a name with '/' or ' ' would reach another route, or
none, and get that route's error instead of this one)."""

from __future__ import annotations

import re

from ipoc.errors import ValidationError

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_function_name(name: object) -> str:
    """``name`` if it is a function name; ValidationError (at ``$.function``) otherwise."""
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise ValidationError(
            "$.function must be 1-128 characters of letters, digits, '_', '.' or '-', starting with a letter or digit"
            + (f" (got {name!r})" if isinstance(name, str) else ""),
            path="$.function",
        )
    return name
